"""Adaptive s-norm: golden values worked by hand, invariances, and vectorised == per-trial."""

from __future__ import annotations

import numpy as np
import pytest

from bioverify.voice.score_norm import (
    adaptive_snorm,
    adaptive_snorm_batch,
    adaptive_snorm_embeddings,
    cohort_stats,
)

ENROLL_COHORT = [0.1, 0.5, 0.3, 0.9]  # top 2: 0.9, 0.5 -> mean 0.7, std 0.2
TEST_COHORT = [0.2, 0.2, 0.6, 0.0]  # top 2: 0.6, 0.2 -> mean 0.4, std 0.2


def test_cohort_stats_golden() -> None:
    mean, std = cohort_stats(ENROLL_COHORT, 2)
    assert float(mean) == pytest.approx(0.7)
    assert float(std) == pytest.approx(0.2)
    mean, std = cohort_stats(ENROLL_COHORT, 3)  # 0.9, 0.5, 0.3
    assert float(mean) == pytest.approx(1.7 / 3)
    assert float(std) == pytest.approx(
        np.sqrt(((0.9 - 1.7 / 3) ** 2 + (0.5 - 1.7 / 3) ** 2 + (0.3 - 1.7 / 3) ** 2) / 3)
    )


def test_adaptive_snorm_golden() -> None:
    # ((0.8 - 0.7) / 0.2 + (0.8 - 0.4) / 0.2) / 2 = (0.5 + 2.0) / 2
    assert adaptive_snorm(0.8, ENROLL_COHORT, TEST_COHORT, top_n=2) == pytest.approx(1.25)
    # top_n beyond the cohort size uses the whole cohort: means 0.45 / 0.25, population stds
    e_sd, t_sd = np.std(ENROLL_COHORT), np.std(TEST_COHORT)
    expected = 0.5 * ((0.8 - 0.45) / e_sd + (0.8 - 0.25) / t_sd)
    assert adaptive_snorm(0.8, ENROLL_COHORT, TEST_COHORT, top_n=100) == pytest.approx(expected)


def test_flat_cohort_uses_the_std_floor() -> None:
    value = adaptive_snorm(0.6, [0.5, 0.5, 0.5], [0.5, 0.5], top_n=2, min_std=0.01)
    assert value == pytest.approx(10.0)


def test_symmetric_and_invariant_to_affine_score_changes() -> None:
    rng = np.random.default_rng(1)
    e, t = rng.normal(0.1, 0.1, 50), rng.normal(0.2, 0.15, 50)
    base = adaptive_snorm(0.55, e, t, top_n=10)
    assert adaptive_snorm(0.55, t, e, top_n=10) == pytest.approx(base)
    assert adaptive_snorm(3 * 0.55 - 1, 3 * e - 1, 3 * t - 1, top_n=10) == pytest.approx(base)
    assert adaptive_snorm(0.56, e, t, top_n=10) > base  # monotonic in the raw score


def test_batch_matches_per_trial() -> None:
    rng = np.random.default_rng(2)
    n, c = 40, 30
    scores = rng.uniform(-0.2, 0.9, n)
    e, t = rng.normal(0.1, 0.1, (n, c)), rng.normal(0.0, 0.2, (n, c + 5))
    batch = adaptive_snorm_batch(scores, e, t, top_n=7)
    loop = [adaptive_snorm(s, er, tr, top_n=7) for s, er, tr in zip(scores, e, t, strict=True)]
    np.testing.assert_allclose(batch, loop, rtol=1e-12)


def test_mask_equals_dropping_members() -> None:
    rng = np.random.default_rng(3)
    n, c = 25, 20
    scores = rng.uniform(-0.2, 0.9, n)
    e, t = rng.normal(0.1, 0.1, (n, c)), rng.normal(0.0, 0.2, (n, c))
    mask = rng.random((n, c)) > 0.4
    mask[0] = False
    mask[0, 3] = True  # one usable member: mean is that score, std the floor
    for top_n in (1, 5, 50):
        batch = adaptive_snorm_batch(scores, e, t, top_n=top_n, cohort_mask=mask)
        loop = [
            adaptive_snorm(s, er[m], tr[m], top_n=top_n)
            for s, er, tr, m in zip(scores, e, t, mask, strict=True)
        ]
        np.testing.assert_allclose(batch, loop, rtol=1e-12)


def test_embeddings_form() -> None:
    rng = np.random.default_rng(4)
    n, c, d = 12, 15, 8
    enroll, test, cohort = rng.normal(size=(n, d)), rng.normal(size=(n, d)), rng.normal(size=(c, d))
    mask = np.ones((n, c), dtype=bool)
    mask[:, :3] = False
    raw, normed = adaptive_snorm_embeddings(5 * enroll, test, 2 * cohort, top_n=4, cohort_mask=mask)
    ue, ut, uc = unit(enroll), unit(test), unit(cohort)
    np.testing.assert_allclose(raw, np.sum(ue * ut, axis=1), rtol=1e-12)
    expected = [
        adaptive_snorm(r, (uc[3:] @ a), (uc[3:] @ b), top_n=4)
        for r, a, b in zip(raw, ue, ut, strict=True)
    ]
    np.testing.assert_allclose(normed, expected, rtol=1e-12)


def unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: cohort_stats([0.1], 0), "top_n"),
        (lambda: cohort_stats(np.zeros((2, 0)), 3), "empty"),
        (lambda: cohort_stats([0.1, np.nan], 1), "finite"),
        (lambda: cohort_stats([[0.1, 0.2]], 1, mask=[[False, False]]), "no usable"),
        (lambda: adaptive_snorm(0.1, [[0.1]], [0.2], 1), "1-d"),
        (lambda: adaptive_snorm_batch([0.1, 0.2], [[0.1]], [[0.2]], 1), "rows"),
        (
            lambda: adaptive_snorm_embeddings(np.ones((2, 3)), np.ones((2, 4)), np.ones((5, 3)), 1),
            "shapes",
        ),
        (
            lambda: adaptive_snorm_embeddings(
                np.zeros((1, 3)), np.ones((1, 3)), np.ones((5, 3)), 1
            ),
            "zeros",
        ),
    ],
)
def test_invalid_input(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
