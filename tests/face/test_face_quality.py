"""Quality gates and subject selection: real LFW photos pass, degraded ones fail."""

from __future__ import annotations

import csv
import dataclasses
import math
import re
from collections.abc import Callable
from typing import cast

import cv2
import numpy as np
import pytest

from bioverify.errors import NoFaceDetected
from bioverify.face.align import ARCFACE_TEMPLATE_112
from bioverify.face.ports import DetectedFace, FaceDetector, ImageBGR
from bioverify.face.quality import (
    BLURRED,
    DEFAULT_THRESHOLDS,
    EXTREME_POSE,
    FACE_TOO_SMALL,
    OVEREXPOSED,
    UNDEREXPOSED,
    FaceQuality,
    assess_face_quality,
    estimate_pose,
    face_prominence,
    select_primary_face,
)
from tests.face.face_assets import DATA, DETECTOR_NAMES, lfw_image, require

SUBJECTS = [("Ben_Curtis", 1), ("Jiang_Zemin", 2), ("Faye_Dunaway", 2), ("George_Brumley", 1)]


def primary(detector: FaceDetector, image: ImageBGR) -> DetectedFace:
    face, _ = select_primary_face(detector.detect(image), image.shape)
    return face


def assess(image: ImageBGR, face: DetectedFace) -> FaceQuality:
    return assess_face_quality(image, face, thresholds=DEFAULT_THRESHOLDS)


def with_landmarks(face: DetectedFace, landmarks: np.ndarray) -> DetectedFace:
    return dataclasses.replace(face, landmarks=landmarks.astype(np.float32))


def box(x1: float, y1: float, x2: float, y2: float) -> DetectedFace:
    return DetectedFace(x1, y1, x2, y2, 0.9, np.zeros((5, 2), np.float32))


# --- the whole LFW DEV set passes ---------------------------------------------------------


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_every_lfw_image_passes_and_only_the_two_person_photo_is_ambiguous(
    get_detector: Callable[[str], FaceDetector], name: str
) -> None:
    with require(DATA / "face_images.tsv").open(newline="") as fh:
        paths = [row["path"] for row in csv.DictReader(fh, delimiter="\t")]
    assert len(paths) == 173
    detector = get_detector(name)
    failures, ambiguous = [], []
    for rel in paths:
        image = cast("ImageBGR | None", cv2.imread(str(DATA / rel)))
        assert image is not None, rel
        face, is_ambiguous = select_primary_face(detector.detect(image), image.shape)
        quality = assess(image, face)
        if not quality.ok:
            failures.append((rel, quality.codes))
        if is_ambiguous:
            ambiguous.append(rel.rsplit("/", 1)[1])
    assert failures == []
    # Two women side by side, equally prominent; every other photo has one clear subject.
    assert ambiguous == ["Erika_Harold_0003.jpg"]


# --- synthetic degradations of real photos -----------------------------------------------


@pytest.mark.parametrize(("person", "number"), SUBJECTS)
def test_original_passes(yunet: FaceDetector, person: str, number: int) -> None:
    image = lfw_image(person, number)
    quality = assess(image, primary(yunet, image))
    assert quality.ok and quality.issues == () and quality.codes == ()
    assert 30 < quality.inter_ocular_px < 70
    assert quality.sharpness > 30 and 60 < quality.brightness < 200


@pytest.mark.parametrize(("person", "number"), SUBJECTS)
def test_heavy_blur_is_blurred(yunet: FaceDetector, person: str, number: int) -> None:
    image = lfw_image(person, number)
    quality = assess(cast(ImageBGR, cv2.GaussianBlur(image, (0, 0), 5)), primary(yunet, image))
    assert quality.codes == (BLURRED,)


@pytest.mark.parametrize(("person", "number"), SUBJECTS)
def test_near_black_is_underexposed(yunet: FaceDetector, person: str, number: int) -> None:
    image = lfw_image(person, number)
    quality = assess((image * 0.08).astype(np.uint8), primary(yunet, image))
    assert UNDEREXPOSED in quality.codes
    assert OVEREXPOSED not in quality.codes


@pytest.mark.parametrize(("person", "number"), SUBJECTS)
def test_blown_out_is_overexposed(yunet: FaceDetector, person: str, number: int) -> None:
    image = lfw_image(person, number)
    blown = np.clip(image.astype(np.float32) * 2.5 + 80, 0, 255).astype(np.uint8)
    quality = assess(blown, primary(yunet, image))
    assert OVEREXPOSED in quality.codes
    assert UNDEREXPOSED not in quality.codes


