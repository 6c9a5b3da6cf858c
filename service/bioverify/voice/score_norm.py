"""Adaptive symmetric score normalisation (AS-norm) of speaker-verification scores. Pure numpy.

A raw cosine score depends on how "typical" each side's voice is: some voices score high
against everyone. AS-norm (Matějka et al., Interspeech 2017; Cumani et al., 2011) measures that
against a *cohort* of other speakers' embeddings: for each side it takes the ``top_n`` highest
cohort scores (the impostors that side is most confusable with), and z-normalises the trial
score with their mean and standard deviation, averaging the two sides::

    s' = ((s - mu_e) / sd_e + (s - mu_t) / sd_t) / 2

The cohort must not contain the trial's speakers, or a side's own voice sits in its top-N.
Standard deviations are population ones (``ddof=0``), floored at ``min_std``.

Functions, from the one-trial form to the vectorised ones:

- :func:`cohort_stats`: top-N mean and standard deviation of cohort scores (any leading axes),
  optionally with a mask of usable cohort members per row;
- :func:`adaptive_snorm`: one trial, from its two rows of cohort scores;
- :func:`adaptive_snorm_batch`: N trials, from (N, C) cohort scores;
- :func:`adaptive_snorm_embeddings`: N trials from embeddings and a cohort matrix (cosine).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

DEFAULT_MIN_STD = 1e-4


def cohort_stats(
    cohort_scores: npt.ArrayLike,
    top_n: int,
    *,
    mask: npt.ArrayLike | None = None,
    min_std: float = DEFAULT_MIN_STD,
) -> tuple[FloatArray, FloatArray]:
    """(mean, std) of the ``top_n`` largest scores along the last axis.

    ``mask`` (same shape, boolean) marks the cohort members each row may use; a row uses
    ``min(top_n, usable members)`` scores. Every row needs at least one usable member.
    """
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    scores = np.asarray(cohort_scores, dtype=np.float64)
    if scores.ndim == 0 or scores.shape[-1] == 0:
        raise ValueError("the cohort is empty")
    if not np.all(np.isfinite(scores)):
        raise ValueError("cohort scores must be finite")
    if mask is None:
        k = min(top_n, scores.shape[-1])
        top = -np.partition(-scores, k - 1, axis=-1)[..., :k]
        mean = top.mean(axis=-1)
        std = top.std(axis=-1)
        return mean, np.maximum(std, min_std)
    usable = np.broadcast_to(np.asarray(mask, dtype=bool), scores.shape)
    counts = usable.sum(axis=-1)
    if np.any(counts == 0):
        raise ValueError("a row has no usable cohort member")
    k_rows = np.minimum(counts, top_n)
    ordered = -np.sort(-np.where(usable, scores, -np.inf), axis=-1)
    k = int(k_rows.max())
    ordered = ordered[..., :k]
    keep = np.arange(k) < k_rows[..., None]
    taken = np.where(keep, ordered, 0.0)
    mean = taken.sum(axis=-1) / k_rows
    var = np.where(keep, (ordered - mean[..., None]) ** 2, 0.0).sum(axis=-1) / k_rows
    return mean, np.maximum(np.sqrt(var), min_std)


def adaptive_snorm(
    score: float,
    enroll_cohort_scores: npt.ArrayLike,
    test_cohort_scores: npt.ArrayLike,
    top_n: int,
    *,
    min_std: float = DEFAULT_MIN_STD,
) -> float:
    """AS-norm of one trial score, given each side's scores against the cohort (1-d arrays)."""
    e = np.asarray(enroll_cohort_scores, dtype=np.float64)
    t = np.asarray(test_cohort_scores, dtype=np.float64)
    if e.ndim != 1 or t.ndim != 1:
        raise ValueError("cohort scores of one trial must be 1-d")
    mu_e, sd_e = cohort_stats(e, top_n, min_std=min_std)
    mu_t, sd_t = cohort_stats(t, top_n, min_std=min_std)
    return float(0.5 * ((score - mu_e) / sd_e + (score - mu_t) / sd_t))


def adaptive_snorm_batch(
    scores: npt.ArrayLike,
    enroll_cohort_scores: npt.ArrayLike,
    test_cohort_scores: npt.ArrayLike,
    top_n: int,
    *,
    cohort_mask: npt.ArrayLike | None = None,
    min_std: float = DEFAULT_MIN_STD,
) -> FloatArray:
    """AS-norm of N trial scores from (N, C) cohort scores of each side (cohorts may differ in
    size between the sides). ``cohort_mask`` (N, C), when given, applies to both sides and
    needs equal cohorts."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    e = np.atleast_2d(np.asarray(enroll_cohort_scores, dtype=np.float64))
    t = np.atleast_2d(np.asarray(test_cohort_scores, dtype=np.float64))
    if e.shape[0] != s.size or t.shape[0] != s.size:
        raise ValueError(
            f"{s.size} scores but {e.shape[0]} enrolment and {t.shape[0]} test cohort rows"
        )
    mu_e, sd_e = cohort_stats(e, top_n, mask=cohort_mask, min_std=min_std)
    mu_t, sd_t = cohort_stats(t, top_n, mask=cohort_mask, min_std=min_std)
    return np.asarray(0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t), dtype=np.float64)


def _unit_rows(x: npt.ArrayLike) -> FloatArray:
    a = np.atleast_2d(np.asarray(x, dtype=np.float64))
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("an embedding is all zeros")
    return np.asarray(a / norms, dtype=np.float64)


def adaptive_snorm_embeddings(
    enroll: npt.ArrayLike,
    test: npt.ArrayLike,
    cohort: npt.ArrayLike,
    top_n: int,
    *,
    cohort_mask: npt.ArrayLike | None = None,
    min_std: float = DEFAULT_MIN_STD,
) -> tuple[FloatArray, FloatArray]:
    """(raw cosine, AS-normed) scores of N trials: row i of ``enroll`` (N, D) against row i of
    ``test`` (N, D), with the cohort (C, D); ``cohort_mask`` (N, C) excludes members per trial
    (for example the trial's own speakers)."""
    e, t, c = _unit_rows(enroll), _unit_rows(test), _unit_rows(cohort)
    if e.shape != t.shape or e.shape[1] != c.shape[1]:
        raise ValueError(
            f"shapes differ: enroll {e.shape}, test {t.shape}, cohort {c.shape} (need N x D, "
            "N x D, C x D)"
        )
    raw = np.einsum("nd,nd->n", e, t)
    normed = adaptive_snorm_batch(
        raw, e @ c.T, t @ c.T, top_n, cohort_mask=cohort_mask, min_std=min_std
    )
    return raw, normed
