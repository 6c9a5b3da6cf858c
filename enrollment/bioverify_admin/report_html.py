"""Self-contained HTML evaluation reports: ROC and DET curves, score histograms and tables.

Each writer produces one HTML file with its plots embedded as base64 PNG and its CSS inline: no
external scripts, stylesheets or fonts, so the file can be mailed or archived on its own.
Matplotlib is imported inside the writers (Agg backend, default style), never at import time,
so the service never loads it. Apart from the "generated" timestamp the output is deterministic.

Convention (as in :mod:`bioverify.metrics`): a higher score means more likely genuine (same
person, bona fide presentation), and a sample is accepted when ``score >= threshold``.

- :func:`write_verification_report`: 1:1 verification scores (``eval face-pairs``,
  ``eval speaker-trials``).
- :func:`write_identification_report`: open-set 1:N top scores (``eval face-identify``).
- :func:`write_pad_report`: presentation-attack detection scores (ISO/IEC 30107-3 APCER/BPCER);
  :func:`write_pad_evaluation_report` for ``eval face-pad`` / ``eval voice-spoof``.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

from bioverify import metrics
from bioverify.fileio import write_private_text
from bioverify.scoring import OperatingPoint

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from bioverify_admin.eval_pad import PadEvaluation

BONAFIDE = metrics.PAD_BONAFIDE
FloatArray = npt.NDArray[np.float64]
Rows = Sequence[Mapping[str, Any]]
Table = tuple[str, Rows]

# Probit-axis ticks in order of preference; a tick is kept when it does not crowd those before.
_DET_TICKS = (
    (1e-5, 1e-4, 1e-3, 0.01, 0.1, 0.5),
    (0.05, 0.2, 0.8, 0.95),
    (2e-3, 5e-3, 0.02, 0.99),
)
_DET_TICK_GAP = 0.075  # least distance between ticks, as a share of the axis span
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
_GENUINE, _IMPOSTOR, _MARK = "#1f77b4", "#d62728", "#000000"
_FIG_W, _FIG_H, _DPI, _SCALE = 5.4, 4.4, 100, 2  # inches, CSS px per inch, PNG oversampling
_DET_BOTTOM = 0.8  # inches below DET axes, for the rotated tick labels
_UNRESOLVED = "#ececec"  # shading of rates below one error in the data
_MIN_HISTOGRAM = 5  # a class with fewer scores is drawn as tick marks, not as a histogram
_UNRESOLVED_NOTE = "Grey: below one error in this data; a rate of 0 is drawn on the axis edge."


# -- pure helpers -------------------------------------------------------------------------------
def identification_curve(
    mated_scores: npt.ArrayLike, mated_hits: npt.ArrayLike, nonmated_scores: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """(FPIR, FNIR) at every distinct threshold, strictest first (open-set 1:N)."""
    mated = np.asarray(mated_scores, dtype=np.float64).ravel()
    hits = np.asarray(mated_hits).ravel().astype(bool)
    nonmated = np.sort(np.asarray(nonmated_scores, dtype=np.float64).ravel())
    if mated.size == 0 or nonmated.size == 0:
        raise ValueError("need mated and non-mated probes")
    thresholds = np.concatenate([[np.inf], np.unique(np.concatenate([mated, nonmated]))[::-1]])
    correct = np.sort(mated[hits])
    fpir = 1.0 - np.searchsorted(nonmated, thresholds, side="left") / nonmated.size
    found = correct.size - np.searchsorted(correct, thresholds, side="left")
    return fpir, 1.0 - found / mated.size


# -- writers ------------------------------------------------------------------------------------
def write_verification_report(
    path: Path,
    *,
    title: str,
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    threshold: float,
    operating_point: str,
    summary: Mapping[str, Any],
    operating_points: Sequence[OperatingPoint] = (),
    extra_tables: Sequence[Table] = (),
    failed: npt.ArrayLike | None = None,
    generated: datetime | None = None,
) -> None:
    """A 1:1 verification report: ROC (log FMR axis), DET (probit axes), genuine and impostor
    score histograms with the threshold, the summary and the FMR/FNMR at each operating point.

    ``labels`` are true for genuine pairs; ``operating_point`` names the point ``threshold``
    belongs to ("" if none); ``operating_points`` are the pack's points, measured here too.
    ``failed`` marks pairs the service could not score: their stand-in score counts in the
    curves and rates (as a rejection) but is left out of the histograms."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    bad = ~_ok_mask(failed, s.size)
    genuine, impostor = s[y], s[~y]
    curve = metrics.roc(s, y)  # validates lengths and both classes
    fmr, fnmr = curve.far, 1.0 - curve.tar
    eer = metrics.eer(s, y)
    points = _measured_points(genuine, impostor, threshold, operating_point, operating_points)
    here = _rates(genuine, impostor, threshold)
    lo = _lower_rate(min(genuine.size, impostor.size))

    _use_agg()
    import matplotlib.style

    with matplotlib.style.context("default"):
        fig, ax = _axes()
        ax.plot(np.clip(fmr, lo, 1.0), curve.tar, color=_GENUINE, linewidth=1.6, label="ROC")
        ax.set_xscale("log")
        ax.set_xlim(lo, 1.0)
        if 1.0 / impostor.size > lo:
            ax.axvspan(lo, 1.0 / impostor.size, color=_UNRESOLVED, linewidth=0)
        lowest = min(
            [float(curve.tar[fmr >= lo].min())]
            + [1.0 - p.fnmr for p in points if math.isfinite(p.fnmr)]
        )
        floor = math.floor(10 * max(0.0, lowest - 0.02)) / 10
        ax.set_ylim(floor, 1.005)
        ax.set_xlabel("false match rate (FMR)")
        ax.set_ylabel("true match rate (1 − FNMR)")
        _mark_points(ax, points, here, lo, roc=True)
        ax.legend(loc="lower right", fontsize="small")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title("ROC")
        roc_png = _png(fig)

        hi = _upper_rate([eer], here)
        fig, ax = _axes(bottom=_DET_BOTTOM)
        _det_axes(
            ax,
            lo,
            hi,
            "false match rate (FMR)",
            "false non-match rate (FNMR)",
            x_n=impostor.size,
            y_n=genuine.size,
        )
        ax.plot(
            _probit(fmr, lo, hi),
            _probit(fnmr, lo, hi),
            color=_GENUINE,
            linewidth=1.6,
            label=f"DET (EER {_pct(eer)})",
        )
        _mark_points(ax, points, here, lo, roc=False, hi=hi)
        ax.legend(loc="upper right", fontsize="small")
        ax.set_title("DET")
        det_png = _png(fig)

        fig, ax = _axes(width=2 * _FIG_W, height=_FIG_H * 0.85)
        _histograms(
            ax,
            [
                (f"genuine (n={int(np.sum(y & ~bad))})", s[y & ~bad], _GENUINE),
                (f"impostor (n={int(np.sum(~y & ~bad))})", s[~y & ~bad], _IMPOSTOR),
            ],
            threshold,
            filled=True,
        )
        ax.set_title("Score distributions")
        hist_png = _png(fig)
    hist_caption = "Genuine and impostor score histograms"
    if bad.any():
        hist_caption += f" ({int(bad.sum())} failed comparison(s) not shown)"

    op_rows = [
        {
            "operating point": p.name + (" (used)" if p.used else ""),
            "target FMR": _pct(p.target_fmr) if p.target_fmr is not None else "—",
            "threshold": f"{p.threshold:.4f}",
            "FMR": _count_pct(p.fmr, impostor.size),
            "FNMR": _count_pct(p.fnmr, genuine.size),
        }
        for p in points
    ]
    body = [
        _meta(generated, threshold, operating_point),
        _figures(
            [
                (roc_png, "ROC curve, logarithmic FMR axis. " + _UNRESOLVED_NOTE, _FIG_W),
                (det_png, "DET curve, probit axes. " + _UNRESOLVED_NOTE, _FIG_W),
            ]
        ),
        _figures([(hist_png, hist_caption, 2 * _FIG_W)]),
        _table("Summary", _summary_rows(summary)),
        _table("Error rates at the operating points", op_rows),
        *(_table(t, rows) for t, rows in extra_tables),
    ]
    _write(path, title, body)


