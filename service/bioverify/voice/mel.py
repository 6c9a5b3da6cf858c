"""librosa-style mel spectrograms and GE2E partial utterances, in numpy (no librosa at runtime).

Some speaker encoders were trained on ``librosa.feature.melspectrogram`` rather than Kaldi fbank
(Resemblyzer's GE2E LSTM among them): a centred STFT with a periodic Hann window, a Slaney
(or HTK) mel filter bank with Slaney area normalisation, and power (not log) mel energies. They
also embed an utterance as the mean of fixed-length *partial* utterances (Resemblyzer: 160
frames = 1.6 s, 1.3 partials per second, so about 52 % overlap) and normalise the loudness of
the waveform first, because a linear-power input is not gain invariant.

:class:`MelSpectrogram` reproduces librosa 0.11 to float32 rounding; :func:`partial_slices`
and :func:`normalize_volume` reproduce ``resemblyzer.VoiceEncoder.compute_partial_slices`` and
``resemblyzer.audio.normalize_volume``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from bioverify.errors import ConfigurationError
from bioverify.voice.ports import Waveform

Features = npt.NDArray[np.float32]
"""(frames, bins) float32."""

PAD_MODES = ("constant", "reflect", "edge")
MEL_SCALES = ("slaney", "htk")
MEL_NORMS = ("slaney", "none")


@dataclass(frozen=True)
class MelConfig:
    """Parameters of a librosa-style mel front end (defaults: Resemblyzer's GE2E encoder)."""

    sample_rate: int = 16000
    n_fft: int = 400
    win_length: int = 0
    """0 means ``n_fft``."""
    hop_length: int = 160
    n_mels: int = 40
    fmin: float = 0.0
    fmax: float = 0.0
    """0 means Nyquist."""
    center: bool = True
    pad_mode: str = "constant"
    """librosa >= 0.10 pads with zeros; older releases reflected."""
    power: float = 2.0
    mel_scale: str = "slaney"
    mel_norm: str = "slaney"
    log: bool = False
    """Natural log of the mel energies (with ``log_floor``); GE2E uses linear power."""
    log_floor: float = 1e-6

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate <= 0:
            problems.append(f"sample_rate must be positive, got {self.sample_rate}")
        if self.n_fft < 2:
            problems.append(f"n_fft must be at least 2, got {self.n_fft}")
        if not 0 <= self.win_length <= self.n_fft:
            problems.append("win_length must be between 0 (= n_fft) and n_fft")
        if self.hop_length < 1:
            problems.append(f"hop_length must be positive, got {self.hop_length}")
        if self.n_mels < 1:
            problems.append(f"n_mels must be at least 1, got {self.n_mels}")
        nyquist = self.sample_rate / 2
        fmax = self.fmax if self.fmax > 0 else nyquist
        if not 0 <= self.fmin < fmax <= nyquist:
            problems.append(
                f"need 0 <= fmin < fmax <= Nyquist; got fmin={self.fmin}, fmax={self.fmax} at "
                f"{self.sample_rate} Hz"
            )
        if self.pad_mode not in PAD_MODES:
            problems.append(f"pad_mode must be one of {', '.join(PAD_MODES)}")
        if self.mel_scale not in MEL_SCALES:
            problems.append(f"mel_scale must be one of {', '.join(MEL_SCALES)}")
        if self.mel_norm not in MEL_NORMS:
            problems.append(f"mel_norm must be one of {', '.join(MEL_NORMS)}")
        if self.power <= 0:
            problems.append(f"power must be positive, got {self.power}")
        if self.log_floor <= 0:
            problems.append(f"log_floor must be positive, got {self.log_floor}")
        if problems:
            raise ConfigurationError("invalid mel configuration: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, params: Mapping[str, Any], *, sample_rate: int | None = None) -> MelConfig:
        """Build from a model pack's parameter mapping; unknown keys are an error."""
        return cls(**_typed_values(cls, params, "mel", sample_rate=sample_rate))


@dataclass(frozen=True)
class PartialsConfig:
    """How an utterance is cut into fixed-length partial utterances (GE2E inference)."""

    frames: int = 160
    """Frames per partial (160 x 10 ms = 1.6 s for Resemblyzer)."""
    per_second: float = 1.3
    """Partials started per second of audio; the step is round(rate / per_second / hop)."""
    min_coverage: float = 0.75
    """A last partial is kept only if at least this fraction of it is real audio."""

    def __post_init__(self) -> None:
        problems = []
        if self.frames < 1:
            problems.append(f"frames must be at least 1, got {self.frames}")
        if self.per_second <= 0:
            problems.append(f"per_second must be positive, got {self.per_second}")
        if not 0 < self.min_coverage <= 1:
            problems.append(f"min_coverage must be in (0, 1], got {self.min_coverage}")
        if problems:
            raise ConfigurationError("invalid partials configuration: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> PartialsConfig:
        return cls(**_typed_values(cls, params, "partials"))


def _typed_values(
    cls: type[Any], params: Mapping[str, Any], what: str, *, sample_rate: int | None = None
) -> dict[str, Any]:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigurationError(
            f"unknown {what} parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
        )
    values: dict[str, Any] = {}
    for key, value in params.items():
        default = getattr(cls, key)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigurationError(f"{what} parameter {key} must be true or false")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"{what} parameter {key} must be an integer")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"{what} parameter {key} must be a number")
            value = float(value)
        elif not isinstance(value, str):
            raise ConfigurationError(f"{what} parameter {key} must be a string")
        values[key] = value
    if sample_rate is not None and values.setdefault("sample_rate", sample_rate) != sample_rate:
        raise ConfigurationError(
            f"{what} sample_rate {values['sample_rate']} differs from the model's {sample_rate} Hz"
        )
    return values


# -- mel scale (librosa.hz_to_mel / mel_to_hz / filters.mel) -------------------------------------
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz: npt.ArrayLike, scale: str = "slaney") -> npt.NDArray[np.float64]:
    f = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return np.asarray(2595.0 * np.log10(1.0 + f / 700.0))
    mels = f / _F_SP
    above = f >= _MIN_LOG_HZ
    safe = np.where(above, f, _MIN_LOG_HZ)
    return np.asarray(np.where(above, _MIN_LOG_MEL + np.log(safe / _MIN_LOG_HZ) / _LOGSTEP, mels))


