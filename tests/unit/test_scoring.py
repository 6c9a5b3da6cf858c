"""Golden tests of the pure scoring functions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bioverify.errors import ConfigurationError
from bioverify.scoring import (
    Calibration,
    OperatingPoint,
    cosine_similarity,
    decide_match,
    fit_platt,
    l2_normalize,
    mean_template,
    operating_point_name,
    shown_against,
    threshold_at_fmr,
)


def test_cosine_similarity_golden() -> None:
    assert cosine_similarity([1, 0], [0, 1]) == pytest.approx(0.0)
    assert cosine_similarity([1, 1], [2, 2]) == pytest.approx(1.0)
    assert cosine_similarity([3, 4], [4, 3]) == pytest.approx(24 / 25)
    assert cosine_similarity([1, 0], [-1, 0]) == pytest.approx(-1.0)


def test_cosine_rejects_mismatched_sizes() -> None:
    with pytest.raises(ValueError, match="sizes differ"):
        cosine_similarity([1, 0, 0], [1, 0])


def test_l2_normalize_keeps_zero_rows() -> None:
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_mean_template_is_unit_mean_direction() -> None:
    t = mean_template([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(t, [math.sqrt(0.5), math.sqrt(0.5)], rtol=1e-6)


def test_fit_platt_recovers_known_logistic() -> None:
    rng = np.random.default_rng(0)
    # Scores drawn so that the true log-odds are 10 * s - 3 with balanced classes.
    s = rng.uniform(-0.5, 1.0, 200_000)
    p = 1 / (1 + np.exp(-(10 * s - 3)))
    y = rng.uniform(size=s.size) < p
    # Re-weighting inside fit_platt balances the classes, so use a balanced sample.
    g, i = s[y], s[~y]
    n = min(g.size, i.size)
    slope, intercept = fit_platt(g[:n], i[:n])
    # class-balanced fit shifts the intercept by the log prior ratio of the subsample (0 here)
    assert slope == pytest.approx(10, rel=0.05)
    assert intercept == pytest.approx(-3, abs=0.2)


def test_fit_platt_is_prior_free() -> None:
    g = np.linspace(0.3, 0.9, 50)
    i = np.linspace(-0.2, 0.4, 50)
    a = fit_platt(g, i)
    b = fit_platt(g, np.repeat(i, 20))  # 20x more impostors, same distribution
    assert a == pytest.approx(b, rel=1e-6)


def test_fit_platt_handles_separable_data() -> None:
    slope, intercept = fit_platt([0.8, 0.9], [0.0, 0.1])
    assert math.isfinite(slope) and slope > 0
    cal = Calibration(slope, intercept)
    assert cal.probability(0.9) > 0.9 > 0.1 > cal.probability(0.0)


def test_calibration_round_trip_and_validation() -> None:
    cal = Calibration(12.5, -4.0, fitted_on="x", n_genuine=3, n_impostor=4)
    assert Calibration.from_dict(cal.to_dict()) == cal
    assert cal.probability(0.32) == pytest.approx(0.5)
    with pytest.raises(ConfigurationError):
        Calibration.from_dict({"slope": "x"})
    with pytest.raises(ConfigurationError):
        Calibration.from_dict({"method": "isotonic", "slope": 1, "intercept": 0})


def test_threshold_at_fmr_normal_tail() -> None:
    rng = np.random.default_rng(1)
    impostor = rng.normal(0.0, 0.1, 100_000)
    # Empirical and parametric agree for a normal sample; z(1e-3) = 3.09
    assert threshold_at_fmr(impostor, 1e-3) == pytest.approx(0.309, abs=0.01)
    # Far beyond the sample the normal tail is extrapolated: z(1e-6) = 4.75
    small = rng.normal(0.0, 0.1, 1_000)
    assert threshold_at_fmr(small, 1e-6) == pytest.approx(0.475, abs=0.03)


def test_threshold_at_fmr_is_never_below_empirical() -> None:
    # A heavy tail: the empirical quantile is stricter than the normal fit and wins.
    impostor = np.concatenate([np.zeros(990), np.full(10, 0.9)])
    t = threshold_at_fmr(impostor, 1e-3)
    assert t >= 0.9
    assert np.mean(impostor >= t) <= 1e-3


@pytest.mark.parametrize("n", [999, 1000, 4950, 12_345])
@pytest.mark.parametrize("fmr", [1e-2, 1e-3])
def test_threshold_at_fmr_accepts_at_most_fmr_of_the_impostors(n: int, fmr: float) -> None:
    """Accepting similarity >= threshold, the sample's false-match rate never exceeds ``fmr``
    (a heavy tail, where the empirical estimate is the one returned), and the threshold is
    not stricter than it needs to be: one score step lower lets in too many."""
    rng = np.random.default_rng(n)
    for _ in range(20):
        impostor = rng.standard_t(2, n) * 0.05
        t = threshold_at_fmr(impostor, fmr)
        assert np.mean(impostor >= t) <= fmr
        allowed = int(np.floor(fmr * n))
        if t == np.nextafter(np.sort(impostor)[n - allowed - 1], np.inf):
            assert np.mean(impostor >= np.nextafter(t, -np.inf)) > fmr


def test_threshold_at_fmr_validates() -> None:
    with pytest.raises(ValueError):
        threshold_at_fmr([0.1], 1e-3)
    with pytest.raises(ValueError):
        threshold_at_fmr([0.1, 0.2], 0.0)


def test_decide_match() -> None:
    cal = Calibration(20.0, -6.0)
    point = OperatingPoint("fmr_1e-3", 1e-3, 0.3)
    accept = decide_match(0.31, cal, point)
    reject = decide_match(0.29, cal, point)
    assert accept.accepted and not reject.accepted
    assert accept.threshold == 0.3 and accept.operating_point == "fmr_1e-3"
    assert accept.confidence == pytest.approx(1 / (1 + math.exp(-(20 * 0.31 - 6))))


def test_operating_point_names() -> None:
    assert operating_point_name(1e-3) == "fmr_1e-3"
    assert operating_point_name(1e-2) == "fmr_1e-2"
    assert operating_point_name(5e-3) == "fmr_0.005"


def test_identification_point_keeps_the_fpir_within_target() -> None:
    from bioverify.usecases.gallery_search import identification_point

    points = [
        OperatingPoint("fmr_1e-3", 1e-3, 0.32),
        OperatingPoint("fmr_1e-2", 1e-2, 0.25),
        OperatingPoint("fmr_1e-4", 1e-4, 0.43),
    ]
    # 1 - (1 - FMR) ** N <= 1 %: N = 1 -> 1e-2 (exactly 1 %), N = 10 -> 1e-3 (0.9955 %),
    # N = 11 -> 1e-4 (1e-3 would give 1.09 %), and past 100 nothing is enough: the strictest.
    assert identification_point(points, 0, 0.01).name == "fmr_1e-2"
    assert identification_point(points, 1, 0.01).name == "fmr_1e-2"
    assert identification_point(points, 2, 0.01).name == "fmr_1e-3"
    assert identification_point(points, 10, 0.01).name == "fmr_1e-3"
    assert identification_point(points, 11, 0.01).name == "fmr_1e-4"
    assert identification_point(points, 1_000_000, 0.01).name == "fmr_1e-4"
    assert identification_point(points, 50, 0.1).name == "fmr_1e-3"
    with pytest.raises(ValueError):
        identification_point([], 5, 0.01)


def test_expected_fpir_golden() -> None:
    from bioverify.usecases.gallery_search import expected_fpir

    assert expected_fpir(1e-3, 0) == 0.0
    assert expected_fpir(1e-3, 1) == pytest.approx(1e-3)
    assert expected_fpir(1e-4, 1000) == pytest.approx(0.09516, abs=1e-5)  # past 1e-4's reach
    assert expected_fpir(1e-2, 12) == pytest.approx(0.11362, abs=1e-5)


@pytest.mark.parametrize(
    ("value", "threshold", "shown"),
    [
        (0.3496, 0.35, ("0.34", "0.35")),  # below: never reads as reaching it
        (0.3499, 0.3401, ("0.34", "0.34")),  # above: never reads as below
        (0.35, 0.35, ("0.35", "0.35")),  # at: reads as reaching it
        (0.3512, 0.3507, ("0.35", "0.35")),
        (0.62, 0.3201, ("0.62", "0.32")),
        (-0.1234, 0.3201, ("-0.13", "0.33")),
        (0.29, 0.5, ("0.29", "0.50")),  # from the shortest repr: 0.29 stays 0.29
    ],
)
def test_shown_against_keeps_the_comparison(
    value: float, threshold: float, shown: tuple[str, str]
) -> None:
    assert shown_against(value, threshold) == shown
    assert (float(shown[0]) < float(shown[1])) == (value < threshold)


def test_calibrated_operating_points_keep_the_bound_after_rounding() -> None:
    """The manifest's thresholds (6 decimals) still let in at most fmr of the impostors the
    calibration was fitted on: rounding to nearest could land back on an impostor score."""
    from bioverify_admin.calibrate import ScoreSet, fit_calibration

    rng = np.random.default_rng(7)
    for trial in range(100):
        impostor = np.round(rng.standard_t(2, 1000) * 0.05, 7)  # ties to 6 decimals likely
        genuine = rng.normal(0.6, 0.1, 200)
        _, points = fit_calibration(ScoreSet(genuine, impostor, 0, "synthetic"), [1e-2])
        (point,) = points
        assert np.mean(impostor >= point.threshold) <= 1e-2, trial
