"""Pure scoring: similarity, calibration (similarity -> probability), operating points at a
target false-match rate, and the match decision. Numpy in, numpy / frozen dataclasses out."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit
from scipy.stats import norm

from bioverify.errors import ConfigurationError

FloatArray = npt.NDArray[np.float64]


def l2_normalize(vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    arr = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    out: npt.NDArray[np.float32] = np.divide(arr, norms, out=np.zeros_like(arr), where=norms > 0)
    return out


def cosine_similarity(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    va = l2_normalize(np.asarray(a, dtype=np.float32).ravel())
    vb = l2_normalize(np.asarray(b, dtype=np.float32).ravel())
    if va.shape != vb.shape:
        raise ValueError(f"embedding sizes differ: {va.shape[0]} vs {vb.shape[0]}")
    return float(np.clip(np.dot(va, vb), -1.0, 1.0))


def mean_template(embeddings: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """One template from several unit embeddings: the normalised mean direction."""
    arr = l2_normalize(np.atleast_2d(np.asarray(embeddings, dtype=np.float32)))
    if arr.shape[0] == 0:
        raise ValueError("no embeddings to build a template from")
    return l2_normalize(arr.mean(axis=0))


@dataclass(frozen=True)
class Calibration:
    """Platt scaling: P(same) = sigmoid(slope * similarity + intercept), fitted with equal
    class priors so the probability does not depend on the genuine/impostor mix of the data."""

    slope: float
    intercept: float
    method: str = "platt"
    fitted_on: str = ""
    n_genuine: int = 0
    n_impostor: int = 0

    def probability(self, similarity: float | FloatArray) -> Any:
        return expit(self.slope * np.asarray(similarity, dtype=np.float64) + self.intercept)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "slope": self.slope,
            "intercept": self.intercept,
            "fitted_on": self.fitted_on,
            "n_genuine": self.n_genuine,
            "n_impostor": self.n_impostor,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        try:
            method = str(data.get("method", "platt"))
            if method != "platt":
                raise ConfigurationError(f"unsupported calibration method {method!r}")
            return cls(
                slope=float(data["slope"]),
                intercept=float(data["intercept"]),
                method=method,
                fitted_on=str(data.get("fitted_on", "")),
                n_genuine=int(data.get("n_genuine", 0)),
                n_impostor=int(data.get("n_impostor", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"invalid calibration block: {exc}") from exc


def sigmoid(x: float) -> float:
    """The logistic function, without overflow for large ``|x|``."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def logit(p: float) -> float:
    """Log-odds of a probability, clamped to about ±27.6 at 0 and 1."""
    p = min(1.0 - 1e-12, max(1e-12, p))
    return math.log(p / (1.0 - p))


def fit_logistic_newton(
    design: npt.ArrayLike,
    target: npt.ArrayLike,
    weights: npt.ArrayLike,
    penalty: npt.ArrayLike,
    *,
    iterations: int = 100,
) -> FloatArray:
    """Coefficients minimising ``sum(w * log-loss) + 1/2 sum(penalty * beta**2)``.

    ``design`` is (n, k) (include a column of ones for a bias, with penalty 0 for it),
    ``target`` 0/1, ``weights`` >= 0 (scaled here to sum to 1, so a penalty does not grow
    with n). Newton's method with step halving from zero: deterministic, and it converges
    on any strictly convex problem (a tiny ridge is added for separable data).
    """
    x = np.asarray(design, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64).ravel()
    w = np.asarray(weights, dtype=np.float64).ravel()
    w = w / w.sum()
    ridge = np.asarray(penalty, dtype=np.float64) + 1e-12

    def loss(beta: FloatArray) -> float:
        a = x @ beta
        rows = y * np.logaddexp(0.0, -a) + (1.0 - y) * np.logaddexp(0.0, a)
        return float(w @ rows + 0.5 * (ridge * beta) @ beta)

    beta = np.zeros(x.shape[1])
    current = loss(beta)
    for _ in range(iterations):
        p = expit(x @ beta)
        grad = x.T @ (w * (p - y)) + ridge * beta
        hess = (x * (w * p * (1.0 - p))[:, None]).T @ x + np.diag(ridge)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while True:
            candidate = beta - t * step
            new = loss(candidate)
            if new <= current or t < 1e-6:
                break
            t *= 0.5
        beta, previous, current = candidate, current, new
        if previous - current < 1e-14 or float(np.max(np.abs(t * step))) < 1e-10:
            break
    out: FloatArray = beta
    return out


