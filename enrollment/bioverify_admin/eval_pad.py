"""``eval face-pad`` and ``eval voice-spoof``: presentation-attack detection figures
(ISO/IEC 30107-3) of the service's liveness checks, measured over gRPC.

Every labelled sample goes through ``LivenessService.CheckLiveness`` on its own (``image`` for
faces, ``clip`` for voice). Bona fide is the positive class and the score is
``reply.liveness.score`` (higher = more likely bona fide).

- ``bpcer`` / ``apcer`` are measured at the service's operating threshold, i.e. from
  ``reply.liveness.live``, each with its 95 % Wilson interval (``bpcer_ci95``,
  ``apcer_ci95``: [low, high]): with a few dozen samples per class a rate is known only
  to within tens of points. ``apcer_at_bpcer_5`` / ``_10`` use the threshold chosen on the bona
  fide scores of this data so that BPCER is at most 5 % / 10 % (the strictest such threshold).
- ``eer`` and ``auc`` are threshold-free; per attack class (face) or attack id (voice) they
  compare that class's attacks with all bona fide samples.
- ``components``: the same figures for each check in ``reply.liveness.checks`` scored alone
  (ISO/IEC 30107-3 figures per component); checks the service marks informational (fusion
  weight 0 in every reply, neutral score) are only named, in ``informational_checks``.

``eval voice-spoof --telephony`` sends every clip as a phone line carries it (mono, 8 kHz,
G.711 mu-law, declared ``MULAW`` at 8000 Hz), like ``eval speaker-trials --telephony``: the
figures are those of the service's telephone-band model.

Samples the service could not assess (no face, several faces, corrupt image, too little speech,
unreadable file, ...) count in ``n_failed`` (with their reasons in ``failures``) and are treated
as **not live**: they score ``FAILED_SCORE`` (below every real score, so rejected at any
threshold) in every figure, and in every component. A failed bona fide sample is therefore a
BPCER error and a failed attack a correct rejection, as a deployment that refuses what it cannot
assess would behave. A check missing from an otherwise assessed reply also scores
``FAILED_SCORE`` for that component (counted in the component's ``n_missing``).

Errors that say the whole evaluation cannot work (the service runs no such check, refuses the
token, ...) stop it instead: see :class:`PadUnavailable`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import soundfile as sf

from bioverify import metrics
from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.packs import (
    builtin_manifest_data,
    fitting_digest,
    fitting_digests,
    fitting_samples_digest,
)
from bioverify.v1 import liveness_pb2
from bioverify_admin.datasets import BONAFIDE, FACE_ATTACK_CLASSES, PadSample
from bioverify_admin.eval_voice import clip_from_bytes

FAILED_SCORE = -1.0  # a sample the service could not assess: not live at any threshold
BPCER_TARGETS = ((0.05, "apcer_at_bpcer_5"), (0.10, "apcer_at_bpcer_10"))
# Status codes that mean no sample can be assessed: stop rather than count every one as failed.
FATAL_CODES = (
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAVAILABLE,
)


class PadUnavailable(Exception):
    """The service cannot run this evaluation at all (no liveness pack, refused, down)."""

    def __init__(self, error: BioverifyClientError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class PadResult:
    sample: PadSample
    score: float | None  # None: the service could not assess the sample
    live: bool
    threshold: float | None
    checks: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0
    weights: dict[str, float] = field(default_factory=dict)  # each check's fusion weight
    failure: str = ""
    digest: str = ""  # ``fitting_digest`` of the sample's bytes ("" when unreadable)


@dataclass(frozen=True, eq=False)
class PadEvaluation:
    """A summary and the per-sample results it was computed from (for reports)."""

    summary: dict[str, Any]
    results: tuple[PadResult, ...]

    def scores(self) -> npt.NDArray[np.float64]:
        return _scores(self.results, None)

    def failed(self) -> npt.NDArray[np.bool_]:
        return np.array([r.score is None for r in self.results], dtype=bool)

    def labels(self) -> list[str]:
        return [r.sample.label for r in self.results]

    def attacks(self) -> list[str]:
        """``bonafide`` or the finest attack name (voice: the attack id)."""
        return [BONAFIDE if r.sample.bonafide else r.sample.attack for r in self.results]


# -- in-sample warning ----------------------------------------------------------------------------
def fitting_overlap(results: Sequence[PadResult], fitted: frozenset[str] | None) -> int | None:
    """How many samples (by content) are among the ``fitted`` digests of the samples the
    served pack was fitted on; None when the pack does not say what it was fitted on."""
    if fitted is None:
        return None
    return sum(bool(r.digest) and r.digest in fitted for r in results)


def served_pack_fitting(client: BioverifyClient, role: str) -> tuple[str, frozenset[str] | None]:
    """(pack id, fitting digests) of the ``role`` pack the service runs, when it was fitted on
    the samples the manifest shipped with this tool names; digests None when unknown (another
    pack, or one refitted on other data under the same id)."""
    served = next((m for m in client.service_info().models if m.role == role), None)
    if served is None:
        return "", None
    shipped = builtin_manifest_data(served.pack)
    if shipped is None:
        return served.pack, None
    if served.fitting_samples_sha256:
        same_fit = fitting_samples_digest(shipped) == served.fitting_samples_sha256
    else:  # a service that does not say: trust the pack's id and version
        same_fit = str(shipped.get("version", "1")) == served.version
    if not same_fit:
        return served.pack, None
    return served.pack, fitting_digests(shipped)


def in_sample_figures(
    results: Sequence[PadResult], client: BioverifyClient, role: str
) -> dict[str, Any]:
    """``n_in_fitting_data`` (None when unknown) and, when any sample was used to fit the
    served pack, ``in_sample_warning``: those figures are optimistic."""
    pack, fitted = served_pack_fitting(client, role)
    found = fitting_overlap(results, fitted)
    out: dict[str, Any] = {"n_in_fitting_data": found}
    if found:
        out["in_sample_warning"] = (
            f"{found} of {len(results)} samples were used to fit the service's {pack} pack, so "
            "these figures are in-sample and optimistic; judge the pack on data it was not "
            "fitted on (its cross-validated figures are in its manifest)"
        )
    return out


# -- calling the service --------------------------------------------------------------------------
Send = Callable[[bytes], Callable[[], liveness_pb2.CheckLivenessResponse]]
"""A sample's bytes -> the CheckLiveness call to make (building it may fail on a bad file)."""