def write_identification_report(
    path: Path,
    *,
    title: str,
    mated_scores: npt.ArrayLike,
    mated_hits: npt.ArrayLike,
    nonmated_scores: npt.ArrayLike,
    threshold: float,
    summary: Mapping[str, Any],
    extra_tables: Sequence[Table] = (),
    mated_failed: npt.ArrayLike | None = None,
    nonmated_failed: npt.ArrayLike | None = None,
    generated: datetime | None = None,
) -> None:
    """An open-set 1:N report: histograms of mated and non-mated top-candidate scores and the
    FNIR–FPIR curve (probit axes) with the threshold marked. ``mated_hits`` says whether each
    mated probe's top candidate was the right identity. ``mated_failed`` / ``nonmated_failed``
    mark probes the service could not search: they count in the curve, not in the histograms."""
    mated = np.asarray(mated_scores, dtype=np.float64).ravel()
    hits = np.asarray(mated_hits).ravel().astype(bool)
    nonmated = np.asarray(nonmated_scores, dtype=np.float64).ravel()
    m_ok, n_ok = _ok_mask(mated_failed, mated.size), _ok_mask(nonmated_failed, nonmated.size)
    fpir, fnir = identification_curve(mated, hits, nonmated)
    finite = math.isfinite(threshold)
    here = (
        (float(np.mean(nonmated >= threshold)), 1.0 - float(np.mean(hits & (mated >= threshold))))
        if finite
        else None
    )
    lo = _lower_rate(min(mated.size, nonmated.size))
    hi = 0.5 if float(fnir.min()) <= 0.3 and (here is None or max(here) <= 0.5) else 0.95

    _use_agg()
    import matplotlib.style

    with matplotlib.style.context("default"):
        fig, ax = _axes(bottom=_DET_BOTTOM)
        _det_axes(
            ax,
            lo,
            hi,
            "false positive identification rate (FPIR)",
            "false negative identification rate (FNIR)",
            x_n=nonmated.size,
            y_n=mated.size,
        )
        ax.plot(_probit(fpir, lo, hi), _probit(fnir, lo, hi), color=_GENUINE, linewidth=1.6)
        if here is not None:
            ax.plot(
                _probit(here[0], lo, hi),
                _probit(here[1], lo, hi),
                "o",
                color=_MARK,
                markersize=7,
                label=f"threshold {threshold:.4f}: FPIR {_pct(here[0])}, FNIR {_pct(here[1])}",
                clip_on=False,
                zorder=5,
            )
            ax.legend(loc="upper right", fontsize="small")
        ax.set_title("FNIR vs FPIR")
        curve_png = _png(fig)

        fig, ax = _axes()
        _histograms(
            ax,
            [
                (f"mated (n={int(m_ok.sum())})", mated[m_ok], _GENUINE),
                (f"non-mated (n={int(n_ok.sum())})", nonmated[n_ok], _IMPOSTOR),
            ],
            threshold,
            filled=True,
            rugs=[
                (
                    f"mated, wrong top-1 candidate (n={int((~hits & m_ok).sum())})",
                    mated[~hits & m_ok],
                    _COLOURS[4],
                )
            ],
        )
        ax.set_xlabel("top-candidate similarity")
        ax.set_title("Top-candidate score distributions")
        hist_png = _png(fig)

    n_failed = int((~m_ok).sum() + (~n_ok).sum())
    not_shown = f" ({n_failed} failed probe(s) not shown)" if n_failed else ""
    body = [
        _meta(generated, threshold, ""),
        _figures(
            [
                (curve_png, "FNIR–FPIR curve, probit axes. " + _UNRESOLVED_NOTE, _FIG_W),
                (hist_png, "Mated and non-mated top-candidate scores" + not_shown, _FIG_W),
            ]
        ),
        _table("Summary", _summary_rows(summary)),
        *(_table(t, rows) for t, rows in extra_tables),
    ]
    _write(path, title, body)


