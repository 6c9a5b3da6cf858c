"""Explicit registry of face adapters, chosen by name from a model pack's manifest.
Adapters are imported only when chosen, so an unused backend costs nothing."""

from __future__ import annotations

from collections.abc import Callable

from bioverify.face.ports import FaceDetector, FaceEmbedder
from bioverify.packs import ComponentSpec, PackManifest, build_component


def _scrfd(pack: PackManifest, spec: ComponentSpec, threads: int) -> FaceDetector:
    from bioverify.face.detector_scrfd import ScrfdDetector

    return ScrfdDetector(pack.file_path(spec.files[0]), threads=threads, **spec.params)


def _yunet(pack: PackManifest, spec: ComponentSpec, threads: int) -> FaceDetector:
    from bioverify.face.detector_yunet import YunetDetector

    return YunetDetector(pack.file_path(spec.files[0]), threads=threads, **spec.params)


def _dlib_hog(pack: PackManifest, spec: ComponentSpec, threads: int) -> FaceDetector:
    from bioverify.face.detector_dlib import DlibHogDetector

    return DlibHogDetector(landmarks_path=pack.file_path(spec.files[0]), **spec.params)


def _onnx_embedder(pack: PackManifest, spec: ComponentSpec, threads: int) -> FaceEmbedder:
    from bioverify.face.embedder_onnx import OnnxFaceEmbedder

    return OnnxFaceEmbedder(pack.file_path(spec.files[0]), threads=threads, **spec.params)


def _dlib_resnet(pack: PackManifest, spec: ComponentSpec, threads: int) -> FaceEmbedder:
    from bioverify.face.embedder_dlib import DlibResnetEmbedder

    landmarks, model = spec.files
    return DlibResnetEmbedder(
        model_path=pack.file_path(model),
        shape_predictor_path=pack.file_path(landmarks),
        **spec.params,
    )


DETECTORS: dict[str, Callable[[PackManifest, ComponentSpec, int], FaceDetector]] = {
    "scrfd": _scrfd,
    "yunet": _yunet,
    "dlib-hog": _dlib_hog,
}

EMBEDDERS: dict[str, Callable[[PackManifest, ComponentSpec, int], FaceEmbedder]] = {
    "onnx-arcface": _onnx_embedder,
    "dlib-resnet": _dlib_resnet,
}


def build_detector(pack: PackManifest, threads: int) -> FaceDetector:
    return build_component(DETECTORS, "detector", pack, threads)


def build_embedder(pack: PackManifest, threads: int) -> FaceEmbedder:
    return build_component(EMBEDDERS, "embedder", pack, threads)
