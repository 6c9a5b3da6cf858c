"""Silero VAD on onnxruntime: real speech, silence, noise, streaming, and the segmenter port."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bioverify.errors import ConfigurationError
from bioverify.voice.audio_decode import resample
from bioverify.voice.vad_silero import (
    SileroVad,
    SileroVadParams,
    default_model_path,
    speech_timestamps_from_probs,
)

Clip = tuple[np.ndarray, int]


def test_finds_speech_in_real_clips(vad: SileroVad, clip: Callable[[str], Clip]) -> None:
    for rel in (
        "speaker/audio/libri_2033/2033-164914-0009.flac",
        "speaker/audio/timit_dr1-mcpm0/sa1.flac",
        "speaker/impostors/909-131041-0000.flac",
    ):
        wave, rate = clip(rel)
        segments = vad.speech_segments(wave)
        assert segments, rel
        speech = sum(s.end_s - s.start_s for s in segments)
        duration = wave.size / rate
        assert 0.4 * duration < speech <= duration, rel
        assert all(0 <= s.start_s < s.end_s <= duration for s in segments)
        assert all(a.end_s <= b.start_s for a, b in itertools.pairwise(segments))


def test_no_speech_in_silence_or_noise(vad: SileroVad) -> None:
    rng = np.random.default_rng(0)
    silence = np.zeros(16000 * 3, np.float32)
    white = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)
    hum = (0.3 * np.sin(2 * np.pi * 50 * np.arange(16000 * 3) / 16000)).astype(np.float32)
    for wave in (silence, white, hum):
        assert vad.speech_segments(wave) == []
    assert vad.speech_segments(np.zeros(0, np.float32)) == []
    assert vad.speech_segments(np.zeros(100, np.float32)) == []


def test_probabilities_per_window(vad: SileroVad, speech: Clip) -> None:
    wave, _ = speech
    probs = vad.speech_probabilities(wave)
    assert probs.dtype == np.float32
    assert probs.shape == (-(-wave.size // 512),)
    assert probs.min() >= 0.0 and probs.max() <= 1.0
    np.testing.assert_array_equal(probs, vad.speech_probabilities(wave))  # deterministic


def test_stream_matches_offline(vad: SileroVad, speech: Clip) -> None:
    wave, _ = speech
    offline_probs = vad.speech_probabilities(wave)
    stream = vad.stream()
    rng = np.random.default_rng(7)
    got = []
    i = 0
    while i < wave.size:
        n = int(rng.integers(1, 5000))
        got.append(stream.accept(wave[i : i + n]))
        i += n
    got.append(stream.finish())
    np.testing.assert_array_equal(np.concatenate(got), offline_probs)
    np.testing.assert_array_equal(stream.probabilities, offline_probs)
    assert stream.num_samples == wave.size
    assert stream.speech_segments() == vad.speech_segments(wave)
    assert stream.net_speech_s == pytest.approx(
        sum(s.end_s - s.start_s for s in vad.speech_segments(wave))
    )
    with pytest.raises(RuntimeError, match="finished"):
        stream.accept(wave[:10])


def test_stream_accumulates_speech_incrementally(vad: SileroVad, speech: Clip) -> None:
    wave, rate = speech
    stream = vad.stream()
    totals = []
    for start in range(0, wave.size, rate):  # one-second chunks as they arrive
        stream.accept(wave[start : start + rate])
        totals.append(stream.net_speech_s)
    assert totals == sorted(totals)
    assert totals[-1] > 3.0


def test_eight_khz_stateful_model_agrees_with_itself(speech: Clip) -> None:
    wave, rate = speech
    vad8 = SileroVad(sample_rate=8000)
    assert vad8.kind == "stateful"
    assert vad8.window_samples == 256
    narrow = resample(wave, rate, 8000)
    segments = vad8.speech_segments(narrow)
    assert segments
    stream = vad8.stream()
    stream.accept(narrow[:5000])
    stream.accept(narrow[5000:])
    stream.finish()
    assert stream.speech_segments() == segments


def test_stateful_and_sequence_exports_agree(vad: SileroVad, speech: Clip) -> None:
    wave, _ = speech
    stateful = SileroVad(default_model_path(8000), sample_rate=16000)
    assert (vad.kind, stateful.kind) == ("sequence", "stateful")
    np.testing.assert_allclose(
        stateful.speech_probabilities(wave[:32000]),
        vad.speech_probabilities(wave[:32000]),
        atol=1e-5,
    )


def test_fast_enough(vad: SileroVad, speech: Clip) -> None:
    wave, rate = speech
    vad.speech_segments(wave)
    start = time.perf_counter()
    vad.speech_segments(wave)
    per_10s = (time.perf_counter() - start) * 10 * rate / wave.size
    assert per_10s < 0.2  # ~30 ms on one core; generous for loaded CI machines


def test_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        SileroVad(tmp_path / "missing.onnx")
    with pytest.raises(ConfigurationError, match="8000 or 16000"):
        SileroVad(sample_rate=44100)
    with pytest.raises(ConfigurationError, match="16 kHz-only"):
        SileroVad(default_model_path(16000), sample_rate=8000)
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a model")
    with pytest.raises(ConfigurationError, match="cannot load"):
        SileroVad(bogus)


# Golden values from silero-vad 6.2.3 ``get_speech_timestamps_from_probs`` on these inputs.
_P1 = (
    [0.1] * 10 + [0.9] * 20 + [0.2] * 10 + [0.8] * 3 + [0.1] * 8
    + [0.95] * 15 + [0.4] * 2 + [0.9] * 10 + [0.05] * 5
)  # fmt: skip
_P2 = [0.9] * 100 + [0.1] * 4 + [0.9] * 100 + [0.2] * 20


@pytest.mark.parametrize(
    ("probs", "rate", "num_samples", "params", "expected"),
    [
        (_P1, 16000, 83 * 512 - 100, SileroVadParams(), [(4640, 15840), (25632, 40416)]),
        (
            _P1,
            16000,
            83 * 512 - 100,
            SileroVadParams(threshold=0.6, min_silence_duration_ms=300, speech_pad_ms=50),
            [(4320, 42396)],
        ),
        (
            _P2,
            16000,
            224 * 512,
            SileroVadParams(max_speech_duration_s=2.0),
            [(0, 30976), (30976, 51680), (52768, 84224), (84224, 104928)],
        ),
        (
            _P2,
            16000,
            224 * 512,
            SileroVadParams(max_speech_duration_s=2.0, use_max_poss_sil_at_max_speech=False),
            [(0, 30976), (30976, 62208), (62208, 93440), (93440, 104928)],
        ),
        (_P1, 8000, 83 * 256, SileroVadParams(), [(2320, 7920), (12816, 20208)]),
        ([], 16000, 0, SileroVadParams(), []),
    ],
)
def test_segmenter_matches_upstream(
    probs: list[float],
    rate: int,
    num_samples: int,
    params: SileroVadParams,
    expected: list[tuple[int, int]],
) -> None:
    got = speech_timestamps_from_probs(
        np.asarray(probs, np.float32), sample_rate=rate, num_samples=num_samples, params=params
    )
    assert got == expected