def write_pad_report(
    path: Path,
    *,
    title: str,
    scores: npt.ArrayLike,
    labels: Sequence[str],
    threshold: float,
    summary: Mapping[str, Any],
    extra_tables: Sequence[Table] = (),
    failed: npt.ArrayLike | None = None,
    generated: datetime | None = None,
) -> None:
    """A presentation-attack-detection report. ``labels`` are ``"bonafide"`` or the name of an
    attack class; a higher score means more likely bona fide. Per attack class: APCER at the
    threshold, APCER at BPCER 5 % and 10 %, EER, a score histogram and a DET curve.
    ``failed`` marks samples the service could not assess: their stand-in score counts in the
    curves and rates (as "not bona fide") but is left out of the histograms."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=object).ravel()
    ok = _ok_mask(failed, s.size)
    bpcer, rates = metrics.pad_rates(s, labels, threshold)
    bonafide = s[y == BONAFIDE]
    finite = math.isfinite(threshold)
    lo = _lower_rate(min(bonafide.size, *(r.n for r in rates)))
    marks = [(r.apcer, bpcer) for r in rates] if finite else []
    hi = _upper_rate([r.eer for r in rates], *marks)
    colours = {r.attack_class: _COLOURS[(i + 1) % len(_COLOURS)] for i, r in enumerate(rates)}

    _use_agg()
    import matplotlib.style

    with matplotlib.style.context("default"):
        fig, ax = _axes(bottom=_DET_BOTTOM)
        _det_axes(ax, lo, hi, "APCER", "BPCER", y_n=bonafide.size)
        for r in rates:
            attack = s[y == r.attack_class]
            both = np.concatenate([bonafide, attack])
            curve = metrics.roc(
                both, np.concatenate([np.ones(bonafide.size, bool), np.zeros(attack.size, bool)])
            )
            ax.plot(
                _probit(curve.far, lo, hi),
                _probit(1.0 - curve.tar, lo, hi),
                color=colours[r.attack_class],
                linewidth=1.6,
                label=f"{r.attack_class} (EER {_pct(r.eer)})",
            )
            if finite:
                ax.plot(
                    _probit(r.apcer, lo, hi),
                    _probit(bpcer, lo, hi),
                    "o",
                    color=colours[r.attack_class],
                    markeredgecolor=_MARK,
                    markersize=7,
                    clip_on=False,
                    zorder=5,
                )
        for level in (0.05, 0.10):
            if lo < level < hi:
                ax.axhline(float(_probit(level, lo, hi)), color="grey", linestyle=":", linewidth=1)
        ax.legend(loc="upper right", fontsize="small")
        ax.set_title("DET per attack class" + (" (dots: threshold)" if finite else ""))
        det_png = _png(fig)

        fig, ax = _axes()
        bona_ok, attack_ok = ok & (y == BONAFIDE), ok & (y != BONAFIDE)
        _histograms(
            ax,
            [
                (f"{BONAFIDE} (n={int(bona_ok.sum())})", s[bona_ok], _GENUINE),
                (f"all attacks (n={int(attack_ok.sum())})", s[attack_ok], _IMPOSTOR),
            ],
            threshold,
            filled=True,
        )
        ax.set_title("Bona fide vs attack scores")
        pooled_png = _png(fig)

        fig, ax = _axes()
        shown = ok & (y == BONAFIDE)
        groups = [(f"{BONAFIDE} (n={int(shown.sum())})", s[shown], _GENUINE)]
        rugs: list[tuple[str, FloatArray, str]] = []
        for r in rates:
            shown = ok & (y == r.attack_class)
            group = (f"{r.attack_class} (n={int(shown.sum())})", s[shown], colours[r.attack_class])
            (groups if shown.sum() >= _MIN_HISTOGRAM else rugs).append(group)
        _histograms(ax, groups, threshold, filled=False, rugs=rugs)
        ax.set_title("Score distributions per class")
        hist_png = _png(fig)
    not_shown = f" ({int((~ok).sum())} failed sample(s) not shown)" if not ok.all() else ""
    pooled_caption = "Bona fide and attack score histograms, threshold dashed" + not_shown
    hist_caption = (
        f"Per class; classes with fewer than {_MIN_HISTOGRAM} samples as tick marks" + not_shown
    )

    class_rows = [
        {
            "attack class": r.attack_class,
            "n": r.n,
            "APCER at threshold": _count_pct(r.apcer, r.n),
            "APCER at BPCER 5%": _count_pct(r.apcer_at_bpcer_5, r.n),
            "APCER at BPCER 10%": _count_pct(r.apcer_at_bpcer_10, r.n),
            "EER": _pct(r.eer),
        }
        for r in rates
    ]
    worst = max(rates, key=lambda r: (r.apcer if finite else r.eer, r.attack_class))
    totals = [
        {"measure": "BPCER at threshold", "value": _count_pct(bpcer, bonafide.size)},
        {"measure": f"bona fide samples ({BONAFIDE})", "value": bonafide.size},
        {
            "measure": "highest APCER at threshold (worst attack class)",
            "value": f"{_pct(worst.apcer)} ({worst.attack_class})" if finite else "n/a",
        },
    ]
    body = [
        _meta(generated, threshold, ""),
        _figures(
            [
                (
                    det_png,
                    "DET curves per attack class, probit axes. Grey: BPCER below one "
                    "error in this data; a rate of 0 is drawn on the axis edge.",
                    _FIG_W,
                ),
                (pooled_png, pooled_caption, _FIG_W),
            ]
        ),
        _figures([(hist_png, hist_caption, _FIG_W)]),
        _table("Per attack class", class_rows),
        _table("Bona fide and overall", totals),
        _table("Summary", _summary_rows(summary)),
        *(_table(t, rows) for t, rows in extra_tables),
    ]
    _write(path, title, body)


def write_pad_evaluation_report(
    path: Path,
    title: str,
    evaluation: PadEvaluation,
    *,
    voice: bool,
    generated: datetime | None = None,
) -> None:
    """The report of ``eval face-pad`` (per attack class) or ``eval voice-spoof`` (curves per
    attack family, ``TTS`` / ``VC`` / ...; a table per attack id), with the components table."""
    summary = evaluation.summary
    attacks = evaluation.attacks()
    labels = [_attack_family(a) for a in attacks] if voice else evaluation.labels()
    tables: list[Table] = []
    if voice:
        tables.append(
            (
                "Per attack id (each against all bona fide samples)",
                [
                    {
                        "attack id": attack,
                        "n": attacks.count(attack),
                        "APCER at threshold": summary["apcer_by_attack"].get(attack),
                        "EER": eer,
                    }
                    for attack, eer in summary["eer_by_attack"].items()
                ],
            )
        )
    tables.append(("Components: each check's score alone", _component_rows(summary, voice)))
    write_pad_report(
        path,
        title=title,
        scores=evaluation.scores(),
        labels=labels,
        threshold=float(summary["threshold"]),
        summary={k: v for k, v in summary.items() if not _nested(v)},
        extra_tables=tables,
        failed=evaluation.failed(),
        generated=generated,
    )


def _attack_family(attack: str) -> str:
    """``TTS:Tacotron2+PWG`` -> ``TTS``; bona fide and names without a prefix unchanged."""
    return attack.split(":", 1)[0] if ":" in attack else attack


def _nested(value: Any) -> bool:
    """A per-class or per-component block (a mapping of mappings or a per-group mapping of
    rates), shown in its own table rather than the summary; ``failures`` stays."""
    return isinstance(value, Mapping) and any(
        isinstance(v, Mapping | float) for v in value.values()
    )


def _component_rows(summary: Mapping[str, Any], voice: bool) -> list[dict[str, Any]]:
    rows = []
    for check, c in summary.get("components", {}).items():
        row: dict[str, Any] = {"check": check, "EER": c["eer"], "AUC": c["auc"]}
        if voice:
            row["APCER at BPCER 5%"] = c["apcer_at_bpcer_5"]
            worst = max(
                c["eer_by_attack"].items(), key=lambda kv: kv[1] if math.isfinite(kv[1]) else -1
            )
            row["worst attack (EER)"] = f"{worst[0]} ({_pct(worst[1])})"
        else:
            for name, rate in c["apcer_at_bpcer_5"].items():
                row[f"APCER at BPCER 5%: {name}"] = rate
        row["missing"] = c["n_missing"]
        rows.append(row)
    return rows


# -- plotting -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Point:
    name: str
    target_fmr: float | None
    threshold: float
    fmr: float
    fnmr: float
    used: bool


def _rates(genuine: FloatArray, impostor: FloatArray, threshold: float) -> tuple[float, float]:
    if not math.isfinite(threshold):
        return math.nan, math.nan
    return float(np.mean(impostor >= threshold)), float(np.mean(genuine < threshold))


def _measured_points(
    genuine: FloatArray,
    impostor: FloatArray,
    threshold: float,
    name: str,
    points: Sequence[OperatingPoint],
) -> list[_Point]:
    out = [
        _Point(
            p.name,
            p.target_fmr,
            p.threshold,
            *_rates(genuine, impostor, p.threshold),
            used=p.name == name if name else math.isclose(p.threshold, threshold, rel_tol=1e-6),
        )
        for p in points
    ]
    if math.isfinite(threshold) and not any(p.used for p in out):
        out.append(
            _Point(
                name or "threshold", None, threshold, *_rates(genuine, impostor, threshold), True
            )
        )
    return out


def _ok_mask(failed: npt.ArrayLike | None, n: int) -> npt.NDArray[np.bool_]:
    """True where a sample has a real score (``failed`` false or not given)."""
    if failed is None:
        return np.ones(n, bool)
    bad = np.asarray(failed).ravel().astype(bool)
    if bad.size != n:
        raise ValueError("failed flags and scores differ in length")
    return ~bad


def _use_agg() -> None:
    import matplotlib

    matplotlib.use("Agg")


def _axes(
    width: float = _FIG_W, height: float = _FIG_H, *, bottom: float = 0.6
) -> tuple[Figure, Axes]:
    """One axes with fixed margins in inches (room for tick labels and axis labels); a layout
    engine would fit them too, at nearly twice the drawing time."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    left, right, top = 0.85, 0.2, 0.35
    fig.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height
    )
    return fig, fig.add_subplot()


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI * _SCALE, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _lower_rate(n: int) -> float:
    """The lowest rate drawn: 0.1 %, or the decade below 1/n when the data resolve less."""
    if n <= 0:
        return 1e-3
    return max(1e-5, min(1e-3, 10.0 ** math.floor(math.log10(1.0 / n))))


