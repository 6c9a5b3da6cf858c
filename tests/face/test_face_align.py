"""Alignment maths: golden similarity matrices, Umeyama properties, the ArcFace crop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.transform import SimilarityTransform

from bioverify.face.align import (
    ARCFACE_TEMPLATE_112,
    arcface_template,
    norm_crop,
    similarity_transform,
)
from tests.face.face_assets import lfw_image

# SCRFD-2.5g landmarks of Angela_Bassett_0004 (rounded), used as a fixed input.
LANDMARKS = np.array(
    [
        [101.25653, 112.43361],
        [144.49026, 114.12825],
        [115.984924, 139.8101],
        [104.64038, 155.39584],
        [144.63129, 156.41924],
    ]
)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    moved: np.ndarray = points @ matrix[:, :2].T + matrix[:, 2]
    return moved


def test_template_is_the_standard_arcface_one() -> None:
    assert ARCFACE_TEMPLATE_112.tolist() == [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
    assert not ARCFACE_TEMPLATE_112.flags.writeable


def test_template_scaling_follows_insightface() -> None:
    assert np.allclose(arcface_template(112), ARCFACE_TEMPLATE_112)
    assert np.allclose(arcface_template(224)[0], [76.5892, 103.3926])
    # Multiples of 128: the 112 template scaled by size/128 and shifted right by 8*size/128.
    assert np.allclose(arcface_template(128)[0], [46.2946, 51.6963])
    assert np.allclose(arcface_template(256)[0], [92.5892, 103.3926])
    with pytest.raises(ValueError):
        arcface_template(0)


def test_golden_matrix_for_real_landmarks() -> None:
    expected = np.array(
        [
            [8.4900511804e-01, -3.0629076358e-03, -4.7307395178e01],
            [3.0629076358e-03, 8.4900511804e-01, -4.3630362976e01],
        ]
    )
    assert np.allclose(similarity_transform(LANDMARKS, ARCFACE_TEMPLATE_112), expected, atol=1e-8)


def test_golden_matrix_for_the_128_template() -> None:
    expected = np.array(
        [
            [8.4900511804e-01, -3.0629076358e-03, -3.9307395178e01],
            [3.0629076358e-03, 8.4900511804e-01, -4.3630362976e01],
        ]
    )
    assert np.allclose(similarity_transform(LANDMARKS, arcface_template(128)), expected, atol=1e-8)


def test_identity() -> None:
    matrix = similarity_transform(ARCFACE_TEMPLATE_112, ARCFACE_TEMPLATE_112)
    assert np.allclose(matrix, [[1, 0, 0], [0, 1, 0]], atol=1e-12)


def test_recovers_an_exact_similarity() -> None:
    angle, scale, shift = math.radians(23.0), 1.7, np.array([-12.5, 40.0])
    rot = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    moved = ARCFACE_TEMPLATE_112 @ rot.T + shift
    matrix = similarity_transform(ARCFACE_TEMPLATE_112, moved)
    assert np.allclose(matrix[:, :2], rot, atol=1e-12)
    assert np.allclose(matrix[:, 2], shift, atol=1e-10)


def test_matches_scikit_image_on_random_points() -> None:
    rng = np.random.default_rng(11)
    for _ in range(20):
        src = rng.uniform(0, 500, (5, 2))
        reference = SimilarityTransform.from_estimate(src, ARCFACE_TEMPLATE_112)
        assert np.allclose(similarity_transform(src, ARCFACE_TEMPLATE_112), reference.params[:2])


def test_never_reflects() -> None:
    mirrored = ARCFACE_TEMPLATE_112 * np.array([-1.0, 1.0])
    matrix = similarity_transform(mirrored, ARCFACE_TEMPLATE_112)
    assert np.linalg.det(matrix[:, :2]) > 0


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (np.zeros((5, 2)), ARCFACE_TEMPLATE_112),  # degenerate
        (np.ones((4, 2)), ARCFACE_TEMPLATE_112),  # shape mismatch
        (np.ones((5, 3)), np.ones((5, 3))),  # not 2-D points
        (np.full((5, 2), np.nan), ARCFACE_TEMPLATE_112),
    ],
)
def test_bad_points_raise(src: np.ndarray, dst: np.ndarray) -> None:
    with pytest.raises(ValueError):
        similarity_transform(src, dst)


def test_norm_crop_puts_landmarks_on_the_template() -> None:
    angle, scale = math.radians(-12.0), 1.6
    rot = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    landmarks = ARCFACE_TEMPLATE_112 @ rot.T + np.array([60.0, 70.0])
    image = np.zeros((300, 300, 3), np.uint8)
    for x, y in landmarks.round().astype(int):
        image[y - 3 : y + 4, x - 3 : x + 4] = 255
    crop = norm_crop(image, landmarks)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    for x, y in ARCFACE_TEMPLATE_112.round().astype(int):
        assert crop[y, x].min() > 200
    assert crop.mean() < 30  # nothing else is bright


def test_norm_crop_of_a_real_face_is_deterministic_and_sized() -> None:
    image = lfw_image("Angela_Bassett", 4)
    first = norm_crop(image, LANDMARKS)
    assert np.array_equal(first, norm_crop(image, LANDMARKS))
    assert norm_crop(image, LANDMARKS, 224).shape == (224, 224, 3)
    # The crop is the face: not mostly black border, well lit.
    assert (first.max(axis=2) == 0).mean() < 0.01


def test_least_squares_optimality() -> None:
    """Any small change of scale, angle or shift increases the squared residual."""
    matrix = similarity_transform(LANDMARKS, ARCFACE_TEMPLATE_112)
    best = float(((apply(matrix, LANDMARKS) - ARCFACE_TEMPLATE_112) ** 2).sum())
    a, b = matrix[0, 0], matrix[1, 0]  # [[a, -b], [b, a]]
    for da, db, dx, dy in [
        (1e-3, 0, 0, 0),
        (-1e-3, 0, 0, 0),
        (0, 1e-3, 0, 0),
        (0, -1e-3, 0, 0),
        (0, 0, 0.05, 0),
        (0, 0, 0, -0.05),
    ]:
        other = np.array(
            [[a + da, -(b + db), matrix[0, 2] + dx], [b + db, a + da, matrix[1, 2] + dy]]
        )
        assert float(((apply(other, LANDMARKS) - ARCFACE_TEMPLATE_112) ** 2).sum()) > best
