"""eval face-pairs / speaker-trials summary: golden figures from known pair results."""

from __future__ import annotations

import math

import pytest

from bioverify import metrics
from bioverify_admin.eval_face import PairResult, summarise


def _pair(same: bool, similarity: float | None, threshold: float | None = 0.5) -> PairResult:
    accepted = None if similarity is None else similarity >= 0.5
    failure = "NO_FACE" if similarity is None else ""
    return PairResult(same, similarity, threshold, accepted, 10.0, failure)


def test_rates_at_the_service_threshold_with_their_intervals() -> None:
    results = [
        _pair(True, 0.9),
        _pair(True, 0.7),
        _pair(True, 0.4),  # false reject
        _pair(True, None, None),  # failed: a reject at any threshold
        _pair(False, 0.6),  # false accept
        _pair(False, 0.2),
        _pair(False, 0.1),
    ]
    s = summarise(results)
    assert (s["n_pairs"], s["n_failed"], s["failures"]) == (7, 1, {"NO_FACE": 1})
    assert s["threshold"] == 0.5
    assert s["far_at_threshold"] == pytest.approx(1 / 3)
    assert s["frr_at_threshold"] == pytest.approx(2 / 4)
    assert s["far_at_threshold_ci95"] == list(metrics.wilson_interval(1, 3))
    assert s["frr_at_threshold_ci95"] == list(metrics.wilson_interval(2, 4))
    assert s["accuracy"] == pytest.approx(4 / 7)


def test_no_single_threshold_gives_no_rate_at_it() -> None:
    s = summarise([_pair(True, 0.9, 0.5), _pair(False, 0.2, 0.6)])  # replies disagree
    assert math.isnan(s["threshold"])
    assert math.isnan(s["far_at_threshold"]) and math.isnan(s["frr_at_threshold"])
    assert all(math.isnan(v) for v in s["far_at_threshold_ci95"])
