"""``calibrate``: fit a pack's calibration (similarity -> P(same)) and its operating points
(thresholds at target false-match rates) from labelled data, and write them into the pack's
manifest. Scores come either from the pack's own pipeline run in this process, or, with
``--server``, from a running service's CompareFaces / CompareVoices replies (raw cosine
similarities of the pack that service serves), like any other client."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bioverify import metrics
from bioverify.errors import BioverifyError
from bioverify.face.pipeline import FacePipeline
from bioverify.scoring import (
    Calibration,
    OperatingPoint,
    fit_platt,
    operating_point_name,
    threshold_at_fmr,
)
from bioverify.voice.audio_decode import AudioLimits, decode_audio
from bioverify.voice.pipeline import VoicePipeline
from bioverify_admin.eval_voice import TELEPHONY_RATE, telephony_bytes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreSet:
    genuine: np.ndarray
    impostor: np.ndarray
    n_failed_images: int
    description: str


def embed_face_files(
    pipeline: FacePipeline, paths: Sequence[Path], workers: int = 2
) -> dict[Path, np.ndarray]:
    """Embeddings of every image the pipeline accepts; failures are left out (and counted)."""

    def one(path: Path) -> tuple[Path, np.ndarray | None]:
        try:
            return path, pipeline.analyse(path.read_bytes()).embedding
        except (BioverifyError, OSError) as exc:
            logger.warning("skipping %s: %s", path.name, exc)
            return path, None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, sorted(set(paths))))
    return {p: e for p, e in results if e is not None}


def embed_voice_files(
    pipeline: VoicePipeline,
    limits: AudioLimits,
    paths: Sequence[Path],
    workers: int = 2,
    *,
    telephony: bool = False,
) -> dict[Path, np.ndarray]:
    """Speaker embeddings of every clip the pipeline accepts; failures are left out. With
    ``telephony`` each clip first goes through 8 kHz G.711 mu-law, as a phone line carries it."""

    def one(path: Path) -> tuple[Path, np.ndarray | None]:
        try:
            if telephony:
                decoded = decode_audio(
                    telephony_bytes(path),
                    encoding="MULAW",
                    sample_rate_hz=TELEPHONY_RATE,
                    limits=limits,
                )
            else:
                decoded = decode_audio(path.read_bytes(), limits=limits)
            return path, pipeline.analyse(decoded).embedding
        except (BioverifyError, OSError, sf.LibsndfileError) as exc:
            logger.warning("skipping %s: %s", path.name, exc)
            return path, None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, sorted(set(paths))))
    return {p: e for p, e in results if e is not None}


def scores_from_identities(
    embeddings: dict[Path, np.ndarray], identities: dict[Path, str], description: str
) -> ScoreSet:
    """Every same-identity pair is genuine, every cross-identity pair an impostor."""
    paths = sorted(embeddings)
    if not paths:
        return ScoreSet(np.array([]), np.array([]), len(identities), description)
    matrix = np.stack([embeddings[p] for p in paths])
    sims = matrix @ matrix.T
    ids = np.array([identities[p] for p in paths])
    upper = np.triu_indices(len(paths), k=1)
    same = ids[upper[0]] == ids[upper[1]]
    values = sims[upper]
    return ScoreSet(
        genuine=values[same],
        impostor=values[~same],
        n_failed_images=len(identities) - len(paths),
        description=description,
    )


def scores_from_pairs(
    embeddings: dict[Path, np.ndarray], pairs: Sequence[tuple[Path, Path, bool]], description: str
) -> ScoreSet:
    genuine: list[float] = []
    impostor: list[float] = []
    failed = 0
    for a, b, same in pairs:
        if a not in embeddings or b not in embeddings:
            failed += 1
            continue
        s = float(np.dot(embeddings[a], embeddings[b]))
        (genuine if same else impostor).append(s)
    return ScoreSet(np.array(genuine), np.array(impostor), failed, description)


def scores_from_results(results: Sequence[tuple[bool, float | None]], description: str) -> ScoreSet:
    """Scores from a service's pair replies: ``(same, similarity or None when it failed)``."""
    genuine = [s for same, s in results if same and s is not None]
    impostor = [s for same, s in results if not same and s is not None]
    failed = sum(s is None for _, s in results)
    return ScoreSet(np.array(genuine), np.array(impostor), failed, description)


def fit_calibration(
    scores: ScoreSet, target_fmrs: Sequence[float]
) -> tuple[Calibration, list[OperatingPoint]]:
    slope, intercept = fit_platt(scores.genuine, scores.impostor)
    calibration = Calibration(
        slope=slope,
        intercept=intercept,
        fitted_on=scores.description,
        n_genuine=int(scores.genuine.size),
        n_impostor=int(scores.impostor.size),
    )
    points = [
        OperatingPoint(
            name=operating_point_name(fmr),
            target_fmr=fmr,
            # rounded up: rounding down could land on an impostor score it must stay above
            threshold=math.ceil(threshold_at_fmr(scores.impostor, fmr) * 1e6) / 1e6,
        )
        for fmr in sorted(target_fmrs, reverse=True)
    ]
    return calibration, points


def report_rows(scores: ScoreSet, points: Sequence[OperatingPoint]) -> list[dict[str, Any]]:
    """Measured error rates of each operating point on the data it was fitted on."""
    s = np.concatenate([scores.genuine, scores.impostor])
    y = np.concatenate([np.ones(scores.genuine.size), np.zeros(scores.impostor.size)])
    rows = []
    for p in points:
        far, frr = metrics.error_rates_at(s, y, p.threshold)
        rows.append(
            {
                "operating_point": p.name,
                "threshold": p.threshold,
                "measured_fmr": far,
                "measured_fnmr": frr,
                "accuracy_balanced": 1.0 - (far + frr) / 2.0,
            }
        )
    return rows


def write_into_manifest(
    manifest_path: Path,
    calibration: Calibration,
    points: Sequence[OperatingPoint],
    default_point: str,
    channel: str = "",
) -> None:
    """Write the fit as the pack's calibration, or with ``channel`` as that channel's (the
    channel must use the pack's operating point names)."""
    data = json.loads(manifest_path.read_text(encoding="utf-8"))
    if channel:
        names = {p["name"] for p in data.get("operating_points", ())}
        if names != {p.name for p in points}:
            raise ValueError(
                f"fit the same operating points as the pack ({', '.join(sorted(names))}) "
                f"for channel {channel}"
            )
        data.setdefault("channel_calibrations", {})[channel] = {
            "calibration": calibration.to_dict(),
            "operating_points": [p.to_dict() for p in points],
        }
    else:
        data["calibration"] = calibration.to_dict()
        data["operating_points"] = [p.to_dict() for p in points]
        if default_point not in {p.name for p in points}:
            raise ValueError(
                f"default operating point {default_point} is not among the fitted ones"
            )
        data["default_operating_point"] = default_point
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(manifest_path)
