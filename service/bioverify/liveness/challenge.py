"""Active liveness (challenge-response): issue a random sequence of head actions with a
single-use nonce, then check from per-frame head poses that they were done in order.

Direction convention (image space): every action is defined by where the nose moves *in
the image as the server receives it*. ``TURN_HEAD_LEFT`` means "turn so that your nose moves
towards the image's left edge", i.e. the yaw ratio of ``face.quality.estimate_pose`` (positive
when the nose points to the image's right) goes below ``-yaw_enter``. With a non-mirrored
camera that is the subject's own right; clients that show a mirrored selfie preview must
phrase the prompt for what the user sees (on a mirrored preview the nose moves to the
*screen's right*). ``LOOK_UP``/``LOOK_DOWN`` move the nose towards the eyes/mouth line,
measured against the pose of the first frames (nose/mouth proportions differ per person).

``BLINK`` needs eyelids, which five landmarks (eye centres, nose, mouth corners) do not have:
it is verified from the eye aspect ratio of dlib's 68-point shape (``shape68``), per frame.
A blink is a frame, facing the camera, whose ratio falls to ``blink_closed_ratio`` of the
open-eye level (the 80th percentile over the frames facing the camera: the eyes are open in
most of them), after a frame with the eyes open (``blink_open_ratio`` of that level) and
before the eyes open again, ahead of the next action or the end. A still photo has a constant
ratio and never blinks. The service issues ``BLINK`` only when it has the shape model
(``ALL_ACTIONS``; else ``POSE_ACTIONS``).
"""

from __future__ import annotations

import enum
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bioverify.errors import ChallengeInvalid, ConfigurationError
from bioverify.face.quality import Pose
from bioverify.liveness.ports import PendingChallenges

EYE_BLINK = "eye_blink"
"""The passive check on multi-frame input: did the face blink (informational, weight 0)."""


class Action(enum.StrEnum):
    TURN_HEAD_LEFT = "TURN_HEAD_LEFT"
    TURN_HEAD_RIGHT = "TURN_HEAD_RIGHT"
    LOOK_UP = "LOOK_UP"
    LOOK_DOWN = "LOOK_DOWN"
    BLINK = "BLINK"


POSE_ACTIONS = (
    Action.TURN_HEAD_LEFT,
    Action.TURN_HEAD_RIGHT,
    Action.LOOK_UP,
    Action.LOOK_DOWN,
)
"""Actions verifiable from the 5 landmarks of any face detector (head pose)."""
ALL_ACTIONS = (*POSE_ACTIONS, Action.BLINK)
"""Every action; ``BLINK`` needs per-frame eye openness (see the module docstring)."""


@dataclass(frozen=True)
class Challenge:
    """An issued challenge. ``expires_at`` is in seconds since the epoch, for clients to show:
    the store that keeps the challenge decides when it expires (``PendingChallenges``)."""

    challenge_id: str
    nonce: str
    actions: tuple[Action, ...]
    expires_at: float
    tenant: str = ""
    subject_id: str = ""
    """Empty: redeemable by any request of the tenant (CheckLiveness, or a face request
    about anyone); set: only by VerifyFace or EnrollFace of that subject."""


_GONE = "unknown, already used or expired challenge; start a new one"


@dataclass(frozen=True)
class Redemption:
    """A challenge taken by one request under its random ``claim``: the request gives it back
    (``ChallengeIssuer.give_back``) when it fails after taking it, before any verdict."""

    challenge: Challenge
    claim: str


