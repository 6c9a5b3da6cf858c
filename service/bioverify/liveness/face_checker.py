"""Face liveness checker: runs the PAD models and signal checks a fusion needs, then fuses.

``assess`` judges one image; ``assess_frames`` judges a short burst of frames of the same
face: the per-frame component values are combined by their median, and a motion check must
also pass, so a still picture replayed frame after frame is rejected whatever it looks like.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from bioverify.errors import ConfigurationError, InvalidInput
from bioverify.face.ports import DetectedFace, ImageBGR
from bioverify.liveness import face_signals
from bioverify.liveness.face_signals import ChromaTextureModel
from bioverify.liveness.fusion import FusionParams, fuse
from bioverify.liveness.ports import Check, FacePadModel, LivenessAssessment
from bioverify.packs import ComponentSpec, PackManifest, build_component

NO_MOTION = "NO_MOTION"
PAD_PREFIX = "pad_"
_PAD_EPS = 1e-4


def pad_feature(model_name: str) -> str:
    """Fusion feature name of a PAD model's output."""
    return PAD_PREFIX + model_name


def pad_logit(probability: float) -> float:
    """A PAD probability as a bounded log-odds (about ±9.2), the fused feature value."""
    p = min(1.0, max(0.0, probability))
    return math.log((p + _PAD_EPS) / (1.0 - p + _PAD_EPS))


