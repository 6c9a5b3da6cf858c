"""Challenge-response: issuing, look-up and single-use redemption, expiry, the per-tenant cap,
action order and blinks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import cv2
import grpc
import pytest

from bioverify.errors import ChallengeInvalid, ConfigurationError, Overloaded, TooManyChallenges
from bioverify.face.ports import DetectedFace, ImageBGR
from bioverify.face.quality import Pose, estimate_pose
from bioverify.liveness.challenge import (
    ALL_ACTIONS,
    POSE_ACTIONS,
    Action,
    Challenge,
    ChallengeIssuer,
    observe_blink,
    verify_challenge,
)
from bioverify.liveness.challenges_memory import InMemoryChallenges
from bioverify.liveness.shape68 import FaceShape68, eye_aspect_ratio
from bioverify.server.status import status_for
from tests.liveness.conftest import DATA, LFW, read_image

L, R, U, D = (Action.TURN_HEAD_LEFT, Action.TURN_HEAD_RIGHT, Action.LOOK_UP, Action.LOOK_DOWN)
B = Action.BLINK


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


def issuer_of(
    clock: Callable[[], float] = time.time, ttl: float = 30, per_tenant: int = 1000, **kw: Any
) -> ChallengeIssuer:
    pending = InMemoryChallenges(max_per_tenant=per_tenant, max_total=10_000, clock=clock)
    return ChallengeIssuer(pending, ttl_seconds=ttl, clock=clock, **kw)


def redeem(
    issuer: ChallengeIssuer,
    c: Challenge,
    nonce: str | None = None,
    tenant: str = "",
    subject: str = "",
) -> Challenge:
    found = issuer.look_up(
        c.challenge_id, c.nonce if nonce is None else nonce, tenant=tenant, subject_id=subject
    )
    return issuer.redeem(found).challenge


def test_issue_draws_2_to_3_distinct_neighbouring_actions() -> None:
    issuer = issuer_of()
    seen: set[Action] = set()
    for _ in range(200):
        c = issuer.issue()
        assert 2 <= len(c.actions) <= 3
        assert all(a in POSE_ACTIONS for a in c.actions)
        assert all(a != b for a, b in zip(c.actions, c.actions[1:], strict=False))
        seen.update(c.actions)
        assert len(c.nonce) >= 32 and len(c.challenge_id) >= 20
    assert seen == set(POSE_ACTIONS)  # BLINK only when the service can verify it
    with_blinks = issuer_of(actions=ALL_ACTIONS)
    assert {a for _ in range(300) for a in with_blinks.issue().actions} == set(ALL_ACTIONS)


def test_redeem_is_single_use() -> None:
    issuer = issuer_of()
    c = issuer.issue()
    found = issuer.look_up(c.challenge_id, c.nonce)
    assert found == c
    assert issuer.look_up(c.challenge_id, c.nonce) == c  # looking up uses nothing up
    assert issuer.redeem(found).challenge == c
    with pytest.raises(ChallengeInvalid, match="already used"):
        issuer.redeem(found)
    with pytest.raises(ChallengeInvalid, match="unknown, already used or expired"):
        issuer.look_up(c.challenge_id, c.nonce)


def test_a_challenge_given_back_can_be_redeemed_again_until_it_expires() -> None:
    clock = FakeClock()
    issuer = issuer_of(clock, ttl=10)
    c = issuer.issue()
    redemption = issuer.redeem(issuer.look_up(c.challenge_id, c.nonce))
    issuer.give_back(redemption)
    assert redeem(issuer, c) == c
    later = issuer.issue()
    redemption = issuer.redeem(issuer.look_up(later.challenge_id, later.nonce))
    clock.now += 11
    issuer.give_back(redemption)  # expired meanwhile: not pending again
    with pytest.raises(ChallengeInvalid):
        issuer.look_up(later.challenge_id, later.nonce)


def test_wrong_nonce_fails_and_burns_the_challenge() -> None:
    issuer = issuer_of()
    c = issuer.issue()
    with pytest.raises(ChallengeInvalid, match="nonce"):
        redeem(issuer, c, nonce=c.nonce + "x")
    with pytest.raises(ChallengeInvalid):
        redeem(issuer, c)
    with pytest.raises(ChallengeInvalid):
        issuer.look_up("never-issued", "x")


def test_a_challenge_is_redeemed_only_in_its_tenant_and_for_its_subject() -> None:
    issuer = issuer_of()
    for issued, redeemed, message in (
        (("bank-a", ""), ("bank-b", ""), "another tenant"),
        (("bank-a", "alice"), ("bank-a", "bob"), "another subject"),
        (("bank-a", "alice"), ("bank-a", ""), "only VerifyFace or EnrollFace of that subject"),
    ):
        c = issuer.issue(*issued)
        assert (c.tenant, c.subject_id) == issued
        with pytest.raises(ChallengeInvalid, match=message):
            redeem(issuer, c, tenant=redeemed[0], subject=redeemed[1])
        with pytest.raises(ChallengeInvalid, match="already used"):  # burnt all the same
            redeem(issuer, c, tenant=issued[0], subject=issued[1])
    anyone = issuer.issue("bank-a")
    assert redeem(issuer, anyone, tenant="bank-a", subject="bob")
    alice = issuer.issue("bank-a", "alice")
    assert redeem(issuer, alice, tenant="bank-a", subject="alice")


def test_expiry() -> None:
    clock = FakeClock()
    issuer = issuer_of(clock, ttl=10)
    early, late, looked_up = issuer.issue(), issuer.issue(), issuer.issue()
    found = issuer.look_up(looked_up.challenge_id, looked_up.nonce)
    clock.now += 9.9
    assert redeem(issuer, early) == early
    clock.now += 0.2
    with pytest.raises(ChallengeInvalid, match="expired"):
        redeem(issuer, late)
    with pytest.raises(ChallengeInvalid, match="expired"):  # between look-up and redeem
        issuer.redeem(found)


def test_the_cap_is_per_tenant_and_refuses_instead_of_evicting() -> None:
    """A flood of challenges in one tenant is refused at its cap (RESOURCE_EXHAUSTED) and
    drops nothing: neither its own pending challenges nor another tenant's."""
    clock = FakeClock()
    issuer = issuer_of(clock, ttl=10, per_tenant=3)
    victim = issuer.issue("bank-b")
    flood = [issuer.issue("bank-a") for _ in range(3)]
    for _ in range(5):
        with pytest.raises(TooManyChallenges, match="3 liveness challenges pending") as info:
            issuer.issue("bank-a")
        assert status_for(info.value) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert info.value.reason == "TOO_MANY_CHALLENGES"
    assert redeem(issuer, victim, tenant="bank-b") == victim
    assert redeem(issuer, flood[0], tenant="bank-a") == flood[0]  # a redeemed one frees a place
    issuer.issue("bank-a")
    clock.now += 11  # expired ones free theirs
    assert len({issuer.issue("bank-a").challenge_id for _ in range(3)}) == 3