def fit_platt(
    genuine: npt.ArrayLike, impostor: npt.ArrayLike, *, l2: float = 1e-6, iterations: int = 200
) -> tuple[float, float]:
    """Class-balanced logistic regression of same/different on the similarity.

    Each class gets total weight 1/2, so the fit is prior-free; a tiny ridge keeps it finite on
    separable data.
    """
    g = np.asarray(genuine, dtype=np.float64).ravel()
    i = np.asarray(impostor, dtype=np.float64).ravel()
    if g.size == 0 or i.size == 0:
        raise ValueError("calibration needs genuine and impostor scores")
    x = np.concatenate([g, i])
    y = np.concatenate([np.ones_like(g), np.zeros_like(i)])
    w = np.concatenate([np.full(g.size, 0.5 / g.size), np.full(i.size, 0.5 / i.size)])
    features = np.stack([x, np.ones_like(x)], axis=1)
    params = fit_logistic_newton(features, y, w, [l2, 0.0], iterations=iterations)
    return float(params[0]), float(params[1])


@dataclass(frozen=True)
class OperatingPoint:
    """A similarity threshold chosen for a target false-match rate."""

    name: str
    target_fmr: float
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "target_fmr": self.target_fmr, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OperatingPoint:
        try:
            return cls(
                name=str(data["name"]),
                target_fmr=float(data["target_fmr"]),
                threshold=float(data["threshold"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"invalid operating point: {exc}") from exc


def operating_point_name(fmr: float) -> str:
    """``1e-3`` -> ``"fmr_1e-3"``."""
    exponent = math.log10(fmr)
    if abs(exponent - round(exponent)) < 1e-9:
        return f"fmr_1e{round(exponent)}"
    return f"fmr_{fmr:g}"


def threshold_at_fmr(impostor: npt.ArrayLike, fmr: float) -> float:
    """Similarity threshold whose false-match rate is at most ``fmr``.

    Two estimates: the tail of a normal fit to the upper half of the impostor scores (usable
    far beyond the sample), and the empirical one: the lowest threshold that at most
    ``floor(n * fmr)`` of the sample's scores reach (above them all when ``n * fmr < 1``).
    The stricter one is returned: a bank would rather refuse a few genuine users than
    under-state the false-match rate.
    """
    scores = np.sort(np.asarray(impostor, dtype=np.float64).ravel())
    if scores.size < 2:
        raise ValueError("need at least two impostor scores")
    if not 0.0 < fmr < 1.0:
        raise ValueError("fmr must be in (0, 1)")
    # Normal tail fitted to the upper half only (median and the upper semi-deviation), so a
    # skewed impostor distribution is judged by the side that causes false matches.
    median = float(np.median(scores))
    upper = scores[scores > median] - median
    sigma = float(np.sqrt(np.mean(upper**2))) if upper.size else float(scores.std())
    estimates = [median + float(norm.isf(fmr)) * sigma]
    # Just above the (allowed + 1)-th highest score: a match needs similarity >= the
    # threshold, so at most ``allowed`` (false matches within fmr; 0 when the sample is
    # smaller than 1 / fmr) of the sample's impostor scores reach it.
    allowed = int(np.floor(fmr * scores.size * (1 + 1e-12)))
    estimates.append(float(np.nextafter(scores[scores.size - allowed - 1], np.inf)))
    return max(estimates)


@dataclass(frozen=True)
class MatchResult:
    similarity: float
    confidence: float
    threshold: float
    operating_point: str
    target_fmr: float
    accepted: bool


def decide_match(
    similarity: float, calibration: Calibration, operating_point: OperatingPoint
) -> MatchResult:
    """The 1:1 decision: accept when the similarity reaches the operating point's threshold."""
    return MatchResult(
        similarity=float(similarity),
        confidence=float(calibration.probability(similarity)),
        threshold=operating_point.threshold,
        operating_point=operating_point.name,
        target_fmr=operating_point.target_fmr,
        accepted=bool(similarity >= operating_point.threshold),
    )


def select_operating_point(points: Sequence[OperatingPoint], name: str) -> OperatingPoint:
    for point in points:
        if point.name == name:
            return point
    valid = ", ".join(p.name for p in points) or "none"
    raise KeyError(f"unknown operating point {name!r}; valid: {valid}")


def _hundredths(value: float, rounding: str, trim: bool) -> str:
    """``value`` to two decimals rounded as ``rounding`` (from its shortest repr, so 0.29
    stays 0.29); ``trim``: one decimal when the second is 0 ("2.0", "0.98")."""
    text = f"{Decimal(repr(float(value))).quantize(Decimal('0.01'), rounding=rounding):.2f}"
    return text[:-1] if trim and text.endswith("0") else text


def shown_against(value: float, threshold: float, *, trim: bool = False) -> tuple[str, str]:
    """``value`` and ``threshold`` to two decimals for a message comparing them, rounded so
    the shown numbers compare as the real ones do: a value just below its threshold never
    reads as reaching it (0.3496 against 0.35: "0.34" and "0.35"), one at or above never as
    below it. ``trim``: one decimal where the second is 0 ("1.0 s")."""
    below = value < threshold
    return (
        _hundredths(value, ROUND_FLOOR, trim),
        _hundredths(threshold, ROUND_CEILING if below else ROUND_FLOOR, trim),
    )
