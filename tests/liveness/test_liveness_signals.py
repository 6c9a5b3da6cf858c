"""Signal checks on synthetic edits of real faces: each tell moves its own feature."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import cv2
import numpy as np
import pytest

from bioverify.errors import ConfigurationError, InvalidInput
from bioverify.face.ports import DetectedFace, ImageBGR
from bioverify.liveness import face_signals as fs
from tests.liveness.conftest import LFW, read_image

FACE = LFW / "Bob_Colvin" / "Bob_Colvin_0002.jpg"


@pytest.fixture(scope="module")
def face_image(
    detect: Callable[[ImageBGR], DetectedFace],
) -> tuple[ImageBGR, DetectedFace]:
    image = read_image(FACE)
    return image, detect(image)


def _shifted(face: DetectedFace, dx: float, dy: float, scale: float = 1.0) -> DetectedFace:
    return DetectedFace(
        face.x1 * scale + dx,
        face.y1 * scale + dy,
        face.x2 * scale + dx,
        face.y2 * scale + dy,
        face.score,
        (face.landmarks * scale + np.array([dx, dy], np.float32)).astype(np.float32),
    )


def test_patch_geometry(face_image: tuple[ImageBGR, DetectedFace]) -> None:
    image, face = face_image
    patch = fs.face_patch(image, face)
    assert patch.pixel.shape == (fs.CROP, fs.CROP, 3)
    assert patch.grey.shape == (fs.CROP, fs.CROP)
    assert patch.power.shape == (fs.CROP, fs.CROP)
    values = fs.measure_patch(patch)
    assert set(values) == set(fs.PATCH_SIGNALS)
    assert all(np.isfinite(v.value) and v.explanation for v in values.values())


def test_derived_views_are_computed_on_demand_once(
    face_image: tuple[ImageBGR, DetectedFace],
) -> None:
    """The spectrum and colour conversions cost nothing until a signal reads them."""
    patch = fs.face_patch(*face_image)
    assert not {"power", "ycrcb", "hsv_inner"} & set(vars(patch))
    fs.detail_scale_ratio(patch)
    fs.chroma_gamut(patch)
    assert "power" not in vars(patch) and "ycrcb" in vars(patch)
    assert patch.power is patch.power


def test_chroma_gamut_matches_its_definition(face_image: tuple[ImageBGR, DetectedFace]) -> None:
    patch = fs.face_patch(*face_image)
    ycc = cv2.cvtColor(patch.pixel, cv2.COLOR_BGR2YCrCb)[fs.INNER].reshape(-1, 3)
    ycc = ycc.astype(np.float64)
    det = np.linalg.det(np.cov(ycc[:, 1:].T))
    expected = 0.5 * np.log(det) - np.log(ycc[:, 0].var() + 1e-6)
    assert fs.chroma_gamut(patch).value == pytest.approx(expected, abs=1e-9)


def test_signals_are_resolution_normalised(face_image: tuple[ImageBGR, DetectedFace]) -> None:
    """The same face at 2x size (upsampled, then measured) keeps its geometry-free values."""
    image, face = face_image
    big = cast(ImageBGR, cv2.resize(image, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC))
    a = fs.measure_patch(fs.face_patch(image, face))
    b = fs.measure_patch(fs.face_patch(big, _shifted(face, 0, 0, 2.0)))
    assert b["detail_hf_energy"].value == pytest.approx(a["detail_hf_energy"].value, abs=0.5)
    assert b["colour_saturation"].value == pytest.approx(a["colour_saturation"].value, abs=0.02)
    assert b["landmark_asymmetry"].value == pytest.approx(a["landmark_asymmetry"].value, abs=1e-4)


def test_blur_lowers_detail(face_image: tuple[ImageBGR, DetectedFace]) -> None:
    image, face = face_image
    blurred = cast(ImageBGR, cv2.GaussianBlur(image, (0, 0), 1.5))
    sharp = fs.measure_patch(fs.face_patch(image, face))
    soft = fs.measure_patch(fs.face_patch(blurred, face))
    assert soft["detail_hf_energy"].value < sharp["detail_hf_energy"].value - 1.0
    assert soft["detail_sharpness"].value < sharp["detail_sharpness"].value - 1.0
    assert soft["detail_scale_ratio"].value < sharp["detail_scale_ratio"].value - 0.3


def test_gamut_compression_lowers_chroma_gamut(face_image: tuple[ImageBGR, DetectedFace]) -> None:
    """Halving the chroma around its mean (as a display's smaller gamut does) is measured."""
    image, face = face_image
    ycc = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb).astype(np.float64)
    for c in (1, 2):
        ycc[..., c] = ycc[..., c].mean() + 0.5 * (ycc[..., c] - ycc[..., c].mean())
    washed = cast(
        ImageBGR, cv2.cvtColor(np.clip(ycc, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2BGR)
    )
    a = fs.chroma_gamut(fs.face_patch(image, face)).value
    b = fs.chroma_gamut(fs.face_patch(washed, face)).value
    assert b < a - 0.4


def test_periodic_pattern_raises_spectral_peaks(
    face_image: tuple[ImageBGR, DetectedFace],
) -> None:
    """A screen-like grating (moire) over the face shows up as isolated spectral peaks."""
    image, face = face_image
    yy, xx = np.indices(image.shape[:2])
    grating = 12.0 * np.sin(2 * np.pi * (xx * 0.23 + yy * 0.11))
    moire = np.clip(image.astype(np.float64) + grating[..., None], 0, 255).astype(np.uint8)
    clean = fs.moire_peaks(fs.face_patch(image, face)).value
    striped = fs.moire_peaks(fs.face_patch(moire, face)).value
    assert striped > clean + 0.5


def test_glare_and_saturation(face_image: tuple[ImageBGR, DetectedFace]) -> None:
    image, face = face_image
    patch = fs.face_patch(image, face)
    washed = cast(ImageBGR, cv2.addWeighted(image, 0.4, np.full_like(image, 200), 0.6, 0))
    glare = image.copy()
    x, y = (face.landmarks[0] + face.landmarks[2]) / 2
    cv2.circle(glare, (int(x), int(y)), int(face.width / 5), (255, 255, 255), -1)
    assert fs.colour_saturation(fs.face_patch(washed, face)).value < (
        fs.colour_saturation(patch).value - 0.1
    )
    assert fs.specular_glare(fs.face_patch(glare, face)).value > fs.specular_glare(patch).value


def test_chroma_texture_model_round_trip(face_image: tuple[ImageBGR, DetectedFace]) -> None:
    image, face = face_image
    hist = fs.chroma_cooccurrence(fs.face_patch(image, face))
    assert hist.shape == (fs.COOC_BINS,)
    assert hist[:25].sum() == pytest.approx(1.0)
    model = fs.ChromaTextureModel(
        mean=np.full(fs.COOC_BINS, 0.04),
        std=np.full(fs.COOC_BINS, 0.01),
        weights=np.linspace(-1, 1, fs.COOC_BINS),
        bias=0.5,
    )
    again = fs.ChromaTextureModel.from_dict(model.to_dict())
    assert again.score(hist) == pytest.approx(model.score(hist), abs=1e-5)
    signal = fs.PatchSignal(fs.CHROMA_TEXTURE, model).measure(image, face)
    assert signal.value == pytest.approx(model.score(hist))
    with pytest.raises(ConfigurationError):
        fs.ChromaTextureModel.from_dict({"mean": [0.0], "std": [1.0], "weights": [1.0], "bias": 0})
    with pytest.raises(ConfigurationError):
        fs.PatchSignal(fs.CHROMA_TEXTURE)
    with pytest.raises(ConfigurationError, match="valid"):
        fs.PatchSignal("nope")


def test_identical_frames_show_no_motion(face_image: tuple[ImageBGR, DetectedFace]) -> None:
    image, face = face_image
    motion = fs.measure_motion([(image, face)] * 5)
    assert motion[fs.MOTION_FRAME_CHANGE].value == 0.0
    assert motion[fs.MOTION_NONRIGID].value == pytest.approx(0.0, abs=1e-9)
    assert motion[fs.MOTION_POSE_RANGE].value == pytest.approx(0.0, abs=1e-9)


def test_rigidly_moved_picture_shows_no_nonrigid_motion(
    face_image: tuple[ImageBGR, DetectedFace],
) -> None:
    """A photo slid across the view: pixels change, the landmark shape does not."""
    image, face = face_image
    frames = []
    for dx in (0, 3, 6, 9):
        moved = np.roll(image, dx, axis=1)
        frames.append((moved, _shifted(face, dx, 0)))
    motion = fs.measure_motion(frames)
    assert motion[fs.MOTION_NONRIGID].value < 1e-6
    assert motion[fs.MOTION_POSE_RANGE].value < 1e-6


def test_articulated_motion_is_measured(face_image: tuple[ImageBGR, DetectedFace]) -> None:
    image, face = face_image
    rng = np.random.default_rng(3)
    frames = []
    for i in range(4):
        lm = face.landmarks.copy()
        lm[2, 0] += 2.0 * i  # the nose turns
        noisy = np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8)
        frames.append((noisy, DetectedFace(face.x1, face.y1, face.x2, face.y2, 0.9, lm)))
    motion = fs.measure_motion(frames)
    assert motion[fs.MOTION_FRAME_CHANGE].value > 1.0
    assert motion[fs.MOTION_NONRIGID].value > 0.005
    assert motion[fs.MOTION_POSE_RANGE].value > 0.05


def test_bad_input_is_refused(face_image: tuple[ImageBGR, DetectedFace]) -> None:
    image, face = face_image
    flat = DetectedFace(0, 0, 10, 10, 0.9, np.zeros((5, 2), np.float32))
    with pytest.raises(InvalidInput):
        fs.face_patch(image, flat)
    with pytest.raises(InvalidInput):
        fs.measure_motion([(image, face)])
