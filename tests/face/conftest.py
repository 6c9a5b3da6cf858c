"""Shared fixtures of the face tests: real models and real LFW images from ../shared.

Plain helpers (paths, image readers, cached model builders) live in ``face_assets.py`` so
that test modules can import them; the fixtures here hand out the same cached instances.
"""

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
def get_detector() -> Callable[[str], FaceDetector]:
    """Detectors by name (``face_assets.DETECTOR_NAMES``), each built once per session."""
    return detector


@pytest.fixture(scope="session")
def yunet() -> YunetDetector:
    built = detector("yunet")
    assert isinstance(built, YunetDetector)
    return built


@pytest.fixture(scope="session")
def scrfd() -> ScrfdDetector:
    built = detector("scrfd-500m")
    assert isinstance(built, ScrfdDetector)
    return built


@pytest.fixture(scope="session")
def mobilefacenet() -> OnnxFaceEmbedder:
    return OnnxFaceEmbedder(require(MOBILEFACENET), **MOBILEFACENET_FOAMLIU)


@pytest.fixture(scope="session")
def dlib_embedder() -> DlibResnetEmbedder:
    return DlibResnetEmbedder()
