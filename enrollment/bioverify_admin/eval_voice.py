"""``eval speaker-trials``: send every trial through CompareVoices and score the replies."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import soundfile as sf

from bioverify import metrics
from bioverify.client import BioverifyClient
from bioverify.voice.audio_decode import mulaw_encode, resample
from bioverify_admin.datasets import Pair
from bioverify_admin.eval_face import (
    PairEvaluation,
    PairResult,
    score_arrays,
    summarise,
    timed_compare,
)

TELEPHONY_RATE = 8000


def telephony_mulaw(data: bytes) -> bytes:
    """An audio file's bytes as a phone line carries them: mono, 8 kHz, G.711 mu-law."""
    wave, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return mulaw_encode(resample(wave.mean(axis=1), rate, TELEPHONY_RATE))


def telephony_bytes(path: Path) -> bytes:
    """The clip file as a phone line carries it (see :func:`telephony_mulaw`)."""
    return telephony_mulaw(path.read_bytes())


def clip_from_bytes(client: BioverifyClient, data: bytes, telephony: bool) -> Any:
    """The request's Audio for a clip file's bytes: as is, or as a phone line carries it."""
    if telephony:
        return client.audio(telephony_mulaw(data), encoding="MULAW", sample_rate_hz=TELEPHONY_RATE)
    return client.audio(data)


def _compare(client: BioverifyClient, pair: Pair, telephony: bool) -> PairResult:
    try:
        clip_a = clip_from_bytes(client, pair.path_a.read_bytes(), telephony)
        clip_b = clip_from_bytes(client, pair.path_b.read_bytes(), telephony)
    except (OSError, sf.LibsndfileError, ValueError) as exc:  # --telephony decodes it here
        return PairResult(pair.same, None, None, None, 0.0, f"UNREADABLE_FILE: {exc}")
    return timed_compare(pair.same, lambda: client.compare_voices(clip_a, clip_b))


def run_speaker_trials(
    client: BioverifyClient, trials: list[Pair], *, telephony: bool, concurrency: int = 1
) -> PairEvaluation:
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        results = list(pool.map(lambda t: _compare(client, t, telephony), trials))
    summary = summarise(results)
    out: dict[str, Any] = {"n_trials": summary.pop("n_pairs"), **summary}
    scores, labels = score_arrays(results)
    out["min_dcf_p001"] = metrics.min_dcf(scores, labels, p_target=0.01)
    out["telephony"] = telephony
    return PairEvaluation(out, tuple(results))


def evaluate_speaker_trials(
    client: BioverifyClient, trials: list[Pair], *, telephony: bool, concurrency: int = 1
) -> dict[str, Any]:
    return run_speaker_trials(client, trials, telephony=telephony, concurrency=concurrency).summary
