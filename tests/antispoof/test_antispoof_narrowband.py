"""Telephone (narrowband) input: detection, the choice of the telephone-band fusion, and its
accuracy on clips of ../shared/data/voice_spoof passed through 8 kHz G.711 mu-law and back.

Before the pack had a ``fusion_narrowband`` block, a genuine 8 kHz mu-law caller scored about
0.06 and was flagged as spoofed (the wideband fusion leans on 4-7.5 kHz). The accuracy floors
below are in-sample (the fusion was fitted on these clips) and set under the measured values;
the leave-one-attack-out estimate is in the manifest's ``fusion_narrowband.validation``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from bioverify.antispoof.bandwidth import (
    NARROWBAND_HF_DB,
    assess_bandwidth,
    declared_narrowband,
    high_band_db,
    telephony_round_trip,
)
from bioverify.antispoof.fusion import LogisticFusion
from bioverify.antispoof.voice_checker import (
    AASIST_FEATURE,
    BANDWIDTH_CHECK,
    VoiceSpoofChecker,
)
from bioverify.antispoof.voice_signals import NARROWBAND_SIGNALS
from bioverify.voice.audio_decode import resample
from tests.antispoof.antispoof_assets import read_clip, spoof_rows
from tests.antispoof.test_antispoof_accuracy import subset
from tests.antispoof.test_antispoof_checker import FUSION, FixedModel, speech


def _first_bonafide() -> str:
    return next(r["path"] for r in spoof_rows() if r["label"] == "bonafide")


# -- detection --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rate", "encoding", "expected"),
    [
        (8000, "PCM_S16LE", True),
        (8000, "MULAW", True),
        (16000, "MULAW", True),
        (16000, "ALAW", True),
        (16000, "PCM_S16LE", False),
        (44100, "FLAC", False),
        (None, None, False),
    ],
)
def test_declared_narrowband(rate: int | None, encoding: str | None, expected: bool) -> None:
    assert declared_narrowband(rate, encoding) is expected


def test_measured_bandwidth_tells_upsampled_telephone_audio_from_wideband(vad: Any) -> None:
    wave = read_clip(_first_bonafide())
    segments = vad.speech_segments(wave)
    wide = assess_bandwidth(wave, segments)
    assert not wide.narrowband and not wide.declared
    assert wide.high_band_db > NARROWBAND_HF_DB + 10
    assert "wideband input" in wide.detail

    # A 16 kHz file upsampled from 8 kHz (no codec): nothing above the telephone band.
    upsampled = resample(resample(wave, 16000, 8000), 8000, 16000)
    up = assess_bandwidth(upsampled, vad.speech_segments(upsampled))
    assert up.narrowband and not up.declared
    assert up.high_band_db < NARROWBAND_HF_DB - 10
    assert "narrowband input: telephone-band model" in up.detail

    # The same through G.711 mu-law (what a MULAW 8 kHz upload becomes).
    phone = telephony_round_trip(wave)
    assert phone.shape == wave.shape
    assert high_band_db(phone, vad.speech_segments(phone)) < NARROWBAND_HF_DB

    # Declared narrowband needs no measurement to agree.
    assert assess_bandwidth(wave, segments, declared=True).narrowband


def test_bandwidth_on_silence_is_not_measured() -> None:
    assert math.isnan(high_band_db(np.zeros(100, dtype=np.float32)))
    assert not assess_bandwidth(np.zeros(16000, dtype=np.float32)).narrowband


# -- choice of fusion -------------------------------------------------------------------------
NARROW = LogisticFusion(
    features=(AASIST_FEATURE, "nb_contrast"),
    mean=(0.0, 20.0),
    scale=(5.0, 5.0),
    weights=(1.0, 0.5),
    bias=0.0,
    threshold=0.3,
)


def _bandwidth_detail(checks: Any) -> str:
    return str(next(c.detail for c in checks if c.name == BANDWIDTH_CHECK))


def test_checker_uses_the_telephone_band_fusion_for_narrowband_input() -> None:
    from bioverify.voice.ports import SpeechSegment

    checker = VoiceSpoofChecker(FixedModel(1.0), FUSION, narrowband_fusion=NARROW)
    wave = speech(3.0)
    segments = [SpeechSegment(0.0, 3.0)]
    wide = checker.assess(wave, segments)
    assert wide.threshold == FUSION.threshold
    assert "f0_variation" in {c.name for c in wide.checks if c.weight != 0.0}
    assert "wideband input" in _bandwidth_detail(wide.checks)

    declared = assess_bandwidth(wave, segments, declared=True)
    narrow = checker.assess(wave, segments, bandwidth=declared)
    assert narrow.threshold == NARROW.threshold == checker.threshold_for(True)
    assert {c.name for c in narrow.checks if c.weight != 0.0} <= set(NARROW.features)
    assert "narrowband input: telephone-band model" in _bandwidth_detail(narrow.checks)
    f0 = next(c for c in narrow.checks if c.name == "f0_variation")
    assert f0.weight == 0.0 and f0.detail.startswith("informational")

    # Measured, not declared: the same speech upsampled from 8 kHz.
    up = resample(resample(wave, 16000, 8000), 8000, 16000)
    measured = checker.assess(up, segments)
    assert measured.threshold == NARROW.threshold

    # Without a telephone-band fusion the wideband one is used, and the report says so.
    alone = VoiceSpoofChecker(FixedModel(1.0), FUSION)
    fallback = alone.assess(wave, segments, bandwidth=declared)
    assert fallback.threshold == FUSION.threshold
    assert "no telephone-band model" in _bandwidth_detail(fallback.checks)


def test_checker_from_manifest(shipped_manifest: dict[str, Any]) -> None:
    checker = VoiceSpoofChecker.from_manifest(shipped_manifest, FixedModel(0.0))
    assert checker.narrowband_fusion is not None
    assert checker.fusion.features == tuple(shipped_manifest["fusion"]["features"])


def test_shipped_narrowband_fusion_uses_only_telephone_band_features(
    shipped_manifest: dict[str, Any],
) -> None:
    block = shipped_manifest["fusion_narrowband"]
    allowed = {
        AASIST_FEATURE,
        *NARROWBAND_SIGNALS,
        "f0_variation",
        "f0_perturbation",
        "amp_perturbation",
    }
    assert set(block["features"]) <= allowed
    validation = block["validation"]
    wide = shipped_manifest["fusion"]["validation"]
    # the threshold sits at the wideband fusion's BPCER (out of fold)
    assert validation["bpcer_at_threshold"] <= wide["bpcer_at_threshold"] + 1e-9
    assert validation["eer"] < 0.3
    assert validation["apcer_at_threshold"] < 0.5


# -- accuracy on mu-law round-tripped clips ----------------------------------------------------
def test_mulaw_bona_fide_is_accepted_and_spoofs_mostly_caught(
    detector: Any, vad: Any, shipped_manifest: dict[str, Any]
) -> None:
    checker = VoiceSpoofChecker.from_manifest(shipped_manifest, detector)
    wideband_only = VoiceSpoofChecker(detector, checker.fusion)
    rows = subset(spoof_rows())
    live, wide_live, labels = [], [], []
    for row in rows:
        phone = telephony_round_trip(read_clip(row["path"]))
        segments = vad.speech_segments(phone)
        aasist = detector.log_odds(phone)
        result = checker.assess(phone, segments, aasist_log_odds=aasist)  # measured: narrowband
        assert "narrowband input" in _bandwidth_detail(result.checks)
        live.append(result.live)
        wide_live.append(wideband_only.assess(phone, segments, aasist_log_odds=aasist).live)
        labels.append(row["label"] == "bonafide")
    bona = np.array(labels)
    accepted = np.array(live)
    bona_acceptance = float(accepted[bona].mean())
    spoof_caught = float((~accepted[~bona]).mean())
    # measured: bona fide accepted 12/12, spoofs caught 15/22 (wideband fusion: bona fide 6/12)
    assert bona_acceptance >= 0.8
    assert spoof_caught >= 0.5
    assert float(np.array(wide_live)[bona].mean()) < bona_acceptance  # the problem it fixes
