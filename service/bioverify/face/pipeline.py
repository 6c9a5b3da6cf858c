"""The face pipeline: bytes -> decoded image -> faces -> subject face -> quality -> crop ->
embedding. Stage timings are recorded for benchmarks; nothing here knows about gRPC."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bioverify.errors import MultipleFaces, NoFaceDetected, PoorQuality
from bioverify.face.image_decode import decode_image_within
from bioverify.face.ports import DetectedFace, FaceDetector, FaceEmbedder, ImageBGR
from bioverify.face.quality import (
    FaceQuality,
    QualityThresholds,
    assess_face_quality,
    select_primary_face,
)


@dataclass(frozen=True)
class ImageLimits:
    """``max_bytes`` and ``max_pixels`` refuse an image; an image with a side longer than
    ``max_working_side`` is shrunk to it before the face is looked for (a face needs far
    fewer pixels than a 40-megapixel photo, and each kept image holds memory until the
    request's faces are embedded and checked)."""

    max_bytes: int
    max_pixels: int
    max_working_side: int = 2048


@dataclass(frozen=True)
class FaceFinding:
    """What the pipeline saw in one image (no pixels, no embedding).

    ``face`` and ``quality`` are in the pixels that were analysed, which are ``scale``
    times the image as sent (``image_width`` x ``image_height``); 1.0 unless it was shrunk.
    """

    face: DetectedFace
    quality: FaceQuality
    faces_detected: int
    image_width: int
    image_height: int
    scale: float = 1.0


@dataclass(frozen=True)
class FaceSample:
    finding: FaceFinding
    embedding: npt.NDArray[np.float32]
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PreparedFace:
    """A located, quality-assessed face and its aligned crop, ready to embed."""

    finding: FaceFinding
    image: ImageBGR
    crop: ImageBGR
    timings_ms: dict[str, float]


class FacePipeline:
    def __init__(
        self,
        detector: FaceDetector,
        embedder: FaceEmbedder,
        *,
        limits: ImageLimits,
        quality: QualityThresholds,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.limits = limits
        self.quality = quality

    def prepare(self, data: bytes) -> PreparedFace:
        """Decode, detect and align. Raises NoFaceDetected / MultipleFaces / InvalidImage."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        decoded = decode_image_within(
            data,
            max_bytes=self.limits.max_bytes,
            max_pixels=self.limits.max_pixels,
            max_side=self.limits.max_working_side,
        )
        image = decoded.pixels
        t1 = time.perf_counter()
        faces = self.detector.detect(image)
        t2 = time.perf_counter()
        if not faces:
            raise NoFaceDetected("no face was found in the image")
        face, ambiguous = select_primary_face(faces, image.shape)
        if ambiguous:
            raise MultipleFaces(
                f"{len(faces)} faces of similar size were found; send an image of one person",
                faces_detected=len(faces),
                image_width=decoded.original_width,
                image_height=decoded.original_height,
            )
        quality = assess_face_quality(image, face, thresholds=self.quality, scale=decoded.scale)
        crop = self.embedder.align(image, face)
        t3 = time.perf_counter()
        timings.update(decode=(t1 - t0) * 1e3, detect=(t2 - t1) * 1e3, align=(t3 - t2) * 1e3)
        finding = FaceFinding(
            face=face,
            quality=quality,
            faces_detected=len(faces),
            image_width=decoded.original_width,
            image_height=decoded.original_height,
            scale=decoded.scale,
        )
        return PreparedFace(finding=finding, image=image, crop=crop, timings_ms=timings)

    def embed(self, prepared: Sequence[PreparedFace]) -> list[FaceSample]:
        if not prepared:
            return []
        t0 = time.perf_counter()
        vectors = self.embedder.embed([p.crop for p in prepared])
        per_face = (time.perf_counter() - t0) * 1e3 / len(prepared)
        return [
            FaceSample(
                finding=p.finding,
                embedding=np.asarray(vectors[i], dtype=np.float32),
                timings_ms={**p.timings_ms, "embed": per_face},
            )
            for i, p in enumerate(prepared)
        ]

    def analyse(self, data: bytes, *, require_quality: bool = False) -> FaceSample:
        prepared = self.prepare(data)
        if require_quality:
            raise_for_quality(prepared.finding.quality)
        return self.embed([prepared])[0]


def raise_for_quality(quality: FaceQuality) -> None:
    if not quality.ok:
        raise PoorQuality("; ".join(issue.message for issue in quality.issues))