def test_memory_is_bounded_in_all() -> None:
    clock = FakeClock()
    pending = InMemoryChallenges(max_per_tenant=10, max_total=4, clock=clock)
    issuer = ChallengeIssuer(pending, ttl_seconds=10, clock=clock)
    for tenant in "abcd":
        issuer.issue(tenant)
    with pytest.raises(Overloaded) as info:
        issuer.issue("e")
    assert not isinstance(info.value, TooManyChallenges)
    assert pending.pending() == 4
    clock.now += 11
    issuer.issue("e")
    assert pending.pending() == 1  # expired ones go first


def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        issuer_of(ttl=0)
    with pytest.raises(ConfigurationError):
        InMemoryChallenges(max_per_tenant=0, max_total=3)


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


def test_must_start_frontal_and_blink_needs_the_eyes() -> None:
    ok, detail = verify_challenge(_challenge(L, R), _poses((-0.3, 0.1), NEUTRAL, (0.3, 0.1)))
    assert not ok and "start facing" in detail
    ok, detail = verify_challenge(_challenge(L, B), _poses(*[NEUTRAL] * 3))
    assert not ok and "BLINK cannot be verified" in detail
    with pytest.raises(ValueError, match="one eye openness value per frame"):
        verify_challenge(_challenge(L, B), _poses(*[NEUTRAL] * 3), eye_openness=[0.3, 0.3])


