"""Pure quality measures: net speech, SNR, clipping, issue codes."""

from __future__ import annotations

import numpy as np
import pytest

from bioverify.voice.ports import SpeechSegment
from bioverify.voice.quality import (
    SNR_CEILING_DB,
    ClippingMeter,
    VoiceIssue,
    VoiceQualityThresholds,
    assess_quality,
    clipping_fraction,
    estimate_snr_db,
    net_speech_seconds,
    quality_issues,
    shortfall,
    speech_mask,
)
from tests.long_audio import peak_bytes_of

RATE = 16000


def _bursts(noise_rms: float, seed: int = 0) -> tuple[np.ndarray, list[SpeechSegment]]:
    """4 s: 1 s noise, 1 s tone+noise, 1 s noise, 1 s tone+noise; the tone has power 0.02."""
    rng = np.random.default_rng(seed)
    t = np.arange(4 * RATE) / RATE
    tone = 0.2 * np.sin(2 * np.pi * 220 * t)
    gate = ((t >= 1) & (t < 2)) | (t >= 3)
    wave = np.where(gate, tone, 0.0) + noise_rms * rng.standard_normal(t.size)
    return wave.astype(np.float32), [SpeechSegment(1.0, 2.0), SpeechSegment(3.0, 4.0)]


def test_net_speech_merges_overlaps() -> None:
    segs = [SpeechSegment(0.0, 1.0), SpeechSegment(0.5, 1.5), SpeechSegment(3.0, 3.25)]
    assert net_speech_seconds(segs) == pytest.approx(1.75)
    assert net_speech_seconds([]) == 0.0
    mask = speech_mask(10, 10, [SpeechSegment(0.2, 0.5)])
    assert mask.tolist() == [False, False, True, True, True] + [False] * 5


@pytest.mark.parametrize("target_db", [0.0, 10.0, 20.0, 30.0])
def test_snr_with_noise_frames(target_db: float) -> None:
    signal_power = 0.2**2 / 2
    noise_rms = float(np.sqrt(signal_power / 10 ** (target_db / 10)))
    wave, segs = _bursts(noise_rms)
    assert estimate_snr_db(wave, RATE, segs) == pytest.approx(target_db, abs=1.0)


def test_snr_without_noise_frames_uses_percentiles() -> None:
    wave, _ = _bursts(0.2 / np.sqrt(2) / 10)  # 20 dB
    whole = [SpeechSegment(0.0, 4.0)]
    assert estimate_snr_db(wave, RATE, whole) == pytest.approx(20.0, abs=1.5)


def test_snr_limits() -> None:
    wave, segs = _bursts(0.0)
    assert estimate_snr_db(wave, RATE, segs) == SNR_CEILING_DB  # digital silence between
    noise = np.random.default_rng(0).standard_normal(RATE).astype(np.float32)
    assert estimate_snr_db(noise, RATE, [SpeechSegment(0.0, 0.5)]) < 1.0
    assert estimate_snr_db(np.zeros(10, np.float32), RATE, []) == -20.0


