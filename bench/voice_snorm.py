"""Adaptive s-norm (AS-norm) on the DEV speaker trials: does it help, clean and over a phone line?

Protocol (reproducible, no randomness):

- every utterance of speaker_utterances.tsv (10 speakers x 10 + 12 impostor-only utterances) is
  embedded by the service's own voice pipeline, in-process (the code CompareVoices runs: decode,
  Silero VAD, encoder), clean and after a telephone line (G.711 mu-law at 8 kHz, both sides);
- each trial of speaker_trials.tsv is scored raw (cosine, what the service does today) and
  AS-normed (:mod:`bioverify.voice.score_norm`) against a cohort of all the other utterances
  **minus every utterance of the trial's speakers** (leave-two-speakers-out for non-target
  trials, 92-101 utterances of 20 speakers; target trials leave one speaker out, 102 utterances
  of 21 speakers). A "leaky" cohort that keeps the trial's speakers (only the two trial
  utterances removed) is shown to make the point that the exclusion matters;
- telephony trials are normed with a telephony cohort (matched), and with the clean cohort (what
  one shipped cohort per pack would give);
- metrics: EER, AUC, minDCF at P_target 0.01 and 0.001; calibrated quality with a
  leave-one-speaker-out Platt fit (for each enrolment speaker, fit on the trials that involve
  neither that speaker, apply to that speaker's trials): Cllr, actual DCF at 0.01 and accuracy at
  P(same) = 0.5; and operating points: the threshold at FMR 1 % (the service's
  ``threshold_at_fmr``), again fitted leave-one-speaker-out, on clean trials and applied to
  clean trials, on clean trials and applied to telephony trials (the service ships one
  threshold per pack), and on telephony trials and applied to telephony trials (a per-channel
  operating point).

Prints tables and writes JSON to bench/results/voice_snorm.json.

    python bench/voice_snorm.py [--packs voice-campplus,ge2e] [--top-n 5,10,20,50,200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ["ORT_DISABLE_TELEMETRY"] = "1"

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIOVERIFY_SHARED_DIR", REPO.parent / "shared"))

from bioverify import metrics  # noqa: E402
from bioverify.packs import PackCatalog  # noqa: E402
from bioverify.scoring import fit_platt, threshold_at_fmr  # noqa: E402
from bioverify.server.app import audio_limits, build_voice_pipeline  # noqa: E402
from bioverify.settings import Settings  # noqa: E402
from bioverify.voice.pipeline import VoicePipeline  # noqa: E402
from bioverify.voice.score_norm import adaptive_snorm_batch  # noqa: E402
from bioverify_admin.calibrate import embed_voice_files  # noqa: E402
from bioverify_admin.datasets import read_speaker_trials, read_speaker_utterances  # noqa: E402

DATA = SHARED / "data"
P_TARGETS = (0.01, 0.001)


# -- calibration-sensitive metrics (pure numpy) -------------------------------------------------
def cllr(llr: np.ndarray, labels: np.ndarray) -> float:
    """Log-likelihood-ratio cost in bits (0 perfect, 1 = an uninformative system)."""
    tar, non = llr[labels], llr[~labels]
    return float(0.5 * (np.mean(np.logaddexp(0, -tar)) + np.mean(np.logaddexp(0, non))) / np.log(2))


def actual_dcf(llr: np.ndarray, labels: np.ndarray, p_target: float) -> float:
    """Normalised detection cost of the Bayes decision llr > log((1 - p) / p)."""
    accept = llr > np.log((1 - p_target) / p_target)
    p_miss = float(np.mean(~accept[labels]))
    p_fa = float(np.mean(accept[~labels]))
    return (p_target * p_miss + (1 - p_target) * p_fa) / min(p_target, 1 - p_target)


def loso_llr(
    scores: np.ndarray, labels: np.ndarray, enroll_spk: np.ndarray, test_spk: np.ndarray
) -> np.ndarray:
    """Calibrated log-likelihood ratios: for each enrolment speaker, a class-balanced Platt fit
    on the trials involving neither that speaker, applied to that speaker's trials."""
    llr = np.empty_like(scores)
    for spk in np.unique(enroll_spk):
        held = enroll_spk == spk
        train = (enroll_spk != spk) & (test_spk != spk)
        slope, intercept = fit_platt(scores[train & labels], scores[train & ~labels])
        llr[held] = slope * scores[held] + intercept
    return llr


