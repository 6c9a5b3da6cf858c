"""Golden tests of the evaluation metrics."""

from __future__ import annotations

import numpy as np
import pytest

from bioverify import metrics


def test_perfect_separation() -> None:
    scores = [0.9, 0.8, 0.1, 0.2]
    labels = [1, 1, 0, 0]
    assert metrics.auc(scores, labels) == 1.0
    assert metrics.eer(scores, labels) == 0.0
    assert metrics.tar_at_far(scores, labels, 0.0) == 1.0


def test_auc_with_ties_counts_half() -> None:
    assert metrics.auc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    # genuine {3, 1}, impostor {2}: one of two genuine beats the impostor
    assert metrics.auc([3, 1, 2], [1, 1, 0]) == pytest.approx(0.5)


def test_auc_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    g = rng.normal(1, 1, 300)
    i = rng.normal(0, 1, 400)
    expected = np.mean(g[:, None] > i[None, :]) + 0.5 * np.mean(g[:, None] == i[None, :])
    s = np.concatenate([g, i])
    y = np.concatenate([np.ones(300), np.zeros(400)])
    assert metrics.auc(s, y) == pytest.approx(expected)


def test_eer_golden() -> None:
    # genuine 0.6..0.95, impostor 0.05..0.65: exactly one impostor above the lowest genuine.
    genuine = [0.6, 0.7, 0.8, 0.9, 0.95]
    impostor = [0.05, 0.1, 0.2, 0.3, 0.65]
    s = genuine + impostor
    y = [1] * 5 + [0] * 5
    assert metrics.eer(s, y) == pytest.approx(0.2)


def test_eer_of_normal_classes() -> None:
    rng = np.random.default_rng(2)
    g = rng.normal(2, 1, 20000)
    i = rng.normal(0, 1, 20000)
    s = np.concatenate([g, i])
    y = np.concatenate([np.ones_like(g), np.zeros_like(i)])
    # EER for two unit normals 2 apart: Phi(-1) = 0.1587
    assert metrics.eer(s, y) == pytest.approx(0.1587, abs=0.006)


def test_error_rates_accuracy_and_tar() -> None:
    s = [0.9, 0.4, 0.35, 0.1]
    y = [1, 1, 0, 0]
    assert metrics.error_rates_at(s, y, 0.38) == (0.0, 0.0)
    assert metrics.error_rates_at(s, y, 0.5) == (0.0, 0.5)
    assert metrics.accuracy_at(s, y, 0.5) == 0.75
    assert metrics.tar_at_far(s, y, 0.0) == 1.0
    assert metrics.tar_at_far([0.9, 0.3, 0.5, 0.1], y, 0.0) == 0.5


def test_min_dcf_golden() -> None:
    s = [0.9, 0.4, 0.35, 0.1]
    y = [1, 1, 0, 0]
    assert metrics.min_dcf(s, y, p_target=0.01) == 0.0
    # Overlap: best cost is to accept only 0.9 -> p_miss 0.5 -> 0.01*0.5/0.01 = 0.5
    assert metrics.min_dcf([0.9, 0.3, 0.5, 0.1], y, p_target=0.01) == pytest.approx(0.5)


def test_fnir_at_fpir() -> None:
    mated = [0.9, 0.8, 0.4]
    hit = [True, True, False]
    nonmated = [0.5, 0.3, 0.2, 0.1]
    # FPIR 0 needs t > 0.5: two of three mated probes found -> FNIR 1/3
    assert metrics.fnir_at_fpir(mated, hit, nonmated, 0.0) == pytest.approx(1 / 3)


def test_metrics_validate_inputs() -> None:
    with pytest.raises(ValueError):
        metrics.auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError):
        metrics.eer([0.1], [1, 0])


def test_wilson_interval_golden() -> None:
    # 8 of 25 (e.g. replays accepted): the Wilson 95 % interval, as scipy's binomtest gives it
    assert metrics.wilson_interval(8, 25) == pytest.approx((0.172052, 0.515897), abs=1e-6)
    # no error or all errors: the interval still has width and stays inside [0, 1]
    low, high = metrics.wilson_interval(0, 25)
    assert low == 0.0 and high == pytest.approx(0.133192, abs=1e-6)
    low, high = metrics.wilson_interval(25, 25)
    assert low == pytest.approx(0.866808, abs=1e-6) and high == 1.0
    low, high = metrics.wilson_interval(2, 53)
    assert low < 2 / 53 < high
    assert all(np.isnan(metrics.wilson_interval(0, 0)))
    with pytest.raises(ValueError):
        metrics.wilson_interval(3, 2)
