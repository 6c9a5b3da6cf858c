"""Audio-visual sync: does the mouth move with the speech on a short video with audio?

A talking face opens its mouth when the voice is loud and closes it in pauses, so over a
couple of seconds the lip aperture and the speech energy rise and fall together (Chandrasekaran
et al., "The natural statistics of audiovisual speech", PLoS Comput Biol 2009: mouth area
follows the broadband speech envelope at syllable rate, 2-7 Hz, with the mouth leading the
sound by roughly 100-300 ms). Two cheap presentation attacks break that coupling: a still
photo (or a mask) held up while a recording plays, and a video whose audio was dubbed or
replayed from elsewhere.

The check, named ``av_sync``, measures per video frame:

* **mouth opening**: from dlib's 68-point face shape (``shape68``), the inner-lip
  aperture is the mean of the distances 61-67, 62-66 and 63-65 divided by the inter-ocular
  distance (eye centres), so it does not depend on how large the face is;
* **speech energy**: the RMS level (dB) of the audio during each frame's interval
  ``[i/fps, (i+1)/fps)``, floored ``dynamic_range_db`` below the loudest frame, and set to
  that floor where the Silero VAD hears no speech (when the service has a VAD).

and scores the largest Pearson correlation between the two series over lags of up to
``max_lag_s`` either way (a talking face leads or lags its audio slightly; capture pipelines
add their own offset).

Thresholds (:class:`AvSyncPolicy`) are chosen from first principles; there is no talking-face
data to tune them on, and none was used:

* ``min_mouth_range`` 0.03 inter-ocular distances (about 2 mm on an adult face, eye distance
  about 63 mm), p90 - p10 of the aperture: lips apart during speech open by 5-15 mm, while
  the landmark jitter of a still face is well under a pixel at eye distances of 60+ px
  (exactly 0 on a repeated still frame);
* ``min_correlation`` 0.3: matched audio-visual speech gives aperture-envelope correlations
  of about 0.3-0.6 on sentence-length clips in the literature above, higher on the short
  windows used here because a 2 s clip holds a few syllables; unrelated audio gives 0 on
  average with a spread of about ``1/sqrt(n_eff)`` (n_eff, the number of independent
  samples, is about one per syllable), so a dubbed clip of 2 s still clears 0.3 by chance
  now and then: this is a gate against still photos with a voice track and grossly
  mismatched audio, not a lip-sync deepfake detector;
* ``max_lag_s`` 0.2 s (the audio-visual lead/lag of natural speech above, plus capture
  offsets); ``min_duration_s`` 1.5 s and ``min_frames`` 10 (at least a few syllables and
  enough points for a correlation); ``min_speech_s`` 1.0 s of speech within the video.

When the clip is too short or holds too little speech, or when the shape predictor cannot be
loaded, the check is reported as *not evaluated* (weight 0, ``passed`` false, the reason in
its detail) and does not change the decision: it never pretends to have passed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bioverify.errors import InvalidInput
from bioverify.liveness.ports import Check
from bioverify.liveness.shape68 import aperture_from_68
from bioverify.voice.audio_decode import resample
from bioverify.voice.ports import VoiceActivityDetector, Waveform

logger = logging.getLogger(__name__)

AV_SYNC = "av_sync"
AV_SYNC_FAILED = "AV_SYNC_FAILED"

FloatArray = npt.NDArray[np.float64]

_SILENCE_DB = -120.0
_RATE_WITHOUT_VAD = 16000  # speech energy needs no more


@dataclass(frozen=True)
class AvSyncPolicy:
    """Thresholds of the audio-visual sync check (see the module docstring for why)."""

    max_lag_s: float = 0.2
    min_duration_s: float = 1.5
    min_frames: int = 10
    min_speech_s: float = 1.0
    min_mouth_range: float = 0.03
    min_correlation: float = 0.3
    dynamic_range_db: float = 40.0
    duration_tolerance_s: float = 0.5
    duration_tolerance_fraction: float = 0.25
    """Audio and video durations may differ by the larger of these (else INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class AvSyncResult:
    """The check as reported, and whether it was evaluated (a failed evaluated check
    rejects the sample; "not evaluated" only reports why)."""

    check: Check
    evaluated: bool


def frame_energy_db(
    wave: npt.ArrayLike, sample_rate: int, n_frames: int, fps: float, dynamic_range_db: float
) -> FloatArray:
    """RMS level (dB) of the audio during each video frame ``[i/fps, (i+1)/fps)``.

    Levels are floored ``dynamic_range_db`` below the loudest frame (digital silence would
    otherwise dominate a correlation); frames past the end of the audio sit at the floor.
    """
    samples = np.asarray(wave, dtype=np.float64)
    levels = np.full(n_frames, _SILENCE_DB)
    for i in range(n_frames):
        a = round(i * sample_rate / fps)
        b = round((i + 1) * sample_rate / fps)
        chunk = samples[a : min(b, samples.size)]
        if chunk.size:
            rms = math.sqrt(float(np.mean(chunk * chunk)))
            levels[i] = 20.0 * math.log10(rms) if rms > 0 else _SILENCE_DB
    floor = float(levels.max()) - dynamic_range_db
    out: FloatArray = np.maximum(levels, floor)
    return out


def pearson(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Pearson correlation; 0 when either series is constant (no evidence either way)."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    if den <= 1e-12 * max(1.0, float(a.size)):
        return 0.0
    return float(np.clip(np.dot(a, b) / den, -1.0, 1.0))


def lagged_correlation(
    mouth: npt.ArrayLike, energy: npt.ArrayLike, max_lag: int, *, min_overlap: int = 3
) -> tuple[float, int]:
    """Largest Pearson correlation of the two series over lags ``-max_lag..max_lag``.

    At lag ``k > 0`` the mouth follows the audio by ``k`` frames (``mouth[i + k]`` against
    ``energy[i]``); at ``k < 0`` it leads. Only lags leaving ``min_overlap`` samples are tried;
    ties go to the smallest ``|k|``. Returns ``(correlation, lag)``.
    """
    m = np.asarray(mouth, dtype=np.float64)
    e = np.asarray(energy, dtype=np.float64)
    if m.shape != e.shape or m.ndim != 1:
        raise ValueError(f"series must be 1-D and of the same length, got {m.shape}, {e.shape}")
    n = m.size
    best, best_lag = -math.inf, 0
    for k in sorted(range(-max_lag, max_lag + 1), key=lambda k: (abs(k), k)):
        if n - abs(k) < min_overlap:
            continue
        r = pearson(m[k:], e[: n - k]) if k >= 0 else pearson(m[: n + k], e[-k:])
        if r > best:
            best, best_lag = r, k
    if best == -math.inf:
        return 0.0, 0
    return best, best_lag


class AvSyncChecker:
    """The ``av_sync`` liveness check on the frames' 68-point shapes (``shape68``)."""

    def __init__(
        self,
        *,
        vad: VoiceActivityDetector | None = None,
        policy: AvSyncPolicy | None = None,
        unavailable: str = "the dlib 68-point shape predictor is not installed",
    ) -> None:
        """``unavailable``: why the check is "not evaluated" when there are no shapes."""
        self.vad = vad
        self.policy = policy or AvSyncPolicy()
        self.unavailable = unavailable
        self.sample_rate = vad.sample_rate if vad is not None else _RATE_WITHOUT_VAD
        """The rate to decode the audio at (the VAD's): ``check`` takes any rate."""

    @staticmethod
    def validate_frame_rate(fps: float) -> None:
        """Frames sent with their audio need a frame rate to be aligned with it."""
        if not math.isfinite(fps) or fps <= 0:
            raise InvalidInput("frames with audio need their frame rate: set fps > 0")

    def validate(self, n_frames: int, fps: float, audio_s: float) -> None:
        """Reject requests whose frames and audio cannot describe the same capture."""
        self.validate_frame_rate(fps)
        video_s = n_frames / fps
        tolerance = max(
            self.policy.duration_tolerance_s, self.policy.duration_tolerance_fraction * video_s
        )
        if abs(audio_s - video_s) > tolerance:
            raise InvalidInput(
                f"the audio lasts {audio_s:.2f} s but {n_frames} frames at {fps:g} fps last "
                f"{video_s:.2f} s; send the audio of the same capture (within {tolerance:.2f} s)"
            )

    def check(
        self,
        shapes: Sequence[npt.NDArray[np.float32]] | None,
        fps: float,
        wave: Waveform,
        sample_rate: int,
    ) -> AvSyncResult:
        """Mouth opening against speech energy over the frames (``validate`` first).

        ``shapes``: each frame's 68 landmarks (``FaceShape68.landmarks``), None without the
        shape model."""
        policy = self.policy
        if shapes is None:
            return _not_evaluated(self.unavailable)
        n = len(shapes)
        video_s = n / fps
        if n < policy.min_frames or video_s < policy.min_duration_s:
            return _not_evaluated(
                f"{n} frames, {video_s:.2f} s: needs at least {policy.min_frames} frames "
                f"and {policy.min_duration_s:g} s"
            )
        energy = frame_energy_db(wave, sample_rate, n, fps, policy.dynamic_range_db)
        speaking = self._speaking(wave, sample_rate, n, fps, energy)
        speech_s = float(speaking.sum()) / fps
        if speech_s < policy.min_speech_s:
            return _not_evaluated(
                f"{speech_s:.2f} s of speech during the video, needs {policy.min_speech_s:g} s"
            )
        floor = float(energy.min())
        gated = np.where(speaking, energy, floor)
        aperture = np.array([aperture_from_68(points) for points in shapes])
        spread = float(np.percentile(aperture, 90) - np.percentile(aperture, 10))
        max_lag = max(0, math.floor(policy.max_lag_s * fps + 1e-9))
        r, lag = lagged_correlation(aperture, gated, max_lag, min_overlap=policy.min_frames)
        lag_s = lag / fps
        measured = (
            f"mouth opening range {spread:.3f} eye distances (need {policy.min_mouth_range:g}), "
            f"correlation with speech energy {r:.2f} at lag {lag_s:+.2f} s "
            f"(need {policy.min_correlation:g}; {speech_s:.1f} s of speech)"
        )
        if spread < policy.min_mouth_range:
            passed, score = False, 0.0
            detail = f"speech is heard but the mouth barely moves: {measured}"
        elif r < policy.min_correlation:
            passed, score = False, max(0.0, r)
            detail = f"the mouth does not move with the speech: {measured}"
        else:
            passed, score = True, r
            detail = f"the mouth moves with the speech: {measured}"
        check = Check(name=AV_SYNC, score=score, weight=0.0, passed=passed, detail=detail)
        return AvSyncResult(check, True)

    def _speaking(
        self, wave: Waveform, sample_rate: int, n: int, fps: float, energy: FloatArray
    ) -> npt.NDArray[np.bool_]:
        """Which frames hold speech: the VAD's segments, or (without a VAD) every frame
        within 30 dB of the loudest one."""
        if self.vad is None:
            out: npt.NDArray[np.bool_] = energy >= float(energy.max()) - 30.0
            return out
        rate = self.vad.sample_rate
        wave16 = resample(wave, sample_rate, rate) if sample_rate != rate else wave
        centres = (np.arange(n) + 0.5) / fps
        speaking = np.zeros(n, dtype=bool)
        for seg in self.vad.speech_segments(wave16):
            speaking |= (centres >= seg.start_s) & (centres < seg.end_s)
        return speaking


def _not_evaluated(why: str) -> AvSyncResult:
    # Decides nothing (the capture is judged without it), so it is not reported as failed.
    check = Check(name=AV_SYNC, score=0.0, weight=0.0, passed=True, detail=f"not evaluated: {why}")
    return AvSyncResult(check, False)
