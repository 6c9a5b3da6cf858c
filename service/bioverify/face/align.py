"""Face alignment to the ArcFace 5-point template (pure numpy maths plus one OpenCV warp)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from bioverify.face.ports import ImageBGR

ARCFACE_TEMPLATE_112: npt.NDArray[np.float64] = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
"""Standard ArcFace landmark positions in a 112x112 crop, in ``DetectedFace`` order."""
ARCFACE_TEMPLATE_112.setflags(write=False)


def arcface_template(size: int = 112) -> npt.NDArray[np.float64]:
    """The ArcFace template for a ``size`` x ``size`` crop (insightface's convention).

    Sizes that are multiples of 112 scale the template; multiples of 128 scale it by
    ``size/128`` and shift it right by ``8*size/128`` (the 112 template centred in 128).
    """
    if size <= 0:
        raise ValueError(f"crop size must be positive, got {size}")
    if size % 112 == 0:
        return ARCFACE_TEMPLATE_112 * (size / 112.0)
    if size % 128 == 0:
        ratio = size / 128.0
        template = ARCFACE_TEMPLATE_112 * ratio
        template[:, 0] += 8.0 * ratio
        return template
    return ARCFACE_TEMPLATE_112 * (size / 112.0)


def similarity_transform(src_pts: npt.ArrayLike, dst_pts: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src to dst.

    Umeyama (1991) without reflection. Returns the 2x3 matrix ``M`` such that
    ``dst ≈ M @ [x, y, 1]``. Raises ``ValueError`` for mismatched or degenerate points.
    """
    src = np.asarray(src_pts, dtype=np.float64)
    dst = np.asarray(dst_pts, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape or src.shape[0] < 2:
        raise ValueError(f"need two matching (N>=2, 2) point sets, got {src.shape}, {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("points must be finite")

    n = src.shape[0]
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    src_var = float((src_c**2).sum() / n)
    if src_var <= 1e-12:
        raise ValueError("source points are degenerate (all equal)")

    cov = dst_c.T @ src_c / n
    u, sigma, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0  # forbid reflection
    rotation = u @ np.diag(d) @ vt
    scale = float((sigma * d).sum() / src_var)
    translation = dst_mean - scale * rotation @ src_mean

    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = translation
    return matrix


def norm_crop(image: ImageBGR, landmarks: npt.ArrayLike, size: int = 112) -> ImageBGR:
    """Warp the face to the ArcFace template: a ``size`` x ``size`` crop, black outside."""
    matrix = similarity_transform(landmarks, arcface_template(size))
    crop = cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0)
    )
    return np.ascontiguousarray(crop, dtype=np.uint8)