class ChallengeIssuer:
    """Creates challenges and redeems each at most once, through a ``PendingChallenges`` store
    (in memory, or shared by the replicas in Redis).

    Redeeming has two steps, so that a request failing for reasons of its own (a bad frame, a
    busy server, a store outage) does not use its challenge up, while no challenge ever vouches
    for two verdicts. ``look_up`` checks id, nonce, tenant, subject and expiry before any work;
    a wrong nonce, tenant or subject burns the challenge (it cannot be tried again). Expiry is
    the store's (``PendingChallenges``), never this replica's wall clock.
    ``redeem`` takes it, atomically and once, after the frames are assessed and before the
    verdict that used it is given: of several requests answering one challenge at once, on
    one replica or several, one goes on and the others get ChallengeInvalid.
    """

    def __init__(
        self,
        pending: PendingChallenges,
        *,
        ttl_seconds: float,
        actions: Sequence[Action] = POSE_ACTIONS,
        min_actions: int = 2,
        max_actions: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock``: the wall clock, only for the ``expires_at`` shown to clients."""
        if ttl_seconds <= 0:
            raise ConfigurationError(f"challenge ttl must be > 0 s, got {ttl_seconds}")
        pool = tuple(dict.fromkeys(Action(a) for a in actions))
        if not 1 <= min_actions <= max_actions or len(pool) < 2:
            raise ConfigurationError("need 1 <= min_actions <= max_actions and >= 2 actions")
        self._pending = pending
        self._ttl = float(ttl_seconds)
        self._pool = pool
        self._min = int(min_actions)
        self._max_actions = int(max_actions)
        self._clock = clock

    def issue(self, tenant: str = "", subject_id: str = "") -> Challenge:
        """A fresh challenge: 2-3 random actions, no action twice in a row, redeemable only
        in ``tenant`` and, when given, only by requests about ``subject_id``.
        TooManyChallenges when the tenant has too many pending."""
        count = self._min + secrets.randbelow(self._max_actions - self._min + 1)
        actions: list[Action] = []
        while len(actions) < count:
            action = secrets.choice(self._pool)
            if not actions or action != actions[-1]:
                actions.append(action)
        challenge = Challenge(
            challenge_id=secrets.token_urlsafe(16),
            nonce=secrets.token_urlsafe(24),
            actions=tuple(actions),
            expires_at=self._clock() + self._ttl,
            tenant=tenant,
            subject_id=subject_id,
        )
        self._pending.add(challenge, self._ttl)
        return challenge

    def look_up(
        self, challenge_id: str, nonce: str, *, tenant: str = "", subject_id: str = ""
    ) -> Challenge:
        """The pending challenge a request answers, still pending (``redeem`` takes it).
        ChallengeInvalid if unknown, used, expired, forged, or issued for another tenant or
        subject (``subject_id`` empty: the request is about no one subject); the last three
        burn it."""
        challenge = self._pending.get(challenge_id)
        if challenge is None:
            raise ChallengeInvalid(_GONE)
        why = self._mismatch(challenge, nonce, tenant, subject_id)
        if why:
            self._pending.take(challenge, secrets.token_urlsafe(16))
            raise ChallengeInvalid(why)
        return challenge

    def redeem(self, challenge: Challenge) -> Redemption:
        """Take a looked-up challenge: once, whoever else tries. ChallengeInvalid when another
        request took it first or it expired since it was looked up."""
        claim = secrets.token_urlsafe(16)
        if not self._pending.take(challenge, claim):
            raise ChallengeInvalid(_GONE)
        return Redemption(challenge, claim)

    def give_back(self, redemption: Redemption) -> None:
        """Make a redeemed challenge pending again (until its expiry), for a request that
        failed after redeeming it and gave no verdict."""
        self._pending.put_back(redemption.challenge, redemption.claim)

    @staticmethod
    def _mismatch(challenge: Challenge, nonce: str, tenant: str, subject_id: str) -> str:
        if not hmac.compare_digest(challenge.nonce.encode(), nonce.encode()):
            return "the challenge nonce does not match"
        if challenge.tenant != tenant:
            return "the challenge was issued for another tenant"
        if challenge.subject_id and challenge.subject_id != subject_id:
            return (
                "the challenge was issued for another subject; start a new challenge"
                if subject_id
                else "the challenge was issued for a subject: only VerifyFace or EnrollFace "
                "of that subject can redeem one; start a new challenge"
            )
        return ""


@dataclass(frozen=True)
class ChallengeThresholds:
    """Limits of the action detector (pose ratios as in ``face.quality.Pose``).

    An action starts when the pose passes ``*_enter`` and the face counts as back to
    neutral within ``*_exit`` (hysteresis: ``exit < enter``). Pitch is relative to the
    median pitch of the first ``baseline_frames`` frames. Blinks are judged on the eye
    aspect ratio relative to the open-eye level, which must reach ``min_open_eye``.
    """

    yaw_enter: float
    yaw_exit: float
    pitch_enter: float
    pitch_exit: float
    baseline_frames: int
    blink_closed_ratio: float = 0.5
    blink_open_ratio: float = 0.75
    min_open_eye: float = 0.18


DEFAULT_CHALLENGE_THRESHOLDS = ChallengeThresholds(
    yaw_enter=0.25, yaw_exit=0.12, pitch_enter=0.12, pitch_exit=0.06, baseline_frames=3
)
"""Yaw ±0.25 is a clear head turn of roughly 15-20 degrees; pitch from 5 landmarks is
noisier and person-dependent, hence relative to the start of the burst. Open eyes have an
aspect ratio of about 0.25-0.35 and shut ones under 0.1 (Soukupova and Cech 2016; on the
DEV set's faces the 5th-95th percentiles are 0.17-0.39 and a shut webcam frame 0.08), so
half the open level is shut and three quarters is open again; below 0.18 the eyes are too
narrow or hidden (glare on glasses, low resolution) to tell a blink from noise."""


def _offsets(poses: Sequence[Pose], t: ChallengeThresholds) -> list[tuple[float, float]]:
    n = max(1, min(t.baseline_frames, len(poses)))
    base = sorted(p.pitch for p in poses[:n])[n // 2]
    return [(p.yaw, p.pitch - base) for p in poses]


def _strength(action: Action, yaw: float, dpitch: float) -> float:
    """How far a pose goes in the action's direction (positive = that way)."""
    if action is Action.TURN_HEAD_LEFT:
        return -yaw
    if action is Action.TURN_HEAD_RIGHT:
        return yaw
    if action is Action.LOOK_UP:
        return -dpitch
    if action is Action.LOOK_DOWN:
        return dpitch
    raise ValueError(f"{action} has no pose direction")


def _enter(action: Action, t: ChallengeThresholds) -> float:
    return (
        t.yaw_enter if action in (Action.TURN_HEAD_LEFT, Action.TURN_HEAD_RIGHT) else t.pitch_enter
    )


def _frontal(offsets: Sequence[tuple[float, float]], t: ChallengeThresholds) -> list[bool]:
    return [abs(yaw) <= t.yaw_exit and abs(dpitch) <= t.pitch_exit for yaw, dpitch in offsets]


def _eye_levels(
    eyes: npt.NDArray[np.float64], frontal: Sequence[bool], t: ChallengeThresholds
) -> tuple[float, float, float] | str:
    """(open level, shut below, open above) of one burst, or why the eyes cannot be judged."""
    facing = eyes[np.asarray(frontal, dtype=bool)]
    if facing.size == 0:
        return "no frame faces the camera, so a blink cannot be verified"
    open_level = float(np.percentile(facing, 80))
    if open_level < t.min_open_eye:
        return (
            f"the eyes are not clearly visible (open-eye ratio {open_level:.2f}, need "
            f"{t.min_open_eye:g}), so a blink cannot be verified"
        )
    return open_level, t.blink_closed_ratio * open_level, t.blink_open_ratio * open_level


def _shuts_after_open(
    eyes: npt.NDArray[np.float64], frontal: Sequence[bool], i: int, levels: tuple[float, float]
) -> bool:
    """Frame ``i`` has the eyes shut, facing the camera, after a frame with them open."""
    shut_below, open_above = levels
    return bool(frontal[i] and eyes[i] <= shut_below and (eyes[:i] >= open_above).any())


def observe_blink(
    frames_poses: Sequence[Pose],
    eye_openness: Sequence[float],
    *,
    thresholds: ChallengeThresholds = DEFAULT_CHALLENGE_THRESHOLDS,
) -> tuple[bool, str]:
    """Whether a burst shows a blink (open, shut facing the camera, open again), and how.

    For passive multi-frame liveness, where no blink was asked for: people blink every 2-10
    seconds, so a short burst without one proves nothing, but a blink proves a moving face.
    """
    if len(eye_openness) != len(frames_poses):
        raise ValueError("one eye openness value per frame")
    t = thresholds
    eyes = np.asarray(eye_openness, dtype=np.float64)
    frontal = _frontal(_offsets(frames_poses, t), t)
    levels = _eye_levels(eyes, frontal, t) if len(eyes) >= 2 else "fewer than two frames"
    if isinstance(levels, str):
        return False, f"not evaluated: {levels}"
    open_level, shut_below, open_above = levels
    for i in range(len(eyes)):
        if _shuts_after_open(eyes, frontal, i, (shut_below, open_above)):
            if (eyes[i + 1 :] >= open_above).any():
                return True, (
                    f"the eyes shut at frame {i} (ratio {eyes[i]:.2f}, open {open_level:.2f}) "
                    "and opened again"
                )
            break
    return False, (
        f"no blink in {len(eyes)} frames (eye ratio {eyes.min():.2f}-{eyes.max():.2f}, a blink "
        f"goes below {shut_below:.2f}); informational: a short burst often has none"
    )


def verify_challenge(
    challenge: Challenge,
    frames_poses: Sequence[Pose],
    *,
    eye_openness: Sequence[float] | None = None,
    thresholds: ChallengeThresholds = DEFAULT_CHALLENGE_THRESHOLDS,
) -> tuple[bool, str]:
    """Whether the frames show the challenge's actions in order, and why.

    The face must start neutral (|yaw| within ``yaw_exit``). Each pose action is done when
    its direction passes the enter threshold, a blink when the eyes shut while the face
    looks at the camera; before the next action the face must return to neutral (within the
    exit thresholds, eyes open again after a blink), so one long turn cannot count twice.
    Doing a different head action first (passing 1.5x its enter threshold while another is
    expected) fails the challenge, as does a sequence that ends early. ``eye_openness`` is
    the eye aspect ratio of each frame, needed when the challenge has ``BLINK``.
    """
    t = thresholds
    if len(frames_poses) < 2:
        return False, "need at least two frames"
    blinks = Action.BLINK in challenge.actions
    if eye_openness is not None and len(eye_openness) != len(frames_poses):
        raise ValueError("one eye openness value per frame")
    if blinks and eye_openness is None:
        return False, "BLINK cannot be verified: this service has no eye landmark model"
    offsets = _offsets(frames_poses, t)
    first_yaw, first_pitch = offsets[0]
    if abs(first_yaw) > t.yaw_exit or abs(first_pitch) > t.pitch_exit:
        return False, f"the face must start facing the camera (yaw {first_yaw:+.2f})"
    frontal = _frontal(offsets, t)
    eyes = np.asarray(eye_openness if eye_openness is not None else [], dtype=np.float64)
    open_level = shut_below = open_above = 0.0
    if blinks:
        levels = _eye_levels(eyes, frontal, t)
        if isinstance(levels, str):
            return False, levels
        open_level, shut_below, open_above = levels
    step = 0
    neutral = True
    done_at: list[int] = []
    for i, (yaw, dpitch) in enumerate(offsets):
        if step == len(challenge.actions):
            break
        expected = challenge.actions[step]
        if not neutral:
            reopened = challenge.actions[step - 1] is not Action.BLINK or eyes[i] >= open_above
            neutral = frontal[i] and reopened
            continue
        if expected is Action.BLINK:
            performed = _shuts_after_open(eyes, frontal, i, (shut_below, open_above))
        else:
            performed = _strength(expected, yaw, dpitch) >= _enter(expected, t)
        if performed:
            done_at.append(i)
            step += 1
            neutral = False
            continue
        for other in POSE_ACTIONS:
            if other is not expected and _strength(other, yaw, dpitch) >= 1.5 * _enter(other, t):
                return False, (
                    f"frame {i}: {other.value} was performed while {expected.value} was expected"
                )
    if step < len(challenge.actions):
        return False, (
            f"only {step} of {len(challenge.actions)} actions seen; missing "
            + ", ".join(a.value for a in challenge.actions[step:])
        )
    if challenge.actions[-1] is Action.BLINK and not (eyes[done_at[-1] + 1 :] >= open_above).any():
        return False, "the eyes closed but did not open again: a blink needs both"
    steps = ", ".join(
        f"{a.value}@frame{f}" for a, f in zip(challenge.actions, done_at, strict=True)
    )
    if blinks:
        steps += f"; eye ratio open {open_level:.2f}, shut below {shut_below:.2f}"
    return True, f"all actions performed in order ({steps})"
