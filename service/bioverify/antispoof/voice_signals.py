"""Cheap, explainable signals of synthetic, converted or replayed speech (numpy in, floats out).

Every signal is computed on 16 kHz mono speech with its VAD segments and comes back as a
:class:`Signal`: a named value with the unit and a one-line explanation. A signal that cannot
be measured on a clip (no voiced frames, no pause to measure the noise floor in) has the value
``nan`` and says why; the fusion then treats it as uninformative.

The signals, and why each should carry over to synthesis systems not seen in development:

``mel_modulation``
    Mean absolute frame-to-frame change of the log-mel spectrum over speech (dB per 10 ms).
    Acoustic models and VAE-style converters predict the expected spectrum and average out
    its frame-level detail (the "over-smoothing" of statistical speech synthesis); a vocoder
    driven by such features re-synthesises a spectrogram that varies less than a recorded one.
``spectral_contrast``
    Peak-to-valley range of the log spectrum within 1-4 kHz bands over voiced frames (dB).
    The same averaging flattens formant peaks and the dips between harmonics.
``hf_contrast``
    Peak-to-valley range of the log spectrum within 500 Hz bands of 4-7.5 kHz over voiced
    frames (dB). Recorded speech keeps harmonic and resonance structure up there; vocoders
    fill the top band with smooth, noise-like energy.
``hf_ratio``
    Energy above 6.5 kHz relative to 1-4 kHz over speech (dB): a vocoder or converter working
    at a lower bandwidth leaves the top band nearly empty (band limit), one that injects
    noise leaves it too full.
``hf_cliff``
    Steepest fall of the long-term spectrum between neighbouring 250 Hz bands above 3 kHz
    (dB): a sharp band edge that speech never has, left by resampling or mel-band limits.
``hf_texture``
    Spread of the detrended 5-7.5 kHz log spectrum in unvoiced speech frames (dB). Stationary
    Gaussian noise through a smooth envelope (a vocoder's noise excitation) gives exactly
    5.57 dB; real fricatives and aspiration, shaped by turbulence and resonances and changing
    within a frame, spread more.
``f0_variation``
    Standard deviation of F0 over voiced frames (semitones), from an autocorrelation tracker.
    Flat, over-regular intonation is typical of synthesis.
``f0_perturbation`` / ``amp_perturbation``
    Frame-to-frame F0 (relative) and level (dB) jumps between consecutive voiced frames:
    frame-level approximations of jitter and shimmer, which natural phonation has and
    parametric synthesis lacks.
``noise_floor``
    Level of the quietest non-speech frames relative to speech (dB). Recorded speech sits on a
    room and microphone noise floor; synthesis often has near-digital silence.
``zero_fraction``
    Share of (near-)zero samples (below one 16-bit step) in non-speech: digital silence.
``lf_ratio``
    Energy in 50-150 Hz relative to 300-1000 Hz over speech (dB). A loudspeaker (replay)
    barely reproduces the low band; vocoders may inject rumble there.
``reverb_tail``
    Energy decay after speech offsets (dB over 100 ms): replayed speech carries the
    reverberation of the playback room on top of the recording room's.
``nb_modulation`` / ``nb_contrast`` / ``nb_texture``
    Telephone-band (below 3.4 kHz) versions of ``mel_modulation`` (30 mel bands of
    100-3400 Hz), of the harmonic peak-to-valley range (500 Hz bands of 0.5-3.5 kHz) and of
    the unvoiced fine-structure spread (detrended 1.8-3.4 kHz): the cues a telephone channel
    keeps, used by the narrowband fusion. On wideband audio they measure the same thing.

Nothing here looks at which data set a clip came from; the development data's groups (a
22.05 kHz TTS corpus and a 16 kHz VC corpus) are compared per group in the fitting script.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from bioverify.voice.ports import SpeechSegment, Waveform

FloatArray = npt.NDArray[np.float64]

SAMPLE_RATE = 16000
FRAME = 512  # 32 ms
HOP = 160  # 10 ms
_EPS = 1e-12
_ACTIVE_DB = 35.0  # a speech frame counts when within this of the loud (95th pct) level
_INT16_STEP = 1.0 / 32768.0
GAUSSIAN_NOISE_SPREAD_DB = 10.0 / math.log(10.0) * math.pi / math.sqrt(6.0)
"""Standard deviation of a periodogram bin of stationary Gaussian noise, in dB (5.57)."""

SIGNAL_NAMES: tuple[str, ...] = (
    "mel_modulation",
    "spectral_contrast",
    "hf_contrast",
    "hf_ratio",
    "hf_cliff",
    "hf_texture",
    "f0_variation",
    "f0_perturbation",
    "amp_perturbation",
    "noise_floor",
    "zero_fraction",
    "lf_ratio",
    "reverb_tail",
    "nb_modulation",
    "nb_contrast",
    "nb_texture",
)
NARROWBAND_SIGNALS: tuple[str, ...] = ("nb_modulation", "nb_contrast", "nb_texture")
"""The in-band (below 3.4 kHz) counterparts of the over-smoothing, spectral-contrast and
vocoder-texture signals, meaningful on telephone audio."""


@dataclass(frozen=True)
class Signal:
    """One measured signal: ``value`` in ``unit`` (``nan`` when not measurable)."""

    name: str
    value: float
    unit: str
    detail: str

    @property
    def available(self) -> bool:
        return math.isfinite(self.value)


@dataclass(frozen=True)
class F0Track:
    """Per-frame F0 (Hz, 0 where unvoiced), voicing strength and frame level (dB)."""

    f0_hz: FloatArray
    strength: FloatArray
    level_db: FloatArray
    hop_s: float

    @property
    def voiced(self) -> npt.NDArray[np.bool_]:
        return self.f0_hz > 0


@dataclass(frozen=True)
class _Analysis:
    """Shared intermediate results, computed once per clip."""

    power: FloatArray  # (frames, bins) STFT power
    freqs: FloatArray
    frame_db: FloatArray
    speech: npt.NDArray[np.bool_]  # frame inside a VAD segment
    active: npt.NDArray[np.bool_]  # speech frame within _ACTIVE_DB of the loud level
    pause: npt.NDArray[np.bool_]  # frame well outside any segment
    f0: F0Track
    voiced: npt.NDArray[np.bool_]  # active frame with an F0 (aligned to the STFT frames)


# --------------------------------------------------------------------------- framing helpers


def _frames(wave: FloatArray, size: int, hop: int) -> FloatArray:
    if wave.size < size:
        wave = np.pad(wave, (0, size - wave.size))
    count = 1 + (wave.size - size) // hop
    view = np.lib.stride_tricks.sliding_window_view(wave, size)[::hop]
    return np.asarray(view[:count], dtype=np.float64)


def stft_power(wave: FloatArray, size: int = FRAME, hop: int = HOP) -> FloatArray:
    """(frames, size//2+1) power spectrum with a Hann window."""
    frames = _frames(wave, size, hop) * np.hanning(size)
    return np.abs(np.fft.rfft(frames, axis=1)) ** 2


def _segment_mask(
    segments: Sequence[SpeechSegment], n_frames: int, hop: int, size: int, pad_s: float = 0.0
) -> npt.NDArray[np.bool_]:
    centres = (np.arange(n_frames) * hop + size / 2) / SAMPLE_RATE
    mask = np.zeros(n_frames, dtype=bool)
    for seg in segments:
        mask |= (centres >= seg.start_s - pad_s) & (centres < seg.end_s + pad_s)
    return mask


@cache
def _mel_filterbank(n_mels: int, n_fft: int, fmin: float, fmax: float) -> FloatArray:
    """Triangular mel filters (built once per band layout; read-only, shared)."""

    def to_mel(hz: FloatArray) -> FloatArray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    freqs = np.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE)
    edges_mel = np.linspace(to_mel(np.array(fmin)), to_mel(np.array(fmax)), n_mels + 2)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    bank = np.zeros((n_mels, freqs.size))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (freqs - lo) / max(mid - lo, _EPS)
        down = (hi - freqs) / max(hi - mid, _EPS)
        bank[i] = np.clip(np.minimum(up, down), 0.0, None)
    bank.setflags(write=False)
    return bank