def _upper_rate(eers: Iterable[float], *marks: tuple[float, float]) -> float:
    """50 % unless the curves or the marked points need more room."""
    worst = max([*eers, *(v for m in marks for v in m if math.isfinite(v))], default=0.0)
    return 0.5 if worst <= 0.3 else 0.95


def _probit(p: npt.ArrayLike | float, lo: float, hi: float) -> FloatArray:
    return np.asarray(norm.ppf(np.clip(np.asarray(p, dtype=np.float64), lo, hi)), np.float64)


def _det_ticks(lo: float, hi: float) -> list[float]:
    """Rates to label on a probit axis from ``lo`` to ``hi``, spaced so labels do not collide."""
    gap = _DET_TICK_GAP * float(norm.ppf(hi) - norm.ppf(lo))
    chosen: list[float] = []
    for level in _DET_TICKS:
        for t in level:
            if lo <= t <= hi and all(abs(norm.ppf(t) - norm.ppf(c)) >= gap for c in chosen):
                chosen.append(t)
    return sorted(chosen)


def _det_axes(
    ax: Axes, lo: float, hi: float, xlabel: str, ylabel: str, *, x_n: int = 0, y_n: int = 0
) -> None:
    """Probit axes from ``lo`` to ``hi``; rates below 1/``x_n`` or 1/``y_n`` (what ``x_n`` or
    ``y_n`` samples cannot resolve) are shaded."""
    ticks = _det_ticks(lo, hi)
    positions = [float(norm.ppf(t)) for t in ticks]
    names = [_pct(t) for t in ticks]
    limits = (float(norm.ppf(lo)), float(norm.ppf(hi)))
    ax.set_xticks(positions, names)
    ax.set_yticks(positions, names)
    ax.set_xlim(*limits)
    ax.set_ylim(*limits)
    if x_n and 1.0 / x_n > lo:
        ax.axvspan(limits[0], float(norm.ppf(min(1.0 / x_n, hi))), color=_UNRESOLVED, lw=0)
    if y_n and 1.0 / y_n > lo:
        ax.axhspan(limits[0], float(norm.ppf(min(1.0 / y_n, hi))), color=_UNRESOLVED, lw=0)
    ax.plot(limits, limits, color="grey", linestyle="--", linewidth=0.8, label="_equal error")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=45)
    ax.grid(True, alpha=0.3)
    ax.set_aspect("equal")