def test_clipping_fraction() -> None:
    t = np.arange(RATE) / RATE
    clean = (0.8 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    assert clipping_fraction(clean, RATE) == 0.0
    hard = np.clip(clean * 2, -1.0, 1.0)
    assert 0.5 < clipping_fraction(hard, RATE) < 0.8
    # clipped at 0.5 and then scaled down: runs of identical extreme values
    soft = np.clip(clean * 2, -0.5, 0.5) * 0.9
    assert clipping_fraction(soft, RATE) > 0.5
    # a loud but unclipped peak, quantised: short runs only
    quantised = np.round(clean * 64) / 64
    assert clipping_fraction(quantised, RATE) < 0.05
    quiet = np.clip(clean * 0.1, -0.05, 0.05)  # below -12 dBFS: not flagged by runs
    assert clipping_fraction(quiet, RATE) == 0.0
    assert clipping_fraction(np.zeros(0, np.float32), RATE) == 0.0
    single = np.zeros(100, np.float32)
    single[50] = 1.0
    assert clipping_fraction(single, RATE) == pytest.approx(0.01)


def _clipping_cases() -> dict[str, tuple[np.ndarray, int]]:
    t = np.arange(RATE) / RATE
    clean = (0.8 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    rng = np.random.default_rng(7)
    held = np.repeat(rng.uniform(0.2, 1.0, 2000), 8).astype(np.float32)  # runs of 8 samples
    return {
        "clean": (clean, RATE),
        "hard": (np.clip(clean * 2, -1.0, 1.0), RATE),
        "soft": (np.clip(clean * 2, -0.5, 0.5) * 0.9, RATE),
        "soft at 192 kHz": (np.clip(clean * 2, -0.5, 0.5) * 0.9, 192000),
        "quantised": (np.round(clean * 64) / 64, RATE),
        "quiet": (np.clip(clean * 0.1, -0.05, 0.05), RATE),
        "peak late": (np.r_[np.clip(clean, -0.3, 0.3), clean * 1.2].astype(np.float32), RATE),
        "held values": (held * rng.choice([-1.0, 1.0], held.size).astype(np.float32), 8000),
        "silence": (np.zeros(RATE, np.float32), RATE),
        "shorter than a run": (np.full(2, 0.9, np.float32), RATE),
        "empty": (np.zeros(0, np.float32), RATE),
    }


@pytest.mark.parametrize("name", sorted(_clipping_cases()))
def test_clipping_meter_gives_clipping_fraction_whatever_the_blocks(name: str) -> None:
    """Golden: the same fraction, exactly, for the whole signal and for any blocks of it
    (runs cut by a block boundary, one-sample blocks, the peak arriving late)."""
    wave, rate = _clipping_cases()[name]
    expected = clipping_fraction(wave, rate)
    rng = np.random.default_rng(11)
    splits = [[], [wave.size // 2], list(range(1, min(wave.size, 50)))]
    splits += [sorted(rng.integers(0, wave.size + 1, 30).tolist()) for _ in range(5)]
    for cuts in splits:
        meter = ClippingMeter(rate)
        for block in np.split(wave, cuts):
            meter.add(block)
        assert meter.fraction() == expected, cuts
    assert meter.samples == wave.size


def test_clipping_meter_merges_the_runs_it_keeps() -> None:
    """200 000 held values near the peak: runs of one magnitude are kept as one entry, so the
    meter's memory does not grow with them (it would by 2.4 MB if each were kept)."""
    rng = np.random.default_rng(5)
    levels = np.array([-0.6, -0.597, 0.597, 0.6], np.float32)
    blocks = [np.repeat(rng.choice(levels, 1000), 16) for _ in range(200)]
    whole = np.concatenate(blocks)
    meter = ClippingMeter(RATE)

    def measure() -> None:
        for block in blocks:
            meter.add(block)

    _, peak = peak_bytes_of(measure)
    assert peak < 1_000_000
    assert meter.fraction() == clipping_fraction(whole, RATE) > 0.9


def test_issue_codes_and_messages() -> None:
    thresholds = VoiceQualityThresholds(
        min_net_speech_s=2.0, max_clipping_fraction=0.01, min_snr_db=15
    )
    assert quality_issues(net_speech_s=3, snr_db=30, clipping=0.0, thresholds=thresholds) == ()
    issues = quality_issues(net_speech_s=0.8, snr_db=5.2, clipping=0.05, thresholds=thresholds)
    assert [i.code for i in issues] == [
        VoiceIssue.NOT_ENOUGH_SPEECH,
        VoiceIssue.CLIPPED,
        VoiceIssue.LOW_SNR,
    ]
    messages = [i.message for i in issues]
    assert "only 0.8 s of speech" in messages[0] and "2.0 s" in messages[0]
    assert "5.0% of the audio is clipped" in messages[1]
    assert "5 dB" in messages[2] and "15 dB" in messages[2]


def test_assess_quality_report() -> None:
    wave, segs = _bursts(0.2 / np.sqrt(2) / 10)
    report = assess_quality(wave, RATE, segs, VoiceQualityThresholds(min_net_speech_s=3.0))
    assert report.net_speech_s == pytest.approx(2.0)
    assert report.snr_db == pytest.approx(20.0, abs=1.0)
    assert report.clipping_fraction == 0.0
    assert report.codes == (VoiceIssue.NOT_ENOUGH_SPEECH,)
    assert not report.ok
    given = assess_quality(wave, RATE, segs, VoiceQualityThresholds(), clipping=0.5)
    assert given.codes == (VoiceIssue.CLIPPED,)


def test_not_enough_speech_never_reads_as_enough() -> None:
    thresholds = VoiceQualityThresholds(
        min_net_speech_s=1.0, max_clipping_fraction=0.01, min_snr_db=15
    )
    (issue,) = quality_issues(net_speech_s=0.986, snr_db=30, clipping=0.0, thresholds=thresholds)
    assert issue.message.startswith("only 0.98 s of speech was found; at least 1.0 s is needed")


@pytest.mark.parametrize(
    ("found", "needed", "shown"),
    [
        (0.986, 1.0, ("0.98", "1.0")),
        (0.999, 1.0, ("0.99", "1.0")),
        (0.29, 1.0, ("0.29", "1.0")),  # from its repr: not 0.28 by binary rounding
        (0.8, 2.0, ("0.8", "2.0")),
        (1.999, 2.0, ("1.99", "2.0")),
        (1.001, 1.005, ("1.0", "1.01")),  # a finer minimum is rounded up
        (0.0, 1.5, ("0.0", "1.5")),
    ],
)
def test_shortfall_rounds_found_down_and_needed_up(
    found: float, needed: float, shown: tuple[str, str]
) -> None:
    assert shortfall(found, needed) == shown
    assert float(shown[0]) < float(shown[1])
