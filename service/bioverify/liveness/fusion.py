"""Learned, explainable fusion of liveness components: pure functions over numpy and dicts.

Model ("soft-min of attack-family detectors")::

    z_i = clip(o_i * (v_i - m_i) / s_i, -Z, Z)        standardised, oriented component value
    a_k = b_k + sum_{i in family k} w_ik * z_i          detector k's live-vs-attack logit
    f   = -T * log(sum_k exp(-a_k / T))                 soft minimum over detectors
    score = sigmoid(f); live = score >= threshold

``m_i``/``s_i`` are the median and spread of the component over *bona fide* training faces,
so ``z`` reads "how many bona fide spreads from a typical live face"; ``o_i`` is the declared
direction (+1 when larger means more live), and weights are constrained to be >= 0, so a
component can only push the decision the way its physical explanation says. Each detector
covers one family of attacks (recapture blur, synthetic faces, the PAD network, ...); the
soft minimum means *any* family that looks like an attack can reject, while a face has to
look live to every family to pass. Weights and biases are fitted jointly with a class-
balanced logistic loss and L2 on the weights (``fit_fusion``); the threshold is the one
that rejects at most ``target_bpcer`` of the bona fide training faces.

Parameters are plain data (``FusionParams.to_dict``/``from_dict``) kept in the model pack.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import expit

from bioverify.errors import ConfigurationError
from bioverify.liveness.ports import Check, LivenessAssessment
from bioverify.metrics import PAD_BONAFIDE, pad_rates, threshold_at_bpcer
from bioverify.scoring import fit_logistic_newton, logit, sigmoid

METHOD = "softmin-detectors/1"
Z_CLIP = 4.0
TEMPERATURE = 1.0
MAX_REASONS = 3

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FeatureSpec:
    """How one component is standardised, and what it means to a human."""

    name: str
    orientation: float  # +1: larger = more live; -1: larger = more attack-like
    median: float
    spread: float
    label: str = ""

    def standardise(self, value: float) -> float:
        z = self.orientation * (value - self.median) / self.spread
        return float(min(Z_CLIP, max(-Z_CLIP, z)))


@dataclass(frozen=True)
class Detector:
    """One attack family: a bias and non-negative weights over its components."""

    name: str
    code: str
    message: str
    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float


@dataclass(frozen=True)
class FusionParams:
    """Fitted fusion parameters (see the module docstring); ``threshold`` is on ``score``."""

    features: Mapping[str, FeatureSpec]
    detectors: tuple[Detector, ...]
    threshold: float
    target_bpcer: float
    temperature: float = TEMPERATURE
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.features)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": METHOD,
            "temperature": self.temperature,
            "z_clip": Z_CLIP,
            "features": {
                f.name: {
                    "orientation": f.orientation,
                    "median": f.median,
                    "spread": f.spread,
                    "label": f.label,
                }
                for f in self.features.values()
            },
            "detectors": [
                {
                    "name": d.name,
                    "code": d.code,
                    "message": d.message,
                    "features": list(d.features),
                    "weights": list(d.weights),
                    "bias": d.bias,
                }
                for d in self.detectors
            ],
            "threshold": self.threshold,
            "target_bpcer": self.target_bpcer,
        }
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FusionParams:
        """Parse the pack's ``fusion`` block; ``ConfigurationError`` when malformed."""
        try:
            if data.get("method") != METHOD:
                raise ConfigurationError(f"fusion method must be {METHOD!r}")
            features = {
                str(name): FeatureSpec(
                    name=str(name),
                    orientation=float(spec["orientation"]),
                    median=float(spec["median"]),
                    spread=float(spec["spread"]),
                    label=str(spec.get("label", "")),
                )
                for name, spec in dict(data["features"]).items()
            }
            detectors = tuple(
                Detector(
                    name=str(d["name"]),
                    code=str(d["code"]),
                    message=str(d.get("message", "")),
                    features=tuple(str(f) for f in d["features"]),
                    weights=tuple(float(w) for w in d["weights"]),
                    bias=float(d["bias"]),
                )
                for d in data["detectors"]
            )
            known = {"method", "temperature", "z_clip", "features", "detectors"}
            known |= {"threshold", "target_bpcer"}
            params = cls(
                features=features,
                detectors=detectors,
                threshold=float(data["threshold"]),
                target_bpcer=float(data.get("target_bpcer", 0.05)),
                temperature=float(data.get("temperature", TEMPERATURE)),
                extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"invalid liveness fusion parameters ({exc})") from exc
        _validate(params)
        return params