def mel_to_hz(mels: npt.ArrayLike, scale: str = "slaney") -> npt.NDArray[np.float64]:
    m = np.asarray(mels, dtype=np.float64)
    if scale == "htk":
        return np.asarray(700.0 * (10.0 ** (m / 2595.0) - 1.0))
    freqs = _F_SP * m
    above = m >= _MIN_LOG_MEL
    return np.asarray(
        np.where(
            above,
            _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(m, _MIN_LOG_MEL) - _MIN_LOG_MEL)),
            freqs,
        )
    )


def mel_filter_bank(config: MelConfig) -> npt.NDArray[np.float32]:
    """(n_mels, n_fft // 2 + 1) triangular filters, as ``librosa.filters.mel``."""
    fmax = config.fmax if config.fmax > 0 else config.sample_rate / 2
    fft_freqs = np.fft.rfftfreq(config.n_fft, d=1.0 / config.sample_rate)
    mel_pts = np.linspace(
        hz_to_mel(config.fmin, config.mel_scale),
        hz_to_mel(fmax, config.mel_scale),
        config.n_mels + 2,
    )
    mel_f = mel_to_hz(mel_pts, config.mel_scale)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    lower = -ramps[: config.n_mels] / fdiff[: config.n_mels, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights: npt.NDArray[np.float32] = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    if config.mel_norm == "slaney":
        enorm = 2.0 / (mel_f[2 : config.n_mels + 2] - mel_f[: config.n_mels])
        weights *= enorm[:, None].astype(np.float32)
    return weights


def hann_window(length: int) -> npt.NDArray[np.float64]:
    """Periodic Hann window (``scipy.signal.get_window('hann', length, fftbins=True)``)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)


class MelSpectrogram:
    """(frames, n_mels) float32 mel energies of a whole waveform. Thread-safe."""

    def __init__(self, config: MelConfig | None = None) -> None:
        self.config = config if config is not None else MelConfig()
        cfg = self.config
        win = cfg.win_length or cfg.n_fft
        window = np.zeros(cfg.n_fft, dtype=np.float64)
        offset = (cfg.n_fft - win) // 2
        window[offset : offset + win] = hann_window(win)
        self._window = window
        self._filters = mel_filter_bank(cfg).astype(np.float64)
        self.dim = cfg.n_mels

    def num_frames(self, num_samples: int) -> int:
        cfg = self.config
        if cfg.center:
            return 1 + num_samples // cfg.hop_length
        return 0 if num_samples < cfg.n_fft else 1 + (num_samples - cfg.n_fft) // cfg.hop_length

    def __call__(self, wave: Waveform) -> Features:
        cfg = self.config
        y = np.asarray(wave, dtype=np.float64).reshape(-1)
        if cfg.center:
            half = cfg.n_fft // 2
            if cfg.pad_mode == "reflect" and y.size <= half:
                raise ValueError("the waveform is too short to reflect-pad")
            y = np.pad(y, (half, half), mode=cfg.pad_mode)  # type: ignore[call-overload]
        if y.size < cfg.n_fft:
            return np.zeros((0, self.dim), dtype=np.float32)
        frames = np.lib.stride_tricks.sliding_window_view(y, cfg.n_fft)[:: cfg.hop_length]
        spectrum = np.abs(np.fft.rfft(frames * self._window, axis=1))
        power = spectrum**2 if cfg.power == 2.0 else spectrum**cfg.power
        mel = power @ self._filters.T
        if cfg.log:
            mel = np.log(np.maximum(mel, cfg.log_floor))
        return np.ascontiguousarray(mel, dtype=np.float32)


def partial_slices(
    num_samples: int, hop_length: int, sample_rate: int, partials: PartialsConfig
) -> tuple[list[slice], int]:
    """Frame ranges of the partial utterances of a ``num_samples``-long waveform, and the length
    the waveform must be zero-padded to so that every partial has audio (Resemblyzer's
    ``compute_partial_slices``). There is always at least one partial."""
    n_frames = math.ceil((num_samples + 1) / hop_length)
    step = round((sample_rate / partials.per_second) / hop_length)
    if not 0 < step <= partials.frames:
        raise ConfigurationError(
            f"partials per_second {partials.per_second} gives a step of {step} frames; it must "
            f"be between 1 and the partial length ({partials.frames} frames)"
        )
    steps = max(1, n_frames - partials.frames + step + 1)
    slices = [slice(i, i + partials.frames) for i in range(0, steps, step)]
    last_start = slices[-1].start * hop_length
    coverage = (num_samples - last_start) / (partials.frames * hop_length)
    if coverage < partials.min_coverage and len(slices) > 1:
        slices = slices[:-1]
    return slices, slices[-1].stop * hop_length


def normalize_volume(wave: Waveform, target_dbfs: float, *, increase_only: bool = True) -> Waveform:
    """Scale ``wave`` to an RMS of ``target_dbfs`` dB full scale (only up, by default)."""
    w = np.asarray(wave, dtype=np.float32)
    rms = float(np.sqrt(np.mean(np.square(w, dtype=np.float64)))) if w.size else 0.0
    if rms <= 0.0:
        return w
    change_db = target_dbfs - 20.0 * math.log10(rms)
    if change_db < 0 and increase_only:
        return w
    return np.asarray(w * np.float32(10.0 ** (change_db / 20.0)), dtype=np.float32)
