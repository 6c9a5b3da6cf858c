"""SCRFD face detector (InsightFace ONNX files such as ``det_500m`` and ``det_2.5g``).

The network input size is chosen per image from the image size instead of a fixed 640x640:
at a fixed large input, small photos (250 px LFW, webcam crops) get upscaled several times,
and SCRFD then misses the large subject face or reports a bystander instead.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from bioverify.errors import ConfigurationError
from bioverify.face.image_decode import check_bgr_image
from bioverify.face.ports import DetectedFace, ImageBGR

logger = logging.getLogger(__name__)

_STRIDE = 32


class ScrfdDetector:
    """``FaceDetector`` over an SCRFD ONNX file, run by insightface's SCRFD decoder.

    The input is ``(w, h)`` scaled so that the long side lies within
    ``[min_input, max_input]`` (never upscaled beyond ``min_input``), each side then rounded
    up to a multiple of 32. One dynamic-shape onnxruntime session serves every size.
    """

    name: str

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        threshold: float = 0.5,
        nms_iou: float = 0.4,
        min_input: int = 160,
        max_input: int = 640,
        threads: int = 1,
        name: str = "scrfd",
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ConfigurationError(f"SCRFD threshold must be in (0, 1), got {threshold}")
        if not 0.0 < nms_iou <= 1.0:
            raise ConfigurationError(f"SCRFD nms_iou must be in (0, 1], got {nms_iou}")
        if min_input < _STRIDE or max_input < min_input:
            raise ConfigurationError(
                f"SCRFD input range [{min_input}, {max_input}] is invalid; "
                f"need {_STRIDE} <= min_input <= max_input"
            )
        if threads < 1:
            raise ConfigurationError(f"threads must be >= 1, got {threads}")
        self.name = name
        self.threshold = float(threshold)
        self.min_input = int(min_input)
        self.max_input = int(max_input)
        self._model = _load_scrfd(Path(model_path), threads=threads)
        self._model.nms_thresh = float(nms_iou)

    def input_size_for(self, height: int, width: int) -> tuple[int, int]:
        """Network input ``(width, height)`` for an image of the given size."""
        long_side = max(height, width)
        target = min(max(long_side, self.min_input), self.max_input)
        scale = target / long_side
        return (
            _round_up(max(1, round(width * scale)), _STRIDE),
            _round_up(max(1, round(height * scale)), _STRIDE),
        )

    def detect(self, image: ImageBGR) -> list[DetectedFace]:
        """All faces above the threshold, best score first; landmarks in ArcFace order."""
        check_bgr_image(image)
        height, width = image.shape[:2]
        boxes, keypoints = self._model.detect(
            image,
            input_size=self.input_size_for(height, width),
            det_thresh=self.threshold,
        )
        if keypoints is None:  # a detector without landmarks is rejected at load time
            raise ConfigurationError("SCRFD model returned no landmarks")
        faces = [
            DetectedFace(
                x1=float(box[0]),
                y1=float(box[1]),
                x2=float(box[2]),
                y2=float(box[3]),
                score=float(box[4]),
                landmarks=np.ascontiguousarray(kps, dtype=np.float32).reshape(5, 2),
            )
            for box, kps in zip(boxes, keypoints, strict=True)
        ]
        faces.sort(key=lambda face: face.score, reverse=True)
        return faces


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def _load_scrfd(path: Path, *, threads: int) -> Any:
    """Load with insightface's model zoo; every failure becomes a ``ConfigurationError``."""
    if not path.is_file():
        raise ConfigurationError(f"SCRFD model file not found: {path}")
    import onnxruntime as ort
    from insightface.model_zoo import get_model
    from insightface.model_zoo.scrfd import SCRFD

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # SCRFD files declare output shapes for a 640x640 input; at other sizes onnxruntime
    # logs a harmless VerifyOutputSizes warning on every run. Keep errors only.
    options.log_severity_level = 3
    try:
        model = get_model(
            str(path),
            providers=["CPUExecutionProvider"],
            sess_options=options,
            # One dynamic session for all sizes (insightface would otherwise build and keep
            # one static session per input size: ~30 MB and 50-200 ms each).
            static_shape_sessions=False,
        )
    except Exception as exc:  # onnxruntime/onnx raise assorted types for bad files
        raise ConfigurationError(f"cannot load SCRFD model {path.name}: {exc}") from exc
    if not isinstance(model, SCRFD):
        raise ConfigurationError(f"{path.name} is not an SCRFD face detector")
    if not model.use_kps:
        raise ConfigurationError(f"{path.name} is an SCRFD model without landmarks")
    logger.info("loaded SCRFD detector %s (%d threads)", path.name, threads)
    return model