def _check(sample: PadSample, prepare: Send) -> PadResult:
    try:
        data = sample.path.read_bytes()
    except OSError as exc:
        return PadResult(sample, None, False, None, failure=f"UNREADABLE_FILE: {exc.strerror}")
    return replace(_assess(sample, data, prepare), digest=fitting_digest(data))


def _assess(sample: PadSample, data: bytes, prepare: Send) -> PadResult:
    try:
        call = prepare(data)
    except (sf.LibsndfileError, ValueError) as exc:  # --telephony decodes the file here
        return PadResult(sample, None, False, None, failure=f"UNREADABLE_FILE: {exc}")
    started = time.perf_counter()
    try:
        reply = call()
    except BioverifyClientError as exc:
        if exc.code in FATAL_CODES:
            raise PadUnavailable(exc) from exc
        latency = (time.perf_counter() - started) * 1e3
        return PadResult(sample, None, False, None, latency_ms=latency, failure=_reason(exc))
    latency = (time.perf_counter() - started) * 1e3
    report = reply.liveness
    if not report.checked:
        return PadResult(sample, None, False, None, latency_ms=latency, failure="NOT_CHECKED")
    return PadResult(
        sample,
        float(report.score),
        bool(report.live),
        float(report.threshold),
        {c.name: float(c.score) for c in report.checks},
        latency,
        weights={c.name: float(c.weight) for c in report.checks},
    )


def _reason(exc: BioverifyClientError) -> str:
    return exc.reason or exc.code.name


def _run(samples: Sequence[PadSample], prepare: Send, workers: int) -> list[PadResult]:
    if not samples:
        return []
    # The first sample alone: a service without the check fails fast, before the pool starts.
    first = _check(samples[0], prepare)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        rest = list(pool.map(lambda s: _check(s, prepare), samples[1:]))
    return [first, *rest]


def run_face_pad(
    client: BioverifyClient, samples: Sequence[PadSample], *, workers: int = 1
) -> PadEvaluation:
    def prepare(data: bytes) -> Callable[[], liveness_pb2.CheckLivenessResponse]:
        return lambda: client.check_liveness(image=data)

    results = _run(samples, prepare, workers)
    return PadEvaluation(summarise_face(results), tuple(results))


