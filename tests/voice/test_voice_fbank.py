"""Kaldi fbank front end: golden comparison with a plain numpy Kaldi fbank, CMN, config."""

from __future__ import annotations

import numpy as np
import pytest

from bioverify.errors import ConfigurationError
from bioverify.voice.fbank import (
    FbankConfig,
    KaldiFbank,
    apply_cmn,
    apply_cmvn,
    compute_fbank,
)

Clip = tuple[np.ndarray, int]


def numpy_kaldi_fbank(wave: np.ndarray, rate: int = 16000, num_bins: int = 80) -> np.ndarray:
    """Straight transcription of Kaldi's ``compute-fbank-feats`` for the CAM++ settings.

    25 ms / 10 ms frames with snip_edges, DC removal, pre-emphasis 0.97 (first sample against
    itself), povey window, FFT padded to a power of two, power spectrum, triangular mel bins
    between 20 Hz and Nyquist on Kaldi's mel scale 1127 ln(1 + f/700), log with FLT_EPSILON.
    """
    x = wave.astype(np.float64)
    length, shift = int(rate * 0.025), int(rate * 0.010)
    n_frames = 1 + (x.size - length) // shift
    idx = np.arange(length)[None, :] + shift * np.arange(n_frames)[:, None]
    frames = x[idx]
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames[:, 1:] = frames[:, 1:] - 0.97 * frames[:, :-1]
    frames[:, 0] = frames[:, 0] * (1 - 0.97)
    n = np.arange(length)
    frames = frames * (0.5 - 0.5 * np.cos(2 * np.pi * n / (length - 1))) ** 0.85
    n_fft = 1 << (length - 1).bit_length()
    power = np.abs(np.fft.rfft(frames, n=n_fft)) ** 2

    def mel(f: np.ndarray | float) -> np.ndarray:
        return np.asarray(1127.0 * np.log(1.0 + np.asarray(f) / 700.0))

    lo, hi = float(mel(20.0)), float(mel(rate / 2))
    delta = (hi - lo) / (num_bins + 1)
    fft_mel = mel(np.arange(n_fft // 2) * rate / n_fft)
    weights = np.zeros((num_bins, n_fft // 2))
    for m in range(num_bins):
        left, centre, right = lo + m * delta, lo + (m + 1) * delta, lo + (m + 2) * delta
        up = (fft_mel - left) / (centre - left)
        down = (right - fft_mel) / (right - centre)
        inside = (fft_mel > left) & (fft_mel < right)
        weights[m] = np.where(inside, np.where(fft_mel <= centre, up, down), 0.0)
    energies = power[:, : n_fft // 2] @ weights.T
    return np.log(np.maximum(energies, np.finfo(np.float32).eps))


def test_matches_numpy_kaldi_reference(speech: Clip) -> None:
    wave, rate = speech
    part = wave[rate : rate * 3]
    ours = KaldiFbank()(part)
    ref = numpy_kaldi_fbank(part, rate)
    assert ours.shape == ref.shape == (198, 80)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=2e-3, rtol=0)


def test_frame_count_and_determinism(speech: Clip) -> None:
    wave, _ = speech
    fbank = KaldiFbank()
    feats = fbank(wave)
    assert feats.shape == (fbank.num_frames(wave.size), 80)
    assert feats.shape[0] == 1 + (wave.size - 400) // 160
    np.testing.assert_array_equal(feats, fbank(wave))
    np.testing.assert_array_equal(feats, compute_fbank(wave, FbankConfig()))
    assert fbank(wave[:399]).shape == (0, 80)
    assert fbank.num_frames(399) == 0


def test_no_snip_edges_frame_count() -> None:
    fbank = KaldiFbank(FbankConfig(snip_edges=False))
    wave = np.random.default_rng(0).standard_normal(1234).astype(np.float32) * 0.1
    assert fbank(wave).shape[0] == fbank.num_frames(1234) == 8


def test_int16_scaling_only_shifts_log_energies(speech: Clip) -> None:
    wave, rate = speech
    part = wave[rate : 2 * rate]
    unit = KaldiFbank()(part)
    scaled = KaldiFbank(FbankConfig(sample_scale=32768.0))(part)
    above_floor = unit > np.log(np.finfo(np.float32).eps) + 1  # the log floor does not scale
    assert above_floor.mean() > 0.9
    np.testing.assert_allclose((scaled - unit)[above_floor], 2 * np.log(32768.0), atol=1e-3)


def test_cmn_and_cmvn() -> None:
    rng = np.random.default_rng(1)
    feats = (rng.standard_normal((50, 80)) * 3 + 7).astype(np.float32)
    cmn = apply_cmn(feats)
    assert cmn.dtype == np.float32
    np.testing.assert_allclose(cmn.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(cmn, feats - feats.mean(axis=0), atol=1e-5)
    cmvn = apply_cmvn(feats)
    np.testing.assert_allclose(cmvn.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(cmvn.std(axis=0), 1.0, atol=1e-4)
    empty = np.zeros((0, 80), np.float32)
    assert apply_cmn(empty).shape == apply_cmvn(empty).shape == (0, 80)


def test_config_from_dict() -> None:
    config = FbankConfig.from_dict(
        {"num_bins": 64, "frame_shift_ms": 10, "window_type": "hamming", "high_freq": -400},
        sample_rate=16000,
    )
    assert config.num_bins == 64
    assert config.frame_shift_ms == 10.0 and isinstance(config.frame_shift_ms, float)
    assert KaldiFbank(config)(np.zeros(1600, np.float32)).shape == (8, 64)
    assert FbankConfig.from_dict({}) == FbankConfig()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"num_bin": 80}, "unknown fbank parameter"),
        ({"num_bins": "80"}, "must be an integer"),
        ({"snip_edges": 1}, "true or false"),
        ({"dither": "no"}, "must be a number"),
        ({"window_type": "triangle"}, "window_type 'triangle' is unknown"),
        ({"high_freq": 9000}, "high_freq"),
        ({"frame_shift_ms": 30}, "frame_shift_ms"),
        ({"sample_rate": 8000}, "differs from the model's 16000 Hz"),
    ],
)
def test_config_errors(params: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        FbankConfig.from_dict(params, sample_rate=16000)
