"""The explainable signals on synthetic audio whose answer is known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import lfilter

from bioverify.antispoof.voice_signals import (
    GAUSSIAN_NOISE_SPREAD_DB,
    SIGNAL_NAMES,
    compute_signals,
    track_f0,
)
from bioverify.voice.ports import SpeechSegment

SR = 16000


def vowel(f0: np.ndarray, seed: int = 0, noise_db: float = -40.0) -> np.ndarray:
    """An /a/-like vowel: a glottal pulse train following the F0 contour ``f0`` (Hz per
    sample), through three formant resonators, with a little breath noise."""
    rng = np.random.default_rng(seed)
    phase = np.cumsum(f0 / SR)
    pulses = np.zeros(f0.size)
    pulses[np.flatnonzero(np.diff(np.floor(phase)) > 0) + 1] = 1.0
    x: np.ndarray = lfilter([1.0], [1.0, -0.95], pulses)  # glottal roll-off
    for freq, bw in ((700.0, 80.0), (1220.0, 90.0), (2600.0, 120.0)):
        r = math.exp(-math.pi * bw / SR)
        x = lfilter([1.0 - r], [1.0, -2 * r * math.cos(2 * math.pi * freq / SR), r * r], x)
    x = x / np.max(np.abs(x)) * 0.5
    x = x + 0.5 * 10 ** (noise_db / 20) * rng.standard_normal(x.size)
    return x.astype(np.float32)


def whole(wave: np.ndarray) -> list[SpeechSegment]:
    return [SpeechSegment(0.0, wave.size / SR)]


def brickwall(wave: np.ndarray, cutoff_hz: float) -> np.ndarray:
    spec = np.fft.rfft(wave)
    spec[np.fft.rfftfreq(wave.size, 1 / SR) > cutoff_hz] = 0
    return np.fft.irfft(spec, wave.size).astype(np.float32)


def test_f0_tracker_finds_the_pitch_of_a_synthetic_vowel() -> None:
    track = track_f0(vowel(np.full(2 * SR, 150.0)))
    f0 = track.f0_hz[track.voiced]
    assert track.voiced.mean() > 0.9
    assert np.median(f0) == pytest.approx(150.0, rel=0.01)


def test_monotone_vowel_has_flat_prosody_and_intonation_does_not() -> None:
    n = 3 * SR
    t = np.arange(n) / SR
    monotone = vowel(np.full(n, 120.0))
    intoned = vowel(120.0 * 2 ** (4 * np.sin(2 * np.pi * t / 3.0) / 12))  # ±4 semitones
    flat = compute_signals(monotone, whole(monotone))["f0_variation"]
    lively = compute_signals(intoned, whole(intoned))["f0_variation"]
    assert flat.value < 0.3
    assert lively.value > 2.0
    assert "semitones" in lively.detail


def test_band_limited_speech_triggers_the_band_limit_signals() -> None:
    full = vowel(np.full(2 * SR, 140.0), noise_db=-30.0)
    limited = brickwall(full, 4000.0)
    edge = brickwall(full, 6000.0)
    s_full = compute_signals(full, whole(full))
    s_limited = compute_signals(limited, whole(limited))
    s_edge = compute_signals(edge, whole(edge))
    assert s_full["hf_ratio"].value - s_limited["hf_ratio"].value > 40.0
    assert not s_limited["hf_contrast"].available
    assert "band-limited" in s_limited["hf_contrast"].detail
    assert s_full["hf_cliff"].value < 10.0
    assert s_edge["hf_cliff"].value > 30.0
    assert "6000 Hz" in s_edge["hf_cliff"].detail or "6250 Hz" in s_edge["hf_cliff"].detail


def test_stationary_noise_has_the_gaussian_high_band_texture() -> None:
    noise = (0.1 * np.random.default_rng(1).standard_normal(3 * SR)).astype(np.float32)
    texture = compute_signals(noise, whole(noise))["hf_texture"]
    assert texture.value == pytest.approx(GAUSSIAN_NOISE_SPREAD_DB, abs=0.5)
    # a resonance in the band (as the vocal tract shapes a fricative) spreads it more
    r = math.exp(-math.pi * 300.0 / SR)
    shaped = lfilter([1.0 - r], [1.0, -2 * r * math.cos(2 * math.pi * 6200.0 / SR), r * r], noise)
    shaped = (shaped + 0.05 * noise).astype(np.float32)
    assert compute_signals(shaped, whole(shaped))["hf_texture"].value > texture.value + 1.0


def test_a_static_spectrum_has_less_mel_modulation_than_a_changing_one() -> None:
    n = 3 * SR
    static = vowel(np.full(n, 130.0))
    rng = np.random.default_rng(3)
    env = np.repeat(rng.uniform(0.3, 1.0, n // 400), 400)[:n]
    changing = (static * env).astype(np.float32)
    a = compute_signals(static, whole(static))["mel_modulation"].value
    b = compute_signals(changing, whole(changing))["mel_modulation"].value
    assert b > 1.5 * a


def test_digital_silence_in_pauses_is_reported() -> None:
    part = vowel(np.full(SR, 130.0))
    silence = np.zeros(SR, dtype=np.float32)
    wave = np.concatenate([part, silence, part])
    segments = [SpeechSegment(0.0, 1.0), SpeechSegment(2.0, 3.0)]
    digital = compute_signals(wave, segments)
    assert digital["zero_fraction"].value == pytest.approx(1.0)
    assert digital["noise_floor"].value < -90.0
    roomy = wave + (0.003 * np.random.default_rng(4).standard_normal(wave.size)).astype(np.float32)
    room = compute_signals(roomy, segments)
    assert room["zero_fraction"].value < 0.05
    assert -60.0 < room["noise_floor"].value < -20.0


def test_unmeasurable_signals_are_nan_with_a_reason() -> None:
    wave = vowel(np.full(2 * SR, 130.0))
    signals = compute_signals(wave, whole(wave))  # no pause at all
    assert list(signals) == list(SIGNAL_NAMES)
    assert not signals["noise_floor"].available
    assert "pause" in signals["noise_floor"].detail
    assert all(s.detail for s in signals.values())
