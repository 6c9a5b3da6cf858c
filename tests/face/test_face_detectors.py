"""Every face detector on real LFW photos: one dominant face, landmarks in ArcFace order."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import cv2
import numpy as np
import pytest

from bioverify.errors import ConfigurationError, InvalidImage
from bioverify.face.detector_dlib import (
    DlibHogDetector,
    arcface_points_from_68,
    default_model_path,
)
from bioverify.face.detector_scrfd import ScrfdDetector
from bioverify.face.detector_yunet import YunetDetector, nms
from bioverify.face.ports import DetectedFace, FaceDetector, ImageBGR
from bioverify.face.quality import select_primary_face
from tests.face.face_assets import (
    DETECTOR_NAMES,
    MOBILEFACENET,
    SCRFD_500M,
    YUNET_640,
    lfw_image,
    require,
)

# Single-subject LFW photos (250x250, subject centred).
SUBJECTS = [("Ben_Curtis", 1), ("Courtney_Love", 1), ("Jiang_Zemin", 2), ("Faye_Dunaway", 2)]


def assert_arcface_order(face: DetectedFace) -> None:
    pts = face.landmarks
    assert pts.shape == (5, 2) and pts.dtype == np.float32
    left_eye, right_eye, nose, mouth_left, mouth_right = pts
    assert left_eye[0] < right_eye[0]
    assert mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    # Landmarks lie inside (a slightly enlarged) face box.
    margin = 0.1 * face.height
    assert np.all(pts[:, 0] > face.x1 - margin) and np.all(pts[:, 0] < face.x2 + margin)
    assert np.all(pts[:, 1] > face.y1 - margin) and np.all(pts[:, 1] < face.y2 + margin)


@pytest.mark.parametrize("name", DETECTOR_NAMES)
@pytest.mark.parametrize(("person", "number"), SUBJECTS)
def test_finds_the_subject_with_ordered_landmarks(
    get_detector: Callable[[str], FaceDetector], name: str, person: str, number: int
) -> None:
    image = lfw_image(person, number)
    faces = get_detector(name).detect(image)
    assert len(faces) >= 1
    scores = [f.score for f in faces]
    assert scores == sorted(scores, reverse=True)
    face, ambiguous = select_primary_face(faces, image.shape)
    assert not ambiguous
    centre = ((face.x1 + face.x2) / 2, (face.y1 + face.y2) / 2)
    assert abs(centre[0] - 125) < 30 and abs(centre[1] - 125) < 40
    assert 70 < face.height < 220
    assert_arcface_order(face)


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_detection_is_deterministic_and_leaves_the_input_alone(
    get_detector: Callable[[str], FaceDetector], name: str
) -> None:
    image = lfw_image("Ben_Curtis", 1).copy()
    before = image.copy()
    first = get_detector(name).detect(image)
    second = get_detector(name).detect(image)
    assert np.array_equal(image, before)
    assert [(f.x1, f.y1, f.score) for f in first] == [(f.x1, f.y1, f.score) for f in second]
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.landmarks, b.landmarks)


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_blank_image_has_no_faces(get_detector: Callable[[str], FaceDetector], name: str) -> None:
    assert get_detector(name).detect(np.full((240, 320, 3), 127, np.uint8)) == []


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_coordinates_map_back_from_a_large_image(
    get_detector: Callable[[str], FaceDetector], name: str
) -> None:
    """A 3x upscaled photo (750 px, beyond every detector's working size) gives 3x coordinates."""
    small = lfw_image("Jiang_Zemin", 2)
    large = cast(ImageBGR, cv2.resize(small, (750, 750), interpolation=cv2.INTER_CUBIC))
    detector = get_detector(name)
    face_small, _ = select_primary_face(detector.detect(small), small.shape)
    face_large, _ = select_primary_face(detector.detect(large), large.shape)
    # dlib's HOG landmarks move by up to ~12 % of the face height between the two sizes
    # (its 68-point fit, not the mapping); a wrong mapping is off by 100 % or more.
    tolerance = 0.15 * face_small.height
    assert abs(face_large.x1 / 3 - face_small.x1) < tolerance
    assert abs(face_large.y2 / 3 - face_small.y2) < tolerance
    assert np.abs(face_large.landmarks / 3 - face_small.landmarks).max() < tolerance


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_rejects_non_images(get_detector: Callable[[str], FaceDetector], name: str) -> None:
    with pytest.raises(InvalidImage):
        get_detector(name).detect(np.zeros((100, 100), np.uint8))


# --- SCRFD ------------------------------------------------------------------------------


def test_scrfd_input_size_follows_the_image(scrfd: ScrfdDetector) -> None:
    assert scrfd.input_size_for(250, 250) == (256, 256)  # LFW: no 640 upscaling
    assert scrfd.input_size_for(100, 80) == (128, 160)  # small: long side up to 160
    assert scrfd.input_size_for(720, 1280) == (640, 384)  # large: long side down to 640
    assert scrfd.input_size_for(4000, 3000) == (480, 640)
    for h, w in [(33, 1000), (1000, 33), (321, 321)]:
        iw, ih = scrfd.input_size_for(h, w)
        assert iw % 32 == 0 and ih % 32 == 0 and max(iw, ih) <= 640


def test_scrfd_threshold_is_configurable() -> None:
    image = lfw_image("Ben_Curtis", 1)
    lenient = ScrfdDetector(require(SCRFD_500M), threshold=0.05)
    strict = ScrfdDetector(require(SCRFD_500M), threshold=0.8)
    assert all(f.score >= 0.8 for f in strict.detect(image))
    assert len(lenient.detect(image)) > len(strict.detect(image))


def test_scrfd_configuration_errors(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("scrfd")
    with pytest.raises(ConfigurationError, match="not found"):
        ScrfdDetector(folder / "missing.onnx")
    garbage = folder / "garbage.onnx"
    garbage.write_bytes(b"this is not a model")
    with pytest.raises(ConfigurationError, match="cannot load"):
        ScrfdDetector(garbage)
    with pytest.raises(ConfigurationError, match="not an SCRFD"):
        ScrfdDetector(require(MOBILEFACENET))
    with pytest.raises(ConfigurationError):
        ScrfdDetector(require(MOBILEFACENET), threshold=1.5)


# --- YuNet ------------------------------------------------------------------------------


def test_yunet_fixed_640_file_agrees_with_the_dynamic_one(yunet: YunetDetector) -> None:
    fixed = YunetDetector(require(YUNET_640))
    image = lfw_image("Courtney_Love", 1)
    a, _ = select_primary_face(yunet.detect(image), image.shape)
    b, _ = select_primary_face(fixed.detect(image), image.shape)
    # Same weights; only the zero padding differs (250 -> 256 vs 640).
    assert abs(a.x1 - b.x1) < 3 and abs(a.y2 - b.y2) < 3
    assert np.abs(a.landmarks - b.landmarks).max() < 3


def test_yunet_configuration_errors(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("yunet")
    with pytest.raises(ConfigurationError, match="not found"):
        YunetDetector(folder / "missing.onnx")
    with pytest.raises(ConfigurationError, match="not a YuNet"):
        YunetDetector(require(MOBILEFACENET))
    with pytest.raises(ConfigurationError):
        YunetDetector(require(YUNET_640), threshold=0.0)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array(
        [[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]], dtype=np.float32
    )
    scores = np.array([0.7, 0.9, 0.8, 0.1], dtype=np.float32)
    assert nms(boxes, scores, 0.3) == [1, 2]
    assert nms(boxes, scores, 0.99) == [1, 2, 0]
    assert nms(np.empty((0, 4), np.float32), np.empty(0, np.float32), 0.3) == []


# --- dlib -------------------------------------------------------------------------------


def test_dlib_68_to_5_points() -> None:
    points = np.zeros((68, 2), np.float32)
    points[36:42] = [10, 20]
    points[42:48] = [30, 22]
    points[30] = [20, 30]
    points[48] = [12, 40]
    points[54] = [28, 41]
    assert arcface_points_from_68(points).tolist() == [
        [10, 20],
        [30, 22],
        [20, 30],
        [12, 40],
        [28, 41],
    ]
    with pytest.raises(ValueError):
        arcface_points_from_68(np.zeros((5, 2), np.float32))


def test_dlib_border_finds_a_face_filling_the_frame() -> None:
    image = lfw_image("Ben_Curtis", 1)
    plain = DlibHogDetector()
    face, _ = select_primary_face(plain.detect(image), image.shape)
    # Crop tightly around the face: the face now fills the frame.
    x1, y1 = max(0, int(face.x1) + 5), max(0, int(face.y1) + 5)
    tight = np.ascontiguousarray(image[y1 : int(face.y2) - 5, x1 : int(face.x2) - 5])
    bordered = DlibHogDetector(border_fraction=0.3)
    found = bordered.detect(tight)
    assert found, "the padded search should find the face filling the frame"
    assert_arcface_order(found[0])
    assert found[0].x1 < tight.shape[1] / 2 < found[0].x2


def test_dlib_configuration_errors(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("dlib")
    with pytest.raises(ConfigurationError, match="not found"):
        DlibHogDetector(landmarks_path=folder / "missing.dat")
    garbage = folder / "garbage.dat"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(ConfigurationError):
        DlibHogDetector(landmarks_path=garbage)
    five_points = default_model_path("shape_predictor_5_face_landmarks.dat")
    with pytest.raises(ConfigurationError, match="68-point"):
        DlibHogDetector(landmarks_path=five_points)


def test_onnx_detectors_honour_the_thread_setting() -> None:
    scrfd = ScrfdDetector(require(SCRFD_500M), threads=2)
    options = scrfd._model.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
    assert scrfd._model.session.get_providers() == ["CPUExecutionProvider"]
    yunet = YunetDetector(require(YUNET_640), threads=3)
    assert yunet._session.get_session_options().intra_op_num_threads == 3
    assert yunet._session.get_providers() == ["CPUExecutionProvider"]