def loso_error_rates(
    fit: np.ndarray,
    apply: np.ndarray,
    labels: np.ndarray,
    enroll_spk: np.ndarray,
    test_spk: np.ndarray,
    fmr: float,
) -> tuple[float, float]:
    """(FMR, FNMR) when each enrolment speaker S's trials are decided (``apply`` scores) with
    the threshold at ``fmr`` fitted on the ``fit`` scores of the trials where neither side is S."""
    accept = np.zeros(labels.shape, dtype=bool)
    for spk in np.unique(enroll_spk):
        held = enroll_spk == spk
        train = (enroll_spk != spk) & (test_spk != spk)
        accept[held] = apply[held] >= threshold_at_fmr(fit[train & ~labels], fmr)
    return float(np.mean(accept[~labels])), float(np.mean(~accept[labels]))


def evaluate(
    scores: np.ndarray, labels: np.ndarray, enroll_spk: np.ndarray, test_spk: np.ndarray
) -> dict[str, float]:
    llr = loso_llr(scores, labels, enroll_spk, test_spk)
    out = {
        "eer": metrics.eer(scores, labels),
        "auc": metrics.auc(scores, labels),
        **{f"min_dcf_{p:g}": metrics.min_dcf(scores, labels, p_target=p) for p in P_TARGETS},
        "cllr_loso": cllr(llr, labels),
        "act_dcf_0.01_loso": actual_dcf(llr, labels, 0.01),
        "accuracy_loso_p05": float(np.mean((llr > 0) == labels)),
    }
    return out


# -- embeddings ------------------------------------------------------------------------------------
def embed_utterances(
    pipeline: VoicePipeline, settings: Settings, paths: list[Path], telephony: bool
) -> np.ndarray:
    """Embeddings in ``paths`` order (the calibrate tool's embedder; every clip must embed)."""
    embedded = embed_voice_files(pipeline, audio_limits(settings), paths, telephony=telephony)
    missing = [p.name for p in paths if p not in embedded]
    if missing:
        raise RuntimeError(f"could not embed {', '.join(missing)}")
    return np.stack([embedded[p] for p in paths])