OPEN, SHUT = 0.30, 0.06
TURN_L = (-0.3, 0.1)


def test_blink_then_turn_passes_and_a_still_face_never_blinks() -> None:
    poses = _poses(NEUTRAL, NEUTRAL, NEUTRAL, NEUTRAL, NEUTRAL, TURN_L, NEUTRAL)
    eyes = [OPEN, OPEN, SHUT, OPEN, OPEN, OPEN, OPEN]
    ok, detail = verify_challenge(_challenge(B, L), poses, eye_openness=eyes)
    assert ok, detail
    assert "BLINK@frame2, TURN_HEAD_LEFT@frame5" in detail and "eye ratio open 0.30" in detail
    ok, detail = verify_challenge(_challenge(B, L), poses, eye_openness=[OPEN] * 7)
    assert not ok and "only 0 of 2" in detail and "missing BLINK" in detail


def test_blink_counts_only_facing_the_camera_and_once_the_eyes_reopen() -> None:
    # Eyes narrowing while the head is turned (or looking down) are not a blink.
    poses = _poses(NEUTRAL, NEUTRAL, NEUTRAL, TURN_L, NEUTRAL, NEUTRAL)
    eyes = [OPEN, OPEN, OPEN, SHUT, OPEN, OPEN]
    ok, detail = verify_challenge(_challenge(L, B), poses, eye_openness=eyes)
    assert not ok and "only 1 of 2" in detail
    # Shut and turning away before the eyes open again: the turn waits for the reopening.
    poses = _poses(NEUTRAL, NEUTRAL, NEUTRAL, NEUTRAL, TURN_L, NEUTRAL)
    eyes = [OPEN, OPEN, SHUT, SHUT, SHUT, SHUT]
    ok, detail = verify_challenge(_challenge(B, L), poses, eye_openness=eyes)
    assert not ok and "only 1 of 2" in detail
    # Eyes shut from the first frame: a blink starts with open eyes.
    poses = _poses(NEUTRAL, NEUTRAL, NEUTRAL, TURN_L, NEUTRAL)
    ok, detail = verify_challenge(_challenge(B, L), poses, eye_openness=[SHUT] + [OPEN] * 4)
    assert not ok and "only 0 of 2" in detail
    # A burst that ends with the eyes shut has no blink either.
    poses = _poses(NEUTRAL, NEUTRAL, TURN_L, NEUTRAL, NEUTRAL, NEUTRAL)
    eyes = [OPEN, OPEN, OPEN, OPEN, OPEN, SHUT]
    ok, detail = verify_challenge(_challenge(L, B), poses, eye_openness=eyes)
    assert not ok and "did not open again" in detail
    ok, detail = verify_challenge(_challenge(L, B), [*poses, poses[-1]], eye_openness=[*eyes, OPEN])
    assert ok, detail


def test_blink_thresholds_are_relative_to_the_open_eyes() -> None:
    # A narrow-eyed person (open 0.22): 0.10 is shut for them; 0.15 (a squint) is not.
    poses = _poses(*[NEUTRAL] * 6, TURN_L)
    squint = [0.22, 0.22, 0.15, 0.22, 0.22, 0.22, 0.22]
    assert not verify_challenge(_challenge(B, L), poses, eye_openness=squint)[0]
    blink = [0.22, 0.22, 0.10, 0.22, 0.22, 0.22, 0.22]
    assert verify_challenge(_challenge(B, L), poses, eye_openness=blink)[0]
    # Eyes that never look open (hidden by glare, tiny face) cannot be judged.
    ok, detail = verify_challenge(
        _challenge(B, L), poses, eye_openness=[0.12, 0.12, 0.02] + [0.12] * 4
    )
    assert not ok and "not clearly visible" in detail


