"""Generic ArcFace-style ONNX face recogniser (MobileFaceNet, InsightFace ``w600k_*``, ...).

Everything model-specific comes from configuration: the crop size, the channel order fed to
the network and the normalisation ``(pixel * scale - mean) / std`` per channel, where
``pixel`` is the raw 0-255 value and ``mean``/``std`` are given in the scaled space and in
the network's channel order. Presets for the known model families are provided below.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np
import numpy.typing as npt

from bioverify.errors import ConfigurationError
from bioverify.face.align import norm_crop
from bioverify.face.ports import DetectedFace, ImageBGR

logger = logging.getLogger(__name__)

ColorOrder = Literal["rgb", "bgr"]


class Normalization(TypedDict):
    """Preprocessing of one model family, passed to ``OnnxFaceEmbedder`` as ``**kwargs``."""

    color: ColorOrder
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


MOBILEFACENET_FOAMLIU: Normalization = {
    "color": "rgb",
    "scale": 1.0 / 255.0,
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
}
"""foamliu MobileFaceNet: RGB, /255, ImageNet mean/std."""

INSIGHTFACE_ARCFACE: Normalization = {
    "color": "rgb",
    "scale": 1.0,
    "mean": (127.5, 127.5, 127.5),
    "std": (127.5, 127.5, 127.5),
}
"""InsightFace recognisers (``w600k_r50``, ``w600k_mbf``): BGR image swapped to RGB,
``(x - 127.5) / 127.5``."""

_MAX_DYNAMIC_BATCH = 32


class OnnxFaceEmbedder:
    """``FaceEmbedder`` over an NCHW ONNX recogniser with ArcFace-template alignment.

    A model whose batch dimension is fixed (foamliu MobileFaceNet: 1) is run in chunks of
    that size; a dynamic batch is run in one call per up to 32 crops.
    """

    name: str
    dim: int

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        color: ColorOrder,
        scale: float,
        mean: Sequence[float],
        std: Sequence[float],
        input_size: int = 112,
        threads: int = 1,
        name: str = "onnx-arcface",
    ) -> None:
        if color not in ("rgb", "bgr"):
            raise ConfigurationError(f"color must be 'rgb' or 'bgr', got {color!r}")
        if len(mean) != 3 or len(std) != 3:
            raise ConfigurationError("mean and std need exactly 3 values (one per channel)")
        if not all(float(s) > 0 for s in std) or not float(scale) > 0:
            raise ConfigurationError("std and scale must be positive")
        if input_size < 16:
            raise ConfigurationError(f"input_size must be >= 16, got {input_size}")
        if threads < 1:
            raise ConfigurationError(f"threads must be >= 1, got {threads}")
        self.name = name
        self.input_size = int(input_size)
        self.color: ColorOrder = color
        # Folded into one multiply-add: x * gain + offset == (x * scale - mean) / std.
        std_arr = np.asarray(std, dtype=np.float32)
        self._gain = (np.float32(scale) / std_arr).reshape(1, 1, 1, 3)
        self._offset = (-np.asarray(mean, dtype=np.float32) / std_arr).reshape(1, 1, 1, 3)

        path = Path(model_path)
        self._session = _load_session(path, threads=threads)
        model_input = self._session.get_inputs()[0]
        self._input_name: str = model_input.name
        shape = list(model_input.shape)
        if len(shape) != 4 or shape[1] != 3:
            raise ConfigurationError(f"{path.name}: expected an NCHW input with 3 channels")
        if any(isinstance(d, int) and d != self.input_size for d in shape[2:4]):
            raise ConfigurationError(
                f"{path.name}: input is {shape[2]}x{shape[3]}, configured {self.input_size}"
            )
        batch = shape[0]
        self.fixed_batch: bool = isinstance(batch, int) and batch > 0
        self._batch: int = batch if self.fixed_batch else _MAX_DYNAMIC_BATCH
        self._output_name: str = self._session.get_outputs()[0].name
        # Also a warm-up; gives the dimension when the output shape is symbolic.
        probe = self._run(np.zeros((1, self.input_size, self.input_size, 3), np.uint8))
        if probe.shape[0] != 1 or probe.shape[1] < 2:
            raise ConfigurationError(f"{path.name}: output must be (batch, dim)")
        self.dim = int(probe.shape[1])
        logger.info("loaded face embedder %s (dim %d, %d threads)", path.name, self.dim, threads)

    def align(self, image: ImageBGR, face: DetectedFace) -> ImageBGR:
        """Similarity warp of the 5 landmarks to the ArcFace template (BGR crop)."""
        return norm_crop(image, face.landmarks, self.input_size)

    def embed(self, crops: Sequence[ImageBGR]) -> npt.NDArray[np.float32]:
        """(n, dim) unit-norm float32 embeddings of aligned BGR crops."""
        if len(crops) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        expected = (self.input_size, self.input_size, 3)
        for crop in crops:
            if crop.shape != expected or crop.dtype != np.uint8:
                raise ValueError(f"crops must be {expected} uint8, got {crop.shape} {crop.dtype}")
        batch = np.stack(crops)
        outputs = [
            self._run(batch[start : start + self._batch])
            for start in range(0, len(batch), self._batch)
        ]
        return l2_normalize(np.concatenate(outputs, axis=0))

    def _run(self, crops_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Raw network output for at most one batch of crops (padded to a fixed batch)."""
        n = len(crops_bgr)
        if self.fixed_batch and n < self._batch:
            filler = np.zeros((self._batch - n, *crops_bgr.shape[1:]), dtype=np.uint8)
            crops_bgr = np.concatenate([crops_bgr, filler])
        pixels = crops_bgr[..., ::-1] if self.color == "rgb" else crops_bgr
        x = pixels.astype(np.float32) * self._gain + self._offset
        blob = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        (out,) = self._session.run([self._output_name], {self._input_name: blob})
        out = np.asarray(out, dtype=np.float32)
        return out.reshape(out.shape[0], -1)[:n]


def l2_normalize(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Row-wise unit L2 norm (rows of zeros stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def _load_session(path: Path, *, threads: int) -> Any:
    if not path.is_file():
        raise ConfigurationError(f"face embedding model file not found: {path}")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ConfigurationError(f"cannot load face embedding model {path.name}: {exc}") from exc