def _validate(params: FusionParams) -> None:
    if not params.detectors:
        raise ConfigurationError("liveness fusion has no detectors")
    if not 0.0 < params.threshold < 1.0:
        raise ConfigurationError(f"fusion threshold must be in (0, 1), got {params.threshold}")
    if params.temperature <= 0:
        raise ConfigurationError("fusion temperature must be > 0")
    for spec in params.features.values():
        if spec.spread <= 0 or abs(spec.orientation) != 1.0:
            raise ConfigurationError(f"feature {spec.name}: spread must be > 0, orientation ±1")
    for det in params.detectors:
        if det.name in params.features:
            raise ConfigurationError(f"detector {det.name} has the name of a feature")
        if len(det.features) != len(det.weights) or not det.features:
            raise ConfigurationError(f"detector {det.name}: features and weights differ")
        for name in det.features:
            if name not in params.features:
                raise ConfigurationError(f"detector {det.name} names unknown feature {name}")
        if any(w < 0 or not math.isfinite(w) for w in det.weights):
            raise ConfigurationError(f"detector {det.name}: weights must be finite and >= 0")


def _softmin(values: Sequence[float], temperature: float) -> tuple[float, list[float]]:
    """Soft minimum and each input's share (the softmax of ``-a / T``)."""
    arr = np.asarray(values, dtype=np.float64) / -temperature
    top = float(arr.max())
    e = np.exp(arr - top)
    total = float(e.sum())
    return -temperature * (top + math.log(total)), [float(v) for v in e / total]


def fuse(
    values: Mapping[str, float],
    params: FusionParams,
    details: Mapping[str, str] | None = None,
) -> LivenessAssessment:
    """Fuse component values into a decision with one ``Check`` per component and one per
    attack-family detector.

    ``values`` must hold every feature the parameters use (extra keys are ignored);
    ``details`` are the components' own explanations, quoted in the checks.

    A detector's check has its own score ``sigmoid(a_k)`` and its soft-min share as weight;
    it fails when its logit is below the threshold's (when the face is rejected with every
    detector above it, several marginal families pulled the soft minimum down together, and
    those carrying at least an even share fail). A component's check has the score its
    detector would give from this component alone, ``sigmoid(bias + w * z)``, and the
    component's effective weight (detector weight times the detector's share); it fails when
    its detector failed and it pushed that detector towards "attack". So a rejected face
    always shows the failed checks that rejected it, and a live one shows none. ``reasons``
    name the failed detectors, weakest first, each with its most attack-like components.
    """
    missing = [name for name in params.features if name not in values]
    if missing:
        raise ConfigurationError(f"liveness fusion is missing components: {', '.join(missing)}")
    details = details or {}
    z = {name: spec.standardise(float(values[name])) for name, spec in params.features.items()}
    logits = [
        det.bias + sum(w * z[f] for f, w in zip(det.features, det.weights, strict=True))
        for det in params.detectors
    ]
    fused, shares = _softmin(logits, params.temperature)
    score = sigmoid(fused)
    live = score >= params.threshold
    threshold_logit = logit(params.threshold)
    failed = [a < threshold_logit for a in logits]
    jointly = not live and not any(failed)
    if jointly:
        failed = [share >= 1.0 / len(shares) for share in shares]

    checks: list[Check] = []
    for k, (det, share) in enumerate(zip(params.detectors, shares, strict=True)):
        checks.append(
            Check(
                name=det.name,
                score=sigmoid(logits[k]),
                weight=share,
                passed=not failed[k],
                detail=(
                    f"attack-family detector ({det.code}) over {', '.join(det.features)}: "
                    f"logit {logits[k]:+.2f} against the threshold's {threshold_logit:+.2f}, "
                    f"{share:.0%} of the fused score"
                ),
            )
        )
        for f, w in zip(det.features, det.weights, strict=True):
            spec = params.features[f]
            contribution = w * z[f]
            explanation = details.get(f, spec.label)
            checks.append(
                Check(
                    name=f,
                    score=sigmoid(det.bias + contribution),
                    weight=w * share,
                    passed=not (failed[k] and contribution < 0),
                    detail=(
                        f"{explanation}; {z[f]:+.2f} bona fide spreads from typical "
                        f"(contribution {contribution:+.2f} to {det.name})"
                    ),
                )
            )

    reasons: list[tuple[str, str]] = []
    for k in sorted((k for k in range(len(logits)) if failed[k]), key=lambda k: logits[k]):
        det = params.detectors[k]
        worst = sorted((w * z[f], f) for f, w in zip(det.features, det.weights, strict=True))
        named = [
            f"{details.get(f, params.features[f].label) or f} ({c:+.2f})"
            for c, f in worst[:MAX_REASONS]
            if c < 0
        ]
        message = det.message or det.name
        if jointly:
            message += " (marginal here, and together with other marginal families enough)"
        if named:
            message += ": " + "; ".join(named)
        reasons.append((det.code, message))
        if len(reasons) >= MAX_REASONS:
            break
    return LivenessAssessment(
        live=live,
        score=score,
        threshold=params.threshold,
        checks=tuple(checks),
        reasons=tuple(reasons),
    )


