"""Ports of the voice pipeline: small protocols that adapters implement (one adapter per file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Waveform = npt.NDArray[np.float32]
"""Mono float32 samples in [-1, 1]."""


@dataclass(frozen=True)
class SpeechSegment:
    """A stretch of speech, in seconds from the start of the clip."""

    start_s: float
    end_s: float


class VoiceActivityDetector(Protocol):
    """Finds speech in a mono waveform at the detector's sample rate."""

    name: str
    sample_rate: int

    def speech_segments(self, wave: Waveform) -> list[SpeechSegment]: ...


class SpeakerEncoder(Protocol):
    """Turns speech (mono, at ``sample_rate``) into an L2-normalised speaker embedding."""

    name: str
    dim: int
    sample_rate: int

    def embed(self, wave: Waveform) -> npt.NDArray[np.float32]:
        """(dim,) float32 embedding of unit L2 norm."""
        ...
