"""Audio-visual sync: the correlation over lags, the energy envelope, the lip aperture and the
check's verdicts on synthetic series (golden values), with the real dlib shape predictor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bioverify.errors import InvalidInput
from bioverify.face.ports import DetectedFace
from bioverify.liveness.av_sync import (
    AV_SYNC,
    AvSyncChecker,
    frame_energy_db,
    lagged_correlation,
    pearson,
)
from bioverify.liveness.shape68 import FaceShape68, aperture_from_68, predictor_box
from tests.liveness.conftest import LFW, read_image


def test_pearson_golden_values() -> None:
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    assert pearson([3, 3, 3, 3], [1, 2, 3, 4]) == 0.0  # constant: no evidence, not NaN


def test_lagged_correlation_finds_the_shift() -> None:
    t = np.arange(40)
    energy = np.sin(2 * np.pi * t / 9.0) + 0.3 * np.sin(2 * np.pi * t / 4.0)
    mouth_late = np.roll(energy, 2)  # the mouth follows the audio by 2 frames
    r, lag = lagged_correlation(mouth_late[2:], energy[2:], 3)
    assert (round(r, 6), lag) == (1.0, 2)
    r, lag = lagged_correlation(energy[2:], mouth_late[2:], 3)
    assert (round(r, 6), lag) == (1.0, -2)
    # Beyond the lag range the shift is not found; the best in range is reported.
    r, lag = lagged_correlation(np.roll(energy, 5)[5:], energy[5:], 3)
    assert r < 0.9 and abs(lag) <= 3
    golden = lagged_correlation([0, 1, 0, 2, 0, 3, 1, 0], [1, 0, 2, 0, 3, 1, 0, 0], 1)
    assert golden[1] == 1 and golden[0] == pytest.approx(
        pearson([1, 0, 2, 0, 3, 1, 0], [1, 0, 2, 0, 3, 1, 0])
    )
    assert lagged_correlation([1, 1, 1, 1], [0, 1, 0, 1], 1) == (0.0, 0)
    with pytest.raises(ValueError):
        lagged_correlation([1, 2, 3], [1, 2], 1)


def test_frame_energy_golden_values() -> None:
    rate, fps = 16000, 10.0
    t = np.arange(rate) / rate
    loud = 0.5 * np.sin(2 * np.pi * 200 * t)  # RMS 0.5 / sqrt(2): -9.03 dBFS
    wave = np.concatenate([loud[:8000], 0.01 * loud[8000:]])  # -40 dB for the last 0.5 s
    levels = frame_energy_db(wave, rate, 12, fps, dynamic_range_db=30.0)
    expected_loud = 20 * math.log10(0.5 / math.sqrt(2))
    assert levels[:5] == pytest.approx([expected_loud] * 5, abs=1e-6)
    # -40 dB is below the 30 dB range: floored; past the end of the audio: floored too.
    assert levels[5:] == pytest.approx([expected_loud - 30.0] * 7, abs=1e-6)


def test_aperture_is_normalised_by_the_eye_distance() -> None:
    points = np.zeros((68, 2), np.float32)
    points[36:42] = (10.0, 20.0)
    points[42:48] = (50.0, 20.0)  # eye distance 40
    for a, b, gap in ((61, 67, 4.0), (62, 66, 6.0), (63, 65, 2.0)):
        points[a] = (30.0, 50.0)
        points[b] = (30.0, 50.0 + gap)
    assert aperture_from_68(points) == pytest.approx(4.0 / 40.0)


def test_predictor_box_and_a_real_face(face_shape: FaceShape68) -> None:
    image = read_image(LFW / "Nursultan_Nazarbayev" / "Nursultan_Nazarbayev_0002.jpg")
    from bioverify.face.detector_dlib import DlibHogDetector

    face = DlibHogDetector().detect(image)[0]
    left, top, right, bottom = predictor_box(face)
    assert right - left == bottom - top and left < face.landmarks[0][0] < right
    opening = aperture_from_68(face_shape.landmarks(image, face))
    assert 0.0 <= opening < 0.1  # lips closed on this photo


def _face() -> DetectedFace:
    landmarks = np.array([[40, 50], [80, 50], [60, 70], [45, 90], [75, 90]], np.float32)
    return DetectedFace(20, 20, 100, 110, 0.9, landmarks)


def test_validate_rejects_inconsistent_captures() -> None:
    checker = AvSyncChecker()
    checker.validate(30, 15.0, 2.3)  # within max(0.5 s, 25 %)
    for fps, audio_s in ((0.0, 2.0), (float("nan"), 2.0), (15.0, 3.0), (15.0, 1.2)):
        with pytest.raises(InvalidInput):
            checker.validate(30, fps, audio_s)


def test_not_evaluated_is_never_a_pass(face_shape: FaceShape68) -> None:
    image = np.zeros((128, 128, 3), np.uint8)
    frames = [(image, _face())] * 30
    wave = np.zeros(32000, np.float32)
    without = AvSyncChecker(unavailable="no predictor").check(None, 15.0, wave, 16000)
    assert not without.evaluated and without.check.passed and without.check.weight == 0.0
    assert without.check.name == AV_SYNC and "not evaluated: no predictor" in without.check.detail
    checker = AvSyncChecker()
    shapes = [face_shape.landmarks(image, face) for image, face in frames]
    short = checker.check(shapes[:8], 15.0, wave[:8533], 16000)
    assert not short.evaluated and "needs at least 10 frames" in short.check.detail
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(32000)).astype(np.float32)
    silent = np.concatenate([noise[:8000], np.zeros(24000, np.float32)])
    quiet = checker.check(shapes, 15.0, silent, 16000)
    assert not quiet.evaluated and "of speech during the video" in quiet.check.detail
