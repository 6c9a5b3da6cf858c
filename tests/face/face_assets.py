"""Paths, image readers and model builders shared by the face tests (fixtures: conftest.py)."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import cast

import numpy as np
import pytest

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import cv2

from bioverify.face.detector_dlib import DlibHogDetector
from bioverify.face.detector_scrfd import ScrfdDetector
from bioverify.face.detector_yunet import YunetDetector
from bioverify.face.ports import FaceDetector, ImageBGR

SHARED = Path(
    os.environ.get("BIOVERIFY_SHARED_DIR", Path(__file__).resolve().parents[2].parent / "shared")
)
MODELS = SHARED / "models"
DATA = SHARED / "data"
LFW = DATA / "face_verification" / "lfw"

SCRFD_500M = MODELS / "insightface_buffalo_s" / "det_500m.onnx"
SCRFD_2_5G = MODELS / "insightface_buffalo_m" / "det_2.5g.onnx"
YUNET_DYNAMIC = MODELS / "opencv_yunet" / "face_detection_yunet_2023mar_dynamic.onnx"
YUNET_640 = MODELS / "opencv_yunet" / "face_detection_yunet_2023mar.onnx"
MOBILEFACENET = MODELS / "mobilefacenet_foamliu" / "MobileFaceNet.onnx"

DETECTOR_NAMES = ("scrfd-500m", "scrfd-2.5g", "yunet", "dlib-hog")


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared test asset missing: {path} (set BIOVERIFY_SHARED_DIR)")
    return path


def lfw_path(name: str, n: int) -> Path:
    return require(LFW / name / f"{name}_{n:04d}.jpg")


@cache
def _read(path: Path) -> ImageBGR:
    image = cast("ImageBGR | None", cv2.imread(str(path), cv2.IMREAD_COLOR))
    if image is None:
        raise FileNotFoundError(path)
    image.setflags(write=False)
    return image


def lfw_image(name: str, n: int) -> ImageBGR:
    """A 250x250 LFW image as BGR (read-only; copy before modifying)."""
    return _read(lfw_path(name, n))


def lfw_bytes(name: str, n: int) -> bytes:
    return lfw_path(name, n).read_bytes()


@cache
def detector(name: str) -> FaceDetector:
    if name == "scrfd-500m":
        return ScrfdDetector(require(SCRFD_500M))
    if name == "scrfd-2.5g":
        return ScrfdDetector(require(SCRFD_2_5G))
    if name == "yunet":
        return YunetDetector(require(YUNET_DYNAMIC))
    if name == "dlib-hog":
        return DlibHogDetector()
    raise ValueError(name)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))
