"""Fit and validate the voice anti-spoofing fusion on a labelled spoofing set.

Reads ``voice_spoof_labels.tsv`` (columns path, label, attack_id, ...; groups are the first
two path components), measures every clip (Silero VAD, AASIST through onnxruntime, the
signals of :mod:`~bioverify.antispoof.voice_signals`), then:

* per component: EER/AUC of the raw AASIST score, and of each feature alone;
* candidate fusions, each validated leave-one-attack-out (every spoofing system in turn is
  unseen in training, with a share of bona fide held out too), pooled, per group and per
  attack, plus cross-corpus (train on one group, test on the other);
* the choice among candidates by nested leave-one-attack-out (the choice itself is
  cross-validated, so the reported figure includes it);
* the final model fitted on everything, its threshold at the pooled out-of-fold EER, and
  BPCER/APCER there; written as JSON (and into the pack manifest with ``--pack``).

Usage::

    python -m bioverify.antispoof.fit_voice_fusion --data-dir ../shared/data \\
        --onnx /tmp/bioverify-packs/voice-antispoof/aasist/AASIST.onnx \\
        --out /tmp/voice-fusion.json --pack service/bioverify/packs/voice-antispoof.json

``--telephony`` fits the telephone-band fusion instead (the pack's ``fusion_narrowband``
block, used by the checker for narrowband input): every clip, bona fide and spoof alike,
goes through 8 kHz G.711 mu-law and back before it is measured, the candidates use only
in-band features (:data:`NARROWBAND_CANDIDATES`), and the threshold is set at the
out-of-fold BPCER of the wideband fusion (so phone callers are rejected as often as others).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit

from bioverify.antispoof.fusion import (
    CrossValidation,
    FusionConfig,
    LogisticFusion,
    balanced_weights,
    leave_one_attack_out,
    platt,
    selecting_trainer,
)
from bioverify.antispoof.voice_checker import AASIST_CLIP, AASIST_FEATURE
from bioverify.antispoof.voice_signals import SIGNAL_NAMES
from bioverify.metrics import auc, eer, error_rates_at
from bioverify.packs import fitting_samples_block, sha256_file

FEATURES: tuple[str, ...] = (AASIST_FEATURE, *SIGNAL_NAMES)

_VOCODER = (AASIST_FEATURE, "hf_contrast", "hf_texture")
_CORE = (*_VOCODER, "mel_modulation", "f0_variation")
_WIDE = (
    *_CORE,
    "spectral_contrast",
    "hf_ratio",
    "hf_cliff",
    "f0_perturbation",
    "amp_perturbation",
    "lf_ratio",
)
CANDIDATES: tuple[FusionConfig, ...] = tuple(
    FusionConfig(features, l2) for features in (_VOCODER, _CORE, _WIDE) for l2 in (0.1, 1.0)
)
"""Fusions considered, simplest first. The informational signals that need pauses
(noise floor, digital zeros, reverberation tail) are left out: the development clips are
trimmed demo excerpts with too few pauses to learn them from."""

_NB_PROSODY = (AASIST_FEATURE, "f0_variation")
_NB_CORE = (*_NB_PROSODY, "nb_contrast", "nb_texture")
_NB_WIDE = (*_NB_CORE, "nb_modulation", "f0_perturbation", "amp_perturbation")
NARROWBAND_CANDIDATES: tuple[FusionConfig, ...] = tuple(
    FusionConfig(features, l2)
    for features in (_NB_PROSODY, _NB_CORE, _NB_WIDE)
    for l2 in (0.1, 1.0)
)
"""Telephone-band fusions (``--telephony``): only features meaningful below 3.4 kHz, i.e.
AASIST on the round-tripped audio, prosody and phonation, and the in-band spectral signals.
Left out besides the pause signals: everything above 4 kHz, ``spectral_contrast`` (its top
band straddles the telephone band edge) and ``lf_ratio`` (real phone lines high-pass the
audio at 300 Hz, which the round trip does not reproduce)."""


@dataclass(frozen=True)
class Dataset:
    paths: tuple[str, ...]
    x: npt.NDArray[np.float64]  # (n, len(FEATURES))
    bonafide: npt.NDArray[np.bool_]
    attack: npt.NDArray[np.str_]
    group: npt.NDArray[np.str_]
    seconds: float
    aasist_s: float
    signals_s: float
    vad_s: float


def measure(
    data_dir: Path, labels_tsv: Path, onnx: Path, threads: int = 1, *, telephony: bool = False
) -> Dataset:
    """Measure every clip; with ``telephony`` each clip (bona fide and spoof alike) first goes
    through 8 kHz G.711 mu-law and back (``bandwidth.telephony_round_trip``)."""
    import soundfile as sf

    from bioverify.antispoof.aasist_onnx import AasistDetector
    from bioverify.antispoof.bandwidth import telephony_round_trip
    from bioverify.antispoof.voice_signals import compute_signals
    from bioverify.voice.vad_silero import SileroVad

    detector = AasistDetector(onnx, threads=threads)
    vad = SileroVad(threads=threads)
    with labels_tsv.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    paths, feats, bona, att, grp = [], [], [], [], []
    seconds = t_aasist = t_signals = t_vad = 0.0
    for row in rows:
        wave, rate = sf.read(data_dir / row["path"], dtype="float32", always_2d=False)
        if rate != 16000 or wave.ndim != 1:
            raise SystemExit(f"{row['path']}: expected 16 kHz mono, got {rate} Hz")
        if telephony:
            wave = telephony_round_trip(wave)
        seconds += wave.size / 16000
        t0 = time.perf_counter()
        segments = vad.speech_segments(wave)
        t1 = time.perf_counter()
        aasist = float(np.clip(detector.log_odds(wave), -AASIST_CLIP, AASIST_CLIP))
        t2 = time.perf_counter()
        signals = compute_signals(wave, segments)
        t3 = time.perf_counter()
        t_vad += t1 - t0
        t_aasist += t2 - t1
        t_signals += t3 - t2
        paths.append(row["path"])
        feats.append([aasist, *(signals[n].value for n in SIGNAL_NAMES)])
        bona.append(row["label"] == "bonafide")
        att.append(row["attack_id"] if row["label"] != "bonafide" else "-")
        grp.append("/".join(Path(row["path"]).parts[:2]))
    return Dataset(
        paths=tuple(paths),
        x=np.asarray(feats, dtype=np.float64),
        bonafide=np.asarray(bona, dtype=bool),
        attack=np.asarray(att),
        group=np.asarray(grp),
        seconds=seconds,
        aasist_s=t_aasist,
        signals_s=t_signals,
        vad_s=t_vad,
    )


def save_cache(ds: Dataset, path: Path) -> None:
    np.savez(
        path,
        paths=np.asarray(ds.paths),
        x=ds.x,
        bonafide=ds.bonafide,
        attack=ds.attack,
        group=ds.group,
        features=np.asarray(FEATURES),
        timing=np.asarray([ds.seconds, ds.aasist_s, ds.signals_s, ds.vad_s]),
    )


def load_cache(path: Path) -> Dataset:
    with np.load(path) as z:
        if tuple(z["features"].tolist()) != FEATURES:
            raise SystemExit(f"{path}: cached features differ from the current ones; remeasure")
        timing = z["timing"]
        return Dataset(
            paths=tuple(z["paths"].tolist()),
            x=z["x"],
            bonafide=z["bonafide"],
            attack=z["attack"],
            group=z["group"],
            seconds=float(timing[0]),
            aasist_s=float(timing[1]),
            signals_s=float(timing[2]),
            vad_s=float(timing[3]),
        )


# --------------------------------------------------------------------------- reporting


def _eer_or_nan(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    try:
        return eer(scores, labels)
    except ValueError:
        return math.nan


def _short(group: str) -> str:
    return group.split("/")[-1]


def cv_summary(cv: CrossValidation, ds: Dataset) -> dict[str, Any]:
    scores, labels = cv.pooled()
    groups = np.concatenate([ds.group[ds.bonafide], ds.group[~ds.bonafide]])
    out: dict[str, Any] = {"eer": eer(scores, labels), "auc": auc(scores, labels)}
    for g in sorted(set(ds.group.tolist())):
        m = groups == g
        out[f"eer_{_short(g)}"] = _eer_or_nan(scores[m], labels[m])
    out["per_attack"] = {a: _eer_or_nan(*cv.per_attack(a)) for a in cv.attacks}
    return out


def eer_threshold(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Threshold (on ``scores``) where APCER and BPCER are closest, midway between scores."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    candidates = np.unique(s)
    mids = np.concatenate([[candidates[0] - 1e-6], (candidates[:-1] + candidates[1:]) / 2])
    best, gap = float(mids[0]), math.inf
    for t in mids:
        apcer, bpcer = error_rates_at(s, y, float(t))
        if abs(apcer - bpcer) < gap - 1e-12:
            best, gap = float(t), abs(apcer - bpcer)
    return best


def cross_corpus(ds: Dataset, config: FusionConfig) -> dict[str, float]:
    """Train on one group, test on the other (every attack and bona fide clip unseen)."""
    out = {}
    groups = sorted(set(ds.group.tolist()))
    for train_g in groups:
        for test_g in groups:
            if train_g == test_g:
                continue
            tr, te = ds.group == train_g, ds.group == test_g
            model = config.fit(ds.x[tr], ds.bonafide[tr], ds.group[tr], FEATURES)
            cols = [FEATURES.index(f) for f in config.features]
            scores = model.log_odds_matrix(ds.x[te][:, cols])
            out[f"{_short(train_g)}->{_short(test_g)}"] = eer(scores, ds.bonafide[te])
    return out


def _fmt(v: float) -> str:
    return "  -  " if not math.isfinite(v) else f"{100 * v:5.1f}"


def print_row(name: str, summary: dict[str, Any], groups: Sequence[str]) -> None:
    cells = " ".join(_fmt(summary[f"eer_{_short(g)}"]) for g in groups)
    print(f"{name:34s} {_fmt(summary['eer'])} {summary['auc']:5.2f} {cells}")


def bpcer_threshold(scores: npt.ArrayLike, labels: npt.ArrayLike, target: float) -> float:
    """The highest threshold (midway between scores) whose BPCER is at most ``target``: the
    most spoofs caught for that share of bona fide rejected."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    candidates = np.unique(s)
    mids = np.concatenate([[candidates[0] - 1e-6], (candidates[:-1] + candidates[1:]) / 2])
    best = float(mids[0])
    for t in mids:
        _, bpcer = error_rates_at(s, y, float(t))
        if bpcer <= target + 1e-12:
            best = float(t)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fit the voice anti-spoofing fusion.")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--labels", type=Path, help="default: DATA_DIR/voice_spoof_labels.tsv")
    parser.add_argument("--onnx", type=Path, required=True, help="exported AASIST.onnx")
    parser.add_argument("--out", type=Path, help="write the fitted fusion JSON here")
    parser.add_argument("--pack", type=Path, help="update this pack manifest's fusion/files")
    parser.add_argument("--pack-file-path", default="aasist/AASIST.onnx")
    parser.add_argument("--cache", type=Path, help="reuse/store measured features (.npz)")
    parser.add_argument("--no-nested", action="store_true", help="skip nested selection")
    parser.add_argument(
        "--telephony",
        action="store_true",
        help="fit the telephone-band fusion (pack block fusion_narrowband): every clip goes "
        "through 8 kHz G.711 mu-law and back first, and only in-band features are used",
    )
    parser.add_argument(
        "--bpcer-target",
        type=float,
        help="set the threshold at this out-of-fold BPCER instead of the EER point (default "
        "with --telephony: the BPCER of the pack's wideband fusion at its threshold)",
    )
    args = parser.parse_args(argv)
    telephony: bool = args.telephony
    candidates = NARROWBAND_CANDIDATES if telephony else CANDIDATES
    block = "fusion_narrowband" if telephony else "fusion"
    bpcer_target: float | None = args.bpcer_target
    if bpcer_target is None and telephony:
        if args.pack is None:
            raise SystemExit("--telephony needs --pack (for the wideband BPCER) or --bpcer-target")
        wide = json.loads(args.pack.read_text(encoding="utf-8"))["fusion"]["validation"]
        bpcer_target = float(wide["bpcer_at_threshold"])

    if args.cache and args.cache.is_file():
        ds = load_cache(args.cache)
    else:
        labels = args.labels or args.data_dir / "voice_spoof_labels.tsv"
        ds = measure(args.data_dir, labels, args.onnx, telephony=telephony)
        if args.cache:
            save_cache(ds, args.cache)
    if telephony:
        print("telephony: every clip through 8 kHz G.711 mu-law and back")
    groups = sorted(set(ds.group.tolist()))
    n_b, n_s = int(ds.bonafide.sum()), int((~ds.bonafide).sum())
    print(f"{len(ds.paths)} clips ({n_b} bona fide, {n_s} spoof), {ds.seconds:.0f} s of audio")
    print(
        "latency per second of audio (1 thread): "
        f"AASIST {1000 * ds.aasist_s / ds.seconds:.0f} ms, signals "
        f"{1000 * ds.signals_s / ds.seconds:.0f} ms, VAD {1000 * ds.vad_s / ds.seconds:.1f} ms"
    )

    header = "EER%  AUC  " + " ".join(f"{_short(g)[:5]:>5s}" for g in groups)
    print(f"\nComponents alone (raw scores, no fitting)   {header}")
    raw = ds.x[:, 0]
    summary: dict[str, Any] = {"eer": eer(raw, ds.bonafide), "auc": auc(raw, ds.bonafide)}
    for g in groups:
        m = ds.group == g
        summary[f"eer_{_short(g)}"] = eer(raw[m], ds.bonafide[m])
    print_row("aasist (log-odds)", summary, groups)

    print(f"\nOne feature, leave-one-attack-out         {header}")
    single: dict[str, dict[str, Any]] = {}
    for name in FEATURES:
        config = FusionConfig((name,), 1.0)
        cv = leave_one_attack_out(ds.x, ds.bonafide, ds.attack, ds.group, config.trainer(FEATURES))
        single[name] = cv_summary(cv, ds)
        print_row(name, single[name], groups)

    print(f"\nFusions, leave-one-attack-out             {header}  cross-corpus")
    results: dict[FusionConfig, dict[str, Any]] = {}
    cvs: dict[FusionConfig, CrossValidation] = {}
    for config in candidates:
        cv = leave_one_attack_out(ds.x, ds.bonafide, ds.attack, ds.group, config.trainer(FEATURES))
        cvs[config] = cv
        results[config] = cv_summary(cv, ds)
        xc = cross_corpus(ds, config)
        label = f"{len(config.features)} feats l2={config.l2}"
        tail = "  " + " ".join(f"{k} {_fmt(v)}" for k, v in xc.items())
        cells = " ".join(_fmt(results[config][f"eer_{_short(g)}"]) for g in groups)
        print(
            f"{label:34s} {_fmt(results[config]['eer'])} {results[config]['auc']:5.2f} "
            f"{cells}{tail}"
        )
        results[config]["cross_corpus"] = xc

    nested_eer = math.nan
    nested: dict[str, Any] = {}
    if not args.no_nested:
        cv_nested = leave_one_attack_out(
            ds.x, ds.bonafide, ds.attack, ds.group, selecting_trainer(FEATURES, candidates)
        )
        nested = cv_summary(cv_nested, ds)
        nested_eer = nested["eer"]
        print_row("nested (choice cross-validated)", nested, groups)

    chosen = min(candidates, key=lambda c: (round(results[c]["eer"], 9), candidates.index(c)))
    cv = cvs[chosen]
    oof_scores, oof_labels = cv.pooled()
    oof_groups = np.concatenate([ds.group[ds.bonafide], ds.group[~ds.bonafide]])
    # Calibrate the out-of-fold log-odds (the L2 penalty shrinks them), folded into weights.
    slope, offset = platt(oof_scores, oof_labels, balanced_weights(oof_labels, oof_groups))
    final = chosen.fit(ds.x, ds.bonafide, ds.group, FEATURES).rescaled(slope, offset)
    oof_prob = expit(slope * oof_scores + offset)
    if bpcer_target is None:
        threshold = eer_threshold(oof_prob, oof_labels)
        rule = "out-of-fold EER point"
    else:
        threshold = bpcer_threshold(oof_prob, oof_labels, bpcer_target)
        rule = f"out-of-fold BPCER at most {100 * bpcer_target:.1f} %"
    apcer, bpcer = error_rates_at(oof_prob, oof_labels, threshold)
    cols = [FEATURES.index(f) for f in chosen.features]
    in_prob = expit(final.log_odds_matrix(ds.x[:, cols]))
    in_apcer, in_bpcer = error_rates_at(in_prob, ds.bonafide, threshold)

    print(f"\nChosen: {', '.join(chosen.features)} (l2={chosen.l2})")
    print("per attack (EER %, leave-one-attack-out, vs all bona fide):")
    for a, v in results[chosen]["per_attack"].items():
        solo = single[AASIST_FEATURE]["per_attack"][a]
        print(f"  {a:34s} fused {_fmt(v)}   aasist alone {_fmt(solo)}")
    print(
        f"threshold P(bona fide) >= {threshold:.3f} ({rule}): "
        f"out-of-fold APCER {100 * apcer:.1f} % "
        f"BPCER {100 * bpcer:.1f} %; final model on all data APCER {100 * in_apcer:.1f} % "
        f"BPCER {100 * in_bpcer:.1f} %"
    )
    print("weights (standardised):")
    for f, w in zip(final.features, final.weights, strict=True):
        print(f"  {f:18s} {w:+.3f}")

    fusion = LogisticFusion(
        features=final.features,
        mean=final.mean,
        scale=final.scale,
        weights=final.weights,
        bias=final.bias,
        clip=final.clip,
        threshold=threshold,
        meta={
            "l2": chosen.l2,
            "sample_weights": "classes balanced within each corpus",
            "calibration": (
                f"Platt on leave-one-attack-out scores (slope {slope:.3f}, offset {offset:.3f}),"
                " folded into weights and bias"
            ),
            "fitted_on": f"voice_spoof_labels.tsv ({n_b} bona fide, {n_s} spoof)"
            + (", every clip through 8 kHz G.711 mu-law and back" if telephony else ""),
            "threshold_rule": rule,
            "validation": {
                "method": "leave-one-attack-out, bona fide in 6 folds",
                "eer": round(results[chosen]["eer"], 4),
                "eer_nested": round(nested_eer, 4) if math.isfinite(nested_eer) else None,
                "eer_per_group": {
                    _short(g): round(results[chosen][f"eer_{_short(g)}"], 4) for g in groups
                },
                "eer_per_attack": {
                    a: round(v, 4) for a, v in results[chosen]["per_attack"].items()
                },
                "cross_corpus_eer": {
                    k: round(v, 4) for k, v in results[chosen]["cross_corpus"].items()
                },
                "apcer_at_threshold": round(apcer, 4),
                "bpcer_at_threshold": round(bpcer, 4),
            },
        },
    )
    data = fusion.to_dict()
    if args.out:
        args.out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    if args.pack:
        manifest = json.loads(args.pack.read_text(encoding="utf-8"))
        manifest[block] = data
        manifest["fitting_samples"] = fitting_samples_block(
            [(args.data_dir / path).read_bytes() for path in ds.paths], "voice_spoof_labels.tsv"
        )
        entry = manifest.setdefault("files", {}).setdefault("aasist", {})
        entry["path"] = args.pack_file_path
        entry["sha256"] = sha256_file(args.onnx)
        entry["size_bytes"] = args.onnx.stat().st_size
        args.pack.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        print(f"updated {args.pack}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
