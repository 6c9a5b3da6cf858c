"""Silero VAD (v5/v6 ONNX from the ``silero-vad`` wheel) on onnxruntime, without torch.

Two exports of the same network are supported; the kind is read from the model's inputs:

* ``sequence`` (``silero_vad_16k_sequence.onnx``, inputs ``input [N, 576]``, ``h``, ``c``):
  one ONNX call per block of up to 512 windows; 16 kHz only. Default at 16 kHz (about 3 ms
  per second of audio).
* ``stateful`` (``silero_vad.onnx``, inputs ``input [1, 64+512]``, ``state [2, 1, 128]``,
  ``sr``): one call per 32 ms window; 8 and 16 kHz. Default at 8 kHz.

Both give bit-identical probabilities. As in ``silero_vad.utils_vad``, each window of 512
samples (256 at 8 kHz) is prefixed with the last 64 (32) samples of the previous window
(zeros before the first), the last window is zero-padded, and the probabilities are turned
into segments by :func:`speech_timestamps_from_probs`, a faithful port of upstream's
``get_speech_timestamps_from_probs``.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from bioverify.errors import ConfigurationError
from bioverify.voice.ports import SpeechSegment, Waveform

Probabilities = npt.NDArray[np.float32]

_WINDOW = {16000: 512, 8000: 256}
_CONTEXT = {16000: 64, 8000: 32}
_STATE_SHAPE = (2, 1, 128)
_HC_SHAPE = (1, 1, 128)
_BLOCK_WINDOWS = 512

ModelKind = Literal["sequence", "stateful"]


@dataclass(frozen=True)
class SileroVadParams:
    """Segmentation settings; the defaults are upstream's ``get_speech_timestamps`` ones."""

    threshold: float = 0.5
    neg_threshold: float | None = None
    """Exit threshold while in speech; None means ``max(threshold - 0.15, 0.01)``."""
    min_speech_duration_ms: int = 250
    min_silence_duration_ms: int = 100
    speech_pad_ms: int = 30
    max_speech_duration_s: float = math.inf
    min_silence_at_max_speech_ms: int = 98
    use_max_poss_sil_at_max_speech: bool = True