def run_voice_spoof(
    client: BioverifyClient,
    samples: Sequence[PadSample],
    *,
    workers: int = 1,
    telephony: bool = False,
) -> PadEvaluation:
    """``telephony``: send every clip as 8 kHz G.711 mu-law (see :func:`clip_from_bytes`)."""

    def prepare(data: bytes) -> Callable[[], liveness_pb2.CheckLivenessResponse]:
        clip = clip_from_bytes(client, data, telephony)
        return lambda: client.check_liveness(clip=clip)

    results = _run(samples, prepare, workers)
    summary = summarise_voice(results)
    summary["telephony"] = telephony
    return PadEvaluation(summary, tuple(results))


# -- figures --------------------------------------------------------------------------------------
def _scores(results: Sequence[PadResult], check: str | None) -> npt.NDArray[np.float64]:
    """The fused score (``check`` None) or one check's score; ``FAILED_SCORE`` where absent."""
    values = [
        (r.score if check is None else r.checks.get(check)) if r.score is not None else None
        for r in results
    ]
    return np.array([FAILED_SCORE if v is None else v for v in values], dtype=np.float64)


def _rate(flags: Sequence[bool]) -> float:
    return float(np.mean(flags)) if len(flags) else float("nan")


def _interval(flags: Sequence[bool]) -> list[float]:
    """95 % Wilson interval of ``_rate(flags)``: [low, high] (NaN for no samples)."""
    return list(metrics.wilson_interval(int(sum(flags)), len(flags)))


def _single_threshold(results: Sequence[PadResult]) -> float:
    found = {r.threshold for r in results if r.threshold is not None}
    return found.pop() if len(found) == 1 else float("nan")


