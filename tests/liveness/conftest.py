"""Fixtures of the liveness tests: real models and images from ../shared (skipped if absent)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

import pytest

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import cv2

from bioverify.face.detector_yunet import YunetDetector
from bioverify.face.ports import DetectedFace, ImageBGR
from bioverify.face.quality import select_primary_face
from bioverify.liveness.minifasnet import MiniFasNetPad
from bioverify.liveness.shape68 import FaceShape68

SHARED = Path(
    os.environ.get("BIOVERIFY_SHARED_DIR", Path(__file__).resolve().parents[2].parent / "shared")
)
MODELS = SHARED / "models"
DATA = SHARED / "data"
SAMPLES = MODELS / "silent_face_antispoof" / "samples"
V2_ONNX = MODELS / "silent_face_antispoof" / "onnx" / "2.7_80x80_MiniFASNetV2.onnx"
YUNET = MODELS / "opencv_yunet" / "face_detection_yunet_2023mar_dynamic.onnx"
PAD_LABELS = DATA / "face_pad_labels.tsv"
LFW = DATA / "face_verification" / "lfw"


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared test asset missing: {path} (set BIOVERIFY_SHARED_DIR)")
    return path


def read_image(path: Path) -> ImageBGR:
    image = cast("ImageBGR | None", cv2.imread(str(require(path)), cv2.IMREAD_COLOR))
    assert image is not None, path
    return image


@pytest.fixture(scope="session")
def yunet() -> YunetDetector:
    return YunetDetector(require(YUNET))


@pytest.fixture(scope="session")
def face_shape() -> FaceShape68:
    """dlib's 68-point predictor, loaded once (about 1 s and 100 MB)."""
    return FaceShape68()


@pytest.fixture(scope="session")
def minifasnet_v2() -> MiniFasNetPad:
    return MiniFasNetPad(require(V2_ONNX), scale=2.7, name="minifasnet_v2")


@pytest.fixture(scope="session")
def detect(yunet: YunetDetector):  # type: ignore[no-untyped-def]
    """The primary face of an image (fails the test if there is none)."""

    def _detect(image: ImageBGR) -> DetectedFace:
        faces = yunet.detect(image)
        assert faces, "no face found"
        return select_primary_face(faces, image.shape)[0]

    return _detect