# ---------------------------------------------------------------------------------------
# Fitting and evaluation (pure numpy; used by fit_face_fusion.py and the tests)


@dataclass(frozen=True)
class DetectorSpec:
    """A detector to fit: which features it combines and how it explains itself."""

    name: str
    code: str
    message: str
    features: tuple[str, ...]


def feature_stats(
    values: FloatArray, bona_fide: npt.NDArray[np.bool_]
) -> tuple[FloatArray, FloatArray]:
    """Median and robust spread (1.4826 * MAD, floored by 0.25 * std) over bona fide rows."""
    live = values[bona_fide]
    median = np.median(live, axis=0)
    mad = 1.4826 * np.median(np.abs(live - median), axis=0)
    spread = np.maximum(mad, 0.25 * live.std(axis=0))
    return median, np.maximum(spread, 1e-6)


def sample_weights(labels: Sequence[str]) -> FloatArray:
    """Half the total weight to bona fide faces, half to attacks, uniform within each."""
    lab = np.asarray(labels)
    bona = lab == PAD_BONAFIDE
    weights = np.zeros(lab.size, dtype=np.float64)
    if bona.any():
        weights[bona] = 0.5 / bona.sum()
    if (~bona).any():
        weights[~bona] = 0.5 / (~bona).sum()
    return weights


def fit_fusion(
    values: Mapping[str, npt.ArrayLike],
    labels: Sequence[str],
    orientation: Mapping[str, float],
    detectors: Sequence[DetectorSpec],
    *,
    l2: float = 0.05,
    target_bpcer: float = 0.05,
    feature_labels: Mapping[str, str] | None = None,
) -> FusionParams:
    """Fit weights, biases and the BPCER threshold on labelled rows.

    ``values[name]`` is one value per row; ``labels`` are ``"bonafide"`` or an attack class.
    The loss is the class-balanced logistic loss of the soft-min fusion plus
    ``l2/2 * ||w - w0||^2``, where the prior ``w0`` weighs a detector's components equally
    (``1/n`` each: the plain average of its standardised components), minimised by
    L-BFGS-B with ``w >= 0`` from the prior (deterministic). Large ``l2`` keeps the prior.
    """
    names = sorted({f for d in detectors for f in d.features})
    lab = np.asarray(labels)
    bona = lab == PAD_BONAFIDE
    if bona.sum() < 2 or (~bona).sum() < 1:
        raise ValueError("need at least two bona fide and one attack row")
    raw = np.column_stack([np.asarray(values[n], dtype=np.float64) for n in names])
    median, spread = feature_stats(raw, bona)
    orient = np.array([float(orientation[n]) for n in names])
    z = np.clip(orient * (raw - median) / spread, -Z_CLIP, Z_CLIP)
    col = {n: i for i, n in enumerate(names)}
    y = bona.astype(np.float64)
    sw = sample_weights(list(lab))
    sizes = [len(d.features) for d in detectors]
    n_w = sum(sizes)
    n_det = len(detectors)

    def unpack(p: FloatArray) -> tuple[list[FloatArray], FloatArray]:
        ws = []
        start = 0
        for size in sizes:
            ws.append(p[start : start + size])
            start += size
        return ws, p[n_w:]

    zs = [z[:, [col[f] for f in d.features]] for d in detectors]

    prior = np.concatenate([np.full(size, 1.0 / size) for size in sizes])
    prior_ws, _ = unpack(np.concatenate([prior, np.zeros(n_det)]))

    def objective(p: FloatArray) -> tuple[float, FloatArray]:
        ws, biases = unpack(p)
        a = np.column_stack([b + zk @ w for zk, w, b in zip(zs, ws, biases, strict=True)])
        scaled = -a / TEMPERATURE
        top = scaled.max(axis=1, keepdims=True)
        e = np.exp(scaled - top)
        total = e.sum(axis=1, keepdims=True)
        fused = -TEMPERATURE * (top[:, 0] + np.log(total[:, 0]))
        share = e / total
        loss_rows = y * np.logaddexp(0.0, -fused) + (1 - y) * np.logaddexp(0.0, fused)
        loss = float((sw * loss_rows).sum())
        dfused = sw * (expit(fused) - y)
        da = dfused[:, None] * share
        grads_w = [
            zk.T @ da[:, k] + l2 * (w - w0)
            for k, (zk, w, w0) in enumerate(zip(zs, ws, prior_ws, strict=True))
        ]
        loss += (
            0.5
            * l2
            * float(sum(float((w - w0) @ (w - w0)) for w, w0 in zip(ws, prior_ws, strict=True)))
        )
        grad = np.concatenate([*grads_w, da.sum(axis=0)])
        return loss, grad

    start = np.concatenate([prior, np.full(n_det, 2.0)])
    bounds = [(0.0, None)] * n_w + [(None, None)] * n_det
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
    ws, biases = unpack(np.asarray(result.x, dtype=np.float64))
    labels_text = feature_labels or {}
    features = {
        n: FeatureSpec(
            name=n,
            orientation=float(orient[i]),
            median=float(median[i]),
            spread=float(spread[i]),
            label=labels_text.get(n, ""),
        )
        for i, n in enumerate(names)
    }
    fitted = tuple(
        Detector(
            name=d.name,
            code=d.code,
            message=d.message,
            features=d.features,
            weights=tuple(round(float(v), 6) for v in w),
            bias=round(float(b), 6),
        )
        for d, w, b in zip(detectors, ws, biases, strict=True)
    )
    provisional = FusionParams(
        features=features, detectors=fitted, threshold=0.5, target_bpcer=target_bpcer
    )
    scores = fused_scores(provisional, {n: raw[:, col[n]] for n in names})
    threshold = threshold_at_bpcer(scores[bona], target_bpcer)
    threshold = min(1.0 - 1e-9, max(1e-9, threshold))
    return FusionParams(
        features=features, detectors=fitted, threshold=threshold, target_bpcer=target_bpcer
    )