def _mark_points(
    ax: Axes,
    points: Sequence[_Point],
    here: tuple[float, float],
    lo: float,
    *,
    roc: bool,
    hi: float = 1.0,
) -> None:
    """The used operating point as a large black dot, the pack's others as small circles."""
    for p in points:
        if p.used:
            continue
        x, y = (p.fmr, 1.0 - p.fnmr) if roc else (p.fmr, p.fnmr)
        px = float(np.clip(x, lo, hi)) if roc else float(_probit(x, lo, hi))
        py = y if roc else float(_probit(y, lo, hi))
        ax.plot(px, py, "o", mfc="none", color="grey", markersize=6, clip_on=False, zorder=4)
        ax.annotate(
            p.name, (px, py), xytext=(4, -10), textcoords="offset points", fontsize=7, color="grey"
        )
    used = next((p for p in points if p.used), None)
    if used is None or not math.isfinite(here[0]):
        return
    fmr, fnmr = here
    label = f"{used.name} (t={used.threshold:.4f}): FMR {_pct(fmr)}, FNMR {_pct(fnmr)}"
    if roc:
        ax.plot(
            float(np.clip(fmr, lo, 1.0)),
            1.0 - fnmr,
            "o",
            color=_MARK,
            markersize=7,
            label=label,
            clip_on=False,
            zorder=5,
        )
    else:
        ax.plot(
            float(_probit(fmr, lo, hi)),
            float(_probit(fnmr, lo, hi)),
            "o",
            color=_MARK,
            markersize=7,
            label=label,
            clip_on=False,
            zorder=5,
        )


