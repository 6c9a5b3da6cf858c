"""Fit and validate the face liveness fusion on a labelled PAD set (offline admin script).

Usage::

    python -m bioverify.liveness.fit_face_fusion LABELS_TSV OUTPUT_JSON \\
        [--models-dir ../shared/models] [--v1se PATH_TO_V1SE.onnx]
        [--detectors shipped|v1se_in_pad|...] [--compare]

``LABELS_TSV`` has the columns ``path, label, subject_id`` (paths relative to its folder;
label ``bonafide`` or an attack class). Every face is detected with YuNet; the PAD network
and the signal checks are measured once; then:

1. **Cross-validation grouped by capture source**: each webcam subject, each CelebA-Spoof
   subject and five index folds of the GAN/FFHQ set are held out in turn. Inside a fold
   the chroma-texture model is fitted on the training faces only (its training-side values
   come from an inner grouped CV, so the fusion never sees in-sample texture scores), then
   the fusion. The held-out scores of all folds give the reported figures.
2. **ISO/IEC 30107-3 figures** for each component alone and for the fusion: EER, AUC and,
   per attack class, APCER at BPCER 5% and 10%, plus the per-image latency of each
   component.
3. **Final parameters** fitted on all faces, written as a ``face-liveness`` model pack
   manifest to ``OUTPUT_JSON``.

``--v1se`` (the ONNX written by ``export_minifasnet``) also measures MiniFASNetV1SE at its
4.0x scale, with context padding and with upstream's crop, and upstream's V2 + V1SE softmax
average; ``--compare`` cross-validates every candidate detector set (``DETECTOR_SETS``) and
``--detectors`` picks the one to fit. Measured on the DEV PAD set, no V1SE set beat the
shipped V2-only fusion, so the shipped pack has no V1SE component.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bioverify import metrics
from bioverify.face.detector_yunet import YunetDetector
from bioverify.face.image_decode import decode_image
from bioverify.face.quality import select_primary_face
from bioverify.liveness import face_signals
from bioverify.liveness.face_checker import (
    FaceLivenessChecker,
    MotionPolicy,
    pad_feature,
    pad_logit,
    pad_probability,
)
from bioverify.liveness.face_signals import ChromaTextureModel
from bioverify.liveness.fusion import (
    DetectorSpec,
    FusionParams,
    apcer_at_bpcer,
    fit_fusion,
    fit_logistic,
    fused_scores,
)
from bioverify.liveness.minifasnet import MiniFasNetPad
from bioverify.packs import fitting_samples_block

FloatArray = npt.NDArray[np.float64]

V2_ROLE = "minifasnet_v2"
V2_PATH = "silent_face_antispoof/onnx/2.7_80x80_MiniFASNetV2.onnx"
V2_UPSTREAM_CROP = "minifasnet_v2_upstream_crop"  # report only: scale capped to the image
V1SE_ROLE = "minifasnet_v1se"
V1SE_UPSTREAM_CROP = "minifasnet_v1se_upstream_crop"  # report only
PAD_ENSEMBLE = "pad_minifasnet_ensemble"  # upstream's V2 + V1SE softmax average, as a logit
YUNET_PATH = "opencv_yunet/face_detection_yunet_2023mar_dynamic.onnx"
CHROMA_L2 = 0.05
FUSION_L2 = 0.5
INNER_FOLDS = 5

ORIENTATION = {
    pad_feature(V2_ROLE): 1.0,
    pad_feature(V1SE_ROLE): 1.0,
    pad_feature(V1SE_UPSTREAM_CROP): 1.0,
    PAD_ENSEMBLE: 1.0,
    pad_feature(V2_UPSTREAM_CROP): 1.0,
    "detail_hf_energy": 1.0,
    "detail_scale_ratio": 1.0,
    "chroma_gamut": 1.0,
    "detail_sharpness": 1.0,
    "moire_peaks": -1.0,
    "specular_glare": -1.0,
    "colour_saturation": 1.0,
    "landmark_asymmetry": -1.0,
    face_signals.CHROMA_TEXTURE: 1.0,
}
"""Declared physical direction of each component (+1: larger = more live)."""

LABELS = {
    pad_feature(V2_ROLE): "MiniFASNetV2 PAD network",
    pad_feature(V1SE_ROLE): "MiniFASNetV1SE PAD network",
    pad_feature(V1SE_UPSTREAM_CROP): "MiniFASNetV1SE, upstream crop (scale capped)",
    PAD_ENSEMBLE: "MiniFASNetV2 + V1SE softmax average",
    pad_feature(V2_UPSTREAM_CROP): "MiniFASNetV2, upstream crop (scale capped)",
    "detail_scale_ratio": "finest/next octave detail",
    "chroma_gamut": "chroma spread relative to luma",
    "detail_hf_energy": "fine-detail spectral energy",
    "detail_sharpness": "sharpness",
    "moire_peaks": "periodic spectral peaks (moire/halftone)",
    "specular_glare": "specular glare",
    "colour_saturation": "skin colour saturation",
    "landmark_asymmetry": "landmark asymmetry",
    face_signals.CHROMA_TEXTURE: "chroma micro-texture",
}

DETECTORS = (
    DetectorSpec(
        name="recapture",
        code="RECAPTURE_SUSPECTED",
        message="the face looks re-captured from a screen or print",
        features=("detail_scale_ratio", "chroma_gamut"),
    ),
    DetectorSpec(
        name="pad_network",
        code="PAD_NETWORK_SPOOF",
        message="the PAD network judges the face a presentation attack",
        features=(pad_feature(V2_ROLE),),
    ),
    DetectorSpec(
        name="synthetic",
        code="SYNTHETIC_FACE_SUSPECTED",
        message="the face's colour texture looks generated rather than photographed",
        features=(face_signals.CHROMA_TEXTURE,),
    ),
)
"""The shipped fusion, chosen by the grouped CV below among a handful of detector sets.
MiniFASNetV2 joins once its crop has the 2.7x context it was trained on (``pad_context``:
the PAD set's webcam images are tight face crops, where upstream shrinks the scale to ~1x
and the network rejects live faces). Measured and left out (see the printed table): the
older recapture signals (fine-detail energy, sharpness, moire peaks: their tails on live
webcam faces set the BPCER 5% threshold and let more replays through), specular glare,
colour saturation (their direction flips between capture devices) and landmark asymmetry
(no signal)."""

_RECAPTURE, _PAD, _SYNTHETIC = DETECTORS


def _pad_detector(*features: str) -> DetectorSpec:
    return replace(_PAD, features=features)


DETECTOR_SETS: dict[str, tuple[DetectorSpec, ...]] = {
    "shipped": DETECTORS,
    "v1se_in_pad": (
        _RECAPTURE,
        _pad_detector(pad_feature(V2_ROLE), pad_feature(V1SE_ROLE)),
        _SYNTHETIC,
    ),
    "v1se_own_detector": (
        *DETECTORS,
        DetectorSpec(
            name="pad_network_v1se",
            code="PAD_NETWORK_SPOOF",
            message="the second PAD network judges the face a presentation attack",
            features=(pad_feature(V1SE_ROLE),),
        ),
    ),
    "v1se_only": (_RECAPTURE, _pad_detector(pad_feature(V1SE_ROLE)), _SYNTHETIC),
    "ensemble": (_RECAPTURE, _pad_detector(PAD_ENSEMBLE), _SYNTHETIC),
    "v1se_upstream_crop_in_pad": (
        _RECAPTURE,
        _pad_detector(pad_feature(V2_ROLE), pad_feature(V1SE_UPSTREAM_CROP)),
        _SYNTHETIC,
    ),
}
"""Candidate detector sets compared by the same grouped CV (``--compare``); only the
``shipped`` one needs nothing beyond the V2 network. The V1SE sets need ``--v1se``."""


MOTION = MotionPolicy(min_frame_change=0.5, min_nonrigid=0.004, min_pose_range=0.02)
"""Not fitted (the PAD set has no video): a still image replayed frame after frame has zero
frame change; live faces show sensor noise, expression and small head motion."""


@dataclass
class Dataset:
    rows: list[dict[str, str]]
    labels: list[str]
    groups: list[str]
    values: dict[str, FloatArray]
    cooc: FloatArray
    seconds: dict[str, list[float]]


def cv_group(row: Mapping[str, str]) -> str:
    """Held-out unit: the subject, except the GAN/FFHQ set, split into 5 index folds."""
    subject = row["subject_id"]
    match = re.fullmatch(r"(?:gan_fake|ffhq)_(\d+)", subject)
    if match:
        return f"gan_fold{int(match.group(1)) % 5}"
    return subject


def load_dataset(labels_tsv: Path, models_dir: Path, v1se: Path | None) -> Dataset:
    root = labels_tsv.parent
    with labels_tsv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    detector = YunetDetector(models_dir / YUNET_PATH)
    pads = [
        MiniFasNetPad(models_dir / V2_PATH, scale=2.7, name=V2_ROLE, pad_context=True),
        MiniFasNetPad(models_dir / V2_PATH, scale=2.7, name=V2_UPSTREAM_CROP),
    ]
    if v1se is not None:
        pads.append(MiniFasNetPad(v1se, scale=4.0, name=V1SE_ROLE, pad_context=True))
        pads.append(MiniFasNetPad(v1se, scale=4.0, name=V1SE_UPSTREAM_CROP))
    checker = _measuring_checker(pads)
    values: dict[str, list[float]] = defaultdict(list)
    seconds: dict[str, list[float]] = defaultdict(list)
    cooc = []
    kept = []
    for row in rows:
        data = (root / row["path"]).read_bytes()
        image = decode_image(data, max_bytes=64 << 20, max_pixels=100_000_000)
        start = time.perf_counter()
        faces = detector.detect(image)
        seconds["detector (yunet, not liveness)"].append(time.perf_counter() - start)
        if not faces:
            print(f"skipped (no face): {row['path']}")
            continue
        face, _ = select_primary_face(faces, image.shape)
        measured = checker.measure(image, face, everything=True)
        for name, value in measured.values.items():
            values[name].append(value)
        for name, sec in measured.seconds.items():
            seconds[name].append(sec)
        patch = face_signals.face_patch(image, face)
        start = time.perf_counter()
        cooc.append(face_signals.chroma_cooccurrence(patch))
        seconds[face_signals.CHROMA_TEXTURE].append(time.perf_counter() - start)
        kept.append(row)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    if v1se is not None:
        # Upstream's ensemble: the mean of the two softmaxes, back on the logit scale.
        live = (
            pad_probability(arrays[pad_feature(V2_ROLE)])
            + pad_probability(arrays[pad_feature(V1SE_ROLE)])
        ) / 2
        arrays[PAD_ENSEMBLE] = np.array([pad_logit(float(p)) for p in live])
    return Dataset(
        rows=kept,
        labels=[r["label"] for r in kept],
        groups=[cv_group(r) for r in kept],
        values=arrays,
        cooc=np.asarray(cooc, dtype=np.float64),
        seconds=dict(seconds),
    )


def _measuring_checker(pads: Sequence[MiniFasNetPad]) -> FaceLivenessChecker:
    """A checker whose fusion names only the PAD models: used to measure everything."""
    params = FusionParams.from_dict(
        {
            "method": "softmin-detectors/1",
            "features": {
                pad_feature(p.name): {"orientation": 1.0, "median": 0.0, "spread": 1.0}
                for p in pads
            },
            "detectors": [
                {
                    "name": "pad",
                    "code": "PAD",
                    "features": [pad_feature(p.name) for p in pads],
                    "weights": [1.0] * len(pads),
                    "bias": 0.0,
                }
            ],
            "threshold": 0.5,
        }
    )
    return FaceLivenessChecker(pads, params)


def fit_chroma(cooc: FloatArray, labels: Sequence[str]) -> ChromaTextureModel:
    """Camera (bona fide) vs generator (deepfake) texture model on the given rows."""
    lab = np.asarray(labels)
    use = (lab == "bonafide") | (lab == "deepfake")
    mean, std, weights, bias = fit_logistic(cooc[use], lab[use] == "bonafide", l2=CHROMA_L2)
    return ChromaTextureModel(mean=mean, std=std, weights=weights, bias=bias)


def chroma_values(
    cooc: FloatArray, labels: Sequence[str], groups: Sequence[str], train: npt.NDArray[np.bool_]
) -> tuple[FloatArray, ChromaTextureModel]:
    """Chroma-texture values: out-of-fold (inner grouped CV) on ``train``, model on the rest."""
    lab = np.asarray(labels)
    grp = np.asarray(groups)
    model = fit_chroma(cooc[train], list(lab[train]))
    out = np.array([model.score(c) for c in cooc])
    inner_groups = sorted(set(grp[train].tolist()))
    # Assign whole groups to inner folds deterministically.
    fold_of = {g: i % INNER_FOLDS for i, g in enumerate(inner_groups)}
    folds = np.array([fold_of.get(g, -1) for g in grp])
    for k in range(INNER_FOLDS):
        held = train & (folds == k)
        rest = train & (folds != k)
        if not held.any():
            continue
        inner = fit_chroma(cooc[rest], list(lab[rest]))
        out[held] = [inner.score(c) for c in cooc[held]]
    return out, model


def fit_all(
    data: Dataset, train: npt.NDArray[np.bool_], detectors: Sequence[DetectorSpec]
) -> tuple[FusionParams, ChromaTextureModel, dict[str, FloatArray]]:
    chroma, model = chroma_values(data.cooc, data.labels, data.groups, train)
    values = dict(data.values)
    values[face_signals.CHROMA_TEXTURE] = chroma
    lab = np.asarray(data.labels)
    params = fit_fusion(
        {k: v[train] for k, v in values.items()},
        list(lab[train]),
        ORIENTATION,
        detectors,
        l2=FUSION_L2,
        feature_labels=LABELS,
    )
    return params, model, values


@dataclass
class CrossValidation:
    fused: FloatArray  # out-of-fold fused scores
    accepted: npt.NDArray[np.bool_]  # at the threshold fitted on the other folds
    chroma: FloatArray  # out-of-fold chroma-texture values
    detectors: dict[str, FloatArray]  # out-of-fold logit of each detector alone


def cross_validate(data: Dataset, detectors: Sequence[DetectorSpec]) -> CrossValidation:
    """Leave one group out: fit everything on the other groups, score the held-out one."""
    grp = np.asarray(data.groups)
    n = len(grp)
    out = CrossValidation(
        fused=np.zeros(n),
        accepted=np.zeros(n, dtype=bool),
        chroma=np.zeros(n),
        detectors={d.name: np.zeros(n) for d in detectors},
    )
    for group in sorted(set(data.groups)):
        test = grp == group
        params, model, _ = fit_all(data, ~test, detectors)
        values = dict(data.values)
        values[face_signals.CHROMA_TEXTURE] = np.array([model.score(c) for c in data.cooc])
        held = {k: v[test] for k, v in values.items()}
        out.fused[test] = fused_scores(params, held)
        out.accepted[test] = out.fused[test] >= params.threshold
        out.chroma[test] = values[face_signals.CHROMA_TEXTURE][test]
        for det in params.detectors:
            single = replace(params, detectors=(det,))
            out.detectors[det.name][test] = fused_scores(single, held)
    return out


def figures(scores: FloatArray, labels: Sequence[str]) -> dict[str, Any]:
    lab = np.asarray(labels)
    y = lab == "bonafide"
    out: dict[str, Any] = {
        "eer": metrics.eer(scores, y),
        "auc": metrics.auc(scores, y),
    }
    for bpcer in (0.05, 0.10):
        _, apcer = apcer_at_bpcer(scores, list(lab), bpcer)
        out[f"apcer_at_bpcer{round(bpcer * 100)}"] = apcer
    return out


def print_table(rows: Sequence[tuple[str, dict[str, Any]]], classes: Sequence[str]) -> None:
    head = "component".ljust(34) + " EER%   AUC  | APCER% @BPCER5: "
    head += " ".join(c[:8].rjust(8) for c in classes) + " | @BPCER10: "
    head += " ".join(c[:8].rjust(8) for c in classes)
    print(head)
    for name, fig in rows:
        line = f"{name[:34]:34} {100 * fig['eer']:5.1f} {fig['auc']:.3f} |"
        line += " " * 16 + " ".join(
            f"{100 * fig['apcer_at_bpcer5'].get(c, float('nan')):8.0f}" for c in classes
        )
        line += (
            " |"
            + " " * 11
            + " ".join(
                f"{100 * fig['apcer_at_bpcer10'].get(c, float('nan')):8.0f}" for c in classes
            )
        )
        print(line)


def compare_sets(data: Dataset, classes: Sequence[str]) -> None:
    """Grouped-CV fusion figures of every detector set whose components were measured."""
    rows = []
    for name, detectors in DETECTOR_SETS.items():
        needed = {f for d in detectors for f in d.features} - {face_signals.CHROMA_TEXTURE}
        if needed <= set(data.values):
            rows.append(
                (f"FUSION {name}", figures(cross_validate(data, detectors).fused, data.labels))
            )
    print("\nDetector sets (grouped CV fusion; selecting among them biases the winner):")
    print_table(rows, classes)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("labels", type=Path, help="face_pad_labels.tsv")
    parser.add_argument("output", type=Path, help="pack manifest JSON to write")
    parser.add_argument("--models-dir", type=Path, default=Path("../shared/models"))
    parser.add_argument(
        "--v1se", type=Path, default=None, help="MiniFASNetV1SE ONNX (export_minifasnet output)"
    )
    parser.add_argument(
        "--detectors",
        choices=sorted(DETECTOR_SETS),
        default="shipped",
        help="detector set to cross-validate and fit (the V1SE sets need --v1se)",
    )
    parser.add_argument(
        "--compare", action="store_true", help="also cross-validate every available detector set"
    )
    args = parser.parse_args(argv)

    data = load_dataset(args.labels, args.models_dir, args.v1se)
    lab = data.labels
    classes = sorted(set(lab) - {"bonafide"})
    print(f"{len(lab)} faces: " + ", ".join(f"{c} {lab.count(c)}" for c in sorted(set(lab))))
    detectors = DETECTOR_SETS[args.detectors]
    missing = (
        {f for d in detectors for f in d.features}
        - set(data.values)
        - {face_signals.CHROMA_TEXTURE}
    )
    if missing:
        parser.error(f"detector set {args.detectors!r} needs {sorted(missing)} (pass --v1se)")
    if args.compare:
        compare_sets(data, classes)

    cv = cross_validate(data, detectors)
    rows: list[tuple[str, dict[str, Any]]] = []
    for name in sorted(data.values):
        oriented = ORIENTATION.get(name, 1.0) * data.values[name]
        rows.append((f"{name} (alone, raw)", figures(oriented, lab)))
    rows.append((f"{face_signals.CHROMA_TEXTURE} (alone, CV)", figures(cv.chroma, lab)))
    for name, scores in cv.detectors.items():
        rows.append((f"detector {name} (alone, CV)", figures(scores, lab)))
    fused_fig = figures(cv.fused, lab)
    rows.append(("FUSION (grouped CV)", fused_fig))
    print("\nCross-validated figures (held-out groups: subjects / GAN index folds):")
    print_table(rows, classes)
    arr = np.asarray(lab)
    bpcer = float(np.mean(~cv.accepted[arr == "bonafide"]))
    at_fold = {c: float(np.mean(cv.accepted[arr == c])) for c in classes}
    print(
        f"FUSION at each fold's own fitted threshold: BPCER {100 * bpcer:.1f}%, APCER "
        + ", ".join(f"{c} {100 * v:.0f}%" for c, v in at_fold.items())
    )

    print("\nPer-image latency (median ms):")
    for name, secs in sorted(data.seconds.items()):
        print(f"  {name:40} {1000 * float(np.median(secs)):7.2f}")

    params, model, values = fit_all(data, np.ones(len(lab), dtype=bool), detectors)
    values[face_signals.CHROMA_TEXTURE] = np.array([model.score(c) for c in data.cooc])
    shipped = fused_scores(params, values) >= params.threshold
    in_bpcer = float(np.mean(~shipped[arr == "bonafide"]))
    in_apcer = {c: float(np.mean(shipped[arr == c])) for c in classes}
    summary = {
        "fitted_on": f"{args.labels.name}: {len(lab)} faces ("
        + ", ".join(f"{c} {lab.count(c)}" for c in sorted(set(lab)))
        + ")",
        "cross_validation": {
            "protocol": "leave-one-group-out: webcam subjects, CelebA-Spoof subjects, "
            "GAN/FFHQ set in 5 index folds; chroma model re-fitted inside each fold",
            "eer": round(fused_fig["eer"], 4),
            "auc": round(fused_fig["auc"], 4),
            "apcer_at_bpcer5": {k: round(v, 4) for k, v in fused_fig["apcer_at_bpcer5"].items()},
            "apcer_at_bpcer10": {k: round(v, 4) for k, v in fused_fig["apcer_at_bpcer10"].items()},
            "at_fold_threshold": {
                "bpcer": round(bpcer, 4),
                "apcer": {k: round(v, 4) for k, v in at_fold.items()},
            },
        },
        "in_sample_at_threshold": {
            "note": "shipped parameters re-applied to the fitting data (optimistic)",
            "bpcer": round(in_bpcer, 4),
            "apcer": {k: round(v, 4) for k, v in in_apcer.items()},
        },
    }
    fusion = params.to_dict()
    fusion.update(summary)
    fusion["signal_models"] = {face_signals.CHROMA_TEXTURE: model.to_dict()}
    fusion["motion"] = MOTION.to_dict()
    manifest = build_manifest(fusion)
    manifest["fitting_samples"] = fitting_samples_block(
        [(args.labels.parent / row["path"]).read_bytes() for row in data.rows], args.labels.name
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"\nthreshold {params.threshold:.4f} (BPCER <= 5% on all faces); wrote {args.output}")
    return 0


def build_manifest(fusion: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "schema": "bioverify.pack/1",
        "id": "face-liveness",
        "version": "1",
        "modality": "face-liveness",
        "priority": 10,
        "description": (
            "Passive face liveness: MiniFASNetV2 PAD network plus explainable signal checks "
            "(spectral detail, moire peaks, glare, saturation, chroma micro-texture, landmark "
            "geometry) fused by a soft-min of attack-family detectors; motion check for bursts."
        ),
        "licence": "MiniFASNet weights Apache-2.0 (MiniVision); fusion fitted on the DEV PAD set.",
        "embedding_dim": 0,
        "files": {
            V2_ROLE: {
                "path": V2_PATH,
                "sha256": "f0616a1c7123d4978623910241b812943d2d5bba032eac26cc0416764517ef4a",
                "size_bytes": 1744126,
                "licence": "Apache-2.0",
                "source": (
                    "minivision-ai/Silent-Face-Anti-Spoofing@b6d5f04a "
                    "resources/anti_spoof_models/2.7_80x80_MiniFASNetV2.pth, ONNX export from "
                    "fizray/project-ineffa@4ff8a47a models/2.7_80x80_MiniFASNetV2.onnx"
                ),
            }
        },
        "components": {
            "pad_model": {
                "adapter": "minifasnet",
                "files": [V2_ROLE],
                "params": {"scale": 2.7, "pad_context": True},
            }
        },
        "fusion": dict(fusion),
        "operating_points": [],
        "default_operating_point": "",
    }


if __name__ == "__main__":
    raise SystemExit(main())
