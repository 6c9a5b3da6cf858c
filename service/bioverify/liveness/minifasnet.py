"""MiniFASNet (MiniVision Silent-Face-Anti-Spoofing) passive PAD model on onnxruntime.

Preprocessing follows upstream exactly: the face box ``(x, y, w, h)`` is scaled by ``scale``
around its centre (the scale is first capped so the box fits the image), the scaled box is
shifted back inside the image where it sticks out (``CropImage._get_new_box``), its corners
are truncated to integers, the inclusive pixel range is cut out and resized to 80x80 with
bilinear interpolation. The crop is fed as BGR float 0-255, no normalisation. The network
outputs 3-class logits; after a softmax, class 1 is "real" and classes 0 and 2 are two kinds
of spoof. ``2.7_80x80_MiniFASNetV2`` expects ``scale=2.7``, ``4_0_0_80x80_MiniFASNetV1SE``
``scale=4.0``.

``pad_context=True`` departs from upstream in one case only: when the scaled box is larger
than the image (a tight face crop, a close selfie), upstream shrinks the scale until the box
fits, so the network sees a ~1x face crop it was never trained on; instead the image is
extended by edge replication until the full-scale box fits. Images with room for the box
are cropped exactly as upstream does.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from bioverify.errors import ConfigurationError, InvalidInput
from bioverify.face.image_decode import check_bgr_image
from bioverify.face.ports import DetectedFace, ImageBGR

logger = logging.getLogger(__name__)

INPUT_SIZE = 80
REAL_CLASS = 1


def crop_box(
    image_shape: tuple[int, ...], box: tuple[float, float, float, float], scale: float
) -> tuple[int, int, int, int]:
    """Upstream ``CropImage._get_new_box``: (left, top, right, bottom), inclusive pixels.

    ``box`` is ``(x, y, w, h)``. The scale is reduced until the scaled box fits the image;
    a box sticking out on one side is moved inside (not clipped), keeping its size.
    """
    src_h, src_w = int(image_shape[0]), int(image_shape[1])
    x, y, box_w, box_h = box
    if box_w <= 0 or box_h <= 0:
        raise InvalidInput(f"face box has no area ({box_w:.1f} x {box_h:.1f} px)")
    scale = min((src_h - 1) / box_h, (src_w - 1) / box_w, scale)
    new_w = box_w * scale
    new_h = box_h * scale
    centre_x = box_w / 2 + x
    centre_y = box_h / 2 + y
    left = centre_x - new_w / 2
    top = centre_y - new_h / 2
    right = centre_x + new_w / 2
    bottom = centre_y + new_h / 2
    if left < 0:
        right -= left
        left = 0
    if top < 0:
        bottom -= top
        top = 0
    if right > src_w - 1:
        left -= right - src_w + 1
        right = src_w - 1
    if bottom > src_h - 1:
        top -= bottom - src_h + 1
        bottom = src_h - 1
    return int(left), int(top), int(right), int(bottom)


def context_padding(
    image_shape: tuple[int, ...], box: tuple[float, float, float, float], scale: float
) -> tuple[int, int]:
    """(vertical, horizontal) pixels to add on each side so the ``scale`` box fits the image."""
    src_h, src_w = int(image_shape[0]), int(image_shape[1])
    _, _, box_w, box_h = box
    over_y = box_h * scale - (src_h - 1)
    over_x = box_w * scale - (src_w - 1)
    pad_y = math.ceil(over_y / 2) + 1 if over_y > 0 else 0
    pad_x = math.ceil(over_x / 2) + 1 if over_x > 0 else 0
    return pad_y, pad_x


def crop_face(
    image: ImageBGR, face: DetectedFace, scale: float, *, pad_context: bool = False
) -> ImageBGR:
    """The model's 80x80 BGR input crop for one face (see the module docstring)."""
    box = (face.x1, face.y1, face.width, face.height)
    if pad_context and box[2] > 0 and box[3] > 0:
        pad_y, pad_x = context_padding(image.shape, box, scale)
        if pad_y or pad_x:
            padded: ImageBGR = np.asarray(
                cv2.copyMakeBorder(image, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REPLICATE),
                dtype=np.uint8,
            )
            image = padded
            box = (box[0] + pad_x, box[1] + pad_y, box[2], box[3])
    left, top, right, bottom = crop_box(image.shape, box, scale)
    patch = image[max(top, 0) : bottom + 1, max(left, 0) : right + 1]
    if patch.size == 0:
        raise InvalidInput("face box lies outside the image")
    resized = cv2.resize(patch, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(resized, dtype=np.uint8)


def softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Row-wise softmax in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: npt.NDArray[np.float64] = e / e.sum(axis=-1, keepdims=True)
    return out


class MiniFasNetPad:
    """``FacePadModel`` over a MiniFASNet ONNX export: ``score`` = P(real) after softmax."""

    name: str

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        scale: float,
        threads: int = 1,
        name: str = "minifasnet",
        pad_context: bool = False,
    ) -> None:
        if not 1.0 <= scale <= 8.0:
            raise ConfigurationError(f"MiniFASNet crop scale must be in [1, 8], got {scale}")
        if threads < 1:
            raise ConfigurationError(f"threads must be >= 1, got {threads}")
        self.name = name
        self.scale = float(scale)
        self.pad_context = bool(pad_context)
        self._session = _load_session(Path(model_path), threads=threads)
        self._input_name: str = self._session.get_inputs()[0].name

    def probabilities(self, image: ImageBGR, face: DetectedFace) -> npt.NDArray[np.float64]:
        """Softmax over the 3 classes (spoof type 1, real, spoof type 2)."""
        check_bgr_image(image)
        crop = crop_face(image, face, self.scale, pad_context=self.pad_context)
        blob = crop.transpose(2, 0, 1)[None].astype(np.float32)
        logits = self._session.run(None, {self._input_name: blob})[0]
        probs: npt.NDArray[np.float64] = softmax(logits)[0]
        return probs

    def score(self, image: ImageBGR, face: DetectedFace) -> float:
        """P(real) in [0, 1]."""
        return float(self.probabilities(image, face)[REAL_CLASS])


def _load_session(path: Path, *, threads: int) -> Any:
    if not path.is_file():
        raise ConfigurationError(f"MiniFASNet model file not found: {path}")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Pinned rather than left to the defaults: full graph fusion (conv+BN+PReLU, NCHWc
    # layouts) and sequential execution. On one thread the other options measured no gain.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ConfigurationError(f"cannot load MiniFASNet model {path.name}: {exc}") from exc
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    shape = list(inputs[0].shape) if inputs else []
    if (
        len(inputs) != 1
        or len(shape) != 4
        or shape[1:] != [3, INPUT_SIZE, INPUT_SIZE]
        or len(outputs) != 1
        or outputs[0].shape[-1] != 3
    ):
        raise ConfigurationError(
            f"{path.name} is not a MiniFASNet model (want input [n,3,80,80], output [n,3])"
        )
    logger.info("loaded MiniFASNet PAD model %s (%d threads)", path.name, threads)
    return session
