"""Soft-min fusion: golden values, explanations, parameter validation, fitting, metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bioverify.errors import ConfigurationError
from bioverify.liveness.face_checker import pad_logit, pad_probability
from bioverify.liveness.fusion import (
    DetectorSpec,
    FusionParams,
    apcer_at_bpcer,
    apcer_at_threshold,
    fit_fusion,
    fit_logistic,
    fuse,
    fused_scores,
)
from bioverify.metrics import threshold_at_bpcer

PACK = (
    Path(__file__).resolve().parents[2] / "service" / "bioverify" / "packs" / "face-liveness.json"
)


def golden_dict() -> dict[str, Any]:
    return {
        "method": "softmin-detectors/1",
        "temperature": 1.0,
        "features": {
            "a": {"orientation": 1.0, "median": 0.0, "spread": 1.0, "label": "feature a"},
            "b": {"orientation": -1.0, "median": 1.0, "spread": 2.0, "label": "feature b"},
        },
        "detectors": [
            {"name": "d1", "code": "D1", "message": "family one", "features": ["a"],
             "weights": [1.0], "bias": 1.0},
            {"name": "d2", "code": "D2", "message": "family two", "features": ["b"],
             "weights": [0.5], "bias": 2.0},
        ],
        "threshold": 0.5,
        "target_bpcer": 0.05,
        "note": "kept as extra",
    }  # fmt: skip


def test_golden_live_decision() -> None:
    params = FusionParams.from_dict(golden_dict())
    # z_a = 0.5, z_b = -(5 - 1) / 2 = -2; logits d1 = 1.5, d2 = 1.0;
    # soft-min = -log(e^-1.5 + e^-1) = 0.525923; score = sigmoid(.) = 0.628532.
    result = fuse({"a": 0.5, "b": 5.0, "unused": 1.0}, params, {"a": "a is fine"})
    assert result.live
    assert result.score == pytest.approx(0.6285317192, abs=1e-9)
    assert result.threshold == 0.5
    assert result.reasons == ()
    checks = {c.name: c for c in result.checks}
    assert checks["a"].weight == pytest.approx(0.3775406688, abs=1e-9)  # 1.0 x share of d1
    assert checks["a"].score == pytest.approx(1 / (1 + np.exp(-1.5)))
    assert checks["a"].passed and checks["b"].passed
    assert checks["a"].detail.startswith("a is fine")
    assert "+0.50 bona fide spreads" in checks["a"].detail
    assert checks["b"].detail.startswith("feature b")
    assert "contribution -1.00 to d2" in checks["b"].detail


def test_golden_rejection_names_the_weakest_family_first() -> None:
    params = FusionParams.from_dict(golden_dict())
    # z_a = -3, z_b = -4 (clipped from -5); logits d1 = -2, d2 = 0 -> score 0.106507.
    result = fuse({"a": -3.0, "b": 11.0}, params)
    assert not result.live
    assert result.score == pytest.approx(0.1065069789, abs=1e-9)
    # d2 sits exactly at the threshold (logit 0): only d1 is below it.
    assert result.reasons == (("D1", "family one: feature a (-3.00)"),)
    assert not {c.name: c for c in result.checks}["a"].passed
    both = fuse({"a": -3.0, "b": 13.0}, FusionParams.from_dict({**golden_dict(), "threshold": 0.9}))
    assert [code for code, _ in both.reasons] == ["D1", "D2"]


def test_components_that_pass_alone_fail_when_together_they_reject() -> None:
    data = golden_dict()
    data["detectors"] = [
        {"name": "d1", "code": "D1", "message": "family one", "features": ["a", "b"],
         "weights": [1.0, 1.0], "bias": 2.5},
    ]  # fmt: skip
    params = FusionParams.from_dict(data)
    # z_a = -2, z_b = -(3 - 1) / 2 = -1: alone 2.5 - 2 = 0.5 and 2.5 - 1 = 1.5 clear the
    # threshold (logit 0), together 2.5 - 3 = -0.5 does not.
    result = fuse({"a": -2.0, "b": 3.0}, params)
    assert not result.live
    checks = {c.name: c for c in result.checks}
    assert checks["a"].score > 0.5 and checks["b"].score > 0.5  # each alone would pass...
    assert not checks["a"].passed and not checks["b"].passed  # ...but both rejected the face
    assert not checks["d1"].passed and checks["d1"].score == pytest.approx(1 / (1 + np.e**0.5))
    assert "logit -0.50" in checks["d1"].detail
    assert result.reasons == (("D1", "family one: feature a (-2.00); feature b (-1.00)"),)
    # a component that pushed towards "live" is not blamed
    mixed = fuse({"a": -4.0, "b": 0.0}, params)  # z_b = +0.5
    assert not mixed.live and {c.name: c.passed for c in mixed.checks}["b"]


def test_marginal_families_that_reject_together_are_the_ones_that_fail() -> None:
    params = FusionParams.from_dict({**golden_dict(), "threshold": 0.6})  # logit 0.405
    # z_a = -0.5, z_b = -3: both logits 1 - 0.5 = 2 - 1.5 = 0.5 clear 0.405, their soft
    # minimum 0.5 - log 2 = -0.19 does not.
    result = fuse({"a": -0.5, "b": 7.0}, params)
    assert not result.live
    checks = {c.name: c for c in result.checks}
    assert not checks["d1"].passed and not checks["d2"].passed
    assert not checks["a"].passed and not checks["b"].passed
    assert [code for code, _ in result.reasons] == ["D1", "D2"]
    assert all("marginal" in message for _, message in result.reasons)


def test_the_checks_agree_with_the_decision_of_the_shipped_fusion() -> None:
    """Live: no check fails. Not live: some check fails, with a reason for each failed
    detector (the review found rejected faces whose every check had passed)."""
    params = FusionParams.from_dict(json.loads(PACK.read_text())["fusion"])
    rng = np.random.default_rng(7)
    rejected = 0
    for _ in range(2000):
        values = {
            name: spec.median + spec.orientation * spec.spread * rng.normal(-0.5, 1.5)
            for name, spec in params.features.items()
        }
        result = fuse(values, params)
        failed = [c for c in result.checks if not c.passed]
        detectors = {d.name for d in params.detectors}
        if result.live:
            assert not failed and not result.reasons
        else:
            rejected += 1
            assert any(c.name in detectors for c in failed) and result.reasons
            assert any(c.name in params.features for c in failed)
    assert 200 < rejected < 1800


def test_vectorised_scores_match_fuse() -> None:
    params = FusionParams.from_dict(golden_dict())
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 2, 50), rng.normal(1, 4, 50)
    vector = fused_scores(params, {"a": a, "b": b})
    single = [fuse({"a": x, "b": y}, params).score for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(vector, single, rtol=1e-12)


def test_round_trip_and_validation() -> None:
    params = FusionParams.from_dict(golden_dict())
    again = FusionParams.from_dict(json.loads(json.dumps(params.to_dict())))
    assert again == params
    assert again.extra == {"note": "kept as extra"}
    bad_cases: list[dict[str, Any]] = [
        {"method": "linear"},
        {"threshold": 1.5},
        {"detectors": []},
        {"detectors": [{"name": "x", "code": "X", "features": ["zz"], "weights": [1.0],
                        "bias": 0.0}]},
        {"detectors": [{"name": "x", "code": "X", "features": ["a"], "weights": [-1.0],
                        "bias": 0.0}]},
        {"features": {"a": {"orientation": 2.0, "median": 0.0, "spread": 1.0}}},
    ]  # fmt: skip
    for change in bad_cases:
        with pytest.raises(ConfigurationError):
            FusionParams.from_dict({**golden_dict(), **change})
    with pytest.raises(ConfigurationError, match="missing components: b"):
        fuse({"a": 0.0}, params)


def test_fit_recovers_directions_and_the_bpcer_threshold() -> None:
    rng = np.random.default_rng(0)
    n = 200
    labels = ["bonafide"] * n + ["replay"] * n + ["deepfake"] * n
    # "sharp" separates replays (low), "texture" separates deepfakes (high = attack);
    # "noise" is irrelevant.
    sharp = np.concatenate([rng.normal(1, 1, n), rng.normal(-2, 1, n), rng.normal(1, 1, n)])
    texture = np.concatenate([rng.normal(0, 1, n), rng.normal(0, 1, n), rng.normal(3, 1, n)])
    noise = rng.normal(0, 1, 3 * n)
    detectors = [
        DetectorSpec("recapture", "R", "recaptured", ("sharp", "noise")),
        DetectorSpec("synthetic", "S", "generated", ("texture",)),
    ]
    params = fit_fusion(
        {"sharp": sharp, "texture": texture, "noise": noise},
        labels,
        {"sharp": 1.0, "texture": -1.0, "noise": 1.0},
        detectors,
        l2=0.05,
    )
    weights = {d.name: dict(zip(d.features, d.weights, strict=True)) for d in params.detectors}
    assert weights["recapture"]["sharp"] > 3 * weights["recapture"]["noise"]
    assert weights["synthetic"]["texture"] > 0.5
    scores = fused_scores(params, {"sharp": sharp, "texture": texture, "noise": noise})
    bona = np.array(labels) == "bonafide"
    assert np.mean(scores[bona] < params.threshold) <= 0.05
    apcer = apcer_at_threshold(scores, labels, params.threshold)
    assert apcer["replay"] < 0.3 and apcer["deepfake"] < 0.3


def test_apcer_and_threshold_golden() -> None:
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.35, 0.05, 0.95]
    labels = ["bonafide"] * 10 + ["replay", "replay", "print"]
    # 10 bona fide, BPCER 10% -> reject only the lowest one: threshold 0.2.
    assert threshold_at_bpcer(scores[:10], 0.10) == 0.2
    assert threshold_at_bpcer(scores[:10], 0.05) == 0.1
    threshold, apcer = apcer_at_bpcer(scores, labels, 0.10)
    assert threshold == 0.2
    assert apcer == {"print": 1.0, "replay": 0.5}


def test_fit_logistic_separates() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(0, 1, (100, 3)), rng.normal(1, 1, (100, 3))])
    y = np.r_[np.zeros(100), np.ones(100)]
    mean, std, w, b = fit_logistic(x, y, l2=0.01)
    assert (w > 0).all()
    logits = b + ((x - mean) / std) @ w
    assert np.mean((logits > 0) == (y == 1)) > 0.75


def test_shipped_pack_parses() -> None:
    data = json.loads(PACK.read_text(encoding="utf-8"))
    params = FusionParams.from_dict(data["fusion"])
    assert 0.0 < params.threshold < 1.0
    assert params.target_bpcer == 0.05
    assert {d.code for d in params.detectors} >= {"RECAPTURE_SUSPECTED", "SYNTHETIC_FACE_SUSPECTED"}


def test_pad_probability_inverts_pad_logit() -> None:
    probs = np.array([0.0, 1e-3, 0.3, 0.5, 0.9999, 1.0])
    logits = [pad_logit(float(v)) for v in probs]
    np.testing.assert_allclose(pad_probability(logits), probs, atol=1e-12)


def test_candidate_detector_sets_use_oriented_components() -> None:
    from bioverify.liveness import fit_face_fusion as fit

    assert fit.DETECTOR_SETS["shipped"] == fit.DETECTORS
    for detectors in fit.DETECTOR_SETS.values():
        for det in detectors:
            assert det.features and set(det.features) <= set(fit.ORIENTATION)