def default_model_path(sample_rate: int = 16000) -> Path:
    """The ONNX file shipped in the silero-vad wheel (located without importing it)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "the silero-vad package is not installed; install it (pip install --no-deps "
            "silero-vad) or pass the path of a Silero VAD ONNX file"
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    names = ["silero_vad.onnx"]
    if sample_rate == 16000:
        names.insert(0, "silero_vad_16k_sequence.onnx")
    for name in names:
        if (data / name).is_file():
            return data / name
    raise ConfigurationError(f"no Silero VAD ONNX file ({' or '.join(names)}) in {data}")


class SileroVad:
    """:class:`~bioverify.voice.ports.VoiceActivityDetector` on the Silero VAD ONNX model.

    Stateless between calls, so one instance serves concurrent requests.
    """

    name = "silero_vad"

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        sample_rate: int = 16000,
        threads: int = 1,
        params: SileroVadParams | None = None,
    ) -> None:
        if sample_rate not in _WINDOW:
            raise ConfigurationError(f"Silero VAD runs at 8000 or 16000 Hz, not {sample_rate} Hz")
        path = Path(model_path) if model_path is not None else default_model_path(sample_rate)
        if not path.is_file():
            raise ConfigurationError(f"Silero VAD model file not found: {path}")
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise ConfigurationError(f"cannot load Silero VAD model {path.name}: {exc}") from exc
        inputs = {i.name for i in self._session.get_inputs()}
        self.kind: ModelKind
        if {"input", "h", "c"} <= inputs:
            self.kind = "sequence"
            if sample_rate != 16000:
                raise ConfigurationError(
                    f"{path.name} is a 16 kHz-only sequence export; use silero_vad.onnx at "
                    f"{sample_rate} Hz"
                )
        elif {"input", "state"} <= inputs:
            self.kind = "stateful"
            self._has_sr = "sr" in inputs
        else:
            raise ConfigurationError(
                f"{path.name} does not look like a Silero VAD v5 model (inputs: "
                f"{', '.join(sorted(inputs))})"
            )
        self.sample_rate = sample_rate
        self.params = params if params is not None else SileroVadParams()
        self.window_samples = _WINDOW[sample_rate]
        self.context_samples = _CONTEXT[sample_rate]

    @property
    def window_s(self) -> float:
        """Duration of one probability window."""
        return self.window_samples / self.sample_rate

    def speech_probabilities(self, wave: Waveform) -> Probabilities:
        """One speech probability per window of the clip (the last window zero-padded)."""
        stream = self.stream()
        stream.accept(wave)
        stream.finish()
        return stream.probabilities

    def speech_segments(self, wave: Waveform) -> list[SpeechSegment]:
        probs = self.speech_probabilities(wave)
        return self.segments_from_probs(probs, len(wave))

    def segments_from_probs(self, probs: Probabilities, num_samples: int) -> list[SpeechSegment]:
        """Speech segments (seconds) of a clip of ``num_samples`` with these probabilities."""
        spans = speech_timestamps_from_probs(
            probs, sample_rate=self.sample_rate, num_samples=num_samples, params=self.params
        )
        rate = self.sample_rate
        return [SpeechSegment(start / rate, end / rate) for start, end in spans]

    def stream(self) -> SileroVadStream:
        """A new incremental detector for one live audio stream."""
        return SileroVadStream(self)

    def _run_windows(
        self, windows: npt.NDArray[np.float32], state: _RecurrentState
    ) -> Probabilities:
        """Probabilities of ``windows`` [N, context + window]; updates ``state`` in place."""
        if windows.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        if self.kind == "sequence":
            out = []
            for first in range(0, windows.shape[0], _BLOCK_WINDOWS):
                probs, state.h, state.c = self._session.run(
                    ["speech_probs", "hn", "cn"],
                    {"input": windows[first : first + _BLOCK_WINDOWS], "h": state.h, "c": state.c},
                )
                out.append(np.asarray(probs, dtype=np.float32).reshape(-1))
            return np.concatenate(out)
        result = np.empty(windows.shape[0], dtype=np.float32)
        feed: dict[str, npt.NDArray[np.generic]] = {}
        if self._has_sr:
            feed["sr"] = np.array(self.sample_rate, dtype=np.int64)
        for i in range(windows.shape[0]):
            feed["input"] = windows[i : i + 1]
            feed["state"] = state.state
            prob, state.state = self._session.run(["output", "stateN"], feed)
            result[i] = prob.reshape(-1)[0]
        return result


class _RecurrentState:
    """LSTM state carried between windows of one stream."""

    def __init__(self) -> None:
        self.h = np.zeros(_HC_SHAPE, dtype=np.float32)
        self.c = np.zeros(_HC_SHAPE, dtype=np.float32)
        self.state = np.zeros(_STATE_SHAPE, dtype=np.float32)


class SileroVadStream:
    """Incremental VAD over successive chunks of one stream (not thread-safe).

    ``accept`` returns the probabilities of the windows completed by the chunk, so a live call
    can accumulate net speech as audio arrives; ``speech_segments``/``net_speech_s`` apply the
    offline segmentation to everything seen so far (``finish`` first to flush the tail).
    """

    def __init__(self, vad: SileroVad) -> None:
        self._vad = vad
        self._state = _RecurrentState()
        self._context = np.zeros(vad.context_samples, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._probs: list[Probabilities] = []
        self._num_samples = 0
        self._finished = False

    @property
    def num_samples(self) -> int:
        """Samples accepted so far."""
        return self._num_samples

    @property
    def probabilities(self) -> Probabilities:
        """All window probabilities so far."""
        if not self._probs:
            return np.zeros(0, dtype=np.float32)
        if len(self._probs) > 1:
            self._probs = [np.concatenate(self._probs)]
        return self._probs[0]

    def accept(self, chunk: Waveform) -> Probabilities:
        """Feed the next samples; returns the probabilities of the windows they complete."""
        if self._finished:
            raise RuntimeError("this VAD stream is finished; start a new one")
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        self._num_samples += chunk.size
        buf = np.concatenate([self._pending, chunk]) if self._pending.size else chunk
        win = self._vad.window_samples
        n = buf.size // win
        self._pending = buf[n * win :].copy()
        return self._process(buf[: n * win].reshape(n, win))

    def finish(self) -> Probabilities:
        """Flush the incomplete last window (zero-padded, as upstream does)."""
        if self._finished:
            return np.zeros(0, dtype=np.float32)
        self._finished = True
        if self._pending.size == 0:
            return np.zeros(0, dtype=np.float32)
        frame = np.zeros((1, self._vad.window_samples), dtype=np.float32)
        frame[0, : self._pending.size] = self._pending
        self._pending = np.zeros(0, dtype=np.float32)
        return self._process(frame)

    def speech_segments(self) -> list[SpeechSegment]:
        """Segments over the audio seen so far (the tail is provisional until ``finish``)."""
        return self._vad.segments_from_probs(self.probabilities, self._num_samples)

    @property
    def net_speech_s(self) -> float:
        return sum(s.end_s - s.start_s for s in self.speech_segments())

    def _process(self, frames: npt.NDArray[np.float32]) -> Probabilities:
        if frames.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        ctx = self._vad.context_samples
        contexts = np.empty((frames.shape[0], ctx), dtype=np.float32)
        contexts[0] = self._context
        contexts[1:] = frames[:-1, -ctx:]
        self._context = frames[-1, -ctx:].copy()
        windows = np.ascontiguousarray(np.concatenate([contexts, frames], axis=1))
        probs = self._vad._run_windows(windows, self._state)
        self._probs.append(probs)
        return probs


def speech_timestamps_from_probs(
    probs: Probabilities,
    *,
    sample_rate: int,
    num_samples: int,
    params: SileroVadParams,
) -> list[tuple[int, int]]:
    """Speech spans ``[start, end)`` in samples: upstream ``get_speech_timestamps_from_probs``.

    Ported from silero-vad 6.2 ``utils_vad.py`` line by line (hysteresis with ``threshold`` /
    ``neg_threshold``, minimum speech and silence durations, splitting at ``max_speech``, and
    padding by ``speech_pad_ms`` shared between close segments).
    """
    window = _WINDOW[sample_rate]
    threshold = params.threshold
    neg_threshold = (
        params.neg_threshold if params.neg_threshold is not None else max(threshold - 0.15, 0.01)
    )
    min_speech_samples = sample_rate * params.min_speech_duration_ms / 1000
    speech_pad_samples = sample_rate * params.speech_pad_ms / 1000
    max_speech_samples = (
        sample_rate * params.max_speech_duration_s - window - 2 * speech_pad_samples
    )
    min_silence_samples = sample_rate * params.min_silence_duration_ms / 1000
    min_silence_at_max = sample_rate * params.min_silence_at_max_speech_ms / 1000
    use_max_poss = params.use_max_poss_sil_at_max_speech

    triggered = False
    speeches: list[list[int]] = []
    start = 0
    in_speech = False  # upstream's "current_speech has a start"
    temp_end = 0
    prev_end = next_start = 0
    possible_ends: list[tuple[int, int]] = []

    for i, p in enumerate(probs.tolist()):
        cur = window * i
        if p >= threshold and temp_end:
            sil_dur = cur - temp_end
            if sil_dur > min_silence_at_max:
                possible_ends.append((temp_end, sil_dur))
            temp_end = 0
            if next_start < prev_end:
                next_start = cur

        if p >= threshold and not triggered:
            triggered = True
            start, in_speech = cur, True
            continue

        if triggered and cur - start > max_speech_samples:
            if use_max_poss and possible_ends:
                prev_end, dur = max(possible_ends, key=lambda e: e[1])
                speeches.append([start, prev_end])
                in_speech = False
                next_start = prev_end + dur
                if next_start < prev_end + cur:
                    start, in_speech = next_start, True
                else:
                    triggered = False
                prev_end = next_start = temp_end = 0
                possible_ends = []
            elif prev_end:
                speeches.append([start, prev_end])
                in_speech = False
                if next_start < prev_end:
                    triggered = False
                else:
                    start, in_speech = next_start, True
                prev_end = next_start = temp_end = 0
                possible_ends = []
            else:
                speeches.append([start, cur])
                in_speech = False
                prev_end = next_start = temp_end = 0
                triggered = False
                possible_ends = []
                continue

        if p < neg_threshold and triggered:
            if not temp_end:
                temp_end = cur
            sil_now = cur - temp_end
            if not use_max_poss and sil_now > min_silence_at_max:
                prev_end = temp_end
            if sil_now < min_silence_samples:
                continue
            if temp_end - start > min_speech_samples:
                speeches.append([start, temp_end])
            in_speech = False
            prev_end = next_start = temp_end = 0
            triggered = False
            possible_ends = []
            continue

    if in_speech and num_samples - start > min_speech_samples:
        speeches.append([start, num_samples])

    for i, sp in enumerate(speeches):
        if i == 0:
            sp[0] = int(max(0, sp[0] - speech_pad_samples))
        if i != len(speeches) - 1:
            silence = speeches[i + 1][0] - sp[1]
            if silence < 2 * speech_pad_samples:
                sp[1] += int(silence // 2)
                speeches[i + 1][0] = int(max(0, speeches[i + 1][0] - silence // 2))
            else:
                sp[1] = int(min(num_samples, sp[1] + speech_pad_samples))
                speeches[i + 1][0] = int(max(0, speeches[i + 1][0] - speech_pad_samples))
        else:
            sp[1] = int(min(num_samples, sp[1] + speech_pad_samples))
    return [(int(a), int(b)) for a, b in speeches]
