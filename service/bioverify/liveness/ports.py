"""Small types of the liveness layer: checks, the assessment, and the ports adapters implement.

Convention everywhere: a higher score means *more likely live* (bona fide).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from bioverify.face.ports import DetectedFace, ImageBGR

if TYPE_CHECKING:
    from bioverify.liveness.challenge import Challenge


@dataclass(frozen=True)
class Check:
    """One component of a liveness decision, for humans and logs.

    ``score`` is in [0, 1], higher = more likely live; ``weight`` is the component's
    effective weight in the fused decision (0 for a gate such as the motion check, which
    rejects on its own); ``passed`` is False when this check is part of why the sample was
    judged not live (an informational check, such as ``eye_blink``, reports its finding in
    ``score`` and ``detail``, decides nothing and passes); ``detail`` explains the
    measurement and its signed contribution.
    """

    name: str
    score: float
    weight: float
    passed: bool
    detail: str


@dataclass(frozen=True)
class LivenessAssessment:
    """A liveness decision with its evidence.

    ``live`` is ``score >= threshold``. ``reasons`` are ``(code, message)`` pairs naming the
    strongest evidence towards "attack" when the face is rejected (empty when live).
    """

    live: bool
    score: float
    threshold: float
    checks: tuple[Check, ...]
    reasons: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SignalValue:
    """A raw feature value measured on one face, with a short human explanation."""

    value: float
    explanation: str


class FacePadModel(Protocol):
    """A learned presentation-attack detector on one face: P(bona fide) in [0, 1]."""

    name: str

    def score(self, image: ImageBGR, face: DetectedFace) -> float:
        """Probability-like score that the face is a live person (higher = live)."""
        ...


class FaceSignal(Protocol):
    """A cheap hand-crafted measurement on one face (raw feature, not yet a probability)."""

    name: str

    def measure(self, image: ImageBGR, face: DetectedFace) -> SignalValue:
        """The raw feature value and what it means for this face."""
        ...


class FaceShapeModel(Protocol):
    """A dense landmark model: the 68 iBUG points of a detected face (eyelids, lips)."""

    def landmarks(self, image: ImageBGR, face: DetectedFace) -> npt.NDArray[np.float32]:
        """(68, 2) points (x, y) in image pixels."""
        ...


class PendingChallenges(Protocol):
    """Where issued liveness challenges wait to be answered: in the service's memory (one
    replica) or in Redis (every replica sharing the store). Thread-safe; a challenge is pending
    until it is taken or its lifetime ends. The store alone decides expiry, by its own clock
    (a monotonic clock in memory, the key's TTL in Redis): ``expires_at`` is only shown to
    clients, so a replica whose wall clock is off neither rejects valid challenges nor honours
    expired ones."""

    def add(self, challenge: Challenge, lifetime_s: float) -> None:
        """Keep ``challenge`` for ``lifetime_s`` seconds. TooManyChallenges when its tenant
        already has the most pending challenges allowed (others' challenges are never dropped
        for it), Overloaded when the store holds the most it may in all; Unavailable when the
        store cannot be reached."""
        ...

    def get(self, challenge_id: str) -> Challenge | None:
        """The pending, unexpired challenge, or None when it is unknown, taken or expired."""
        ...

    def take(self, challenge: Challenge, claim: str) -> bool:
        """Remove the pending, unexpired ``challenge`` atomically: True for exactly one caller
        however many replicas and threads try at once (and for a retry of that same call,
        ``claim`` being its random token), False for every other."""
        ...

    def put_back(self, challenge: Challenge, claim: str) -> None:
        """Make a challenge taken under ``claim`` pending again for the rest of its lifetime
        (nothing when it has expired meanwhile), for a request that failed after taking it."""
        ...

    def close(self) -> None: ...