@pytest.mark.parametrize("name", ["yunet", "scrfd-500m"])
@pytest.mark.parametrize(("person", "number"), SUBJECTS)
def test_tiny_face_is_too_small(
    get_detector: Callable[[str], FaceDetector], name: str, person: str, number: int
) -> None:
    tiny = cast(
        ImageBGR, cv2.resize(lfw_image(person, number), (60, 60), interpolation=cv2.INTER_AREA)
    )
    quality = assess(tiny, primary(get_detector(name), tiny))
    assert FACE_TOO_SMALL in quality.codes
    assert quality.inter_ocular_px < DEFAULT_THRESHOLDS.min_inter_ocular_px


def test_profile_like_nose_offset_is_extreme_pose(yunet: FaceDetector) -> None:
    image = lfw_image("Ben_Curtis", 1)
    face = primary(yunet, image)
    pts = face.landmarks.astype(np.float64).copy()
    eye_distance = float(np.hypot(*(pts[1] - pts[0])))
    pts[2, 0] += 0.8 * eye_distance  # nose tip beyond the eye: a profile view
    quality = assess(image, with_landmarks(face, pts))
    assert quality.codes == (EXTREME_POSE,)
    assert quality.yaw > DEFAULT_THRESHOLDS.max_abs_yaw


def test_strong_roll_is_extreme_pose(yunet: FaceDetector) -> None:
    image = lfw_image("Jiang_Zemin", 2)
    face = primary(yunet, image)
    pts = face.landmarks.astype(np.float64)
    centre = pts.mean(axis=0)
    angle = math.radians(70)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    quality = assess(image, with_landmarks(face, (pts - centre) @ rot.T + centre))
    assert EXTREME_POSE in quality.codes
    assert quality.roll_deg == pytest.approx(estimate_pose(pts).roll_deg + 70, abs=1e-3)


def test_nose_above_the_eye_line_is_extreme_pitch(yunet: FaceDetector) -> None:
    image = lfw_image("Faye_Dunaway", 2)
    face = primary(yunet, image)
    pts = face.landmarks.astype(np.float64).copy()
    eye_y, mouth_y = pts[:2, 1].mean(), pts[3:, 1].mean()
    pts[2, 1] = eye_y - 0.1 * (mouth_y - eye_y)  # nose tip above the eyes: head thrown back
    quality = assess(image, with_landmarks(face, pts))
    assert EXTREME_POSE in quality.codes
    assert quality.pitch < -DEFAULT_THRESHOLDS.max_abs_pitch


def test_every_issue_has_a_message(yunet: FaceDetector) -> None:
    image = lfw_image("Ben_Curtis", 1)
    face = primary(yunet, image)
    pts = face.landmarks.astype(np.float64).copy()
    pts[2, 0] += 40
    quality = assess((image * 0.05).astype(np.uint8), with_landmarks(face, pts))
    assert set(quality.codes) >= {BLURRED, UNDEREXPOSED, EXTREME_POSE}
    assert all(issue.message and issue.code.isupper() for issue in quality.issues)


def test_thresholds_are_data(yunet: FaceDetector) -> None:
    image = lfw_image("Ben_Curtis", 1)
    face = primary(yunet, image)
    strict = dataclasses.replace(DEFAULT_THRESHOLDS, min_inter_ocular_px=200.0)
    assert assess_face_quality(image, face, thresholds=strict).codes == (FACE_TOO_SMALL,)


def test_a_face_just_too_small_never_reads_as_big_enough(yunet: FaceDetector) -> None:
    """The message rounds the measurement down and the minimum up: an eye distance a hair
    below the minimum does not read "N px; need at least N"."""
    image = lfw_image("Ben_Curtis", 1)
    face = primary(yunet, image)
    left, right = face.landmarks[0].astype(np.float64), face.landmarks[1].astype(np.float64)
    measured = float(np.hypot(*(right - left)))
    just_above = dataclasses.replace(DEFAULT_THRESHOLDS, min_inter_ocular_px=measured + 0.01)
    (issue,) = assess_face_quality(image, face, thresholds=just_above).issues
    shown = re.search(r"eye distance (\d+) px.*need at least (\d+)", issue.message)
    assert shown is not None and int(shown.group(1)) < int(shown.group(2)), issue.message


# --- pose maths ---------------------------------------------------------------------------


