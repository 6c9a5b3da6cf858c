"""Identity continuity and frame jumps of a burst: golden values on hand-made embeddings and
boxes (the real-frame cases run over gRPC in tests/e2e/test_liveness_service.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bioverify.errors import InvalidInput
from bioverify.face.ports import DetectedFace
from bioverify.liveness.continuity import identity_continuity, largest_jump


def test_reference_is_the_medoid_and_lowest_similarity_is_to_it() -> None:
    # Pairwise cosines: (0,1) 0.8, (0,2) 0.6, (1,2) 0.96 -> row sums 2.4, 2.76, 2.56.
    vectors = [[1.0, 0.0], [0.8, 0.6], [0.6, 0.8]]
    result = identity_continuity(vectors, threshold=0.7)
    assert result.passed and result.reference == 1 and result.different == ()
    assert result.lowest_similarity == pytest.approx(0.8)
    assert result.explanation() == (
        "all 3 faces are the person of frame 1: lowest similarity 0.80 (need 0.70)"
    )
    stricter = identity_continuity(vectors, threshold=0.85)
    assert not stricter.passed and stricter.different == (0,)
    assert stricter.explanation() == (
        "frame 0: a different person from frame 1, similarity down to 0.80 (need 0.85)"
    )
    named = identity_continuity(vectors, threshold=0.85, names=("the image", "a", "b"))
    assert named.explanation().startswith("the image: a different person from a,")
    with pytest.raises(ValueError):
        identity_continuity(vectors, threshold=0.85, names=("one", "two"))


def test_a_spliced_identity_fails_whichever_has_more_frames() -> None:
    rng = np.random.default_rng(7)
    alice, bob = rng.normal(size=(2, 128))
    for n_alice, n_bob in ((5, 1), (2, 4)):
        frames = [alice + 0.1 * rng.normal(size=128) for _ in range(n_alice)]
        frames += [bob + 0.1 * rng.normal(size=128) for _ in range(n_bob)]
        order = rng.permutation(len(frames))
        result = identity_continuity(np.array(frames)[order], threshold=0.3)
        assert not result.passed
        minority = set(range(n_alice, len(frames))) if n_bob < n_alice else set(range(n_alice))
        assert {int(order[i]) for i in result.different} == minority
        assert result.lowest_similarity < 0.3


def test_an_appended_face_is_tested_but_never_the_reference() -> None:
    """Frames of two unrelated people and a blend of both as the verified image: the blend
    is the medoid of all three, but only frames may be the reference, so the mix fails."""
    alice, bob = np.eye(2)
    blend = (alice + bob) / np.sqrt(2)
    names = ("frame 0", "frame 1", "the verified image")
    assert identity_continuity([alice, bob, blend], 0.5, names).passed  # blend bridges them
    result = identity_continuity([alice, bob, blend], 0.5, names, candidates=2)
    assert not result.passed and result.reference == 0 and result.different == (1,)
    assert result.lowest_similarity == pytest.approx(0.0)
    for bad in (0, 4):
        with pytest.raises(ValueError):
            identity_continuity([alice, bob, blend], 0.5, candidates=bad)


def test_one_person_with_different_scales_passes() -> None:
    rng = np.random.default_rng(3)
    face = rng.normal(size=64)
    frames = [s * (face + 0.2 * rng.normal(size=64)) for s in (0.5, 1.0, 3.0, 10.0)]
    result = identity_continuity(frames, threshold=0.5)
    assert result.passed and result.lowest_similarity > 0.8


@pytest.mark.parametrize(
    "vectors",
    [[[1.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [np.nan, 1.0]], [1.0, 2.0]],
)
def test_unusable_embeddings_are_invalid_input(vectors: list[object]) -> None:
    with pytest.raises(InvalidInput):
        identity_continuity(np.array(vectors, dtype=np.float64), threshold=0.3)


def _box(x1: float, y1: float, width: float) -> DetectedFace:
    return DetectedFace(x1, y1, x1 + width, y1 + width, 0.9, np.zeros((5, 2), np.float32))


def test_largest_jump_golden() -> None:
    faces = [_box(0, 0, 100), _box(30, 40, 100), _box(30, 40, 50), _box(30, 40, 60)]
    jump = largest_jump(faces)
    # centres (50,50) -> (80,90): 50 px over a 100 px face; (80,90) -> (55,65): 35.4 / 100.
    assert jump.travel == pytest.approx(0.5) and jump.travel_at == 1
    assert jump.scale == pytest.approx(2.0) and jump.scale_at == 2
    assert "0.50 face widths (into frame 1), size x2.00 (into frame 2)" in jump.explanation()
    with pytest.raises(InvalidInput):
        largest_jump(faces[:1])