def pad_probability(value: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Inverse of ``pad_logit`` (element-wise): the PAD probability behind a fused value."""
    r = np.exp(np.asarray(value, dtype=np.float64))
    out: npt.NDArray[np.float64] = np.clip((r * (1.0 + _PAD_EPS) - _PAD_EPS) / (1.0 + r), 0, 1)
    return out


@dataclass(frozen=True)
class MotionPolicy:
    """When a burst of frames counts as moving (values come from the pack, not defaults).

    Frames pass when the aligned face changes by at least ``min_frame_change`` grey levels
    between frames *and* either the landmarks move non-rigidly by ``min_nonrigid`` eye
    distances or the head pose ranges over ``min_pose_range``.
    """

    min_frame_change: float
    min_nonrigid: float
    min_pose_range: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MotionPolicy:
        try:
            return cls(
                min_frame_change=float(data["min_frame_change"]),
                min_nonrigid=float(data["min_nonrigid"]),
                min_pose_range=float(data["min_pose_range"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"invalid liveness motion policy ({exc})") from exc

    def to_dict(self) -> dict[str, float]:
        return {
            "min_frame_change": self.min_frame_change,
            "min_nonrigid": self.min_nonrigid,
            "min_pose_range": self.min_pose_range,
        }


@dataclass(frozen=True)
class Measurement:
    """Raw component values of one face, their explanations and per-component seconds."""

    values: dict[str, float]
    details: dict[str, str]
    seconds: dict[str, float]


class FaceLivenessChecker:
    """Passive face liveness: PAD networks + explainable signals + learned fusion."""

    def __init__(
        self,
        pad_models: Sequence[FacePadModel],
        fusion_params: FusionParams,
        *,
        chroma_model: ChromaTextureModel | None = None,
        motion_policy: MotionPolicy | None = None,
    ) -> None:
        self._pads = {pad_feature(m.name): m for m in pad_models}
        self._params = fusion_params
        self._chroma = chroma_model
        self._motion = motion_policy
        available = set(self._pads) | set(face_signals.PATCH_SIGNALS)
        if chroma_model is not None:
            available.add(face_signals.CHROMA_TEXTURE)
        missing = sorted(set(fusion_params.feature_names) - available)
        if missing:
            raise ConfigurationError(
                f"liveness fusion needs components this checker cannot measure: {missing}"
            )
        self._needed = set(fusion_params.feature_names)

    @property
    def params(self) -> FusionParams:
        return self._params

    def measure(
        self, image: ImageBGR, face: DetectedFace, *, everything: bool = False
    ) -> Measurement:
        """Component values the fusion needs (or every available one with ``everything``)."""
        values: dict[str, float] = {}
        details: dict[str, str] = {}
        seconds: dict[str, float] = {}
        for name, model in self._pads.items():
            if everything or name in self._needed:
                start = time.perf_counter()
                p = model.score(image, face)
                seconds[name] = time.perf_counter() - start
                values[name] = pad_logit(p)
                details[name] = f"{model.name} PAD network: P(live) {p:.3f}"
        start = time.perf_counter()
        patch = face_signals.face_patch(image, face)
        seconds["face_patch"] = time.perf_counter() - start
        signals: dict[str, Callable[[face_signals.FacePatch], Any]] = dict(
            face_signals.PATCH_SIGNALS
        )
        chroma = self._chroma
        if chroma is not None:
            signals[face_signals.CHROMA_TEXTURE] = lambda p: face_signals.synthetic_chroma_texture(
                p, chroma
            )
        for name, fn in signals.items():
            if everything or name in self._needed:
                start = time.perf_counter()
                signal = fn(patch)
                seconds[name] = time.perf_counter() - start
                values[name] = signal.value
                details[name] = signal.explanation
        return Measurement(values=values, details=details, seconds=seconds)

    def assess(self, image: ImageBGR, face: DetectedFace) -> LivenessAssessment:
        """Liveness of one face in one image."""
        measured = self.measure(image, face)
        return fuse(measured.values, self._params, measured.details)

    def assess_frames(self, frames: Sequence[tuple[ImageBGR, DetectedFace]]) -> LivenessAssessment:
        """Liveness of one face over a burst of frames (at least two), motion included.

        Component values are the per-frame medians; a failed motion check rejects the face
        and caps its score at half the threshold.
        """
        if self._motion is None:
            raise ConfigurationError("this liveness checker has no motion policy")
        if len(frames) < 2:
            raise InvalidInput("multi-frame liveness needs at least two frames")
        per_frame = [self.measure(image, face) for image, face in frames]
        values = {
            name: float(np.median([m.values[name] for m in per_frame]))
            for name in per_frame[0].values
        }
        details = dict(per_frame[len(per_frame) // 2].details)
        assessment = fuse(values, self._params, details)

        motion = face_signals.measure_motion(frames)
        policy = self._motion
        change = motion[face_signals.MOTION_FRAME_CHANGE]
        nonrigid = motion[face_signals.MOTION_NONRIGID]
        pose = motion[face_signals.MOTION_POSE_RANGE]
        moved = change.value >= policy.min_frame_change
        articulated = nonrigid.value >= policy.min_nonrigid or pose.value >= policy.min_pose_range
        # Non-rigid motion and pose range are alternatives: each passes when either is met.
        motion_checks = tuple(
            Check(
                name=name,
                score=ramp_score(signal.value, needed),
                weight=0.0,
                passed=met,
                detail=f"{signal.explanation} (need {needed:g}{alternative})",
            )
            for name, signal, needed, alternative, met in (
                (face_signals.MOTION_FRAME_CHANGE, change, policy.min_frame_change, "", moved),
                (
                    face_signals.MOTION_NONRIGID,
                    nonrigid,
                    policy.min_nonrigid,
                    ", or pose range",
                    articulated,
                ),
                (
                    face_signals.MOTION_POSE_RANGE,
                    pose,
                    policy.min_pose_range,
                    ", or non-rigid",
                    articulated,
                ),
            )
        )
        checks = assessment.checks + motion_checks
        if moved and articulated:
            return replace(assessment, checks=checks)
        if not moved:
            why = f"the frames are (nearly) identical: {change.explanation}"
        else:
            why = (
                "the face moves only rigidly, like a picture: "
                f"{nonrigid.explanation}; {pose.explanation}"
            )
        return LivenessAssessment(
            live=False,
            score=min(assessment.score, 0.5 * assessment.threshold),
            threshold=assessment.threshold,
            checks=checks,
            reasons=((NO_MOTION, why), *assessment.reasons),
        )

    @classmethod
    def from_pack(cls, pack: PackManifest, threads: int = 1) -> FaceLivenessChecker:
        """Build from a ``face-liveness`` pack: PAD components, fusion, signal models."""
        fusion_block = pack.raw.get("fusion")
        if not isinstance(fusion_block, Mapping):
            raise ConfigurationError(f"pack {pack.id} has no liveness fusion block")
        params = FusionParams.from_dict(fusion_block)
        pads = [
            build_component(PAD_ADAPTERS, name, pack, threads)
            for name in pack.components
            if name.startswith("pad_model")
        ]
        models = params.extra.get("signal_models", {})
        chroma = (
            ChromaTextureModel.from_dict(models[face_signals.CHROMA_TEXTURE])
            if isinstance(models, Mapping) and face_signals.CHROMA_TEXTURE in models
            else None
        )
        motion_block = params.extra.get("motion")
        motion = MotionPolicy.from_dict(motion_block) if isinstance(motion_block, Mapping) else None
        return cls(pads, params, chroma_model=chroma, motion_policy=motion)


def ramp_score(value: float, needed: float) -> float:
    """A [0, 1] score that reaches 0.5 at the needed value."""
    if needed <= 0:
        return 1.0
    return float(value / (value + needed)) if value > 0 else 0.0


def _minifasnet(pack: PackManifest, spec: ComponentSpec, threads: int) -> FacePadModel:
    from bioverify.liveness.minifasnet import MiniFasNetPad

    if len(spec.files) != 1:
        raise ConfigurationError(f"pack {pack.id}: a MiniFASNet component needs one file")
    role = spec.files[0]
    return MiniFasNetPad(pack.file_path(role), threads=threads, name=role, **spec.params)


PAD_ADAPTERS: dict[str, Callable[[PackManifest, ComponentSpec, int], FacePadModel]] = {
    "minifasnet": _minifasnet,
}
"""PAD adapters by the name a pack's ``pad_model*`` component gives."""
