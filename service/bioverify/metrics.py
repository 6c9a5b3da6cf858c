"""Evaluation metrics over score arrays: pure numpy in, floats out (no file I/O here).

Convention: higher score = more likely genuine (same person / bona fide). ``labels`` are 1 for
genuine and 0 for impostor (or attack).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import binomtest


@dataclass(frozen=True)
class Roc:
    """False-accept and true-accept rates at every distinct threshold (descending)."""

    thresholds: npt.NDArray[np.float64]
    far: npt.NDArray[np.float64]
    tar: npt.NDArray[np.float64]


def _split(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    if s.shape != y.shape:
        raise ValueError("scores and labels differ in length")
    genuine, impostor = s[y], s[~y]
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError("need both genuine and impostor scores")
    return genuine, impostor


def roc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> Roc:
    genuine, impostor = _split(scores, labels)
    thresholds = np.unique(np.concatenate([genuine, impostor]))[::-1]
    g_sorted = np.sort(genuine)
    i_sorted = np.sort(impostor)
    tar = 1.0 - np.searchsorted(g_sorted, thresholds, side="left") / genuine.size
    far = 1.0 - np.searchsorted(i_sorted, thresholds, side="left") / impostor.size
    thresholds = np.concatenate([[np.inf], thresholds])
    return Roc(
        thresholds=thresholds, far=np.concatenate([[0.0], far]), tar=np.concatenate([[0.0], tar])
    )


def auc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Area under the ROC curve: P(genuine score > impostor score), ties counted half."""
    genuine, impostor = _split(scores, labels)
    allscores = np.concatenate([genuine, impostor])
    order = allscores.argsort(kind="mergesort")
    ranks = np.empty(allscores.size, dtype=np.float64)
    sorted_scores = allscores[order]
    # average ranks for ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    rank_sum = ranks[: genuine.size].sum()
    u = rank_sum - genuine.size * (genuine.size + 1) / 2.0
    return float(u / (genuine.size * impostor.size))