# -- the experiment ------------------------------------------------------------------------------
def run_pack(
    pipeline: VoicePipeline,
    settings: Settings,
    utt_paths: list[Path],
    utt_spk: np.ndarray,
    trials: list[tuple[int, int, bool]],
    top_ns: list[int],
) -> dict[str, Any]:
    emb = {
        "clean": embed_utterances(pipeline, settings, utt_paths, telephony=False),
        "telephony": embed_utterances(pipeline, settings, utt_paths, telephony=True),
    }
    ia = np.array([a for a, _, _ in trials])
    ib = np.array([b for _, b, _ in trials])
    labels = np.array([same for _, _, same in trials], dtype=bool)
    spk_a, spk_b = utt_spk[ia], utt_spk[ib]
    # (N, C) cohort masks over all utterances.
    honest = (utt_spk[None, :] != spk_a[:, None]) & (utt_spk[None, :] != spk_b[:, None])
    leaky = np.ones_like(honest)
    leaky[np.arange(len(trials)), ia] = False
    leaky[np.arange(len(trials)), ib] = False
    sizes = honest.sum(axis=1)
    n_spk = [len(set(utt_spk[row])) for row in honest]
    out: dict[str, Any] = {
        "cohort": {
            "utterances_min": int(sizes.min()),
            "utterances_max": int(sizes.max()),
            "speakers_min": min(n_spk),
            "speakers_max": max(n_spk),
        },
        "conditions": {},
    }
    raw_scores: dict[str, np.ndarray] = {}
    for cond in ("clean", "telephony"):
        e = emb[cond]
        raw = np.einsum("nd,nd->n", e[ia], e[ib])
        raw_scores[cond] = raw
        rows: dict[str, Any] = {"raw": evaluate(raw, labels, spk_a, spk_b)}
        cohorts = [(cond, e)] + ([("clean_cohort", emb["clean"])] if cond == "telephony" else [])
        for cohort_name, cohort in cohorts:
            ce, ct = e[ia] @ cohort.T, e[ib] @ cohort.T
            for top_n in top_ns:
                normed = adaptive_snorm_batch(raw, ce, ct, top_n, cohort_mask=honest)
                key = f"snorm_top{top_n}" + (
                    "_clean_cohort" if cohort_name == "clean_cohort" else ""
                )
                rows[key] = evaluate(normed, labels, spk_a, spk_b)
                rows[key]["scores"] = normed
            if cohort_name == cond:
                leak = adaptive_snorm_batch(raw, ce, ct, max(top_ns), cohort_mask=leaky)
                rows[f"leaky_snorm_top{max(top_ns)}"] = evaluate(leak, labels, spk_a, spk_b)
        rows["raw"]["scores"] = raw
        out["conditions"][cond] = rows
    # Operating points at FMR 1 %, fitted leave-one-speaker-out.
    transfer: dict[str, Any] = {}
    clean_rows, tel_rows = out["conditions"]["clean"], out["conditions"]["telephony"]
    for key in clean_rows:
        if key not in tel_rows or "scores" not in clean_rows[key]:
            continue
        c, t = clean_rows[key]["scores"], tel_rows[key]["scores"]
        row = {}
        for name, fit, apply in (
            ("clean_to_clean", c, c),
            ("clean_to_telephony", c, t),
            ("telephony_to_telephony", t, t),
        ):
            fmr, fnmr = loso_error_rates(fit, apply, labels, spk_a, spk_b, 0.01)
            row[name] = {"fmr": fmr, "fnmr": fnmr}
        transfer[key] = row
    out["operating_point_fmr_1e-2_loso"] = transfer
    for cond_rows in out["conditions"].values():
        for row in cond_rows.values():
            row.pop("scores", None)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=Path, default=DATA / "speaker_trials.tsv")
    parser.add_argument("--utterances", type=Path, default=DATA / "speaker_utterances.tsv")
    parser.add_argument(
        "--packs",
        default="voice-campplus,ge2e",
        help="comma-separated pack ids; 'ge2e' exports the GE2E pack from resemblyzer's wheel",
    )
    parser.add_argument("--top-n", default="5,10,20,50,200")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "voice_snorm.json")
    args = parser.parse_args()
    top_ns = [int(x) for x in args.top_n.split(",")]
    labelled = read_speaker_utterances(args.utterances)
    utt_paths = [u.path for u in labelled]
    utt_spk = np.array([u.identity for u in labelled])
    index = {p: i for i, p in enumerate(utt_paths)}
    trials = [(index[t.path_a], index[t.path_b], t.same) for t in read_speaker_trials(args.trials)]
    results: dict[str, Any] = {
        "trials": str(args.trials),
        "n_trials": len(trials),
        "n_target": sum(s for _, _, s in trials),
        "top_n": top_ns,
        "packs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            port=0, data_dir=Path(tmp), model_dir=SHARED / "models", log_level="WARNING"
        )
        for pack_id in args.packs.split(","):
            if pack_id == "ge2e":
                sys.path.insert(0, str(Path(__file__).parent))
                from voice_bench import prepare_ge2e_pack

                pack_id = prepare_ge2e_pack(settings, args.utterances)
            pack = PackCatalog(settings.model_dir, settings.data_dir / "packs").get(pack_id)
            print(
                f"{pack_id}: embedding {len(utt_paths)} utterances x 2 conditions ...", flush=True
            )
            pipeline = build_voice_pipeline(settings, pack)
            results["packs"][pack_id] = run_pack(
                pipeline, settings, utt_paths, utt_spk, trials, top_ns
            )
    print_tables(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"\nwritten to {args.out}")
    return 0


def print_tables(r: dict[str, Any]) -> None:
    for pack_id, res in r["packs"].items():
        c = res["cohort"]
        print(
            f"\n{pack_id}: {r['n_trials']} trials; cohort per trial {c['utterances_min']}-"
            f"{c['utterances_max']} utterances of {c['speakers_min']}-{c['speakers_max']} speakers"
        )
        print(
            f"{'cond':<10}{'scoring':<30}{'EER':>8}{'AUC':>8}{'minDCF.01':>10}{'minDCF.001':>11}"
            f"{'Cllr':>7}{'actDCF.01':>10}{'acc@P.5':>9}"
        )
        for cond, rows in res["conditions"].items():
            for key, m in rows.items():
                print(
                    f"{cond:<10}{key:<30}{m['eer']:8.4f}{m['auc']:8.4f}{m['min_dcf_0.01']:10.4f}"
                    f"{m['min_dcf_0.001']:11.4f}{m['cllr_loso']:7.3f}{m['act_dcf_0.01_loso']:10.4f}"
                    f"{m['accuracy_loso_p05']:9.4f}"
                )
        print("threshold at FMR 1 % (leave-one-speaker-out), measured FMR / FNMR:")
        print(f"  {'scoring':<28}{'clean->clean':>18}{'clean->telephony':>20}{'tel->tel':>18}")
        for key, t in res["operating_point_fmr_1e-2_loso"].items():
            cells = "".join(
                f"{t[k]['fmr']:>11.4f} /{t[k]['fnmr']:.4f}"
                for k in ("clean_to_clean", "clean_to_telephony", "telephony_to_telephony")
            )
            print(f"  {key:<28}{cells}")


if __name__ == "__main__":
    sys.exit(main())
