"""YuNet face detector (OpenCV Zoo ``face_detection_yunet_2023mar_dynamic.onnx``) on onnxruntime.

Preprocessing and decoding follow the model manifest: BGR, raw 0-255 floats, NCHW, input
zero-padded at the bottom/right to multiples of 32; per stride ``s`` and anchor ``i`` at
``row = i // (W/s)``, ``col = i % (W/s)``: ``score = sqrt(cls * obj)``, box centre
``(col + b0, row + b1) * s``, size ``exp(b2..b3) * s``, landmark ``j`` at
``(k[2j] + col, k[2j+1] + row) * s``; then NMS. YuNet's landmark order already matches the
ArcFace template order.
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

from bioverify.errors import ConfigurationError
from bioverify.face.image_decode import check_bgr_image
from bioverify.face.ports import DetectedFace, ImageBGR

logger = logging.getLogger(__name__)

_STRIDES = (8, 16, 32)
_PAD_MULTIPLE = 32
_OUTPUT_NAMES = tuple(
    f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in _STRIDES
)


class YunetDetector:
    """``FaceDetector`` over the dynamic-input YuNet ONNX file.

    Images whose long side exceeds ``max_side`` are scaled down for the network; boxes and
    landmarks are mapped back to the original pixel coordinates.
    """

    name: str

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        threshold: float = 0.6,
        nms_iou: float = 0.3,
        max_side: int = 640,
        threads: int = 1,
        name: str = "yunet",
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ConfigurationError(f"YuNet threshold must be in (0, 1), got {threshold}")
        if not 0.0 < nms_iou <= 1.0:
            raise ConfigurationError(f"YuNet nms_iou must be in (0, 1], got {nms_iou}")
        if max_side < _PAD_MULTIPLE:
            raise ConfigurationError(f"YuNet max_side must be >= {_PAD_MULTIPLE}, got {max_side}")
        if threads < 1:
            raise ConfigurationError(f"threads must be >= 1, got {threads}")
        self.name = name
        self.threshold = float(threshold)
        self.nms_iou = float(nms_iou)
        self.max_side = int(max_side)
        self._session = _load_session(Path(model_path), threads=threads)
        model_input = self._session.get_inputs()[0]
        self._input_name: str = model_input.name
        # The non-dynamic file has a fixed 640x640 input: scale into it and pad to it.
        h_dim, w_dim = model_input.shape[2:4]
        self._fixed_hw: tuple[int, int] | None = (
            (h_dim, w_dim) if isinstance(h_dim, int) and isinstance(w_dim, int) else None
        )

    def detect(self, image: ImageBGR) -> list[DetectedFace]:
        """All faces above the threshold, best score first."""
        check_bgr_image(image)
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        if self._fixed_hw is not None:
            scale = min(scale, self._fixed_hw[0] / height, self._fixed_hw[1] / width)
        if scale < 1.0:
            new_w = max(1, round(width * scale))
            new_h = max(1, round(height * scale))
            resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        else:
            resized = image
        rh, rw = resized.shape[:2]
        if self._fixed_hw is not None:
            pad_h, pad_w = self._fixed_hw
        else:
            pad_h = _round_up(rh, _PAD_MULTIPLE)
            pad_w = _round_up(rw, _PAD_MULTIPLE)
        blob = np.zeros((1, 3, pad_h, pad_w), dtype=np.float32)
        blob[0, :, :rh, :rw] = resized.transpose(2, 0, 1)
        outputs = self._session.run(list(_OUTPUT_NAMES), {self._input_name: blob})
        named = dict(zip(_OUTPUT_NAMES, outputs, strict=True))

        boxes, scores, landmarks = _decode(named, pad_h, pad_w, self.threshold)
        keep = nms(boxes, scores, self.nms_iou)
        # Undo the scaling: padded pixels are at the bottom/right, so no offset is needed.
        sx = width / rw
        sy = height / rh
        faces = []
        for i in keep:
            box = boxes[i]
            pts = landmarks[i].copy()
            pts[:, 0] *= sx
            pts[:, 1] *= sy
            faces.append(
                DetectedFace(
                    x1=float(box[0] * sx),
                    y1=float(box[1] * sy),
                    x2=float(box[2] * sx),
                    y2=float(box[3] * sy),
                    score=float(scores[i]),
                    landmarks=np.ascontiguousarray(pts, dtype=np.float32),
                )
            )
        faces.sort(key=lambda face: face.score, reverse=True)
        return faces


def _decode(
    outputs: dict[str, npt.NDArray[np.float32]], height: int, width: int, threshold: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Candidate boxes (n, 4) as x1y1x2y2, scores (n,) and landmarks (n, 5, 2)."""
    all_boxes = []
    all_scores = []
    all_landmarks = []
    for stride in _STRIDES:
        cls = outputs[f"cls_{stride}"].reshape(-1)
        obj = outputs[f"obj_{stride}"].reshape(-1)
        score = np.sqrt(np.clip(cls, 0.0, 1.0) * np.clip(obj, 0.0, 1.0))
        idx = np.flatnonzero(score >= threshold)
        if idx.size == 0:
            continue
        cols_per_row = width // stride
        row = (idx // cols_per_row).astype(np.float32)
        col = (idx % cols_per_row).astype(np.float32)
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[idx]
        kps = outputs[f"kps_{stride}"].reshape(-1, 10)[idx].reshape(-1, 5, 2)
        cx = (col + bbox[:, 0]) * stride
        cy = (row + bbox[:, 1]) * stride
        bw = np.exp(bbox[:, 2]) * stride
        bh = np.exp(bbox[:, 3]) * stride
        all_boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1))
        all_scores.append(score[idx])
        pts = np.empty_like(kps)
        pts[:, :, 0] = (kps[:, :, 0] + col[:, None]) * stride
        pts[:, :, 1] = (kps[:, :, 1] + row[:, None]) * stride
        all_landmarks.append(pts)
    if not all_boxes:
        return (
            np.empty((0, 4), np.float32),
            np.empty((0,), np.float32),
            np.empty((0, 5, 2), np.float32),
        )
    return (
        np.concatenate(all_boxes).astype(np.float32),
        np.concatenate(all_scores).astype(np.float32),
        np.concatenate(all_landmarks).astype(np.float32),
    )


def nms(boxes: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], iou: float) -> list[int]:
    """Greedy non-maximum suppression; indices of kept boxes, best score first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.maximum(0.0, boxes[:, 2] - boxes[:, 0]) * np.maximum(0.0, boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size > 0:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.maximum(0.0, xx2 - xx1) * np.maximum(0.0, yy2 - yy1)
        union = areas[i] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        order = rest[overlap <= iou]
    return keep


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def _load_session(path: Path, *, threads: int) -> Any:
    if not path.is_file():
        raise ConfigurationError(f"YuNet model file not found: {path}")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ConfigurationError(f"cannot load YuNet model {path.name}: {exc}") from exc
    names = {output.name for output in session.get_outputs()}
    missing = sorted(set(_OUTPUT_NAMES) - names)
    if missing:
        raise ConfigurationError(f"{path.name} is not a YuNet model (missing outputs {missing})")
    logger.info("loaded YuNet detector %s (%d threads)", path.name, threads)
    return session