# --------------------------------------------------------------------------- F0 tracker


def track_f0(
    wave: Waveform | FloatArray,
    *,
    fmin: float = 60.0,
    fmax: float = 400.0,
    frame_s: float = 0.04,
    hop: int = HOP,
    threshold: float = 0.5,
) -> F0Track:
    """Autocorrelation F0 tracker (normalised cross-correlation, parabolic refinement).

    Each 40 ms frame is correlated with itself shifted by every lag of the F0 range; the
    normalised correlation peak gives the period, and the smallest lag whose correlation is
    within 5 % of the best one is taken to avoid octave-low errors. Frames with a peak below
    ``threshold`` or a level 40 dB under the loudest frames are unvoiced. Isolated voiced
    frames are dropped and single octave jumps against the running median are folded back.
    """
    x = np.asarray(wave, dtype=np.float64).ravel()
    size = round(frame_s * SAMPLE_RATE)
    min_lag = math.floor(SAMPLE_RATE / fmax)
    max_lag = math.ceil(SAMPLE_RATE / fmin)
    span = size + max_lag + 2
    n_frames = max(1, 1 + (x.size - size) // hop)
    padded = np.pad(x, (0, max(0, (n_frames - 1) * hop + span - x.size)))
    segs = np.lib.stride_tricks.sliding_window_view(padded, span)[::hop][:n_frames]
    segs = segs - segs[:, :size].mean(axis=1, keepdims=True)
    head = segs[:, :size]
    n_fft = 1 << math.ceil(math.log2(span + size))
    spec_a = np.fft.rfft(head, n_fft, axis=1)
    spec_b = np.fft.rfft(segs, n_fft, axis=1)
    corr = np.fft.irfft(np.conj(spec_a) * spec_b, n_fft, axis=1)[:, : max_lag + 2]
    sq = np.concatenate([np.zeros((n_frames, 1)), np.cumsum(segs**2, axis=1)], axis=1)
    lags = np.arange(max_lag + 2)
    energy_shift = sq[:, lags + size] - sq[:, lags]
    energy_head = sq[:, size : size + 1]
    nccf = corr / np.sqrt(energy_head * energy_shift + _EPS)

    level_db = 10.0 * np.log10(energy_head[:, 0] / size + _EPS)
    loud = np.percentile(level_db, 95) if level_db.size else 0.0
    window = nccf[:, min_lag : max_lag + 1]
    best = window.max(axis=1)
    good = window >= 0.95 * best[:, None]
    # first lag that is a local maximum among the good ones
    is_peak = np.zeros_like(window, dtype=bool)
    is_peak[:, 1:-1] = (window[:, 1:-1] >= window[:, :-2]) & (window[:, 1:-1] >= window[:, 2:])
    candidates = good & is_peak
    has = candidates.any(axis=1)
    first = np.where(has, candidates.argmax(axis=1), window.argmax(axis=1))
    lag = first + min_lag
    rows = np.arange(n_frames)
    y0 = nccf[rows, np.clip(lag - 1, 0, None)]
    y1 = nccf[rows, lag]
    y2 = nccf[rows, lag + 1]
    denom = y0 - 2 * y1 + y2
    shift = np.where(np.abs(denom) > _EPS, 0.5 * (y0 - y2) / np.where(denom == 0, 1, denom), 0.0)
    period = lag + np.clip(shift, -0.5, 0.5)
    strength = y1
    voiced = (strength >= threshold) & (level_db > loud - 40.0) & has
    f0 = np.where(voiced, SAMPLE_RATE / period, 0.0)

    # drop isolated voiced frames and fold octave jumps against a running median
    isolated = voiced & ~np.roll(voiced, 1) & ~np.roll(voiced, -1)
    f0[isolated] = 0.0
    voiced = f0 > 0
    if voiced.sum() >= 5:
        ref = _running_median(f0, voiced, 7)
        ratio = f0 / np.where(ref > 0, ref, 1.0)
        f0 = np.where(voiced & (ratio > 1.8) & (ratio < 2.2), f0 / 2.0, f0)
        f0 = np.where(voiced & (ratio > 0.45) & (ratio < 0.55), f0 * 2.0, f0)
    return F0Track(f0_hz=f0, strength=strength, level_db=level_db, hop_s=hop / SAMPLE_RATE)


def _running_median(values: FloatArray, mask: npt.NDArray[np.bool_], width: int) -> FloatArray:
    out = np.zeros_like(values)
    idx = np.flatnonzero(mask)
    half = width // 2
    for k, i in enumerate(idx):
        lo, hi = max(0, k - half), min(idx.size, k + half + 1)
        out[i] = np.median(values[idx[lo:hi]])
    return out


# --------------------------------------------------------------------------- analysis


def _analyse(wave: Waveform | FloatArray, segments: Sequence[SpeechSegment]) -> _Analysis:
    x = np.asarray(wave, dtype=np.float64).ravel()
    power = stft_power(x)
    n = power.shape[0]
    freqs = np.asarray(np.fft.rfftfreq(FRAME, 1.0 / SAMPLE_RATE), dtype=np.float64)
    frame_db = 10.0 * np.log10(power.sum(axis=1) + _EPS)
    if segments:
        speech = _segment_mask(segments, n, HOP, FRAME)
        pause = ~_segment_mask(segments, n, HOP, FRAME, pad_s=0.1)
    else:
        speech = np.ones(n, dtype=bool)
        pause = np.zeros(n, dtype=bool)
    loud = np.percentile(frame_db[speech], 95) if speech.any() else frame_db.max()
    active = speech & (frame_db > loud - _ACTIVE_DB)
    f0 = track_f0(x)
    # align F0 frames (40 ms window) with the STFT frames (32 ms window): same hop
    f0_on_stft = np.zeros(n)
    m = min(n, f0.f0_hz.size)
    f0_on_stft[:m] = f0.f0_hz[:m]
    voiced = active & (f0_on_stft > 0)
    return _Analysis(power, freqs, frame_db, speech, active, pause, f0, voiced)


def _band(a: _Analysis, lo: float, hi: float) -> npt.NDArray[np.bool_]:
    return (a.freqs >= lo) & (a.freqs < hi)


def _ratio_db(
    a: _Analysis, frames: npt.NDArray[np.bool_], num: tuple[float, float], den: tuple[float, float]
) -> float:
    if not frames.any():
        return math.nan
    p = a.power[frames]
    top = p[:, _band(a, *num)].sum(axis=1).sum()
    bottom = p[:, _band(a, *den)].sum(axis=1).sum()
    return float(10.0 * np.log10((top + _EPS) / (bottom + _EPS)))


def _nan(name: str, unit: str, why: str) -> Signal:
    return Signal(name, math.nan, unit, why)


def _modulation(a: _Analysis, name: str, n_mels: int, fmax: float, what: str) -> Signal:
    """Mean frame-to-frame log-mel change over speech, ``n_mels`` bands of 100 Hz-``fmax``."""
    unit = "dB/frame"
    if a.active.sum() < 20:
        return _nan(name, unit, "too little speech")
    bank = _mel_filterbank(n_mels, FRAME, 100.0, fmax)
    logmel = 10.0 * np.log10(a.power @ bank.T + _EPS)
    pair = a.active[1:] & a.active[:-1]
    value = float(np.abs(np.diff(logmel, axis=0))[pair].mean())
    return Signal(
        name,
        value,
        unit,
        f"{what} changes {value:.2f} dB per 10 ms over speech (smooth, averaged spectra "
        "change less)",
    )


def _band_limited(a: _Analysis) -> bool:
    return _ratio_db(a, a.active, (5000.0, 7500.0), (1000.0, 4000.0)) < -50.0


_BAND_LIMITED = "band-limited audio: nothing above 5 kHz to inspect"


def _contrast(
    a: _Analysis, name: str, lo: int, hi: int, detail: str, *, needs_hf: bool = False
) -> Signal:
    """Median over voiced frames of the mean 5-95th percentile range of the log spectrum
    within the 500 Hz bands of ``lo``-``hi`` Hz; ``detail`` formats the value."""
    unit = "dB"
    if a.voiced.sum() < 10:
        return _nan(name, unit, "too few voiced frames")
    if needs_hf and _band_limited(a):
        return _nan(name, unit, _BAND_LIMITED)
    logp = 10.0 * np.log10(a.power[a.voiced] + _EPS)
    ranges = []
    for start in range(lo, hi, 500):
        band = logp[:, _band(a, start, start + 500)]
        ranges.append(np.percentile(band, 95, axis=1) - np.percentile(band, 5, axis=1))
    value = float(np.median(np.mean(ranges, axis=0)))
    return Signal(name, value, unit, detail.format(value))


def _texture(
    a: _Analysis, name: str, lo: float, hi: float, what: str, *, needs_hf: bool = False
) -> Signal:
    """Median over unvoiced speech frames of the spread of the linearly detrended
    ``lo``-``hi`` Hz log spectrum."""
    unit = "dB"
    frames = a.active & ~a.voiced
    if frames.sum() < 5:
        return _nan(name, unit, "too few unvoiced speech frames")
    if needs_hf and _band_limited(a):
        return _nan(name, unit, _BAND_LIMITED)
    band = _band(a, lo, hi)
    logp = 10.0 * np.log10(a.power[frames][:, band] + _EPS)
    x = a.freqs[band]
    design = np.vstack([x - x.mean(), np.ones_like(x)]).T
    coef, *_ = np.linalg.lstsq(design, logp.T, rcond=None)
    resid = logp - (design @ coef).T
    value = float(np.median(resid.std(axis=1)))
    return Signal(
        name,
        value,
        unit,
        f"{what} fine structure spreads {value:.1f} dB in unvoiced speech (stationary "
        f"noise gives {GAUSSIAN_NOISE_SPREAD_DB:.1f} dB)",
    )


def mel_modulation(a: _Analysis) -> Signal:
    return _modulation(a, "mel_modulation", 40, 7000.0, "log-mel")


def spectral_contrast(a: _Analysis) -> Signal:
    return _contrast(
        a,
        "spectral_contrast",
        1000,
        4000,
        "peak-to-valley {:.1f} dB within 500 Hz bands of 1-4 kHz",
    )


def hf_contrast(a: _Analysis) -> Signal:
    return _contrast(
        a,
        "hf_contrast",
        4000,
        7500,
        "4-7.5 kHz peak-to-valley {:.1f} dB within 500 Hz bands of voiced speech "
        "(vocoder noise is flatter)",
        needs_hf=True,
    )


def hf_texture(a: _Analysis) -> Signal:
    return _texture(a, "hf_texture", 5000.0, 7500.0, "5-7.5 kHz", needs_hf=True)


def hf_ratio(a: _Analysis) -> Signal:
    name, unit = "hf_ratio", "dB"
    value = _ratio_db(a, a.active, (6500.0, 7800.0), (1000.0, 4000.0))
    if not math.isfinite(value):
        return _nan(name, unit, "no speech")
    return Signal(name, value, unit, f"6.5-7.8 kHz energy {value:.1f} dB relative to 1-4 kHz")


def _ltas_db(a: _Analysis, frames: npt.NDArray[np.bool_]) -> FloatArray:
    return np.asarray(10.0 * np.log10(a.power[frames].mean(axis=0) + _EPS), dtype=np.float64)


def hf_cliff(a: _Analysis) -> Signal:
    name, unit = "hf_cliff", "dB"
    if not a.active.any():
        return _nan(name, unit, "no speech")
    ltas = _ltas_db(a, a.active)
    edges = np.arange(3000.0, 8001.0, 250.0)
    levels = np.array([ltas[_band(a, lo, lo + 250.0)].mean() for lo in edges[:-1]])
    drops = levels[:-1] - levels[1:]
    k = int(np.argmax(drops))
    value = float(drops[k])
    return Signal(
        name,
        value,
        unit,
        f"long-term spectrum falls {value:.1f} dB at {edges[k + 1]:.0f} Hz (a band edge when "
        "large)",
    )


def f0_variation(a: _Analysis) -> Signal:
    name, unit = "f0_variation", "semitones"
    f0 = a.f0.f0_hz[a.f0.voiced]
    if f0.size < 20:
        return _nan(name, unit, "too few voiced frames")
    semis = 12.0 * np.log2(f0 / np.median(f0))
    value = float(np.std(semis))
    return Signal(
        name,
        value,
        unit,
        f"F0 varies {value:.1f} semitones (sd) around {np.median(f0):.0f} Hz; flat when low",
    )


def _voiced_pairs(track: F0Track) -> npt.NDArray[np.bool_]:
    v = track.voiced
    return np.asarray(v[1:] & v[:-1])


def f0_perturbation(a: _Analysis) -> Signal:
    name, unit = "f0_perturbation", "%"
    pairs = _voiced_pairs(a.f0)
    if pairs.sum() < 20:
        return _nan(name, unit, "too few voiced frames")
    f0 = a.f0.f0_hz
    rel = np.abs(np.diff(f0))[pairs] / (0.5 * (f0[1:] + f0[:-1]))[pairs]
    value = float(100.0 * np.median(rel))
    return Signal(name, value, unit, f"F0 moves {value:.2f} % between 10 ms frames (jitter-like)")


def amp_perturbation(a: _Analysis) -> Signal:
    name, unit = "amp_perturbation", "dB"
    pairs = _voiced_pairs(a.f0)
    if pairs.sum() < 20:
        return _nan(name, unit, "too few voiced frames")
    value = float(np.median(np.abs(np.diff(a.f0.level_db))[pairs]))
    return Signal(
        name, value, unit, f"level moves {value:.2f} dB between 10 ms voiced frames (shimmer-like)"
    )


def noise_floor(a: _Analysis) -> Signal:
    name, unit = "noise_floor", "dB"
    if a.pause.sum() < 10 or not a.active.any():
        return _nan(name, unit, "no pause long enough to measure the noise floor")
    speech_level = float(np.median(a.frame_db[a.active]))
    floor = float(np.percentile(a.frame_db[a.pause], 20))
    value = max(floor - speech_level, -120.0)
    return Signal(
        name, value, unit, f"pauses sit {-value:.0f} dB below speech (near-digital silence if deep)"
    )


def zero_fraction(wave: FloatArray, a: _Analysis) -> Signal:
    name, unit = "zero_fraction", ""
    if a.pause.sum() < 10:
        return _nan(name, unit, "no pause to inspect")
    starts = np.flatnonzero(a.pause) * HOP
    idx = (starts[:, None] + np.arange(HOP)[None, :]).ravel()
    idx = idx[idx < wave.size]
    if idx.size == 0:
        return _nan(name, unit, "no pause to inspect")
    value = float(np.mean(np.abs(wave[idx]) < _INT16_STEP))
    return Signal(name, value, unit, f"{100 * value:.0f} % of pause samples are digital zero")


def lf_ratio(a: _Analysis) -> Signal:
    name, unit = "lf_ratio", "dB"
    value = _ratio_db(a, a.active, (50.0, 150.0), (300.0, 1000.0))
    if not math.isfinite(value):
        return _nan(name, unit, "no speech")
    return Signal(
        name,
        value,
        unit,
        f"50-150 Hz energy {value:.1f} dB relative to 300-1000 Hz (loudspeakers roll off)",
    )


def reverb_tail(a: _Analysis) -> Signal:
    name, unit = "reverb_tail", "dB"
    on = a.speech
    ends = np.flatnonzero(on[:-1] & ~on[1:])
    decays = []
    for e in ends:
        if e + 11 >= on.size or e - 5 < 0:
            continue
        before = a.frame_db[e - 5 : e + 1].max()
        after = a.frame_db[e + 10]
        decays.append(before - after)
    if not decays:
        return _nan(name, unit, "no speech offset to measure decay after")
    value = float(np.median(decays))
    return Signal(
        name,
        value,
        unit,
        f"level falls {value:.0f} dB within 100 ms of speech ending (slow fall: reverberant)",
    )


_NB_TOP = 3400.0


def nb_modulation(a: _Analysis) -> Signal:
    return _modulation(a, "nb_modulation", 30, _NB_TOP, "telephone-band log-mel")


def nb_contrast(a: _Analysis) -> Signal:
    return _contrast(
        a,
        "nb_contrast",
        500,
        3500,
        "peak-to-valley {:.1f} dB within 500 Hz bands of 0.5-3.5 kHz of voiced speech "
        "(averaged spectra are flatter)",
    )


def nb_texture(a: _Analysis) -> Signal:
    return _texture(a, "nb_texture", 1800.0, _NB_TOP, "1.8-3.4 kHz")


def compute_signals(
    wave16k: Waveform | FloatArray, segments: Sequence[SpeechSegment]
) -> dict[str, Signal]:
    """All signals of one clip, keyed by name (the order of :data:`SIGNAL_NAMES`)."""
    x = np.asarray(wave16k, dtype=np.float64).ravel()
    a = _analyse(x, segments)
    signals = [
        mel_modulation(a),
        spectral_contrast(a),
        hf_contrast(a),
        hf_ratio(a),
        hf_cliff(a),
        hf_texture(a),
        f0_variation(a),
        f0_perturbation(a),
        amp_perturbation(a),
        noise_floor(a),
        zero_fraction(x, a),
        lf_ratio(a),
        reverb_tail(a),
        nb_modulation(a),
        nb_contrast(a),
        nb_texture(a),
    ]
    return {s.name: s for s in signals}
