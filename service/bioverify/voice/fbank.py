"""Kaldi-compatible log mel filter banks (kaldi-native-fbank) and per-utterance normalisation.

The defaults of :class:`FbankConfig` are the CAM++ / 3D-Speaker reference front end, i.e.
``torchaudio.compliance.kaldi.fbank`` defaults with 80 bins: 25 ms frames every 10 ms, povey
window, pre-emphasis 0.97, DC removal, no dither, ``snip_edges``, 20 Hz to Nyquist, no energy,
log power with a FLT_EPSILON floor, waveform in [-1, 1]. Other models' front ends are described
by a parameter mapping (see :meth:`FbankConfig.from_dict`), so they plug in as model packs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import kaldi_native_fbank as knf
import numpy as np
import numpy.typing as npt

from bioverify.errors import ConfigurationError
from bioverify.voice.ports import Waveform

Features = npt.NDArray[np.float32]
"""(frames, bins) float32."""

WINDOW_TYPES = ("povey", "hamming", "hanning", "rectangular", "blackman", "sine")


@dataclass(frozen=True)
class FbankConfig:
    """Parameters of a Kaldi fbank front end."""

    sample_rate: int = 16000
    num_bins: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    dither: float = 0.0
    preemph_coeff: float = 0.97
    remove_dc_offset: bool = True
    window_type: str = "povey"
    round_to_power_of_two: bool = True
    snip_edges: bool = True
    low_freq: float = 20.0
    high_freq: float = 0.0
    """0 means Nyquist; a negative value is an offset from Nyquist (Kaldi convention)."""
    use_energy: bool = False
    sample_scale: float = 1.0
    """Multiplies the [-1, 1] waveform first: 1.0, or 32768.0 for front ends fed int16 values."""

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate <= 0:
            problems.append(f"sample_rate must be positive, got {self.sample_rate}")
        if self.num_bins < 1:
            problems.append(f"num_bins must be at least 1, got {self.num_bins}")
        if not 0 < self.frame_shift_ms <= self.frame_length_ms:
            problems.append("frame_shift_ms must be positive and at most frame_length_ms")
        if self.window_type not in WINDOW_TYPES:
            problems.append(
                f"window_type {self.window_type!r} is unknown; valid: {', '.join(WINDOW_TYPES)}"
            )
        nyquist = self.sample_rate / 2
        high = self.high_freq if self.high_freq > 0 else nyquist + self.high_freq
        if not 0 <= self.low_freq < high <= nyquist:
            problems.append(
                f"need 0 <= low_freq < high_freq <= Nyquist; got low_freq={self.low_freq}, "
                f"high_freq={self.high_freq} at {self.sample_rate} Hz"
            )
        if self.sample_scale <= 0:
            problems.append(f"sample_scale must be positive, got {self.sample_scale}")
        if self.dither < 0:
            problems.append(f"dither must not be negative, got {self.dither}")
        if problems:
            raise ConfigurationError("invalid fbank configuration: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, params: Mapping[str, Any], *, sample_rate: int | None = None) -> FbankConfig:
        """Build from a model pack's parameter mapping; unknown keys are an error.

        ``sample_rate``, when given, is the model's rate and must agree with the mapping.
        """
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ConfigurationError(
                f"unknown fbank parameter(s) {', '.join(unknown)}; valid: {', '.join(known)}"
            )
        values: dict[str, Any] = {}
        for key, value in params.items():
            default = getattr(cls, key)
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ConfigurationError(f"fbank parameter {key} must be true or false")
            elif isinstance(default, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ConfigurationError(f"fbank parameter {key} must be an integer")
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ConfigurationError(f"fbank parameter {key} must be a number")
                value = float(value)
            elif not isinstance(value, str):
                raise ConfigurationError(f"fbank parameter {key} must be a string")
            values[key] = value
        if sample_rate is not None and values.setdefault("sample_rate", sample_rate) != sample_rate:
            raise ConfigurationError(
                f"fbank sample_rate {values['sample_rate']} differs from the model's "
                f"{sample_rate} Hz"
            )
        return cls(**values)

    def to_options(self) -> knf.FbankOptions:
        """The kaldi-native-fbank options for this configuration."""
        opts = knf.FbankOptions()
        fo = opts.frame_opts
        fo.samp_freq = float(self.sample_rate)
        fo.frame_length_ms = self.frame_length_ms
        fo.frame_shift_ms = self.frame_shift_ms
        fo.dither = self.dither
        fo.preemph_coeff = self.preemph_coeff
        fo.remove_dc_offset = self.remove_dc_offset
        fo.window_type = self.window_type
        fo.round_to_power_of_two = self.round_to_power_of_two
        fo.snip_edges = self.snip_edges
        mo = opts.mel_opts
        mo.num_bins = self.num_bins
        mo.low_freq = self.low_freq
        mo.high_freq = self.high_freq
        opts.use_energy = self.use_energy
        return opts


class KaldiFbank:
    """Computes (frames, bins) log mel features of a whole waveform. Thread-safe."""

    def __init__(self, config: FbankConfig | None = None) -> None:
        self.config = config if config is not None else FbankConfig()
        self._opts = self.config.to_options()
        self.dim = self.config.num_bins + (1 if self.config.use_energy else 0)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for ``num_samples`` samples (Kaldi's rule, input finished)."""
        rate = self.config.sample_rate
        shift = int(rate * 0.001 * self.config.frame_shift_ms)
        length = int(rate * 0.001 * self.config.frame_length_ms)
        if self.config.snip_edges:
            return 0 if num_samples < length else 1 + (num_samples - length) // shift
        return (num_samples + shift // 2) // shift

    def __call__(self, wave: Waveform) -> Features:
        samples = np.ascontiguousarray(wave, dtype=np.float32)
        if self.config.sample_scale != 1.0:
            samples = samples * np.float32(self.config.sample_scale)
        extractor = knf.OnlineFbank(self._opts)
        extractor.accept_waveform(float(self.config.sample_rate), samples)
        extractor.input_finished()
        n = extractor.num_frames_ready
        feats = np.empty((n, self.dim), dtype=np.float32)
        for i in range(n):  # no bulk getter in kaldi-native-fbank 1.23; ~0.1 ms per second
            feats[i] = extractor.get_frame(i)
        return feats


def compute_fbank(wave: Waveform, config: FbankConfig | None = None) -> Features:
    """One-shot :class:`KaldiFbank` (builds the options each call)."""
    return KaldiFbank(config)(wave)


def apply_cmn(feats: Features) -> Features:
    """Per-utterance cepstral mean normalisation: subtract each bin's mean over time."""
    if feats.shape[0] == 0:
        return feats.astype(np.float32, copy=True)
    return np.asarray(feats - feats.mean(axis=0, keepdims=True), dtype=np.float32)


def apply_cmvn(feats: Features, eps: float = 1e-5) -> Features:
    """Per-utterance mean and variance normalisation of each bin over time."""
    if feats.shape[0] == 0:
        return feats.astype(np.float32, copy=True)
    centred = feats - feats.mean(axis=0, keepdims=True)
    std = np.sqrt((centred * centred).mean(axis=0, keepdims=True))
    return np.asarray(centred / np.maximum(std, eps), dtype=np.float32)
