"""The liveness checker built from the shipped pack: single images, bursts, configuration."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from bioverify.errors import ConfigurationError, InvalidInput
from bioverify.face.ports import DetectedFace, ImageBGR
from bioverify.liveness import face_signals as fs
from bioverify.liveness.face_checker import NO_MOTION, FaceLivenessChecker, pad_logit
from bioverify.liveness.fusion import FusionParams
from bioverify.liveness.ports import LivenessAssessment
from bioverify.packs import ComponentSpec, PackManifest, parse_manifest
from tests.liveness.conftest import DATA, MODELS, read_image, require

PACK = (
    Path(__file__).resolve().parents[2] / "service" / "bioverify" / "packs" / "face-liveness.json"
)
LIVE_IMAGE = DATA / "face_pad" / "gan_vs_ffhq" / "real_ffhq_116.jpg"


@pytest.fixture(scope="module")
def pack() -> PackManifest:
    require(MODELS)
    data = json.loads(PACK.read_text(encoding="utf-8"))
    return parse_manifest(data, root=MODELS, manifest_path=PACK)


@pytest.fixture(scope="module")
def checker(pack: PackManifest) -> FaceLivenessChecker:
    return FaceLivenessChecker.from_pack(pack, threads=1)


@pytest.fixture(scope="module")
def live_face(detect: Callable[[ImageBGR], DetectedFace]) -> tuple[ImageBGR, DetectedFace]:
    image = read_image(LIVE_IMAGE)
    return image, detect(image)


def test_pack_shape(pack: PackManifest) -> None:
    assert pack.id == "face-liveness" and pack.modality == "face-liveness"
    assert pack.file_path("minifasnet_v2").is_file()
    assert pack.components["pad_model"].adapter == "minifasnet"


def test_single_image_assessment_explains_itself(
    checker: FaceLivenessChecker, live_face: tuple[ImageBGR, DetectedFace]
) -> None:
    result = checker.assess(*live_face)
    assert isinstance(result, LivenessAssessment)
    assert result.live and result.reasons == ()
    assert result.score >= result.threshold == checker.params.threshold
    detectors = {d.name for d in checker.params.detectors}
    assert {c.name for c in result.checks} == set(checker.params.feature_names) | detectors
    assert all(0.0 <= c.score <= 1.0 and c.detail for c in result.checks)
    assert all(c.passed for c in result.checks)


def test_blurred_recapture_is_rejected_with_a_reason(
    checker: FaceLivenessChecker, live_face: tuple[ImageBGR, DetectedFace]
) -> None:
    import cv2

    image, face = live_face
    soft = cast(ImageBGR, cv2.GaussianBlur(image, (0, 0), 2.5))
    result = checker.assess(soft, face)
    sharp = {c.name: c for c in checker.assess(image, face).checks}
    assert not result.live and result.reasons
    codes = {d.code for d in checker.params.detectors}
    assert all(code in codes for code, _ in result.reasons)
    # The blur is what the double-capture cue measures: its check drops, and says why.
    blurred = {c.name: c for c in result.checks}["detail_scale_ratio"]
    assert blurred.score < sharp["detail_scale_ratio"].score - 0.1
    assert "finest/next octave detail" in blurred.detail


def test_still_image_replayed_as_frames_fails_motion(
    checker: FaceLivenessChecker, live_face: tuple[ImageBGR, DetectedFace]
) -> None:
    result = checker.assess_frames([live_face] * 5)
    assert not result.live
    assert result.reasons[0][0] == NO_MOTION
    assert result.score < result.threshold
    motion = {c.name: c for c in result.checks}[fs.MOTION_FRAME_CHANGE]
    assert not motion.passed and motion.weight == 0.0


def test_moving_face_passes_motion(
    checker: FaceLivenessChecker, live_face: tuple[ImageBGR, DetectedFace]
) -> None:
    image, face = live_face
    rng = np.random.default_rng(11)
    frames = []
    for i in range(4):
        lm = face.landmarks.copy()
        lm[2, 0] += 1.5 * i  # the head turns a little
        noisy = np.clip(image + rng.normal(0, 1.5, image.shape), 0, 255).astype(np.uint8)
        frames.append((noisy, replace(face, landmarks=lm)))
    result = checker.assess_frames(frames)
    names = {c.name: c for c in result.checks}
    assert names[fs.MOTION_FRAME_CHANGE].passed
    # alternatives: when either is met, neither is reported as failed
    assert names[fs.MOTION_NONRIGID].passed and names[fs.MOTION_POSE_RANGE].passed
    assert all(code != NO_MOTION for code, _ in result.reasons)
    with pytest.raises(InvalidInput):
        checker.assess_frames(frames[:1])


def test_configuration_errors(pack: PackManifest) -> None:
    params = FusionParams.from_dict(pack.raw["fusion"])
    with pytest.raises(ConfigurationError, match="cannot measure"):
        FaceLivenessChecker([], params)  # no chroma-texture model
    bad = replace(
        pack,
        components={"pad_model": ComponentSpec(adapter="nope", files=("minifasnet_v2",))},
    )
    with pytest.raises(ConfigurationError, match="unknown pad_model adapter 'nope'"):
        FaceLivenessChecker.from_pack(bad)
    no_fusion = replace(pack, raw={k: v for k, v in pack.raw.items() if k != "fusion"})
    with pytest.raises(ConfigurationError, match="no liveness fusion"):
        FaceLivenessChecker.from_pack(no_fusion)


def test_pad_logit_is_bounded() -> None:
    assert pad_logit(0.5) == pytest.approx(0.0)
    assert pad_logit(1.0) == pytest.approx(9.21, abs=0.01)
    assert pad_logit(-1.0) == pytest.approx(-9.21, abs=0.01)