def eer(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Equal error rate, linearly interpolated where FRR and FAR cross."""
    curve = roc(scores, labels)
    frr = 1.0 - curve.tar
    far = curve.far
    diff = far - frr  # increases from -1 (strict threshold) to +1 (lax threshold)
    idx = int(np.searchsorted(diff, 0.0, side="left"))
    if idx == 0:
        return float(far[0])
    if idx >= diff.size:
        return float(far[-1])
    d0, d1 = diff[idx - 1], diff[idx]
    t = 0.0 if d1 == d0 else -d0 / (d1 - d0)
    far_x = far[idx - 1] + t * (far[idx] - far[idx - 1])
    frr_x = frr[idx - 1] + t * (frr[idx] - frr[idx - 1])
    return float((far_x + frr_x) / 2.0)


def tar_at_far(scores: npt.ArrayLike, labels: npt.ArrayLike, far_target: float) -> float:
    """Highest true-accept rate with a false-accept rate not above ``far_target``."""
    curve = roc(scores, labels)
    ok = curve.far <= far_target + 1e-12
    return float(curve.tar[ok].max())


def error_rates_at(
    scores: npt.ArrayLike, labels: npt.ArrayLike, threshold: float
) -> tuple[float, float]:
    """(false-accept rate, false-reject rate) when accepting scores >= threshold."""
    genuine, impostor = _split(scores, labels)
    return float(np.mean(impostor >= threshold)), float(np.mean(genuine < threshold))


def accuracy_at(scores: npt.ArrayLike, labels: npt.ArrayLike, threshold: float) -> float:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    return float(np.mean((s >= threshold) == y))


def min_dcf(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> float:
    """Minimum normalised detection cost (NIST SRE style) over all thresholds."""
    curve = roc(scores, labels)
    p_miss = 1.0 - curve.tar
    p_fa = curve.far
    cost = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    default = min(c_miss * p_target, c_fa * (1.0 - p_target))
    return float(cost.min() / default)


def fnir_at_fpir(
    mated_top_scores: npt.ArrayLike,
    mated_hit: npt.ArrayLike,
    nonmated_top_scores: npt.ArrayLike,
    fpir_target: float,
) -> float:
    """Open-set identification: the false-negative identification rate at the threshold where
    the false-positive identification rate (non-mated probes whose best score passes) is at
    most ``fpir_target``. ``mated_hit`` says whether the mated probe's top candidate is right."""
    mated = np.asarray(mated_top_scores, dtype=np.float64).ravel()
    hit = np.asarray(mated_hit).ravel().astype(bool)
    nonmated = np.sort(np.asarray(nonmated_top_scores, dtype=np.float64).ravel())
    if mated.size == 0 or nonmated.size == 0:
        raise ValueError("need mated and non-mated probes")
    candidates = np.concatenate([[np.inf], np.unique(np.concatenate([mated, nonmated]))])
    best = 1.0
    for t in candidates:
        fpir = float(np.mean(nonmated >= t))
        if fpir <= fpir_target + 1e-12:
            fnir = 1.0 - float(np.mean(hit & (mated >= t)))
            best = min(best, fnir)
    return best


def wilson_interval(errors: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of an error rate ``errors / n`` (scipy's): unlike the
    normal approximation it stays inside [0, 1] and is not empty at 0 or ``n`` errors, which
    matters for the small attack classes of a PAD evaluation. ``(nan, nan)`` when ``n`` is 0."""
    if n < 0 or not 0 <= errors <= n:
        raise ValueError(f"need 0 <= errors <= n, got {errors} of {n}")
    if n == 0:
        return math.nan, math.nan

    interval = binomtest(errors, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


# -- presentation-attack detection (ISO/IEC 30107-3) ---------------------------------------------
# Labels are 1 for bona fide and 0 for attack; a sample is judged bona fide when score >= threshold.
def threshold_at_bpcer(bonafide_scores: npt.ArrayLike, bpcer: float) -> float:
    """The highest threshold that rejects at most ``bpcer`` of the bona fide scores: the
    ``floor(bpcer * n)``-th lowest score (0-based); ``inf`` when every score may be rejected."""
    b = np.sort(np.asarray(bonafide_scores, dtype=np.float64).ravel())
    if b.size == 0:
        raise ValueError("need bona fide scores")
    k = int(np.floor(bpcer * b.size + 1e-9))  # at most k bona fide scores may fall below
    return float(b[k]) if k < b.size else float("inf")


def apcer_at_bpcer(scores: npt.ArrayLike, labels: npt.ArrayLike, bpcer: float) -> float:
    """APCER at the strictest threshold whose BPCER is at most ``bpcer`` (e.g. 0.05 for the
    "APCER @ BPCER 5 %" figure)."""
    bonafide, attack = _split(scores, labels)
    return float(np.mean(attack >= threshold_at_bpcer(bonafide, bpcer)))


PAD_BONAFIDE = "bonafide"
"""The label of bona fide samples in per-class PAD figures."""


@dataclass(frozen=True)
class PadClassRates:
    """Error rates of one attack class against all bona fide samples (ISO/IEC 30107-3)."""

    attack_class: str
    n: int
    apcer: float  # attacks accepted as bona fide at the report's threshold
    apcer_at_bpcer_5: float  # at the strictest threshold whose BPCER is at most 5 %
    apcer_at_bpcer_10: float
    eer: float


def pad_rates(
    scores: npt.ArrayLike, labels: Sequence[str], threshold: float
) -> tuple[float, list[PadClassRates]]:
    """(BPCER at ``threshold``, per-attack-class rates sorted by class name)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=object).ravel()
    if s.shape != y.shape:
        raise ValueError("scores and labels differ in length")
    bonafide = s[y == PAD_BONAFIDE]
    if bonafide.size == 0:
        raise ValueError(f"need {PAD_BONAFIDE!r} samples")
    classes = sorted({str(v) for v in y} - {PAD_BONAFIDE})
    if not classes:
        raise ValueError("need at least one attack class")
    finite = math.isfinite(threshold)
    bpcer = float(np.mean(bonafide < threshold)) if finite else math.nan
    cut5, cut10 = threshold_at_bpcer(bonafide, 0.05), threshold_at_bpcer(bonafide, 0.10)
    rows = []
    for name in classes:
        attack = s[y == name]
        both = np.concatenate([bonafide, attack])
        is_bona = np.concatenate([np.ones(bonafide.size, bool), np.zeros(attack.size, bool)])
        rows.append(
            PadClassRates(
                attack_class=name,
                n=int(attack.size),
                apcer=float(np.mean(attack >= threshold)) if finite else math.nan,
                apcer_at_bpcer_5=float(np.mean(attack >= cut5)),
                apcer_at_bpcer_10=float(np.mean(attack >= cut10)),
                eer=eer(both, is_bona),
            )
        )
    return bpcer, rows
