"""Is a clip narrowband (telephone band) or wideband? And the telephone channel itself.

Call centres send 8 kHz G.711 (mu-law / A-law) audio: nothing above 4 kHz survives, and the
codec adds signal-shaped quantisation noise. The wideband spoofing fusion leans on the 4-7.5
kHz band (vocoder noise, harmonic contrast) and on AASIST, trained on 16 kHz speech; on such
input it calls every genuine caller a spoof. :class:`VoiceSpoofChecker` therefore switches
to a telephone-band fusion (fitted on the same labels after :func:`telephony_round_trip`)
when the input is narrowband.

Narrowband is decided in two ways, either of which suffices:

* **declared**: the input's own sample rate is 8 kHz or less, or it is G.711 (mu-law /
  A-law) whatever its rate (:func:`declared_narrowband`);
* **measured**: the speech has (almost) no energy above the telephone band: the energy of
  4.6-7.8 kHz is more than ``NARROWBAND_HF_DB`` below that of 0.3-3.4 kHz over the loud
  speech frames (:func:`high_band_db`). This catches a 16 kHz file that was upsampled from
  a phone recording, which a declared rate cannot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bioverify.voice.audio_decode import mulaw_decode, mulaw_encode, resample
from bioverify.voice.ports import SpeechSegment, Waveform

SAMPLE_RATE = 16000
TELEPHONE_RATE = 8000
TELEPHONE_ENCODINGS = frozenset({"MULAW", "ALAW"})
NARROWBAND_HF_DB = -50.0
"""4.6-7.8 kHz energy relative to 0.3-3.4 kHz below which speech counts as narrowband.
On the development clips (voice_spoof_labels.tsv), wideband speech sits at -36 dB and above
(5th percentile -28 dB), the same clips through 8 kHz mu-law and back at -65 dB and below.
The high band starts at 4.6 kHz, not 4 kHz, so that the transition band of an 8 -> 16 kHz
resampler (which leaks the top of the telephone band up to ~4.5 kHz) does not count."""
_HIGH = (4600.0, 7800.0)
_LOW = (300.0, 3400.0)
_FRAME = 512
_HOP = 256
_ACTIVE_DB = 35.0
_EPS = 1e-20


@dataclass(frozen=True)
class Bandwidth:
    """The bandwidth decision for one clip."""

    narrowband: bool
    declared: bool
    """True when the declared rate or encoding decided it (no measurement needed)."""
    high_band_db: float
    """4.6-7.8 kHz energy relative to 0.3-3.4 kHz over speech (nan when not measured)."""

    @property
    def detail(self) -> str:
        measured = (
            f"energy above 4.6 kHz {self.high_band_db:.0f} dB relative to 0.3-3.4 kHz"
            if math.isfinite(self.high_band_db)
            else "energy above 4.6 kHz not measured"
        )
        if self.narrowband:
            why = "declared telephone rate or encoding" if self.declared else measured
            return f"narrowband input: telephone-band model ({why})"
        return f"wideband input: full-band model ({measured})"


def declared_narrowband(sample_rate_hz: int | None, encoding: str | None = None) -> bool:
    """True for audio sent at 8 kHz or less, or G.711 mu-law / A-law at any rate."""
    if encoding is not None and str(encoding).upper() in TELEPHONE_ENCODINGS:
        return True
    return sample_rate_hz is not None and 0 < sample_rate_hz <= TELEPHONE_RATE


def high_band_db(wave16k: Waveform, segments: Sequence[SpeechSegment] = ()) -> float:
    """Energy of 4.6-7.8 kHz relative to 0.3-3.4 kHz (dB) over the loud speech frames (those
    within 35 dB of the 95th-percentile frame level, inside ``segments`` when given)."""
    x = np.asarray(wave16k, dtype=np.float64).ravel()
    if x.size < _FRAME:
        return math.nan
    count = 1 + (x.size - _FRAME) // _HOP
    frames = np.lib.stride_tricks.sliding_window_view(x, _FRAME)[::_HOP][:count]
    power = np.abs(np.fft.rfft(frames * np.hanning(_FRAME), axis=1)) ** 2
    freqs = np.fft.rfftfreq(_FRAME, 1.0 / SAMPLE_RATE)
    low = power[:, (freqs >= _LOW[0]) & (freqs < _LOW[1])].sum(axis=1)
    high = power[:, (freqs >= _HIGH[0]) & (freqs < _HIGH[1])].sum(axis=1)
    level = 10.0 * np.log10(power.sum(axis=1) + _EPS)
    keep = np.ones(count, dtype=bool)
    if segments:
        centres = (np.arange(count) * _HOP + _FRAME / 2) / SAMPLE_RATE
        keep = np.zeros(count, dtype=bool)
        for seg in segments:
            keep |= (centres >= seg.start_s) & (centres < seg.end_s)
        if not keep.any():
            keep = np.ones(count, dtype=bool)
    keep &= level > np.percentile(level[keep], 95) - _ACTIVE_DB
    lows = float(low[keep].sum())
    if lows <= 0.0:
        return math.nan
    return float(10.0 * np.log10((float(high[keep].sum()) + _EPS) / lows))


def assess_bandwidth(
    wave16k: Waveform, segments: Sequence[SpeechSegment] = (), *, declared: bool = False
) -> Bandwidth:
    """Narrowband when ``declared`` (see :func:`declared_narrowband`) or when the measured
    high band is below ``NARROWBAND_HF_DB``. The measurement is always made (for the report)."""
    hf = high_band_db(wave16k, segments)
    measured = math.isfinite(hf) and hf < NARROWBAND_HF_DB
    return Bandwidth(narrowband=declared or measured, declared=declared, high_band_db=hf)


def telephony_round_trip(wave16k: Waveform | npt.NDArray[np.float64]) -> Waveform:
    """The clip as it arrives from a phone line: 16 kHz -> 8 kHz -> G.711 mu-law -> decoded ->
    16 kHz (what the service does with a MULAW 8 kHz upload)."""
    x = np.clip(np.asarray(wave16k, dtype=np.float32).ravel(), -1.0, 1.0)
    narrow = mulaw_decode(mulaw_encode(resample(x, SAMPLE_RATE, TELEPHONE_RATE)))
    out = resample(narrow, TELEPHONE_RATE, SAMPLE_RATE)
    return np.ascontiguousarray(out[: x.size], dtype=np.float32)
