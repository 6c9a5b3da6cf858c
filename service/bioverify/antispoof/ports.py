"""Types of the voice anti-spoofing layer.

The decision types are the liveness layer's (:mod:`bioverify.liveness.ports`), shared with
the face side so that both modalities report evidence the same way: a :class:`Check` per
component (score in [0, 1], higher = bona fide; signed contribution as ``weight``) and an
assessment with ``live``, ``score``, ``threshold``, ``checks`` and ``reasons``.
"""

from __future__ import annotations

from typing import Protocol

from bioverify.liveness.ports import Check, LivenessAssessment
from bioverify.voice.ports import Waveform

SpoofAssessment = LivenessAssessment
"""A voice anti-spoofing decision: ``live`` is True for bona fide speech."""

__all__ = ["Check", "SpoofAssessment", "VoiceSpoofModel"]


class VoiceSpoofModel(Protocol):
    """A learned countermeasure on 16 kHz speech (AASIST and the like)."""

    name: str
    window: int
    """Samples per analysis window."""

    def log_odds(self, wave16k: Waveform) -> float:
        """Bona fide log-odds of a whole clip (higher = more likely genuine)."""
        ...

    def score(self, wave16k: Waveform) -> float:
        """P(bona fide) of a whole clip."""
        ...
