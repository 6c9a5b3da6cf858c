"""``eval face-pairs``: send every pair through CompareFaces and score the replies."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bioverify import metrics
from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.scoring import OperatingPoint
from bioverify_admin.datasets import Pair
from bioverify_admin.sample_errors import is_sample_error

FAILED_SCORE = -1.0  # a pair the service could not score counts as a reject


@dataclass(frozen=True)
class PairResult:
    same: bool
    similarity: float | None
    threshold: float | None
    accepted: bool | None
    latency_ms: float
    failure: str = ""


def timed_compare(same: bool, compare: Callable[[], Any]) -> PairResult:
    """One Compare* call timed; a ``match`` in the reply, or the error's reason as failure
    when a sample was bad (any other error, e.g. a wrong API token, is raised)."""
    started = time.perf_counter()
    try:
        reply = compare()
    except BioverifyClientError as exc:
        if not is_sample_error(exc):
            raise
        latency = (time.perf_counter() - started) * 1e3
        return PairResult(same, None, None, None, latency, exc.reason or exc.code.name)
    latency = (time.perf_counter() - started) * 1e3
    m = reply.match
    return PairResult(same, m.similarity, m.threshold, m.similarity >= m.threshold, latency)


def _compare(client: BioverifyClient, pair: Pair) -> PairResult:
    try:
        image_a = pair.path_a.read_bytes()
        image_b = pair.path_b.read_bytes()
    except OSError as exc:
        return PairResult(pair.same, None, None, None, 0.0, f"UNREADABLE_FILE: {exc.strerror}")
    return timed_compare(pair.same, lambda: client.compare_faces(image_a, image_b))


@dataclass(frozen=True)
class PairEvaluation:
    """A summary and the per-pair results it was computed from (for plots and reports)."""

    summary: dict[str, Any]
    results: tuple[PairResult, ...]

    def scores(self) -> npt.NDArray[np.float64]:
        """Similarities, ``FAILED_SCORE`` where the service returned none."""
        return score_arrays(self.results)[0]

    def labels(self) -> npt.NDArray[np.bool_]:
        return score_arrays(self.results)[1]

    def failed(self) -> npt.NDArray[np.bool_]:
        return np.array([r.similarity is None for r in self.results], dtype=bool)


def score_arrays(
    results: Sequence[PairResult],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """(scores, labels): failed pairs score ``FAILED_SCORE``, a reject at any threshold."""
    labels = np.array([r.same for r in results], dtype=bool)
    scores = np.array(
        [r.similarity if r.similarity is not None else FAILED_SCORE for r in results],
        dtype=np.float64,
    )
    return scores, labels


def service_operating_points(
    client: BioverifyClient, role: str
) -> tuple[list[OperatingPoint], str]:
    """The operating points of the service's model in ``role`` and the default one's name."""
    for model in client.service_info().models:
        if model.role == role:
            points = [
                OperatingPoint(p.name, p.target_fmr, p.threshold) for p in model.operating_points
            ]
            default = next((p.name for p in model.operating_points if p.is_default), "")
            return points, default
    return [], ""


def run_face_pairs(
    client: BioverifyClient, pairs: list[Pair], *, concurrency: int = 1
) -> PairEvaluation:
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        results = list(pool.map(lambda p: _compare(client, p), pairs))
    return PairEvaluation(summarise(results), tuple(results))


def summarise(results: list[PairResult]) -> dict[str, Any]:
    scores, labels = score_arrays(results)
    scored = [r for r in results if r.similarity is not None]
    thresholds = sorted({r.threshold for r in scored if r.threshold is not None})
    threshold = thresholds[0] if len(thresholds) == 1 else float("nan")
    decisions = np.array([bool(r.accepted) for r in results])
    failures = Counter(r.failure for r in results if r.failure)
    timed = [r.latency_ms for r in scored]
    out: dict[str, Any] = {
        "n_pairs": len(results),
        "n_failed": len(results) - len(scored),
        "failures": dict(failures),
        "eer": metrics.eer(scores, labels),
        "auc": metrics.auc(scores, labels),
        "accuracy": float(np.mean(decisions == labels)),
        "threshold": threshold,
        "tar_at_far_1e-2": metrics.tar_at_far(scores, labels, 1e-2),
        "tar_at_far_1e-3": metrics.tar_at_far(scores, labels, 1e-3),
        "mean_latency_ms": float(np.mean(timed)) if timed else float("nan"),
        "p50_latency_ms": float(np.percentile(timed, 50)) if timed else float("nan"),
        "p95_latency_ms": float(np.percentile(timed, 95)) if timed else float("nan"),
    }
    # No single threshold (none scored, or replies disagree): no rate at "the" threshold.
    single = bool(scored) and bool(np.isfinite(threshold))
    far, frr = metrics.error_rates_at(scores, labels, threshold) if single else (np.nan, np.nan)
    out["far_at_threshold"] = far
    out["frr_at_threshold"] = frr
    # 95 % Wilson intervals: a few hundred pairs pin an error rate down only to a few points.
    for key, rate, n in (
        ("far_at_threshold_ci95", far, int(np.sum(~labels))),
        ("frr_at_threshold_ci95", frr, int(np.sum(labels))),
    ):
        known = bool(np.isfinite(rate)) and n > 0
        out[key] = list(metrics.wilson_interval(round(rate * n), n)) if known else [np.nan] * 2
    return out
