"""Fusion: golden values of the logistic model, fitting, group-balanced weights, the
leave-one-attack-out protocol, and the fusion shipped in the pack manifest."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from bioverify.antispoof.fusion import (
    FusionConfig,
    LogisticFusion,
    balanced_weights,
    fit_logistic,
    leave_one_attack_out,
    select_config,
)
from bioverify.antispoof.voice_checker import AASIST_FEATURE
from bioverify.antispoof.voice_signals import SIGNAL_NAMES
from bioverify.metrics import eer
from bioverify.scoring import sigmoid

GOLDEN = LogisticFusion(
    features=("a", "b"),
    mean=(1.0, -2.0),
    scale=(2.0, 0.5),
    weights=(1.5, -0.5),
    bias=0.25,
    clip=3.0,
    threshold=0.4,
)


def test_golden_log_odds_contributions_and_probability() -> None:
    values = {"a": 5.0, "b": -1.5}  # z = (2.0, 1.0)
    assert GOLDEN.log_odds(values) == pytest.approx(0.25 + 3.0 - 0.5)
    assert GOLDEN.contributions(values) == pytest.approx({"a": 3.0, "b": -0.5})
    assert GOLDEN.probability(values) == pytest.approx(1 / (1 + math.exp(-2.75)))
    # missing and non-finite values are uninformative (z = 0); z is clipped to ±clip
    assert GOLDEN.log_odds({"a": math.nan}) == pytest.approx(0.25)
    assert GOLDEN.log_odds({"a": 1e9, "b": -2.0}) == pytest.approx(0.25 + 1.5 * 3.0)
    matrix = np.array([[5.0, -1.5], [math.nan, -2.0]])
    np.testing.assert_allclose(GOLDEN.log_odds_matrix(matrix), [2.75, 0.25])


def test_round_trip_through_json_data() -> None:
    data = {**GOLDEN.to_dict(), "fitted_on": "x"}
    again = LogisticFusion.from_dict(data)
    assert again == GOLDEN
    assert again.meta == {"fitted_on": "x"}
    with pytest.raises(ValueError):
        LogisticFusion.from_dict({**data, "method": "mlp"})
    with pytest.raises(ValueError):
        LogisticFusion(("a",), (0.0,), (0.0,), (1.0,), 0.0)


def test_sigmoid_is_stable() -> None:
    assert sigmoid(-1000.0) == 0.0
    assert sigmoid(1000.0) == 1.0
    assert sigmoid(0.0) == 0.5


def test_fit_separates_and_regularises() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([True, False], 50)
    x = np.column_stack([np.where(y, 1.0, -1.0) + rng.normal(0, 0.7, 100), rng.normal(0, 1, 100)])
    model = fit_logistic(x, y, ("signal", "noise"), l2=0.1)
    assert model.weights[0] > 1.0
    assert abs(model.weights[1]) < 0.3
    strong = fit_logistic(x, y, ("signal", "noise"), l2=10.0)
    assert abs(strong.weights[0]) < model.weights[0]
    assert eer(model.log_odds_matrix(x), y) < 0.15


def test_balanced_weights_equalise_class_and_group_cells() -> None:
    y = np.array([1, 1, 0, 0, 0, 0, 1, 0, 0, 0], dtype=bool)
    g = np.array(["a"] * 6 + ["b"] * 4)
    w = balanced_weights(y, g)
    cells = [w[(g == gi) & (y == c)].sum() for gi in "ab" for c in (True, False)]
    np.testing.assert_allclose(cells, cells[0])
    assert w.mean() == pytest.approx(1.0)


def _synthetic() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two corpora with different bona fide shares; feature 0 marks spoofs in every attack,
    feature 1 only tells the corpora apart."""
    rng = np.random.default_rng(1)
    labels, attacks, groups = [], [], []
    for group, n_bona, systems in (("g1", 12, ("s1", "s2", "s3")), ("g2", 6, ("s4", "s5"))):
        for _ in range(n_bona):
            labels.append(True)
            attacks.append("-")
            groups.append(group)
        for s in systems:
            for _ in range(6):
                labels.append(False)
                attacks.append(s)
                groups.append(group)
    y = np.array(labels)
    g = np.array(groups)
    x = np.column_stack(
        [
            np.where(y, 1.0, -1.0) + rng.normal(0, 0.3, y.size),
            (g == "g1") + rng.normal(0, 0.1, y.size),
        ]
    )
    return x, y, np.array(attacks), g


def test_leave_one_attack_out_scores_every_clip_with_unseen_attacks() -> None:
    x, y, attack, group = _synthetic()
    names = ("marker", "corpus")
    cv = leave_one_attack_out(x, y, attack, group, FusionConfig(names, 1.0).trainer(names))
    assert cv.attacks == ("s1", "s2", "s3", "s4", "s5")
    assert np.all(np.isfinite(cv.spoof_scores)) and np.all(np.isfinite(cv.bonafide_mean))
    assert cv.pooled_eer() == 0.0
    assert all(eer(*cv.per_attack(a)) == 0.0 for a in cv.attacks)
    only_corpus = FusionConfig(("corpus",), 1.0).trainer(names)
    cv_corpus = leave_one_attack_out(x, y, attack, group, only_corpus)
    assert cv_corpus.pooled_eer() > 0.3  # balanced weights: the corpus tells nothing


def test_select_config_prefers_the_informative_and_simpler_candidate() -> None:
    x, y, attack, group = _synthetic()
    names = ("marker", "corpus")
    candidates = [
        FusionConfig(("corpus",), 1.0),
        FusionConfig(("marker",), 1.0),
        FusionConfig(names, 1.0),
    ]
    assert select_config(x, y, attack, group, names, candidates) == candidates[1]


def test_shipped_fusion_is_valid(shipped_manifest: dict[str, Any]) -> None:
    fusion = LogisticFusion.from_dict(shipped_manifest["fusion"])
    assert set(fusion.features) <= {AASIST_FEATURE, *SIGNAL_NAMES}
    assert AASIST_FEATURE in fusion.features
    assert 0.0 < fusion.threshold < 1.0
    validation = fusion.meta["validation"]
    assert validation["eer"] <= 0.15
    assert set(validation["eer_per_attack"]) >= {"VC:AutoVC", "TTS:Tacotron2+PWG"}
    assert shipped_manifest["components"]["aasist"]["adapter"] == "aasist-onnx"
    assert len(shipped_manifest["files"]["aasist"]["sha256"]) == 64