def test_template_is_frontal() -> None:
    pose = estimate_pose(ARCFACE_TEMPLATE_112)
    assert pose.yaw == pytest.approx(0.0, abs=1e-4)
    assert pose.pitch == pytest.approx(0.0, abs=1e-6)
    assert pose.roll_deg == pytest.approx(-0.3169, abs=1e-3)


def test_pose_is_invariant_to_scale_and_shift() -> None:
    pts = np.array([[100, 110], [150, 112], [130, 140], [108, 160], [146, 161]], np.float64)
    a = estimate_pose(pts)
    b = estimate_pose(pts * 2.5 + 40)
    assert (a.yaw, a.pitch, a.roll_deg) == pytest.approx((b.yaw, b.pitch, b.roll_deg))


def test_mirrored_photo_mirrors_yaw(yunet: FaceDetector) -> None:
    image = lfw_image("Dianne_Feinstein", 3)  # a face turned a little
    mirrored = np.ascontiguousarray(image[:, ::-1])
    a = estimate_pose(primary(yunet, image).landmarks)
    b = estimate_pose(primary(yunet, mirrored).landmarks)
    assert abs(a.yaw) > 0.1
    assert b.yaw == pytest.approx(-a.yaw, abs=0.05)


# --- subject selection --------------------------------------------------------------------


def test_no_face_raises() -> None:
    with pytest.raises(NoFaceDetected):
        select_primary_face([], (250, 250, 3))


def test_single_face_is_never_ambiguous() -> None:
    face = box(10, 10, 40, 40)
    assert select_primary_face([face], (250, 250, 3)) == (face, False)


def test_large_off_centre_face_beats_small_central_one() -> None:
    """A selfie with a big face to one side and a small face in the middle background."""
    big = box(560, 250, 960, 750)
    small = box(480, 470, 530, 530)
    face, ambiguous = select_primary_face([small, big], (1000, 1000, 3))
    assert face is big and not ambiguous


def test_two_equal_faces_side_by_side_are_ambiguous() -> None:
    left, right = box(100, 150, 300, 400), box(700, 150, 900, 400)
    assert select_primary_face([left, right], (600, 1000, 3))[1]


def test_bystander_cut_by_the_frame_is_not_ambiguous() -> None:
    subject = box(80, 60, 170, 190)
    bystander = box(-40, 40, 70, 200)  # as large, but half outside and at the edge
    face, ambiguous = select_primary_face([bystander, subject], (250, 250, 3))
    assert face is subject and not ambiguous
    assert face_prominence(bystander, (250, 250, 3)) < 0.25 * face_prominence(subject, (250, 250))


def test_real_bystander_is_not_ambiguous(yunet: FaceDetector) -> None:
    image = lfw_image("Chok_Tong_Goh", 1)  # a second, smaller face behind the subject
    faces = yunet.detect(image)
    assert len(faces) == 2
    face, ambiguous = select_primary_face(faces, image.shape)
    assert not ambiguous
    assert abs((face.x1 + face.x2) / 2 - 125) < 30


@pytest.mark.parametrize("name", ["yunet", "scrfd-500m"])
def test_two_portraits_side_by_side_are_ambiguous(
    get_detector: Callable[[str], FaceDetector], name: str
) -> None:
    pair = np.hstack([lfw_image("Courtney_Love", 1), lfw_image("Jiang_Zemin", 3)])
    faces = get_detector(name).detect(pair)
    assert len(faces) == 2
    assert select_primary_face(faces, pair.shape)[1]


def test_a_face_too_small_after_shrinking_names_both_sizes(yunet: FaceDetector) -> None:
    """Analysed at a quarter of the size sent: the sizes are judged as analysed, and the
    message also gives the sent photo's, so a client sees why its 80 px face was refused."""
    tiny = cast(
        ImageBGR, cv2.resize(lfw_image("Ben_Curtis", 1), (60, 60), interpolation=cv2.INTER_AREA)
    )
    face = primary(yunet, tiny)
    quality = assess_face_quality(tiny, face, thresholds=DEFAULT_THRESHOLDS, scale=0.25)
    (issue,) = [i for i in quality.issues if i.code == FACE_TOO_SMALL]
    assert "shrunk to 25%" in issue.message
    assert f"{4 * quality.inter_ocular_px:.0f} and {4 * face.height:.0f} px sent" in issue.message
    plain = assess_face_quality(tiny, face, thresholds=DEFAULT_THRESHOLDS)
    assert "shrunk" not in next(i.message for i in plain.issues if i.code == FACE_TOO_SMALL)
