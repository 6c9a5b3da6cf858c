"""Challenge-response: issuing, single use, expiry, bounded store, and action order."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import pytest

from bioverify.errors import ChallengeInvalid, ConfigurationError
from bioverify.face.ports import DetectedFace, ImageBGR
from bioverify.face.quality import Pose, estimate_pose
from bioverify.liveness.challenge import (
    ISSUABLE_ACTIONS,
    Action,
    Challenge,
    ChallengeIssuer,
    verify_challenge,
)
from tests.liveness.conftest import LFW, read_image

L, R, U, D = (Action.TURN_HEAD_LEFT, Action.TURN_HEAD_RIGHT, Action.LOOK_UP, Action.LOOK_DOWN)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _challenge(*actions: Action) -> Challenge:
    return Challenge("id", "nonce", tuple(actions), expires_at=1e18)


def _poses(*yaw_pitch: tuple[float, float]) -> list[Pose]:
    return [Pose(yaw=y, pitch=p, roll_deg=0.0) for y, p in yaw_pitch]


NEUTRAL = (0.0, 0.1)


def test_issue_draws_2_to_3_distinct_neighbouring_actions() -> None:
    issuer = ChallengeIssuer(ttl_seconds=30, max_pending=1000)
    seen = set()
    for _ in range(200):
        c = issuer.issue()
        assert 2 <= len(c.actions) <= 3
        assert all(a in ISSUABLE_ACTIONS for a in c.actions)
        assert all(a != b for a, b in zip(c.actions, c.actions[1:], strict=False))
        seen.update(c.actions)
        assert len(c.nonce) >= 32 and len(c.challenge_id) >= 20
    assert seen == set(ISSUABLE_ACTIONS)
    assert Action.BLINK not in seen


def test_consume_is_single_use() -> None:
    issuer = ChallengeIssuer(ttl_seconds=30, max_pending=10)
    c = issuer.issue()
    assert issuer.consume(c.challenge_id, c.nonce) == c
    with pytest.raises(ChallengeInvalid, match="unknown or already used"):
        issuer.consume(c.challenge_id, c.nonce)


def test_wrong_nonce_fails_and_burns_the_challenge() -> None:
    issuer = ChallengeIssuer(ttl_seconds=30, max_pending=10)
    c = issuer.issue()
    with pytest.raises(ChallengeInvalid, match="nonce"):
        issuer.consume(c.challenge_id, c.nonce + "x")
    with pytest.raises(ChallengeInvalid):
        issuer.consume(c.challenge_id, c.nonce)
    with pytest.raises(ChallengeInvalid):
        issuer.consume("never-issued", "x")


def test_expiry() -> None:
    clock = FakeClock()
    issuer = ChallengeIssuer(ttl_seconds=10, max_pending=10, clock=clock)
    early, late = issuer.issue(), issuer.issue()
    clock.now += 9.9
    assert issuer.consume(early.challenge_id, early.nonce) == early
    clock.now += 0.2
    with pytest.raises(ChallengeInvalid, match="expired"):
        issuer.consume(late.challenge_id, late.nonce)


def test_store_is_bounded() -> None:
    clock = FakeClock()
    issuer = ChallengeIssuer(ttl_seconds=10, max_pending=3, clock=clock)
    first = issuer.issue()
    for _ in range(5):
        issuer.issue()
    assert issuer.pending() == 3
    with pytest.raises(ChallengeInvalid):
        issuer.consume(first.challenge_id, first.nonce)  # evicted, oldest first
    clock.now += 11
    issuer.issue()
    assert issuer.pending() == 1  # expired ones go first


def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="BLINK"):
        ChallengeIssuer(ttl_seconds=10, max_pending=3, actions=[L, Action.BLINK])
    with pytest.raises(ConfigurationError):
        ChallengeIssuer(ttl_seconds=0, max_pending=3)
    with pytest.raises(ConfigurationError):
        ChallengeIssuer(ttl_seconds=10, max_pending=0)


def test_actions_in_order_pass() -> None:
    poses = _poses(NEUTRAL, NEUTRAL, NEUTRAL, (-0.3, 0.1), (-0.35, 0.1), (0.05, 0.1),
                   (0.3, 0.12), NEUTRAL, (0.0, 0.25))  # fmt: skip
    ok, detail = verify_challenge(_challenge(L, R, D), poses)
    assert ok, detail
    assert "TURN_HEAD_LEFT@frame3" in detail


def test_wrong_order_fails() -> None:
    poses = _poses(NEUTRAL, NEUTRAL, NEUTRAL, (-0.4, 0.1), NEUTRAL, (0.4, 0.1))
    ok, detail = verify_challenge(_challenge(R, L), poses)
    assert not ok
    assert "TURN_HEAD_LEFT was performed while TURN_HEAD_RIGHT was expected" in detail


def test_hysteresis_one_long_turn_does_not_count_twice() -> None:
    poses = _poses(NEUTRAL, (-0.3, 0.1), (-0.3, 0.1), (-0.2, 0.1), (-0.3, 0.1))
    ok, detail = verify_challenge(_challenge(L, L), poses)
    assert not ok and "only 1 of 2" in detail
    poses = _poses(NEUTRAL, (-0.3, 0.1), (-0.05, 0.1), (-0.3, 0.1))
    assert verify_challenge(_challenge(L, L), poses)[0]


def test_pitch_is_relative_to_the_start() -> None:
    # A person whose frontal pitch ratio is 0.3: looking up brings it to 0.15.
    poses = _poses((0.0, 0.3), (0.0, 0.3), (0.0, 0.3), (0.0, 0.15), (0.0, 0.3), (0.4, 0.3))
    ok, detail = verify_challenge(_challenge(U, R), poses)
    assert ok, detail


def test_still_image_replay_fails() -> None:
    ok, detail = verify_challenge(_challenge(L, U), _poses(*[NEUTRAL] * 30))
    assert not ok and "only 0 of 2" in detail


def test_must_start_frontal_and_blink_is_not_verifiable() -> None:
    ok, detail = verify_challenge(_challenge(L, R), _poses((-0.3, 0.1), NEUTRAL, (0.3, 0.1)))
    assert not ok and "start facing" in detail
    ok, detail = verify_challenge(_challenge(L, Action.BLINK), _poses(*[NEUTRAL] * 3))
    assert not ok and "BLINK" in detail


def test_real_faces_and_their_mirror_images(detect: Callable[[ImageBGR], DetectedFace]) -> None:
    """Real LFW poses: a face turned to the image's left, and its horizontal flip."""
    frontal = read_image(LFW / "Bob_Colvin" / "Bob_Colvin_0002.jpg")
    turned = read_image(LFW / "Johnny_Carson" / "Johnny_Carson_0002.jpg")
    left = estimate_pose(detect(turned).landmarks)
    right = estimate_pose(detect(cv2.flip(turned, 1)).landmarks)
    neutral = estimate_pose(detect(frontal).landmarks)
    assert left.yaw < -0.3 and right.yaw > 0.3  # nose towards the image's left / right
    assert right.yaw == pytest.approx(-left.yaw, abs=0.15)  # the detector is not symmetric
    sequence = [neutral, neutral, neutral, left, neutral, right]
    assert verify_challenge(_challenge(L, R), sequence)[0]
    assert not verify_challenge(_challenge(R, L), sequence)[0]
