"""Cheap, explainable face liveness signals: pure functions over one face (or a few frames).

Every signal is measured on the face resampled to a fixed geometry, the ArcFace 5-point
template scaled to a 128x128 crop (eye distance about 40 px), so a value does not depend on
how large the face is in the photo. Two crops are used:

- the *grey* crop is anti-aliased (the face region is first shrunk with area averaging
  when it is larger than the crop), for sharpness and the spectrum;
- the *pixel* (colour) crop is sampled bilinearly without pre-filtering, so pixel-level
  traces of the source (a generator's colour texture) survive the change of scale; colour
  and glare are also read from it.

Signals and the classic tells they follow:

``detail_hf_energy`` (spectral)
    log ratio of luma power at 0.25-0.5 cycles/px to 0.05-0.25 cycles/px in the
    azimuthally averaged spectrum: re-captured screens and prints lose fine detail.
``detail_sharpness`` (blur)
    log of Laplacian variance over grey-level variance on the inner face (contrast-free).
``moire_peaks`` (spectral)
    strongest isolated peaks of the luma spectrum above their 9x9 neighbourhood (log scale):
    screen moire, print halftone and generator up-sampling leave periodic peaks.
``synthetic_chroma_texture`` (colour texture)
    a linear model over co-occurrences of neighbouring Cr/Cb differences (after Li et al.,
    "Identification of deep network generated images using disparities in color
    components", 2020): GAN generators reproduce luma texture well but not the fine
    chroma statistics of camera images. Its weights are fitted data kept in the pack.
``detail_scale_ratio`` (double-capture MTF)
    log ratio of the finest Laplacian-pyramid octave's energy to the next octave's on the
    inner face: every capture low-passes, so a face filmed off a screen or print loses its
    finest octave faster than its coarser one (contrast-free, size-free).
``chroma_gamut`` (colour gamut)
    log of the Cr/Cb spread (root of the chroma covariance determinant) relative to the luma
    variance on the inner face: a display and a print compress the colour gamut, so the skin
    chroma varies less for the same shading than on a live face.
``specular_glare`` (reflection)
    share of near-white, low-saturation pixels on the face: screens add specular glare.
``colour_saturation`` (colour)
    mean HSV saturation of the inner face: screens and prints wash out skin chroma.
``landmark_asymmetry`` (geometry)
    left/right asymmetry of the 5 landmarks relative to the eye distance: warped prints
    and masks distort proportions.

Multi-frame motion (``measure_motion``): grey-level change between consecutive aligned
frames, non-rigid landmark motion (what a similarity transform cannot explain) and the
range of head pose. A still image replayed frame after frame shows none of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from bioverify.errors import ConfigurationError, InvalidInput
from bioverify.face.align import ARCFACE_TEMPLATE_112, similarity_transform
from bioverify.face.image_decode import check_bgr_image
from bioverify.face.ports import DetectedFace, ImageBGR
from bioverify.face.quality import estimate_pose
from bioverify.liveness.ports import SignalValue

CROP = 128
TEMPLATE = ARCFACE_TEMPLATE_112 * (CROP / 112.0)
# Inner face of the crop (brows to chin, cheek to cheek): no background.
INNER = (slice(18, 118), slice(18, 110))
COOC_LEVELS = 2  # neighbouring differences clipped to [-2, 2]: 5 x 5 co-occurrence bins
COOC_BINS = 4 * (2 * COOC_LEVELS + 1) ** 2  # Cr and Cb, horizontal and vertical

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FacePatch:
    """One face resampled to the 128x128 template crop (see the module docstring).

    Derived views (spectrum, colour spaces) are computed on first use and kept, so a
    checker pays only for what its fusion reads and no conversion runs twice.
    """

    grey: FloatArray
    pixel: ImageBGR
    landmarks: npt.NDArray[np.float64]
    inter_ocular_px: float

    @cached_property
    def power(self) -> FloatArray:
        """Centred power spectrum of the Hann-windowed grey crop."""
        grey = self.grey
        spectrum: FloatArray = np.fft.fftshift(
            np.abs(np.fft.fft2((grey - grey.mean()) * _HANN)) ** 2
        )
        return spectrum

    @cached_property
    def ycrcb(self) -> npt.NDArray[np.uint8]:
        """The colour crop in YCrCb (uint8)."""
        out: npt.NDArray[np.uint8] = np.asarray(
            cv2.cvtColor(self.pixel, cv2.COLOR_BGR2YCrCb), dtype=np.uint8
        )
        return out

    @cached_property
    def hsv_inner(self) -> npt.NDArray[np.uint8]:
        """The inner face of the colour crop in HSV (uint8)."""
        out: npt.NDArray[np.uint8] = np.asarray(
            cv2.cvtColor(self.pixel, cv2.COLOR_BGR2HSV)[INNER], dtype=np.uint8
        )
        return out


def _window(size: int) -> FloatArray:
    w = np.hanning(size)
    out: FloatArray = np.outer(w, w)
    return out


_HANN = _window(CROP)
_yy, _xx = np.indices((CROP, CROP))
_RADIUS = np.hypot(_xx - CROP // 2, _yy - CROP // 2)
_RADIUS_BIN = _RADIUS.astype(np.int64).ravel()
_RADIUS_COUNT = np.bincount(_RADIUS_BIN)
_FREQ = np.arange(CROP // 2) / CROP
_PEAK_MASK = (
    (_RADIUS / CROP > 0.1)
    & (_RADIUS / CROP < 0.5)
    & (np.abs(_xx - CROP // 2) > 1)
    & (np.abs(_yy - CROP // 2) > 1)
)


def face_patch(image: ImageBGR, face: DetectedFace) -> FacePatch:
    """Both template crops of one face; ``InvalidInput`` for degenerate landmarks."""
    check_bgr_image(image)
    landmarks = np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2)
    if not np.isfinite(landmarks).all():
        raise InvalidInput("face landmarks are not finite")
    iod = float(np.hypot(*(landmarks[1] - landmarks[0])))
    try:
        matrix = similarity_transform(landmarks, TEMPLATE)
    except ValueError as exc:
        raise InvalidInput(f"face landmarks are degenerate ({exc})") from exc
    pixel = cv2.warpAffine(
        image, matrix, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    scale = math.sqrt(abs(float(np.linalg.det(matrix[:, :2]))))
    if scale < 1.0:
        grey = _antialiased_grey(image, landmarks, matrix, scale)
    else:
        grey = cv2.cvtColor(pixel, cv2.COLOR_BGR2GRAY).astype(np.float64)
    return FacePatch(
        grey=grey,
        pixel=np.ascontiguousarray(pixel),
        landmarks=landmarks,
        inter_ocular_px=iod,
    )


def _antialiased_grey(
    image: ImageBGR, landmarks: FloatArray, matrix: FloatArray, scale: float
) -> FloatArray:
    """Grey crop: shrink the face's region with area averaging, then warp the rest of the way."""
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [CROP, 0, 1], [0, CROP, 1], [CROP, CROP, 1]], np.float64)
    src = corners @ inverse.T
    margin = 2.0 / scale
    height, width = image.shape[:2]
    x0 = int(max(0, math.floor(src[:, 0].min() - margin)))
    y0 = int(max(0, math.floor(src[:, 1].min() - margin)))
    x1 = int(min(width, math.ceil(src[:, 0].max() + margin)))
    y1 = int(min(height, math.ceil(src[:, 1].max() + margin)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise InvalidInput("face lies outside the image")
    region = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    # Exact 2x area halvings are cheap; the remaining non-integer factor (> 0.5) is done
    # by one area resize of the already smaller region.
    factor = 1.0
    while scale / factor < 0.5 and min(region.shape[:2]) >= 8:
        h2, w2 = region.shape[0] // 2 * 2, region.shape[1] // 2 * 2
        region = cv2.resize(region[:h2, :w2], (w2 // 2, h2 // 2), interpolation=cv2.INTER_AREA)
        factor *= 0.5
    new_w = max(2, round((x1 - x0) * scale))
    new_h = max(2, round((y1 - y0) * scale))
    small = cv2.resize(region, (new_w, new_h), interpolation=cv2.INTER_AREA)
    sx = new_w / (x1 - x0)
    sy = new_h / (y1 - y0)
    local = (landmarks - [x0, y0]) * [sx, sy]
    warp = similarity_transform(local, TEMPLATE)
    out = cv2.warpAffine(
        small.astype(np.float32),
        warp,
        (CROP, CROP),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )
    grey: FloatArray = out.astype(np.float64)
    return grey


def _radial_power(spectrum: FloatArray) -> FloatArray:
    sums = np.bincount(_RADIUS_BIN, spectrum.ravel())
    profile: FloatArray = (sums / np.maximum(_RADIUS_COUNT, 1))[: CROP // 2]
    return profile


def detail_hf_energy(patch: FacePatch) -> SignalValue:
    profile = _radial_power(patch.power)
    high = float(profile[_FREQ >= 0.25].sum())
    mid = float(profile[(_FREQ >= 0.05) & (_FREQ < 0.25)].sum())
    value = math.log((high + 1e-9) / (mid + 1e-9))
    return SignalValue(
        value, f"fine-detail energy {value:.2f} (log high/mid-band power; re-captures lose it)"
    )


def detail_sharpness(patch: FacePatch) -> SignalValue:
    grey = patch.grey
    lap = cv2.Laplacian(grey, cv2.CV_64F)[INNER]
    contrast = float(grey[INNER].var())
    value = math.log(float(lap.var()) / (contrast + 1e-6) + 1e-9)
    return SignalValue(value, f"sharpness {value:.2f} (log Laplacian/contrast variance)")


def moire_peaks(patch: FacePatch) -> SignalValue:
    # Peaks are measured against their 9x9 neighbourhood on a log scale, so any smooth
    # filter (e.g. a high-pass) would not change them: the plain spectrum suffices.
    log_mag = 0.5 * np.log(patch.power + 1e-6)
    local = cv2.blur(log_mag, (9, 9), borderType=cv2.BORDER_REFLECT)
    excess = (log_mag - local)[_PEAK_MASK]
    value = float(np.sort(excess)[-10:].mean())
    return SignalValue(
        value, f"periodic spectral peaks {value:.2f} (moire, halftone or up-sampling traces)"
    )


_INNER_HALF = (slice(9, 59), slice(9, 55))  # INNER at half resolution


def detail_scale_ratio(patch: FacePatch) -> SignalValue:
    g0 = patch.grey
    g1 = cv2.pyrDown(g0)
    g2 = cv2.pyrDown(g1)
    fine = float((g0 - cv2.pyrUp(g1))[INNER].var())
    coarse = float((g1 - cv2.pyrUp(g2))[_INNER_HALF].var())
    value = math.log((fine + 1e-9) / (coarse + 1e-9))
    return SignalValue(
        value, f"finest/next octave detail {value:.2f} (log; each re-capture blurs the finest)"
    )


def chroma_gamut(patch: FacePatch) -> SignalValue:
    ycc = patch.ycrcb[INNER].reshape(-1, 3).astype(np.float64)
    centred = ycc - ycc.mean(axis=0)
    n = centred.shape[0]
    cov = centred[:, 1:].T @ centred[:, 1:] / (n - 1)  # unbiased, as np.cov
    det = max(float(cov[0, 0] * cov[1, 1] - cov[0, 1] * cov[1, 0]), 1e-9)
    luma_var = float(centred[:, 0] @ centred[:, 0]) / n
    value = 0.5 * math.log(det) - math.log(luma_var + 1e-6)
    return SignalValue(
        value, f"chroma spread {value:.2f} (log, relative to luma; screens and prints compress it)"
    )


def specular_glare(patch: FacePatch) -> SignalValue:
    hsv = patch.hsv_inner
    glare = float(((hsv[..., 2] >= 235) & (hsv[..., 1] < 60)).mean())
    value = math.log(glare + 1e-3)
    return SignalValue(value, f"specular glare on {glare:.1%} of the face (screen reflections)")


def colour_saturation(patch: FacePatch) -> SignalValue:
    value = float(patch.hsv_inner[..., 1].mean()) / 255.0
    return SignalValue(value, f"skin saturation {value:.2f} (screens and prints wash it out)")


def landmark_asymmetry(patch: FacePatch) -> SignalValue:
    le, re, nose, lm, rm = patch.landmarks
    eye = max(float(np.hypot(*(re - le))), 1e-6)
    nose_side = abs(float(np.hypot(*(nose - le))) - float(np.hypot(*(nose - re)))) / eye
    mouth_side = abs(float(np.hypot(*(lm - le))) - float(np.hypot(*(rm - re)))) / eye
    value = nose_side + mouth_side
    return SignalValue(value, f"landmark asymmetry {value:.2f} eye distances (warped media)")


def chroma_cooccurrence(patch: FacePatch) -> FloatArray:
    """Normalised co-occurrences of neighbouring Cr and Cb differences (100 bins)."""
    levels = 2 * COOC_LEVELS + 1
    parts = []
    for channel in (1, 2):
        plane = patch.ycrcb[..., channel].astype(np.int16)
        for axis in (0, 1):
            d = np.diff(plane, axis=axis)
            np.clip(d, -COOC_LEVELS, COOC_LEVELS, out=d)
            d += COOC_LEVELS
            pairs = d[:, :-1] * levels + d[:, 1:] if axis == 1 else d[:-1] * levels + d[1:]
            hist = np.bincount(pairs.ravel(), minlength=levels * levels).astype(np.float64)
            parts.append(hist / pairs.size)
    out: FloatArray = np.concatenate(parts)
    return out


@dataclass(frozen=True)
class ChromaTextureModel:
    """Linear camera-vs-generator model over ``chroma_cooccurrence`` (positive = camera)."""

    mean: FloatArray
    std: FloatArray
    weights: FloatArray
    bias: float

    def __post_init__(self) -> None:
        shapes = {self.mean.shape, self.std.shape, self.weights.shape}
        if shapes != {(COOC_BINS,)} or not (self.std > 0).all():
            raise ConfigurationError(f"chroma texture model needs {COOC_BINS} bins, std > 0")

    def score(self, features: FloatArray) -> float:
        z = np.clip((features - self.mean) / self.std, -6.0, 6.0)
        return float(self.bias + z @ self.weights)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bins": COOC_BINS,
            "mean": [round(float(v), 8) for v in self.mean],
            "std": [round(float(v), 8) for v in self.std],
            "weights": [round(float(v), 8) for v in self.weights],
            "bias": round(self.bias, 8),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChromaTextureModel:
        try:
            return cls(
                mean=np.asarray(data["mean"], dtype=np.float64),
                std=np.asarray(data["std"], dtype=np.float64),
                weights=np.asarray(data["weights"], dtype=np.float64),
                bias=float(data["bias"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"invalid chroma texture model ({exc})") from exc


def synthetic_chroma_texture(patch: FacePatch, model: ChromaTextureModel) -> SignalValue:
    value = model.score(chroma_cooccurrence(patch))
    lean = "camera-like" if value >= 0 else "generator-like"
    return SignalValue(value, f"chroma micro-texture {value:+.2f} ({lean})")


PATCH_SIGNALS = {
    "detail_hf_energy": detail_hf_energy,
    "detail_sharpness": detail_sharpness,
    "moire_peaks": moire_peaks,
    "detail_scale_ratio": detail_scale_ratio,
    "chroma_gamut": chroma_gamut,
    "specular_glare": specular_glare,
    "colour_saturation": colour_saturation,
    "landmark_asymmetry": landmark_asymmetry,
}
"""Signals that need nothing but the patch, by name."""

CHROMA_TEXTURE = "synthetic_chroma_texture"
SIGNAL_NAMES = (*PATCH_SIGNALS, CHROMA_TEXTURE)


def measure_patch(
    patch: FacePatch, chroma_model: ChromaTextureModel | None = None
) -> dict[str, SignalValue]:
    """Every single-image signal of one face (the chroma one only with its model)."""
    out = {name: fn(patch) for name, fn in PATCH_SIGNALS.items()}
    if chroma_model is not None:
        out[CHROMA_TEXTURE] = synthetic_chroma_texture(patch, chroma_model)
    return out


class PatchSignal:
    """``FaceSignal`` adapter for one named signal (each call builds the patch)."""

    def __init__(self, name: str, chroma_model: ChromaTextureModel | None = None) -> None:
        if name == CHROMA_TEXTURE and chroma_model is None:
            raise ConfigurationError(f"{CHROMA_TEXTURE} needs its fitted model")
        if name not in SIGNAL_NAMES:
            raise ConfigurationError(
                f"unknown face signal {name!r}; valid: {', '.join(SIGNAL_NAMES)}"
            )
        self.name = name
        self._chroma_model = chroma_model

    def measure(self, image: ImageBGR, face: DetectedFace) -> SignalValue:
        patch = face_patch(image, face)
        if self.name == CHROMA_TEXTURE:
            assert self._chroma_model is not None  # checked in __init__
            return synthetic_chroma_texture(patch, self._chroma_model)
        return PATCH_SIGNALS[self.name](patch)


# ---------------------------------------------------------------------------------------
# Multi-frame motion

MOTION_FRAME_CHANGE = "motion_frame_change"
MOTION_NONRIGID = "motion_landmark_nonrigid"
MOTION_POSE_RANGE = "motion_pose_range"
MOTION_SIZE = 64


def measure_motion(frames: Sequence[tuple[ImageBGR, DetectedFace]]) -> dict[str, SignalValue]:
    """Motion between consecutive frames of one face (needs at least two frames).

    ``motion_frame_change``: median over frame pairs of the mean absolute grey-level change
    of the 64x64 aligned face (0 for identical frames). ``motion_landmark_nonrigid``: median
    landmark residual, in eye distances, after the best similarity transform between frames
    (a flat photo moved in front of the camera changes little). ``motion_pose_range``: the
    larger of the yaw and pitch ranges over all frames.
    """
    if len(frames) < 2:
        raise InvalidInput("motion needs at least two frames")
    template = ARCFACE_TEMPLATE_112 * (MOTION_SIZE / 112.0)
    greys = []
    points = []
    yaws = []
    pitches = []
    for image, face in frames:
        check_bgr_image(image)
        lm = np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2)
        try:
            matrix = similarity_transform(lm, template)
        except ValueError as exc:
            raise InvalidInput(f"face landmarks are degenerate ({exc})") from exc
        crop = cv2.warpAffine(
            image,
            matrix,
            (MOTION_SIZE, MOTION_SIZE),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        greys.append(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float64))
        points.append(lm)
        pose = estimate_pose(lm)
        yaws.append(pose.yaw)
        pitches.append(pose.pitch)
    changes = []
    residuals = []
    for i in range(1, len(frames)):
        changes.append(float(np.abs(greys[i] - greys[i - 1]).mean()))
        prev, cur = points[i - 1], points[i]
        eye = max(float(np.hypot(*(prev[1] - prev[0]))), 1e-6)
        try:
            m = similarity_transform(prev, cur)
            mapped = prev @ m[:, :2].T + m[:, 2]
            residuals.append(float(np.hypot(*(mapped - cur).T).mean()) / eye)
        except ValueError:
            residuals.append(0.0)
    change = float(np.median(changes))
    nonrigid = float(np.median(residuals))
    pose_range = max(max(yaws) - min(yaws), max(pitches) - min(pitches))
    return {
        MOTION_FRAME_CHANGE: SignalValue(
            change, f"face changes by {change:.2f} grey levels between frames"
        ),
        MOTION_NONRIGID: SignalValue(
            nonrigid, f"non-rigid landmark motion {nonrigid:.3f} eye distances per frame"
        ),
        MOTION_POSE_RANGE: SignalValue(pose_range, f"head pose varies by {pose_range:.3f}"),
    }