def _vs_bonafide(
    scores: npt.NDArray[np.float64], bona: npt.NDArray[np.bool_], members: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Scores and labels of all bona fide samples together with one group of attacks."""
    keep = bona | members
    return scores[keep], bona[keep]


def _attack_figures(
    scores: npt.NDArray[np.float64], bona: npt.NDArray[np.bool_], members: npt.NDArray[np.bool_]
) -> dict[str, float]:
    s, y = _vs_bonafide(scores, bona, members)
    if not y.any() or y.all():
        nan = float("nan")
        return {"eer": nan, "auc": nan, **{key: nan for _, key in BPCER_TARGETS}}
    out = {key: metrics.apcer_at_bpcer(s, y, target) for target, key in BPCER_TARGETS}
    out["eer"] = metrics.eer(s, y)
    out["auc"] = metrics.auc(s, y)
    return out


def _common(results: Sequence[PadResult]) -> dict[str, Any]:
    bona = [r for r in results if r.sample.bonafide]
    attacks = [r for r in results if not r.sample.bonafide]
    scored = [r.latency_ms for r in results if r.score is not None]
    scores = _scores(results, None)
    labels = np.array([r.sample.bonafide for r in results], dtype=bool)
    both = bool(labels.any() and not labels.all())
    return {
        "n": len(results),
        "n_failed": sum(r.score is None for r in results),
        "failures": dict(Counter(r.failure for r in results if r.failure)),
        "n_bonafide": len(bona),
        "n_attack": len(attacks),
        "eer": metrics.eer(scores, labels) if both else float("nan"),
        "auc": metrics.auc(scores, labels) if both else float("nan"),
        "bpcer": _rate([not r.live for r in bona]),
        "bpcer_ci95": _interval([not r.live for r in bona]),
        "threshold": _single_threshold(results),
        "mean_latency_ms": float(np.mean(scored)) if scored else float("nan"),
        "p95_latency_ms": float(np.percentile(scored, 95)) if scored else float("nan"),
    }


def _check_names(results: Sequence[PadResult]) -> tuple[list[str], list[str]]:
    """(scored checks, informational checks): a check whose fusion weight is 0 in every reply
    is informational (the service reports it, with a neutral score, but does not use it)."""
    names: dict[str, bool] = {}
    for r in results:
        for name, weight in r.weights.items():
            names[name] = names.get(name, False) or weight != 0.0
    return [n for n, used in names.items() if used], [n for n, used in names.items() if not used]


def _components(
    results: Sequence[PadResult],
    bona: npt.NDArray[np.bool_],
    groups: Sequence[str],
    *,
    by: str,
) -> dict[str, Any]:
    scored, informational = _check_names(results)
    return {
        "components": {c: _component(results, c, bona, groups, by=by) for c in scored},
        "informational_checks": informational,
    }


def summarise_face(results: Sequence[PadResult]) -> dict[str, Any]:
    out = _common(results)
    scores = _scores(results, None)
    bona = np.array([r.sample.bonafide for r in results], dtype=bool)
    labels = [r.sample.label for r in results]
    classes = [c for c in FACE_ATTACK_CLASSES if c in labels]
    classes += sorted({r.sample.label for r in results} - {BONAFIDE, *classes})
    apcers = []
    for name in classes:
        of_class = [r for r in results if r.sample.label == name]
        apcer = _rate([r.live for r in of_class])  # from the service's decisions
        apcers.append(apcer)
        members = np.array([r.sample.label == name for r in results], dtype=bool)
        out[name] = {
            "n": len(of_class),
            "n_failed": sum(r.score is None for r in of_class),
            "apcer": apcer,
            "apcer_ci95": _interval([r.live for r in of_class]),
            **_attack_figures(scores, bona, members),
        }
    out["max_apcer"] = max(apcers) if apcers else float("nan")
    out.update(_components(results, bona, classes, by="label"))
    return out


def summarise_voice(results: Sequence[PadResult]) -> dict[str, Any]:
    out = _common(results)
    scores = _scores(results, None)
    bona = np.array([r.sample.bonafide for r in results], dtype=bool)
    spoofs = [r for r in results if not r.sample.bonafide]
    out["apcer"] = _rate([r.live for r in spoofs])
    out["apcer_ci95"] = _interval([r.live for r in spoofs])
    pooled = _attack_figures(scores, bona, ~bona)
    out["apcer_at_bpcer_5"] = pooled["apcer_at_bpcer_5"]
    out["apcer_at_bpcer_10"] = pooled["apcer_at_bpcer_10"]
    attack_ids = sorted({r.sample.attack for r in spoofs})
    by_attack = ("eer", "auc", *(key for _, key in BPCER_TARGETS))
    for figure in by_attack:
        out[f"{figure}_by_attack"] = {}
    out["apcer_by_attack"] = {}
    for attack in attack_ids:
        members = np.array([r.sample.attack == attack for r in results], dtype=bool) & ~bona
        figures = _attack_figures(scores, bona, members)
        for figure in by_attack:
            out[f"{figure}_by_attack"][attack] = figures[figure]
        of_attack = [r.live for r in spoofs if r.sample.attack == attack]
        out["apcer_by_attack"][attack] = _rate(of_attack)
    out.update(_components(results, bona, attack_ids, by="attack"))
    return out


def _component(
    results: Sequence[PadResult],
    check: str,
    bona: npt.NDArray[np.bool_],
    groups: Sequence[str],
    *,
    by: str,
) -> dict[str, Any]:
    """EER, AUC and APCER at BPCER 5 % of one check's score alone, pooled and per group."""
    scores = _scores(results, check)
    both = bool(bona.any() and not bona.all())
    pooled = _attack_figures(scores, bona, ~bona)
    per_group: dict[str, float] = {}
    eer_by: dict[str, float] = {}
    for name in groups:
        members = ~bona & np.array(
            [(r.sample.label if by == "label" else r.sample.attack) == name for r in results]
        )
        figures = _attack_figures(scores, bona, members)
        per_group[name] = figures["apcer_at_bpcer_5"]
        eer_by[name] = figures["eer"]
    out: dict[str, Any] = {
        "n_missing": sum(r.score is not None and check not in r.checks for r in results),
        "eer": pooled["eer"],
        "auc": metrics.auc(scores, bona) if both else float("nan"),
    }
    if by == "label":
        out["apcer_at_bpcer_5"] = per_group
        out["eer_by_class"] = eer_by
    else:
        out["apcer_at_bpcer_5"] = pooled["apcer_at_bpcer_5"]
        out["apcer_at_bpcer_5_by_attack"] = per_group
        out["eer_by_attack"] = eer_by
    return out