def test_observe_blink_on_a_passive_burst() -> None:
    poses = _poses(*[NEUTRAL] * 5)
    seen, detail = observe_blink(poses, [OPEN, OPEN, SHUT, OPEN, OPEN])
    assert seen and "shut at frame 2" in detail
    seen, detail = observe_blink(poses, [OPEN] * 5)
    assert not seen and "no blink in 5 frames" in detail and "informational" in detail
    seen, detail = observe_blink(poses, [OPEN, OPEN, OPEN, OPEN, SHUT])  # never reopened
    assert not seen
    seen, detail = observe_blink(poses, [SHUT, OPEN, OPEN, OPEN, OPEN])  # never seen open first
    assert not seen
    seen, detail = observe_blink(poses, [0.1, 0.1, 0.02, 0.1, 0.1])
    assert not seen and detail.startswith("not evaluated: the eyes are not clearly visible")
    with pytest.raises(ValueError):
        observe_blink(poses, [OPEN])


def test_a_real_blink_on_webcam_frames(
    detect: Callable[[ImageBGR], DetectedFace], face_shape: FaceShape68
) -> None:
    """Frames of one live webcam recording (the DEV PAD set): a smile that shuts the eyes
    between open-eyed frames is a blink; the same open frame repeated is not."""
    folder = DATA / "face_pad" / "webcam_replay" / "alexcamargoweb"
    names = ("real_0070", "real_0028", "real_0070", "real_0000", "real_0028")
    frames = [read_image(folder / f"{name}.png") for name in names]
    faces = [detect(image) for image in frames]
    poses = [estimate_pose(face.landmarks) for face in faces]
    eyes = [
        eye_aspect_ratio(face_shape.landmarks(image, face))
        for image, face in zip(frames, faces, strict=True)
    ]
    assert eyes[3] < 0.12 and min(eyes[:3] + eyes[4:]) > 0.25
    ok, detail = verify_challenge(_challenge(B, B), poses, eye_openness=eyes)
    assert not ok and "only 1 of 2" in detail  # one blink cannot count twice
    blink_only = _challenge(B)
    ok, detail = verify_challenge(blink_only, poses, eye_openness=eyes)
    assert ok and "BLINK@frame3" in detail, detail
    ok, detail = verify_challenge(blink_only, [poses[0]] * 5, eye_openness=[eyes[0]] * 5)
    assert not ok and "only 0 of 1" in detail
    assert observe_blink(poses, eyes)[0]
    assert not observe_blink(poses[:3], eyes[:3])[0]


def test_real_faces_and_their_mirror_images(detect: Callable[[ImageBGR], DetectedFace]) -> None:
    """Real LFW poses: a face turned to the image's left, and its horizontal flip."""
    frontal = read_image(LFW / "Bob_Colvin" / "Bob_Colvin_0002.jpg")
    turned = read_image(LFW / "Johnny_Carson" / "Johnny_Carson_0002.jpg")
    left = estimate_pose(detect(turned).landmarks)
    right = estimate_pose(detect(cast(ImageBGR, cv2.flip(turned, 1))).landmarks)
    neutral = estimate_pose(detect(frontal).landmarks)
    assert left.yaw < -0.3 and right.yaw > 0.3  # nose towards the image's left / right
    assert right.yaw == pytest.approx(-left.yaw, abs=0.15)  # the detector is not symmetric
    sequence = [neutral, neutral, neutral, left, neutral, right]
    assert verify_challenge(_challenge(L, R), sequence)[0]
    assert not verify_challenge(_challenge(R, L), sequence)[0]
