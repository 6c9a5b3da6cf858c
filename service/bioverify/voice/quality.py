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
    saturation at +/-0.98, without flagging ordinary peaks. (:class:`ClippingMeter` over
    the whole signal as one block.)
    """
    meter = ClippingMeter(sample_rate, full_scale=full_scale, min_run_s=min_run_s)
    meter.add(np.asarray(wave, dtype=np.float32))
    return meter.fraction()


_MIN_CLIPPING_PEAK = 0.25  # clipping_fraction looks for clipped runs only above this peak


class ClippingMeter:
    """:func:`clipping_fraction` of a signal that arrives in blocks, with the same result,
    holding only the runs that may still count (so audio can be measured at its input rate
    while it is decoded, without keeping it).

    A run of identical values of at least ``min_run`` samples counts when its magnitude
    reaches 99 % of the final peak: runs below 99 % of the peak so far (or of 0.25) can never
    count and are dropped, and runs of one magnitude are merged, whenever the kept runs have
    doubled (so the work stays proportional to the signal's length).
    """

    def __init__(
        self, sample_rate: int, *, full_scale: float = 0.999, min_run_s: float = 0.001
    ) -> None:
        self.full_scale = full_scale
        self.min_run = max(3, round(min_run_s * sample_rate))
        self.samples = 0
        self._at_full_scale = 0
        self._peak = 0.0
        self._open_value: np.float32 | None = None  # the run still open at the last block's end
        self._open_length = 0
        self._magnitudes: list[npt.NDArray[np.float32]] = []  # long runs below full scale
        self._lengths: list[npt.NDArray[np.int64]] = []
        self._kept = 0
        self._compacted = 0

    def add(self, block: npt.NDArray[np.float32]) -> None:
        x = np.asarray(block, dtype=np.float32)
        if x.size == 0:
            return
        mag = np.abs(x)
        self.samples += x.size
        self._at_full_scale += int(np.count_nonzero(mag >= self.full_scale))
        self._peak = max(self._peak, float(mag.max()))
        starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
        lengths = np.diff(np.r_[starts, x.size])
        if self._open_value is not None and x[0] == self._open_value:
            lengths[0] += self._open_length  # the open run goes on
        elif self._open_value is not None:
            self._keep(np.abs(np.array([self._open_value])), np.array([self._open_length]))
        self._open_value, self._open_length = x[starts[-1]], int(lengths[-1])
        self._keep(mag[starts[:-1]], lengths[:-1])

    def fraction(self) -> float:
        """:func:`clipping_fraction` of everything added so far."""
        if self.samples == 0:
            return 0.0
        clipped = self._at_full_scale
        if self._peak >= _MIN_CLIPPING_PEAK and self.samples >= self.min_run:
            magnitudes = np.concatenate([np.zeros(0, np.float32), *self._magnitudes])
            lengths = np.concatenate([np.zeros(0, np.int64), *self._lengths])
            if self._open_value is not None and self._open_length >= self.min_run:
                magnitudes = np.r_[magnitudes, np.abs(self._open_value)].astype(np.float32)
                lengths = np.r_[lengths, self._open_length]
            extreme = (magnitudes >= 0.99 * self._peak) & (magnitudes < self.full_scale)
            clipped += int(lengths[extreme].sum())
        return float(clipped) / self.samples

    def _keep(self, magnitudes: npt.NDArray[np.float32], lengths: npt.NDArray[np.int64]) -> None:
        """Keep the finished runs that may count; compact the kept ones when they doubled."""
        # Full-scale samples are counted already; the final peak is at least the peak so far.
        keep = (
            (lengths >= self.min_run)
            & (magnitudes < self.full_scale)
            & (magnitudes >= 0.99 * max(self._peak, _MIN_CLIPPING_PEAK))
        )
        if not keep.any():
            return
        self._magnitudes.append(magnitudes[keep].astype(np.float32))
        self._lengths.append(lengths[keep].astype(np.int64))
        self._kept += int(np.count_nonzero(keep))
        if self._kept > max(1024, 2 * self._compacted):
            self._compact()

    def _compact(self) -> None:
        mags = np.concatenate(self._magnitudes)
        lens = np.concatenate(self._lengths)
        keep = mags >= 0.99 * max(self._peak, _MIN_CLIPPING_PEAK)
        mags, where = np.unique(mags[keep], return_inverse=True)
        lens = np.bincount(where, weights=lens[keep], minlength=mags.size).astype(np.int64)
        self._magnitudes, self._lengths = [mags], [lens]
        self._kept = self._compacted = int(mags.size)


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
