"""Ports of the face pipeline: small protocols that adapters implement (one adapter per file)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

ImageBGR = npt.NDArray[np.uint8]
"""An HxWx3 uint8 image in OpenCV's BGR channel order."""


@dataclass(frozen=True)
class DetectedFace:
    """One detected face in image pixel coordinates.

    ``landmarks`` is a (5, 2) float32 array in the ArcFace template order: the eye on the
    image's left (the subject's right eye), the eye on the image's right, nose tip, mouth
    corner on the image's left, mouth corner on the image's right.
    """

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    landmarks: npt.NDArray[np.float32]

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)


class FaceDetector(Protocol):
    """Finds faces and their 5 landmarks in a BGR image."""

    name: str

    def detect(self, image: ImageBGR) -> list[DetectedFace]:
        """All faces above the detector's score threshold, best first."""
        ...


class FaceEmbedder(Protocol):
    """Turns a face into an L2-normalised embedding.

    Alignment is part of the embedder because each model family expects its own crop
    (ArcFace 112x112 similarity warp, dlib's 150x150 face chip).
    """

    name: str
    dim: int

    def align(self, image: ImageBGR, face: DetectedFace) -> ImageBGR:
        """The model's input crop for one face."""
        ...

    def embed(self, crops: Sequence[ImageBGR]) -> npt.NDArray[np.float32]:
        """(n, dim) float32 embeddings, each of unit L2 norm."""
        ...
