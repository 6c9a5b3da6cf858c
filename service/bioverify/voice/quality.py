"""Voice sample quality: net speech, SNR and clipping, and the issues they raise.

Pure functions over numpy arrays and frozen dataclasses; no model is involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from bioverify.scoring import shown_against
from bioverify.voice.ports import SpeechSegment, Waveform

SNR_CEILING_DB = 100.0
SNR_FLOOR_DB = -20.0
_FRAME_S = 0.02
_MIN_NOISE_FRAMES = 5


class VoiceIssue(StrEnum):
    NOT_ENOUGH_SPEECH = "NOT_ENOUGH_SPEECH"
    CLIPPED = "CLIPPED"
    LOW_SNR = "LOW_SNR"


@dataclass(frozen=True)
class VoiceQualityThresholds:
    """Limits a voice sample must meet; deployments pass their own, versioned values."""

    min_net_speech_s: float = 1.0
    max_clipping_fraction: float = 0.01
    min_snr_db: float = 10.0


@dataclass(frozen=True)
class QualityIssue:
    code: VoiceIssue
    message: str


@dataclass(frozen=True)
class VoiceQualityReport:
    net_speech_s: float
    snr_db: float
    clipping_fraction: float
    issues: tuple[QualityIssue, ...]

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def codes(self) -> tuple[VoiceIssue, ...]:
        return tuple(i.code for i in self.issues)


def net_speech_seconds(segments: Sequence[SpeechSegment]) -> float:
    """Total duration covered by the segments (overlaps counted once)."""
    total = 0.0
    end_so_far = -np.inf
    for seg in sorted(segments, key=lambda s: s.start_s):
        start = max(seg.start_s, end_so_far)
        if seg.end_s > start:
            total += seg.end_s - start
        end_so_far = max(end_so_far, seg.end_s)
    return total


def speech_mask(
    num_samples: int, sample_rate: int, segments: Sequence[SpeechSegment]
) -> npt.NDArray[np.bool_]:
    """Boolean per sample: inside a speech segment."""
    mask = np.zeros(num_samples, dtype=bool)
    for seg in segments:
        a = max(0, round(seg.start_s * sample_rate))
        b = min(num_samples, round(seg.end_s * sample_rate))
        if b > a:
            mask[a:b] = True
    return mask


def _frame_powers(wave: Waveform, frame: int) -> npt.NDArray[np.float64]:
    n = wave.size // frame
    frames = np.asarray(wave[: n * frame], dtype=np.float64).reshape(n, frame)
    frames = frames - frames.mean(axis=1, keepdims=True)
    return np.asarray(np.mean(frames * frames, axis=1), dtype=np.float64)


def _snr_from_powers(speech_power: float, noise_power: float) -> float:
    signal = max(speech_power - noise_power, 0.0)
    if signal <= 0.0:
        return SNR_FLOOR_DB
    if noise_power <= 0.0:
        return SNR_CEILING_DB
    return float(np.clip(10.0 * np.log10(signal / noise_power), SNR_FLOOR_DB, SNR_CEILING_DB))


def estimate_snr_db(wave: Waveform, sample_rate: int, segments: Sequence[SpeechSegment]) -> float:
    """Rough SNR in dB from 20 ms frame powers (DC removed per frame).

    Signal is the mean power of frames inside speech segments minus the noise power; noise is
    the median power of the frames outside them. With fewer than 5 non-speech frames the
    noise is the 10th percentile and the speech the 90th percentile of all frame powers.
    Clamped to [-20, 100] dB.
    """
    frame = max(1, round(_FRAME_S * sample_rate))
    powers = _frame_powers(np.asarray(wave, dtype=np.float32), frame)
    if powers.size == 0:
        return SNR_FLOOR_DB
    mask = speech_mask(powers.size * frame, sample_rate, segments).reshape(-1, frame)
    in_speech = mask.mean(axis=1) >= 0.5
    speech, noise = powers[in_speech], powers[~in_speech]
    if speech.size and noise.size >= _MIN_NOISE_FRAMES:
        return _snr_from_powers(float(speech.mean()), float(np.median(noise)))
    low, high = np.percentile(powers, [10.0, 90.0])
    return _snr_from_powers(float(high), float(low))


def clipping_fraction(
    wave: npt.NDArray[np.floating[Any]],
    sample_rate: int,
    *,
    full_scale: float = 0.999,
    min_run_s: float = 0.001,
) -> float:
    """Fraction of samples that look clipped.

    A sample counts when ``|x| >= full_scale``, or when it belongs to a run of at least
    ``min_run_s`` (and 3 samples) of identical values at the clip's extreme (within 1% of
    its peak, peak above -12 dBFS): that catches clipping before a gain change and G.711
    saturation at +/-0.98, without flagging ordinary peaks.
    """
    x = np.asarray(wave, dtype=np.float32)
    if x.size == 0:
        return 0.0
    mag = np.abs(x)
    clipped = mag >= full_scale
    peak = float(mag.max())
    min_run = max(3, round(min_run_s * sample_rate))
    if peak >= 0.25 and x.size >= min_run:
        extreme = mag >= 0.99 * peak
        # runs of equal consecutive values among extreme samples
        starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
        lengths = np.diff(np.r_[starts, x.size])
        long_runs = (lengths >= min_run) & extreme[starts]
        if long_runs.any():
            delta = np.zeros(x.size + 1, dtype=np.int8)
            np.add.at(delta, starts[long_runs], 1)
            np.add.at(delta, (starts + lengths)[long_runs], -1)
            clipped |= np.cumsum(delta[:-1], dtype=np.int8) > 0
    return float(np.count_nonzero(clipped)) / x.size


def shortfall(found: float, needed: float) -> tuple[str, str]:
    """``found`` and ``needed`` seconds for a message saying one is below the other (see
    :func:`bioverify.scoring.shown_against`): 0.986 s against 1 s reads "0.98" and "1.0"."""
    return shown_against(found, needed, trim=True)


def quality_issues(
    *,
    net_speech_s: float,
    snr_db: float,
    clipping: float,
    thresholds: VoiceQualityThresholds,
) -> tuple[QualityIssue, ...]:
    """Issues raised by the measurements under ``thresholds``, in a stable order."""
    issues: list[QualityIssue] = []
    if net_speech_s < thresholds.min_net_speech_s:
        found, needed = shortfall(net_speech_s, thresholds.min_net_speech_s)
        issues.append(
            QualityIssue(
                VoiceIssue.NOT_ENOUGH_SPEECH,
                f"only {found} s of speech was found; at least {needed} s is needed: "
                "speak for longer",
            )
        )
    if clipping > thresholds.max_clipping_fraction:
        issues.append(
            QualityIssue(
                VoiceIssue.CLIPPED,
                f"{clipping:.1%} of the audio is clipped (at most "
                f"{thresholds.max_clipping_fraction:.1%}): lower the microphone gain or "
                "speak further from the microphone",
            )
        )
    if snr_db < thresholds.min_snr_db:
        issues.append(
            QualityIssue(
                VoiceIssue.LOW_SNR,
                f"the speech is {snr_db:.0f} dB above the background noise (at least "
                f"{thresholds.min_snr_db:.0f} dB is needed): move somewhere quieter",
            )
        )
    return tuple(issues)


def assess_quality(
    wave: Waveform,
    sample_rate: int,
    segments: Sequence[SpeechSegment],
    thresholds: VoiceQualityThresholds,
    *,
    clipping: float | None = None,
) -> VoiceQualityReport:
    """Measure ``wave`` (with its VAD segments) and list the issues.

    ``clipping`` may be measured beforehand on the audio at its input rate, where clipped
    runs are intact (resampling smears them); otherwise it is measured on ``wave``.
    """
    net = net_speech_seconds(segments)
    snr = estimate_snr_db(wave, sample_rate, segments)
    clip = clipping if clipping is not None else clipping_fraction(wave, sample_rate)
    return VoiceQualityReport(
        net_speech_s=net,
        snr_db=snr,
        clipping_fraction=clip,
        issues=quality_issues(net_speech_s=net, snr_db=snr, clipping=clip, thresholds=thresholds),
    )