def _histograms(
    ax: Axes,
    groups: Sequence[tuple[str, FloatArray, str]],
    threshold: float,
    *,
    filled: bool,
    rugs: Sequence[tuple[str, FloatArray, str]] = (),
) -> None:
    """Density histograms on shared bins, the threshold as a dashed line and, optionally, small
    groups of scores as tick marks along the bottom (too few for a histogram of their own)."""
    values = [g[np.isfinite(g)] for _, g, _ in groups]
    rug_values = [(label, g[np.isfinite(g)], colour) for label, g, colour in rugs]
    every = np.concatenate([*values, *(g for _, g, _ in rug_values)] or [np.zeros(0)])
    if every.size == 0:
        return
    low, high = float(every.min()), float(every.max())
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    bins = [float(b) for b in np.linspace(low, high, 41)]
    for (label, _, colour), data in zip(groups, values, strict=True):
        if data.size == 0:
            continue
        if filled:
            ax.hist(data, bins=bins, density=True, color=colour, alpha=0.45, label=label)
        else:
            ax.hist(
                data,
                bins=bins,
                density=True,
                histtype="step",
                linewidth=1.6,
                color=colour,
                label=label,
            )
    for label, data, colour in rug_values:
        if not data.size:
            continue
        ax.plot(
            data,
            np.zeros(data.size),
            "|",
            color=colour,
            markersize=14,
            markeredgewidth=1.5,
            label=label,
            clip_on=False,
            zorder=5,
        )
    if math.isfinite(threshold):
        ax.axvline(
            threshold,
            color=_MARK,
            linestyle="--",
            linewidth=1.4,
            label=f"threshold {threshold:.4f}",
        )
    ax.set_xlabel("score")
    ax.set_ylabel("density")
    ax.legend(loc="best", fontsize="small")
    ax.grid(True, alpha=0.3)


