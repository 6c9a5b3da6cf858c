"""VoiceSpoofChecker with a stand-in model (plumbing and decisions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bioverify.antispoof.fusion import LogisticFusion
from bioverify.antispoof.ports import Check, SpoofAssessment
from bioverify.antispoof.voice_checker import (
    AASIST_FEATURE,
    VoiceSpoofChecker,
    reason_code,
)
from bioverify.errors import AudioTooShort, ConfigurationError
from bioverify.voice.ports import SpeechSegment, Waveform
from tests.antispoof.test_antispoof_signals import SR, vowel, whole


class FixedModel:
    """Returns a fixed log-odds and records the length of every input."""

    name = "fixed"

    def __init__(self, log_odds: float, window: int = SR) -> None:
        self.value = log_odds
        self.window = window
        self.calls: list[int] = []

    def log_odds(self, wave16k: Waveform) -> float:
        self.calls.append(int(wave16k.size))
        return self.value

    def score(self, wave16k: Waveform) -> float:
        return 1 / (1 + math.exp(-self.log_odds(wave16k)))


FUSION = LogisticFusion(
    features=(AASIST_FEATURE, "f0_variation"),
    mean=(0.0, 3.0),
    scale=(5.0, 1.0),
    weights=(2.0, 1.0),
    bias=0.0,
    threshold=0.5,
)


def speech(seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return vowel(120.0 * 2 ** (3 * np.sin(2 * np.pi * t / 2.0) / 12))


def test_bona_fide_evidence_is_accepted_with_checks() -> None:
    wave = speech()
    result = VoiceSpoofChecker(FixedModel(10.0), FUSION).assess(wave, whole(wave))
    assert isinstance(result, SpoofAssessment)
    assert result.live and result.score >= result.threshold == 0.5
    assert result.reasons == ()
    by_name = {c.name: c for c in result.checks}
    assert isinstance(by_name[AASIST_FEATURE], Check)
    assert by_name[AASIST_FEATURE].passed and by_name[AASIST_FEATURE].weight == pytest.approx(4.0)
    assert "AASIST" in by_name[AASIST_FEATURE].detail
    assert by_name["noise_floor"].weight == 0.0  # informational only
    assert "not scored" in by_name["noise_floor"].detail


def test_spoof_evidence_is_rejected_with_reasons() -> None:
    wave = vowel(np.full(3 * SR, 120.0))  # monotone
    result = VoiceSpoofChecker(FixedModel(-10.0), FUSION, max_reasons=2).assess(wave, whole(wave))
    assert not result.live
    codes = [code for code, _ in result.reasons]
    assert codes == [reason_code(AASIST_FEATURE), reason_code("f0_variation")]
    assert codes == ["VOICE_SPOOF_MODEL", "VOICE_FLAT_PROSODY"]
    scored = [c for c in result.checks if c.name in FUSION.features]
    assert scored and not any(c.passed for c in scored)  # both pushed towards "spoof"


def test_checks_fail_only_when_they_are_why_a_clip_is_rejected() -> None:
    """A live clip's scored checks all pass, even one below its typical value; a rejected
    clip's checks that pushed towards "spoof" fail, and only those."""
    wave = vowel(np.full(3 * SR, 120.0))  # flat prosody: f0_variation pulls towards spoof
    live = VoiceSpoofChecker(FixedModel(10.0), FUSION).assess(wave, whole(wave))
    assert live.live
    by_name = {c.name: c for c in live.checks}
    assert by_name["f0_variation"].weight < 0 and by_name["f0_variation"].passed
    speaking = speech()
    rejected = VoiceSpoofChecker(FixedModel(-10.0), FUSION).assess(speaking, whole(speaking))
    assert not rejected.live
    by_name = {c.name: c for c in rejected.checks}
    assert not by_name[AASIST_FEATURE].passed
    assert by_name["f0_variation"].passed == (by_name["f0_variation"].weight >= 0)


def test_precomputed_aasist_result_is_used_and_clipped() -> None:
    wave = speech()
    model = FixedModel(10.0)
    result = VoiceSpoofChecker(model, FUSION).assess(wave, whole(wave), aasist_log_odds=-99.0)
    assert model.calls == []
    aasist = next(c for c in result.checks if c.name == AASIST_FEATURE)
    assert aasist.weight == pytest.approx(2.0 * -3.0)  # clipped to -15, z = -3


def test_too_little_speech_and_bad_configuration() -> None:
    checker = VoiceSpoofChecker(FixedModel(0.0), FUSION)
    wave = speech(1.0)
    with pytest.raises(AudioTooShort):
        checker.assess(wave, [SpeechSegment(0.0, 0.5)])
    with pytest.raises(ConfigurationError, match="unknown features"):
        VoiceSpoofChecker(None, LogisticFusion(("nope",), (0.0,), (1.0,), (1.0,), 0.0))
    with pytest.raises(ConfigurationError, match="no model"):
        VoiceSpoofChecker(None, FUSION)
