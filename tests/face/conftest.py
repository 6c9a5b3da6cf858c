"""Shared fixtures of the face tests: real models and real LFW images from ../shared."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bioverify.face.detector_scrfd import ScrfdDetector
from bioverify.face.detector_yunet import YunetDetector
from bioverify.face.embedder_dlib import DlibResnetEmbedder
from bioverify.face.embedder_onnx import MOBILEFACENET_FOAMLIU, OnnxFaceEmbedder
from bioverify.face.ports import FaceDetector
from tests.face.face_assets import MOBILEFACENET, detector, require


@pytest.fixture(scope="session")
def getdetector() -> Callable[[str], FaceDetector]:
    """Detectors by name, built once per session."""
    return detector


@pytest.fixture(scope="session")
def yunet() -> YunetDetector:
    detector = detector("yunet")
    assert isinstance(detector, YunetDetector)
    return detector


@pytest.fixture(scope="session")
def scrfd() -> ScrfdDetector:
    detector = detector("scrfd-500m")
    assert isinstance(detector, ScrfdDetector)
    return detector


@pytest.fixture(scope="session")
def mobilefacenet() -> OnnxFaceEmbedder:
    return OnnxFaceEmbedder(require(MOBILEFACENET), **MOBILEFACENET_FOAMLIU)


@pytest.fixture(scope="session")
def dlib_embedder() -> DlibResnetEmbedder:
    return DlibResnetEmbedder()