# -- HTML ---------------------------------------------------------------------------------------
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem 2rem;
       color: #222; max-width: 1200px; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.15rem; margin-top: 1.8rem; border-bottom: 1px solid #ddd; }
.meta { color: #555; margin-top: 0; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; text-align: center; }
table { border-collapse: collapse; font-size: 0.9rem; margin-top: 0.5rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
"""


def _write(path: Path, title: str, body: Sequence[str]) -> None:
    doc = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
    write_private_text(Path(path), doc)  # subject names, file paths and scores: owner only


def _meta(generated: datetime | None, threshold: float, operating_point: str) -> str:
    when = (generated or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    point = f" (operating point {operating_point})" if operating_point else ""
    shown = f"{threshold:.4f}" if math.isfinite(threshold) else "n/a"
    return (
        f'<p class="meta">Generated {html.escape(when)} · threshold {html.escape(shown)}'
        f"{html.escape(point)} · a score at or above the threshold is accepted</p>"
    )


def _figures(items: Sequence[tuple[str, str, float]]) -> str:
    parts = [
        f'<figure style="width: {round(width * _DPI)}px">'
        f'<img alt="{html.escape(caption)}" width="{round(width * _DPI)}" '
        f'src="data:image/png;base64,{png}"><figcaption>{html.escape(caption)}</figcaption>'
        "</figure>"
        for png, caption, width in items
    ]
    return '<div class="plots">' + "".join(parts) + "</div>"


def _table(title: str, rows: Rows) -> str:
    if not rows:
        return ""
    columns: list[str] = []
    for row in rows:
        columns += [str(k) for k in row if str(k) not in columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    lines = []
    for row in rows:
        keyed = {str(k): v for k, v in row.items()}
        cells = "".join(_cell(keyed.get(c, "")) for c in columns)
        lines.append(f"<tr>{cells}</tr>")
    return (
        f"<h2>{html.escape(title)}</h2>\n<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(lines)
        + "\n</tbody>\n</table>"
    )


def _cell(value: Any) -> str:
    numeric = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )
    css = ' class="num"' if numeric else ""
    return f"<td{css}>{html.escape(_fmt(value))}</td>"


def _summary_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"measure": str(k), "value": v} for k, v in summary.items()]


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        return f"{v:.4g}" if math.isfinite(v) else "n/a"
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value) or "—"
    return str(value)


def _pct(rate: float) -> str:
    if not math.isfinite(rate):
        return "n/a"
    return f"{rate * 100:.3g}%"


def _count_pct(rate: float, n: int) -> str:
    """``rate`` of ``n`` with its count and 95 % Wilson interval, e.g. "32% (8/25; 95% CI
    17.2-51.6%)": with tens of samples a rate is known only to within tens of points."""
    if not math.isfinite(rate):
        return "n/a"
    count = round(rate * n)
    low, high = metrics.wilson_interval(count, n)
    return f"{_pct(rate)} ({count}/{n}; 95% CI {low * 100:.3g}\u2013{_pct(high)})"