def fused_scores(params: FusionParams, values: Mapping[str, npt.ArrayLike]) -> FloatArray:
    """Vectorised ``fuse(...).score`` over rows (same maths, no explanations)."""
    n = len(np.asarray(values[next(iter(params.features))]))
    z = {}
    for name, spec in params.features.items():
        v = np.asarray(values[name], dtype=np.float64)
        z[name] = np.clip(spec.orientation * (v - spec.median) / spec.spread, -Z_CLIP, Z_CLIP)
    a = np.column_stack(
        [
            det.bias
            + sum((w * z[f] for f, w in zip(det.features, det.weights, strict=True)), np.zeros(n))
            for det in params.detectors
        ]
    )
    scaled = -a / params.temperature
    top = scaled.max(axis=1, keepdims=True)
    fused = -params.temperature * (top[:, 0] + np.log(np.exp(scaled - top).sum(axis=1)))
    out: FloatArray = expit(fused)
    return out


def apcer_at_bpcer(
    scores: npt.ArrayLike, labels: Sequence[str], bpcer: float
) -> tuple[float, dict[str, float]]:
    """ISO/IEC 30107-3 APCER per attack class at the threshold giving ``BPCER <= bpcer``.

    Returns ``(threshold, {attack class: APCER})``; higher score = more live.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    threshold = threshold_at_bpcer(s[np.asarray(labels) == PAD_BONAFIDE], bpcer)
    return threshold, apcer_at_threshold(s, labels, threshold)


def apcer_at_threshold(
    scores: npt.ArrayLike, labels: Sequence[str], threshold: float
) -> dict[str, float]:
    """APCER per attack class when accepting ``score >= threshold`` (``metrics.pad_rates``)."""
    return {r.attack_class: r.apcer for r in pad_rates(scores, labels, threshold)[1]}


def fit_logistic(
    features: npt.ArrayLike, positive: npt.ArrayLike, *, l2: float
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """L2-regularised logistic regression on standardised columns (class-balanced).

    Returns ``(mean, std, weights, bias)`` so that ``bias + ((x - mean) / std) @ weights``
    is the log-odds of the positive class. ``l2`` must be > 0 (the bias is not shrunk).
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(positive).astype(bool)
    if l2 <= 0:
        raise ValueError("l2 must be > 0")
    if y.all() or not y.any():
        raise ValueError("need both classes")
    mean = x.mean(axis=0)
    std = np.maximum(x.std(axis=0), 1e-9)
    design = np.column_stack([np.ones(len(x)), (x - mean) / std])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 0.0  # the bias is not shrunk
    balanced = np.where(y, 0.5 / y.sum(), 0.5 / (~y).sum())
    p = fit_logistic_newton(design, y, balanced, penalty)
    return mean, std, p[1:], float(p[0])
