"""Accuracy floors of the shipped voice anti-spoofing fusion on ../shared/data/voice_spoof.

The fusion was fitted on this set, so these are in-sample figures guarding against
regressions (measured: full set EER 5.6 %, AUC 0.971; the fixed subset EER 9.1 %, AUC 0.966).
The generalisation estimate (leave-one-attack-out EER 6.9 %, nested 5.6 %) is recorded in
the manifest by ``fit_voice_fusion``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bioverify.antispoof.fusion import LogisticFusion
from bioverify.antispoof.voice_checker import VoiceSpoofChecker
from bioverify.metrics import auc, eer, error_rates_at
from tests.antispoof.antispoof_assets import read_clip, spoof_rows


def subset(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The first 6 bona fide clips of each corpus and the first 2 clips of each attack."""
    counts: dict[tuple[str, str], int] = {}
    chosen = []
    for row in rows:
        key = (row["attack_id"], row["path"].split("/")[1])
        limit = 6 if row["label"] == "bonafide" else 2
        if counts.get(key, 0) < limit:
            counts[key] = counts.get(key, 0) + 1
            chosen.append(row)
    return chosen


def assess_all(
    rows: list[dict[str, str]], detector: Any, vad: Any, manifest: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    fusion = LogisticFusion.from_dict(manifest["fusion"])
    checker = VoiceSpoofChecker(detector, fusion)
    scores, aasist, labels = [], [], []
    for row in rows:
        wave = read_clip(row["path"])
        result = checker.assess(wave, vad.speech_segments(wave))
        scores.append(result.score)
        aasist.append(next(c.score for c in result.checks if c.name == "aasist"))
        labels.append(row["label"] == "bonafide")
    return np.array(scores), np.array(aasist), np.array(labels), fusion.threshold


def test_fused_accuracy_floor_on_a_fixed_subset(
    detector: Any, vad: Any, shipped_manifest: dict[str, Any]
) -> None:
    rows = subset(spoof_rows())
    assert len(rows) == 34
    scores, aasist, labels, threshold = assess_all(rows, detector, vad, shipped_manifest)
    assert eer(scores, labels) <= 0.15
    assert auc(scores, labels) >= 0.93
    assert eer(scores, labels) < eer(aasist, labels)  # the fusion beats AASIST alone
    apcer, bpcer = error_rates_at(scores, labels, threshold)
    assert apcer <= 0.2 and bpcer <= 0.2


@pytest.mark.slow
def test_fused_accuracy_floor_on_the_whole_set(
    detector: Any, vad: Any, shipped_manifest: dict[str, Any]
) -> None:
    rows = spoof_rows()
    scores, _, labels, threshold = assess_all(rows, detector, vad, shipped_manifest)
    assert eer(scores, labels) <= 0.10
    assert auc(scores, labels) >= 0.94
    apcer, bpcer = error_rates_at(scores, labels, threshold)
    assert apcer <= 0.12 and bpcer <= 0.12
