"""dlib ResNet face recogniser (``dlib_face_recognition_resnet_model_v1``, 128-d, CC0).

Alignment is dlib's own: the 5-point shape predictor on the detector's box, then
``get_face_chip`` (150x150, padding 0.25). dlib compares descriptors by Euclidean distance
(0.6); on unit-normalised vectors cosine similarity ranks pairs the same way.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bioverify.errors import ConfigurationError
from bioverify.face.detector_dlib import default_model_path, import_dlib, load_dlib_model
from bioverify.face.embedder_onnx import l2_normalize
from bioverify.face.image_decode import check_bgr_image
from bioverify.face.ports import DetectedFace, ImageBGR

logger = logging.getLogger(__name__)


class DlibResnetEmbedder:
    """``FaceEmbedder`` over dlib's 128-d ResNet; crops are 150x150 BGR face chips."""

    name: str
    dim: int

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        shape_predictor_path: str | os.PathLike[str] | None = None,
        chip_size: int = 150,
        padding: float = 0.25,
        name: str = "dlib-resnet",
    ) -> None:
        if chip_size != 150:
            # compute_face_descriptor on chips requires exactly 150x150.
            raise ConfigurationError(f"dlib's ResNet needs 150 px chips, got {chip_size}")
        dlib = import_dlib()
        model = (
            Path(model_path)
            if model_path is not None
            else default_model_path("dlib_face_recognition_resnet_model_v1.dat")
        )
        predictor = (
            Path(shape_predictor_path)
            if shape_predictor_path is not None
            else default_model_path("shape_predictor_5_face_landmarks.dat")
        )
        self.name = name
        self.dim = 128
        self.chip_size = chip_size
        self.padding = float(padding)
        self._dlib = dlib
        self._predictor = load_dlib_model(dlib.shape_predictor, predictor)
        self._model = load_dlib_model(dlib.face_recognition_model_v1, model)
        self._lock = threading.Lock()  # the DNN keeps per-call state: not thread-safe

    def align(self, image: ImageBGR, face: DetectedFace) -> ImageBGR:
        """dlib face chip for the face box (5-point shape predictor), as BGR."""
        check_bgr_image(image)
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        rect = self._dlib.rectangle(
            round(face.x1), round(face.y1), round(face.x2) - 1, round(face.y2) - 1
        )
        with self._lock:
            shape = self._predictor(rgb, rect)
            chip = self._dlib.get_face_chip(rgb, shape, size=self.chip_size, padding=self.padding)
        return np.ascontiguousarray(np.asarray(chip, dtype=np.uint8)[:, :, ::-1])

    def embed(self, crops: Sequence[ImageBGR]) -> npt.NDArray[np.float32]:
        """(n, 128) unit-norm float32 descriptors of 150x150 BGR chips."""
        if len(crops) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        expected = (self.chip_size, self.chip_size, 3)
        chips = []
        for crop in crops:
            if crop.shape != expected or crop.dtype != np.uint8:
                raise ValueError(f"crops must be {expected} uint8, got {crop.shape} {crop.dtype}")
            chips.append(np.ascontiguousarray(crop[:, :, ::-1]))
        with self._lock:
            descriptors = self._model.compute_face_descriptor(chips)
        vectors = np.array([np.asarray(d, dtype=np.float32) for d in descriptors])
        return l2_normalize(vectors.reshape(len(chips), self.dim))
