"""Learned fusion of spoofing evidence: L2-regularised logistic regression on standardised
features, with its parameters kept as JSON data in the model pack (pure numpy, no I/O).

Conventions: the fused value is the log-odds that the clip is **bona fide** (higher = more
likely genuine, as in :mod:`bioverify.metrics`); labels are 1 for bona fide, 0 for spoof.

Robustness choices, because the fusion must work on synthesis systems it never saw:

* a feature missing on a clip (``nan``) contributes nothing (it is imputed at the mean);
* standardised features are clipped to ``±clip`` so that one wild value cannot decide alone;
* training weights balance the classes **within each group** of the training data (corpus),
  so that a feature which only tells the corpora apart carries no label information.

Validation is :func:`leave_one_attack_out`: every spoofing system in turn is left out of
training together with a share of the bona fide clips, and scored by a model that never saw
it; the figures estimate performance on unseen TTS/VC systems.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from bioverify.metrics import eer
from bioverify.scoring import fit_logistic_newton, sigmoid

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LogisticFusion:
    """``log_odds = bias + Σ weight_i · clip((x_i - mean_i) / scale_i)``."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    clip: float = 4.0
    threshold: float = 0.5
    """Operating threshold on :meth:`probability` (bona fide when at or above)."""
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        n = len(self.features)
        if not (len(self.mean) == len(self.scale) == len(self.weights) == n):
            raise ValueError("features, mean, scale and weights differ in length")
        if any(not s > 0 for s in self.scale):
            raise ValueError("scales must be positive")

    def standardise(self, values: Mapping[str, float]) -> FloatArray:
        """Clipped z-scores in feature order; missing or non-finite values become 0."""
        raw = np.array([float(values.get(n, math.nan)) for n in self.features])
        z = (raw - np.asarray(self.mean)) / np.asarray(self.scale)
        z = np.where(np.isfinite(z), z, 0.0)
        return np.clip(z, -self.clip, self.clip)

    def contributions(self, values: Mapping[str, float]) -> dict[str, float]:
        """Each feature's additive share of the log-odds (positive: towards bona fide)."""
        z = self.standardise(values)
        return {n: float(w * v) for n, w, v in zip(self.features, self.weights, z, strict=True)}

    def log_odds(self, values: Mapping[str, float]) -> float:
        return float(self.bias + np.dot(np.asarray(self.weights), self.standardise(values)))

    def probability(self, values: Mapping[str, float]) -> float:
        return sigmoid(self.log_odds(values))

    def log_odds_matrix(self, x: FloatArray) -> FloatArray:
        """Vectorised :meth:`log_odds` for an (n, features) matrix in feature order."""
        z = (np.asarray(x, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        z = np.clip(np.where(np.isfinite(z), z, 0.0), -self.clip, self.clip)
        return np.asarray(self.bias + z @ np.asarray(self.weights), dtype=np.float64)

    def rescaled(self, slope: float, offset: float) -> LogisticFusion:
        """The same ranking with log-odds ``slope · log_odds + offset`` (folds a Platt
        calibration into the weights); the threshold is left for the caller to set."""
        return LogisticFusion(
            features=self.features,
            mean=self.mean,
            scale=self.scale,
            weights=tuple(slope * w for w in self.weights),
            bias=slope * self.bias + offset,
            clip=self.clip,
            threshold=self.threshold,
            meta=self.meta,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "logistic",
            "features": list(self.features),
            "mean": [round(v, 6) for v in self.mean],
            "scale": [round(v, 6) for v in self.scale],
            "weights": [round(v, 6) for v in self.weights],
            "bias": round(self.bias, 6),
            "clip": self.clip,
            "threshold": round(self.threshold, 6),
            **dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogisticFusion:
        if data.get("method", "logistic") != "logistic":
            raise ValueError(f"unknown fusion method {data.get('method')!r}")
        known = {"method", "features", "mean", "scale", "weights", "bias", "clip", "threshold"}
        return cls(
            features=tuple(str(f) for f in data["features"]),
            mean=tuple(float(v) for v in data["mean"]),
            scale=tuple(float(v) for v in data["scale"]),
            weights=tuple(float(v) for v in data["weights"]),
            bias=float(data["bias"]),
            clip=float(data.get("clip", 4.0)),
            threshold=float(data.get("threshold", 0.5)),
            meta={k: v for k, v in data.items() if k not in known},
        )


def platt(
    scores: npt.ArrayLike, labels: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None
) -> tuple[float, float]:
    """(slope, offset) of a logistic calibration ``P = sigmoid(slope · s + offset)``."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    model = fit_logistic(s, labels, ("score",), l2=1e-4, sample_weight=sample_weight, clip=1e6)
    slope = model.weights[0] / model.scale[0]
    return slope, model.bias - slope * model.mean[0]


def balanced_weights(labels: npt.ArrayLike, groups: npt.ArrayLike | None = None) -> FloatArray:
    """Sample weights giving each (group, class) cell the same total weight (mean weight 1).

    Cells with one class missing in a group get that group's single class the weight of a
    full group half, so groups still count alike."""
    y = np.asarray(labels).astype(bool).ravel()
    g = np.zeros(y.size, dtype=np.int64) if groups is None else _codes(groups)
    w = np.zeros(y.size)
    cells = [(gi, c) for gi in np.unique(g) for c in (False, True) if np.any((g == gi) & (y == c))]
    for gi, c in cells:
        m = (g == gi) & (y == c)
        w[m] = 1.0 / m.sum()
    return np.asarray(w * y.size / w.sum(), dtype=np.float64)


def _codes(values: npt.ArrayLike) -> npt.NDArray[np.int64]:
    _, inverse = np.unique(np.asarray(values).ravel(), return_inverse=True)
    return np.asarray(inverse, dtype=np.int64)


def fit_logistic(
    x: npt.ArrayLike,
    labels: npt.ArrayLike,
    features: Sequence[str],
    *,
    l2: float = 1.0,
    sample_weight: npt.ArrayLike | None = None,
    clip: float = 4.0,
    iterations: int = 50,
) -> LogisticFusion:
    """Fit by Newton's method (IRLS) with an L2 penalty ``l2/2·|w|²`` on the weights (not the
    bias), the data term being the weighted mean log-loss (so ``l2`` does not scale with n).
    Standardisation uses the weighted mean and standard deviation of each feature."""
    xm = np.asarray(x, dtype=np.float64)
    y = np.asarray(labels).astype(np.float64).ravel()
    if xm.ndim != 2 or xm.shape[0] != y.size or xm.shape[1] != len(features):
        raise ValueError("x must be (n, len(features)) and match labels")
    if not (0 < y.sum() < y.size):
        raise ValueError("need both classes")
    sw = np.ones(y.size) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    sw = sw / sw.mean()
    mean, scale = [], []
    for j in range(xm.shape[1]):
        col = xm[:, j]
        ok = np.isfinite(col)
        if not ok.any():
            mean.append(0.0)
            scale.append(1.0)
            continue
        mu = float(np.average(col[ok], weights=sw[ok]))
        sd = float(np.sqrt(np.average((col[ok] - mu) ** 2, weights=sw[ok])))
        mean.append(mu)
        scale.append(sd if sd > 1e-12 else 1.0)
    z = (xm - np.asarray(mean)) / np.asarray(scale)
    z = np.clip(np.where(np.isfinite(z), z, 0.0), -clip, clip)
    design = np.hstack([np.ones((y.size, 1)), z])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 0.0
    beta = fit_logistic_newton(design, y, sw, penalty, iterations=iterations)
    return LogisticFusion(
        features=tuple(features),
        mean=tuple(mean),
        scale=tuple(scale),
        weights=tuple(float(b) for b in beta[1:]),
        bias=float(beta[0]),
        clip=clip,
    )


Scorer = Callable[[FloatArray], FloatArray]
"""Maps an (n, all features) matrix to n fused log-odds."""
Trainer = Callable[[FloatArray, npt.NDArray[np.bool_], npt.NDArray[Any], npt.NDArray[Any]], Scorer]
"""Fits on (x, labels, attack ids, groups) and returns a scorer."""


@dataclass(frozen=True)
class FusionConfig:
    """A candidate fusion: which columns of the feature matrix, and how much L2."""

    features: tuple[str, ...]
    l2: float

    def fit(
        self,
        x: FloatArray,
        labels: npt.NDArray[np.bool_],
        groups: npt.ArrayLike,
        all_features: Sequence[str],
    ) -> LogisticFusion:
        cols = [list(all_features).index(f) for f in self.features]
        return fit_logistic(
            x[:, cols],
            labels,
            self.features,
            l2=self.l2,
            sample_weight=balanced_weights(labels, groups),
        )

    def trainer(self, all_features: Sequence[str]) -> Trainer:
        cols = [list(all_features).index(f) for f in self.features]

        def train(
            x: FloatArray, y: npt.NDArray[np.bool_], attack: npt.NDArray[Any], g: npt.NDArray[Any]
        ) -> Scorer:
            del attack
            model = self.fit(x, y, g, all_features)
            return lambda m: model.log_odds_matrix(m[:, cols])

        return train


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold fused log-odds from :func:`leave_one_attack_out`.

    ``spoof_scores[i]`` is spoof clip i scored by models that never saw its attack system;
    ``bonafide_scores[a]`` are all bona fide clips scored by the models that left attack
    ``a`` out (each clip by the one that also left that clip out); ``bonafide_mean`` is their
    mean over attacks, the bona fide score used for pooled figures. ``spoof_attack`` names
    the system of each spoof score."""

    attacks: tuple[str, ...]
    spoof_scores: FloatArray
    spoof_attack: tuple[str, ...]
    bonafide_scores: Mapping[str, FloatArray]
    bonafide_mean: FloatArray

    def pooled(self) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """(scores, labels) with each bona fide clip once (its mean score) and every spoof."""
        scores = np.concatenate([self.bonafide_mean, self.spoof_scores])
        labels = np.concatenate(
            [np.ones(self.bonafide_mean.size, bool), np.zeros(self.spoof_scores.size, bool)]
        )
        return scores, labels

    def per_attack(self, attack: str) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """(scores, labels): all bona fide and the spoofs of ``attack``, all scored by models
        that never saw ``attack``."""
        spoof = self.spoof_scores[np.asarray(self.spoof_attack) == attack]
        bona = self.bonafide_scores[attack]
        scores = np.concatenate([bona, spoof])
        labels = np.concatenate([np.ones(bona.size, bool), np.zeros(spoof.size, bool)])
        return scores, labels

    def pooled_eer(self) -> float:
        return eer(*self.pooled())


def leave_one_attack_out(
    x: npt.ArrayLike,
    labels: npt.ArrayLike,
    attack: npt.ArrayLike,
    groups: npt.ArrayLike,
    train: Trainer,
    *,
    bonafide_folds: int = 6,
    seed: int = 0,
) -> CrossValidation:
    """Leave-one-attack-out cross-validation with bona fide held out in folds.

    For each spoofing system ``a`` and each bona fide fold ``b`` (folds stratified by group),
    ``train`` fits on all other systems and the other bona fide folds; the result scores
    system ``a``'s clips (averaged over the ``b`` models) and fold ``b``.
    """
    xm = np.asarray(x, dtype=np.float64)
    y = np.asarray(labels).astype(bool).ravel()
    att = np.asarray(attack).ravel()
    grp = np.asarray(groups).ravel()
    bona = np.flatnonzero(y)
    rng = np.random.default_rng(seed)
    fold = np.full(y.size, -1)
    for g in np.unique(grp[bona]):
        members = bona[grp[bona] == g]
        members = members[rng.permutation(members.size)]
        fold[members] = np.arange(members.size) % bonafide_folds
    systems = tuple(sorted(set(att[~y].tolist())))
    spoof_scores = np.full(y.size, np.nan)
    bona_by_attack: dict[str, FloatArray] = {}
    for a in systems:
        held = ~y & (att == a)
        acc = np.zeros(int(held.sum()))
        bona_scores = np.full(y.size, np.nan)
        for b in range(bonafide_folds):
            test_bona = y & (fold == b)
            keep = ~held & ~test_bona
            scorer = train(xm[keep], y[keep], att[keep], grp[keep])
            acc += scorer(xm[held])
            if test_bona.any():
                bona_scores[test_bona] = scorer(xm[test_bona])
        spoof_scores[held] = acc / bonafide_folds
        bona_by_attack[a] = bona_scores[y]
    bona_mean = np.mean(np.stack(list(bona_by_attack.values())), axis=0)
    return CrossValidation(
        attacks=systems,
        spoof_scores=spoof_scores[~y],
        spoof_attack=tuple(att[~y].tolist()),
        bonafide_scores=bona_by_attack,
        bonafide_mean=bona_mean,
    )


def select_config(
    x: FloatArray,
    labels: npt.NDArray[np.bool_],
    attack: npt.NDArray[Any],
    groups: npt.NDArray[Any],
    all_features: Sequence[str],
    candidates: Sequence[FusionConfig],
    *,
    bonafide_folds: int = 6,
) -> FusionConfig:
    """The candidate with the lowest leave-one-attack-out pooled EER (the first on ties, so
    list simpler candidates first)."""
    best, best_eer = candidates[0], math.inf
    for config in candidates:
        cv = leave_one_attack_out(
            x, labels, attack, groups, config.trainer(all_features), bonafide_folds=bonafide_folds
        )
        value = cv.pooled_eer()
        if value < best_eer - 1e-9:
            best, best_eer = config, value
    return best


def selecting_trainer(
    all_features: Sequence[str], candidates: Sequence[FusionConfig], *, bonafide_folds: int = 6
) -> Trainer:
    """A trainer that first picks its configuration by an inner leave-one-attack-out run on
    its own training data: cross-validating it gives an honest estimate of the whole
    procedure, feature choice included (nested cross-validation)."""

    def train(
        x: FloatArray, y: npt.NDArray[np.bool_], attack: npt.NDArray[Any], g: npt.NDArray[Any]
    ) -> Scorer:
        config = select_config(
            x, y, attack, g, all_features, candidates, bonafide_folds=bonafide_folds
        )
        return config.trainer(all_features)(x, y, attack, g)

    return train
