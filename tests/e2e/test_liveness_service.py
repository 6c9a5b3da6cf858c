"""Liveness over the real service: CheckLiveness on PAD images, liveness inside VerifyFace,
active challenges (single-use nonces, replayed still images fail, real blinks and turns), live
captures bound to what they vouch for (also the template an enrolment writes over)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Protocol, TypedDict

import cv2
import grpc
import numpy as np
import pytest

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.errors import Unavailable
from bioverify.store.ports import Template, TemplateStore, TemplateWrite
from bioverify.v1 import (
    common_pb2,
    face_pb2,
    face_pb2_grpc,
    liveness_pb2,
    liveness_pb2_grpc,
    voice_pb2,
)
from tests.conftest import DATA, MODELS, custom_service, lfw
from tests.e2e.store_faults import StoreFault, faulty_stores, raced_stores

SAMPLES = MODELS / "silent_face_antispoof" / "samples"
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def liveness(face_server: str) -> Iterator[liveness_pb2_grpc.LivenessServiceStub]:
    with grpc.insecure_channel(face_server) as channel:
        yield liveness_pb2_grpc.LivenessServiceStub(channel)


def check_image(
    stub: liveness_pb2_grpc.LivenessServiceStub, data: bytes
) -> liveness_pb2.CheckLivenessResponse:
    reply: liveness_pb2.CheckLivenessResponse = stub.CheckLiveness(
        liveness_pb2.CheckLivenessRequest(image=data), timeout=60
    )
    return reply


def test_check_liveness_explains_itself(liveness: liveness_pb2_grpc.LivenessServiceStub) -> None:
    # MiniFASNet's own samples: T1 is a live face, F1 and F2 are presentation attacks.
    for name, expected in (
        ("image_T1.jpg", True),
        ("image_F1.jpg", False),
        ("image_F2.jpg", False),
    ):
        reply = check_image(liveness, (SAMPLES / name).read_bytes())
        report = reply.liveness
        assert report.live == expected, name
        assert report.checked and 0.0 <= report.score <= 1.0 and report.threshold > 0
        assert report.live == (report.score >= report.threshold)
        assert len(report.checks) >= 3 and all(c.detail for c in report.checks)
        if report.live:
            assert reply.decision == common_pb2.ACCEPT and not reply.reasons
        else:
            assert reply.decision == common_pb2.SPOOF_SUSPECTED and reply.reasons


def test_gan_faces_and_screen_replays_are_mostly_caught(
    liveness: liveness_pb2_grpc.LivenessServiceStub,
) -> None:
    rows = [r.split("\t") for r in (DATA / "face_pad_labels.tsv").read_text().splitlines()[1:]]
    attacks = [r for r in rows if r[1] in ("deepfake", "replay")][::3]
    caught = sum(
        not check_image(liveness, (DATA / r[0]).read_bytes()).liveness.live for r in attacks
    )
    assert caught / len(attacks) >= 0.6  # a floor well below what the shipped fusion reaches


def test_verify_with_required_liveness(client: BioverifyClient) -> None:
    client.enroll_face("live-1", [lfw("Roger_Federer", 8).read_bytes()], tenant="live")
    request = face_pb2.VerifyFaceRequest(
        subject_id="live-1",
        image=lfw("Roger_Federer", 9).read_bytes(),
        tenant="live",
        policy=common_pb2.Policy(require_liveness=True),
    )
    reply = client.face.VerifyFace(request, timeout=60)
    assert reply.liveness.checked
    if reply.liveness.live:
        assert reply.decision in (common_pb2.ACCEPT, common_pb2.RETRY)
    else:
        assert reply.decision == common_pb2.SPOOF_SUSPECTED and reply.liveness.reasons
    client.delete_subject("live-1", tenant="live")


def test_active_challenge_single_use_and_still_replay_fails(
    liveness: liveness_pb2_grpc.LivenessServiceStub,
) -> None:
    challenge = liveness.StartLivenessChallenge(liveness_pb2.StartLivenessChallengeRequest())
    assert challenge.challenge_id and challenge.nonce and len(challenge.actions) >= 2
    assert challenge.expires_at
    still = (SAMPLES / "image_T1.jpg").read_bytes()
    request = liveness_pb2.CheckLivenessRequest(
        frames=liveness_pb2.FrameSequence(frames=[still] * 6, fps=5),
        challenge_id=challenge.challenge_id,
        nonce=challenge.nonce,
    )
    reply = liveness.CheckLiveness(request, timeout=60)
    assert not reply.liveness.live and reply.decision == common_pb2.SPOOF_SUSPECTED
    assert any(c.name == "active_challenge" and not c.passed for c in reply.liveness.checks)
    # no blink in a still: reported (score 0), though not what rejected it
    assert any(c.name == "eye_blink" and c.score == 0.0 and c.passed for c in reply.liveness.checks)
    with pytest.raises(grpc.RpcError) as info:  # the nonce is single-use
        liveness.CheckLiveness(request, timeout=60)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    bad = liveness_pb2.CheckLivenessRequest(
        frames=liveness_pb2.FrameSequence(frames=[still] * 3),
        challenge_id="no-such-challenge",
        nonce="x",
    )
    with pytest.raises(grpc.RpcError) as info:
        liveness.CheckLiveness(bad, timeout=60)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def drawn_challenge(
    issue: Callable[[], liveness_pb2.LivenessChallenge],
    allowed: Collection[int],
    required: int | None = None,
) -> liveness_pb2.LivenessChallenge:
    """A fresh challenge of only ``allowed`` actions (with ``required`` among them): the
    actions are random, so challenges are issued until one fits."""
    for _ in range(400):
        challenge = issue()
        fits = set(challenge.actions) <= set(allowed)
        if fits and (required is None or required in challenge.actions):
            return challenge
    pytest.fail(f"the service never issued a challenge of only {sorted(allowed)}")


def turns_of(turned_left: bytes, margin: int = 0) -> dict[int, bytes]:
    """Frames for TURN_HEAD_LEFT (a face turned to the image's left, with ``margin`` pixels
    of edge replication around it) and TURN_HEAD_RIGHT (the same frame mirrored)."""
    decoded = cv2.imdecode(np.frombuffer(turned_left, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None
    left = cv2.copyMakeBorder(decoded, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
    return {
        liveness_pb2.TURN_HEAD_LEFT: cv2.imencode(".png", left)[1].tobytes(),
        liveness_pb2.TURN_HEAD_RIGHT: cv2.imencode(".png", cv2.flip(left, 1))[1].tobytes(),
    }


def test_active_challenge_with_a_blink_and_head_turns(
    liveness: liveness_pb2_grpc.LivenessServiceStub,
) -> None:
    """Real frames per action: a live webcam recording's open and shut eyes (DEV PAD set) and
    an LFW face turned to the image's left (flipped for right). Also: BLINK is issued. The
    turns are another person's, so the challenge is performed but the burst is rejected
    for changing identity: the splice an attacker would use to pass with their own face."""
    open_a, open_b, shut = frames_of("alexcamargoweb", ("0070", "0028", "0000"))
    turns = turns_of(lfw("Johnny_Carson", 2).read_bytes())
    frames_for = {
        liveness_pb2.BLINK: [shut, open_b],
        **{action: [frame, open_a] for action, frame in turns.items()},
    }

    def answer(frames_of: dict[int, list[bytes]]) -> liveness_pb2.CheckLivenessResponse:
        """Answer a fresh BLINK challenge with neutral frames, then each action's frames."""
        challenge = drawn_challenge(
            lambda: liveness.StartLivenessChallenge(liveness_pb2.StartLivenessChallengeRequest()),
            frames_of,
            required=liveness_pb2.BLINK,
        )
        frames = [open_a, open_b, open_a]
        for action in challenge.actions:
            frames += frames_of[action]
        request = liveness_pb2.CheckLivenessRequest(
            frames=liveness_pb2.FrameSequence(frames=frames, fps=5),
            challenge_id=challenge.challenge_id,
            nonce=challenge.nonce,
        )
        reply: liveness_pb2.CheckLivenessResponse = liveness.CheckLiveness(request, timeout=60)
        return reply

    reply = answer(frames_for)
    performed = check(reply, "active_challenge")
    assert performed.passed and "BLINK@frame" in performed.detail, performed.detail
    blink = check(reply, "eye_blink")
    assert blink.passed and blink.weight == 0.0 and "shut at frame" in blink.detail
    same = check(reply, "identity_continuity")
    assert not same.passed and "a different person" in same.detail, same.detail
    assert not reply.liveness.live and reply.decision == common_pb2.SPOOF_SUSPECTED
    assert any(r.code == "IDENTITY_CHANGED" for r in reply.reasons)
    # The same frames without the shut-eye one: the blink is missing.
    reply = answer({**frames_for, liveness_pb2.BLINK: [open_a, open_b]})
    performed = check(reply, "active_challenge")
    assert not performed.passed and "BLINK" in performed.detail, performed.detail
    assert not reply.liveness.live and reply.decision == common_pb2.SPOOF_SUSPECTED
    assert any(r.code == "CHALLENGE_FAILED" for r in reply.reasons)


def test_frames_of_one_person_are_continuous_and_a_spliced_face_is_named(
    liveness: liveness_pb2_grpc.LivenessServiceStub,
) -> None:
    """A live webcam recording (DEV PAD set), a head turn included, is one person; the same
    frames with one LFW photo of someone else injected fail identity continuity at it."""
    frames = frames_of("Krzysiek354", ("0000", "0020", "0060", "0079"))

    def check_burst(burst: list[bytes]) -> tuple[liveness_pb2.CheckLivenessResponse, str, bool]:
        reply = liveness.CheckLiveness(
            liveness_pb2.CheckLivenessRequest(frames=liveness_pb2.FrameSequence(frames=burst)),
            timeout=60,
        )
        same = check(reply, "identity_continuity")
        assert "largest jump between consecutive frames" in same.detail
        return reply, same.detail, same.passed

    reply, detail, passed = check_burst(frames)
    assert passed and "all 4 faces are the person of frame" in detail, detail
    assert not any(r.code == "IDENTITY_CHANGED" for r in reply.reasons)
    burst = [*frames[:2], lfw("Johnny_Carson", 2).read_bytes(), *frames[2:]]
    reply, detail, passed = check_burst(burst)
    assert not passed and "frame 2: a different person" in detail, detail
    assert not reply.liveness.live and reply.decision == common_pb2.SPOOF_SUSPECTED
    assert any(r.code == "IDENTITY_CHANGED" for r in reply.reasons)


def test_bad_liveness_requests(liveness: liveness_pb2_grpc.LivenessServiceStub) -> None:
    for request in (
        liveness_pb2.CheckLivenessRequest(),
        liveness_pb2.CheckLivenessRequest(image=b"junk"),
        liveness_pb2.CheckLivenessRequest(frames=liveness_pb2.FrameSequence(frames=[b"x"])),
    ):
        with pytest.raises(grpc.RpcError) as info:
            liveness.CheckLiveness(request, timeout=60)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


WEBCAM = DATA / "face_pad" / "webcam_replay"


def frames_of(person: str, numbers: tuple[str, ...]) -> list[bytes]:
    """Live webcam frames of one person (DEV PAD set)."""
    return [(WEBCAM / person / f"real_{n}.png").read_bytes() for n in numbers]


class HasLiveness(Protocol):
    @property
    def liveness(self) -> common_pb2.LivenessReport: ...


class ChallengeAnswer(TypedDict):
    """The keyword arguments of a client call that answer a liveness challenge."""

    challenge_id: str
    nonce: str


def check(reply: HasLiveness, name: str) -> common_pb2.LivenessCheck:
    """The reply's liveness check ``name`` (informational: weight 0, explained)."""
    found: common_pb2.LivenessCheck
    (found,) = [c for c in reply.liveness.checks if c.name == name]
    assert found.weight == 0.0 and found.detail
    return found


def test_verify_face_with_a_live_capture_binds_the_image_to_the_frames(
    client: BioverifyClient, liveness: liveness_pb2_grpc.LivenessServiceStub
) -> None:
    """VerifyFace with live_capture: a live webcam burst of the enrolled person vouches for
    their image (ACCEPT); the same person's image sent with someone else's live frames (an
    attacker performing the capture with their own face) is SPOOF_SUSPECTED although the
    image matches, whatever require_liveness says; observe mode only reports it."""
    own = frames_of("Krzysiek354", ("0000", "0020", "0060", "0079"))
    other = frames_of("alexcamargoweb", ("0014", "0028", "0042", "0056"))
    (image,) = frames_of("Krzysiek354", ("0099",))
    client.enroll_face("capture-1", frames_of("Krzysiek354", ("0119", "0139")), tenant="cap")
    try:
        reply = client.verify_face("capture-1", image, tenant="cap", live_frames=own, fps=2)
        assert reply.match.decision == common_pb2.ACCEPT and reply.liveness.live
        assert reply.decision == common_pb2.ACCEPT
        same = check(reply, "identity_continuity")
        assert same.passed and "all 5 faces are the person of frame" in same.detail
        assert check(reply, "capture_matches_subject").passed
        assert check(reply, "motion_frame_change").passed

        for observe, require in ((False, None), (False, False), (True, None)):
            reply = client.verify_face(
                "capture-1",
                image,
                tenant="cap",
                live_frames=other,
                observe_only=observe,
                require_liveness=require,
            )
            assert reply.match.decision == common_pb2.ACCEPT and not reply.liveness.live
            same = check(reply, "identity_continuity")
            assert "the verified image: a different person" in same.detail, same.detail
            assert not check(reply, "capture_matches_subject").passed
            codes = [r.code for r in reply.liveness.reasons]
            assert codes.count("IDENTITY_CHANGED") == 1, codes  # one reason, both findings
            (changed,) = [r for r in reply.liveness.reasons if r.code == "IDENTITY_CHANGED"]
            assert "a different person" in changed.message
            assert "not the enrolled subject" in changed.message
            assert len(set(codes)) == len(codes), codes
            assert reply.liveness.observe_only == observe
            expected = common_pb2.ACCEPT if observe else common_pb2.SPOOF_SUSPECTED
            assert reply.decision == expected  # observe mode reports, does not block

        for bad, code, message in (
            ({"live_frames": own[:1]}, INVALID, "at least two frames"),
            ({"live_frames": [*own[:2], b"junk"]}, INVALID, "frame 2:"),
            ({"live_frames": own, "fps": -2.0}, INVALID, "fps must be"),
            ({"live_frames": own, "fps": math.nan}, INVALID, "fps must be"),
            (
                {"live_frames": own, "challenge_id": "no-such-challenge", "nonce": "x"},
                grpc.StatusCode.FAILED_PRECONDITION,
                "challenge",
            ),
        ):
            with pytest.raises(BioverifyClientError) as info:
                client.verify_face("capture-1", image, tenant="cap", **bad)
            assert info.value.code == code and message in info.value.message, info.value
        with pytest.raises(ValueError):
            client.verify_face("capture-1", image, tenant="cap", challenge_id="c", nonce="n")

        # A challenge bound to the subject: a request with a broken frame does not use it up;
        # it is redeemed once, only by this subject's VerifyFace in this tenant.
        def bound() -> liveness_pb2.LivenessChallenge:
            challenge: liveness_pb2.LivenessChallenge = liveness.StartLivenessChallenge(
                liveness_pb2.StartLivenessChallengeRequest(tenant="cap", subject_id="capture-1")
            )
            return challenge

        challenge = bound()
        answer: ChallengeAnswer = {"challenge_id": challenge.challenge_id, "nonce": challenge.nonce}
        with pytest.raises(BioverifyClientError) as info:
            client.verify_face(
                "capture-1", image, tenant="cap", live_frames=[*own, b"junk"], **answer
            )
        assert info.value.code == INVALID
        reply = client.verify_face("capture-1", image, tenant="cap", live_frames=own, **answer)
        # Redeemed and judged: these frames were not taken for this challenge's actions.
        assert not check(reply, "active_challenge").passed
        assert any(r.code == "CHALLENGE_FAILED" for r in reply.liveness.reasons)
        with pytest.raises(BioverifyClientError) as info:
            client.verify_face("capture-1", image, tenant="cap", live_frames=own, **answer)
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
        for tenant, subject, message in (
            ("cap", "capture-2", "another subject"),
            ("other", "capture-1", "another tenant"),
        ):
            client.enroll_face(subject, other[:2], tenant=tenant)
            challenge = bound()
            with pytest.raises(BioverifyClientError) as info:
                client.verify_face(
                    subject,
                    image,
                    tenant=tenant,
                    live_frames=own,
                    challenge_id=challenge.challenge_id,
                    nonce=challenge.nonce,
                )
            assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
            assert message in info.value.message, info.value
        challenge = bound()
        with pytest.raises(grpc.RpcError) as rpc_info:
            liveness.CheckLiveness(
                liveness_pb2.CheckLivenessRequest(
                    frames=liveness_pb2.FrameSequence(frames=own),
                    challenge_id=challenge.challenge_id,
                    nonce=challenge.nonce,
                    tenant="cap",
                ),
                timeout=60,
            )
        assert rpc_info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "only VerifyFace or EnrollFace" in (rpc_info.value.details() or "")
    finally:
        for tenant, subject in (("cap", "capture-1"), ("cap", "capture-2"), ("other", "capture-1")):
            with contextlib.suppress(BioverifyClientError):
                client.delete_subject(subject, tenant=tenant)


def test_enroll_and_identify_face_with_a_live_capture(
    client: BioverifyClient, face_server: str
) -> None:
    """EnrollFace and IdentifyFace take a live capture as VerifyFace does: the enrolment
    images (or the probe) must be the frames' person, samples added to an enrolled subject
    and a found candidate must match the frames, and a capture judged not live writes
    nothing (observe mode only reports)."""
    own = frames_of("Krzysiek354", ("0000", "0020", "0060", "0079"))
    other = frames_of("alexcamargoweb", ("0014", "0028", "0042", "0056"))
    images = frames_of("Krzysiek354", ("0119", "0139"))
    (probe,) = frames_of("Krzysiek354", ("0099",))
    tenant = "onboard"

    def enrolled(subject: str) -> int:
        try:
            templates = client.get_subject(subject, tenant=tenant).templates
            return sum(t.sample_count for t in templates if t.modality == common_pb2.FACE)
        except BioverifyClientError as exc:
            assert exc.code == grpc.StatusCode.NOT_FOUND
            return 0

    try:
        # The person of the images performs the capture: enrolled, and the reply says why.
        reply = client.enroll_face("alice", images, tenant=tenant, live_frames=own, fps=2)
        assert reply.liveness.live and reply.template.sample_count == 2, reply
        same = check(reply, "identity_continuity")
        assert same.passed and "all 6 faces are the person of frame" in same.detail
        assert check(reply, "images_match_capture").passed  # at the operating point
        assert not [c for c in reply.liveness.checks if c.name == "capture_matches_subject"]

        # Someone else's live capture with these images (after one that is no face): nothing
        # written and every sample rejected, unless observing; the images keep their indices.
        for observe in (False, True):
            reply = client.enroll_face(
                "mallory",
                [b"junk", *images],
                tenant=tenant,
                live_frames=other,
                observe_only=observe,
            )
            assert not reply.liveness.live
            detail = check(reply, "identity_continuity").detail
            assert "enrolment image 1, enrolment image 2: a different person" in detail
            assert not check(reply, "images_match_capture").passed
            assert not reply.samples[0].accepted
            assert reply.samples[0].reasons[0].code != "SPOOF_SUSPECTED"
            if observe:
                assert reply.template.sample_count == 2 and not reply.reasons
                assert reply.accepted_count == 2
            else:
                codes = [r.code for r in reply.reasons]
                assert codes[0] == "SPOOF_SUSPECTED" and "IDENTITY_CHANGED" in codes, codes
                assert not reply.HasField("template") and enrolled("mallory") == 0
                assert reply.accepted_count == 0 and reply.rejected_count == 3
                assert reply.samples[2].reasons[0].code == "SPOOF_SUSPECTED"
        client.delete_subject("mallory", tenant=tenant)

        # Adding samples to alice or replacing hers: the live person must be alice, even
        # when the new images and the frames agree with each other.
        for replace in (False, True):
            reply = client.enroll_face(
                "alice", other[:2], tenant=tenant, live_frames=other[2:], replace=replace
            )
            matches = check(reply, "capture_matches_subject")
            assert not matches.passed and "against the enrolled subject" in matches.detail
            assert not reply.HasField("template") and enrolled("alice") == 2
        # Her own capture adds her new image; a dry run checks it all and writes nothing.
        for dry_run, count in ((True, 2), (False, 3)):
            reply = client.enroll_face(
                "alice", [probe], tenant=tenant, live_frames=own, dry_run=dry_run
            )
            assert reply.liveness.live and check(reply, "capture_matches_subject").passed
            assert enrolled("alice") == count and reply.accepted_count == 1
        # A dry run uses an answered challenge up: it cannot be used to try answers.
        challenge = client.start_liveness_challenge(tenant=tenant, subject_id="alice")
        answer: ChallengeAnswer = {"challenge_id": challenge.challenge_id, "nonce": challenge.nonce}
        client.enroll_face("alice", [probe], tenant=tenant, live_frames=own, dry_run=True, **answer)
        with pytest.raises(BioverifyClientError) as info:
            client.enroll_face("alice", [probe], tenant=tenant, live_frames=own, **answer)
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert enrolled("alice") == 3

        # A challenge bound to a subject is redeemed by that subject's enrolment only.
        challenge = client.start_liveness_challenge(tenant=tenant, subject_id="bob")
        answer = {"challenge_id": challenge.challenge_id, "nonce": challenge.nonce}
        with pytest.raises(BioverifyClientError) as info:
            client.identify_face(probe, tenant=tenant, live_frames=own, **answer)
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "EnrollFace of that subject" in info.value.message
        challenge = client.start_liveness_challenge(tenant=tenant, subject_id="bob")
        answer = {"challenge_id": challenge.challenge_id, "nonce": challenge.nonce}
        reply = client.enroll_face("bob", images, tenant=tenant, live_frames=own, **answer)
        assert not check(reply, "active_challenge").passed  # not performed in these frames
        assert "CHALLENGE_FAILED" in [r.code for r in reply.reasons]
        assert enrolled("bob") == 0

        # IdentifyFace: alice's probe with her own capture finds her, bound to the frames.
        reply = client.identify_face(probe, tenant=tenant, live_frames=own, fps=2)
        assert reply.candidates[0].subject_id == "alice" and reply.liveness.live
        assert reply.decision == common_pb2.ACCEPT
        assert check(reply, "capture_matches_subject").passed
        assert "all 5 faces are the person of frame" in check(reply, "identity_continuity").detail
        # Her photo with someone else performing the capture.
        reply = client.identify_face(probe, tenant=tenant, live_frames=other)
        assert reply.candidates[0].subject_id == "alice"
        assert reply.decision == common_pb2.SPOOF_SUSPECTED
        assert "IDENTITY_CHANGED" in [r.code for r in reply.liveness.reasons]
        assert (
            "the identified image: a different person" in check(reply, "identity_continuity").detail
        )
        assert not check(reply, "capture_matches_subject").passed
        reply = client.identify_face(probe, tenant=tenant, live_frames=other, observe_only=True)
        assert reply.decision == common_pb2.ACCEPT and not reply.liveness.live  # reported only
        # Nobody found: there is no candidate for the capture to match.
        reply = client.identify_face(other[0], tenant=tenant, live_frames=other[1:])
        assert not reply.candidates and reply.decision == common_pb2.REJECT
        assert not [c for c in reply.liveness.checks if c.name == "capture_matches_subject"]
        with pytest.raises(BioverifyClientError) as info:
            client.identify_face(probe, tenant=tenant, live_frames=[own[0], b"junk"])
        assert info.value.code == INVALID and "frame 1:" in info.value.message
        # A capture too short to judge fails before any image is processed.
        for call in (
            lambda: client.identify_face(b"junk", tenant=tenant, live_frames=own[:1]),
            lambda: client.enroll_face("bob", [b"junk"], tenant=tenant, live_frames=own[:1]),
            lambda: client.verify_face("alice", b"junk", tenant=tenant, live_frames=own[:1]),
        ):
            with pytest.raises(BioverifyClientError) as info:
                call()
            assert info.value.code == INVALID and "at least two frames" in info.value.message
        # Frames sent with their audio need a frame rate: refused before the image is read.
        with grpc.insecure_channel(face_server) as channel:
            capture = liveness_pb2.LiveCapture(
                frames=liveness_pb2.FrameSequence(frames=own, audio=voice_pb2.Audio(data=b"x"))
            )
            request = face_pb2.VerifyFaceRequest(
                subject_id="alice", image=b"junk", tenant=tenant, live_capture=capture
            )
            with pytest.raises(grpc.RpcError) as rpc_info:
                face_pb2_grpc.FaceServiceStub(channel).VerifyFace(request, timeout=60)
        assert rpc_info.value.code() == INVALID
        assert "set fps > 0" in (rpc_info.value.details() or "")
    finally:
        for subject in ("alice", "mallory", "bob"):
            with contextlib.suppress(BioverifyClientError):
                client.delete_subject(subject, tenant=tenant)


def test_verify_face_accepts_a_challenge_performed_by_the_enrolled_person(
    client: BioverifyClient,
) -> None:
    """The whole active path with one real person: a subject-bound challenge of head turns,
    answered with the enrolled person's own live webcam frames (a real turn to the image's
    left, mirrored for a turn to the right), vouches for their image in VerifyFace. The PAD
    set keeps only face crops, and the turned face touches its crop's edge, so the turned
    frame gets a margin back by edge replication (as the whole webcam frame would have)."""
    neutral = frames_of("Krzysiek354", ("0000", "0020", "0119"))
    (turned,) = frames_of("Krzysiek354", ("0060",))  # yaw -0.41: nose towards the image's left
    frames_for = turns_of(turned, margin=32)
    (image,) = frames_of("Krzysiek354", ("0099",))
    tenant = "perform"
    client.enroll_face("performer", frames_of("Krzysiek354", ("0139",)), tenant=tenant)
    try:
        challenge = drawn_challenge(  # this person can only turn
            lambda: client.start_liveness_challenge(tenant=tenant, subject_id="performer"),
            frames_for,
        )
        frames = list(neutral)
        for action in challenge.actions:
            frames += [frames_for[action], neutral[0]]
        reply = client.verify_face(
            "performer",
            image,
            tenant=tenant,
            live_frames=frames,
            fps=5,
            challenge_id=challenge.challenge_id,
            nonce=challenge.nonce,
        )
        performed = check(reply, "active_challenge")
        assert performed.passed and "TURN_HEAD" in performed.detail, performed.detail
        assert check(reply, "identity_continuity").passed
        assert check(reply, "capture_matches_subject").passed
        assert reply.liveness.live and reply.decision == common_pb2.ACCEPT, reply.liveness
    finally:
        with contextlib.suppress(BioverifyClientError):
            client.delete_subject("performer", tenant=tenant)


def test_enroll_face_with_a_live_capture_aborts_when_the_template_changed_since_its_check(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EnrollFace binds a live capture to the subject's template (or to there being none) and
    then writes: when another replica enrolls the subject or replaces its template in between,
    the enrolment is ABORTED and writes nothing over the template it never checked."""
    own = frames_of("Krzysiek354", ("0000", "0020", "0060", "0079"))
    images = frames_of("Krzysiek354", ("0119", "0139"))
    (probe,) = frames_of("Krzysiek354", ("0099",))
    with (
        raced_stores(monkeypatch) as stores,
        custom_service(tmp_path, models_dir, face_liveness_pack="auto") as client,
    ):
        (store,) = stores

        def aborted(subject: str, images: list[bytes]) -> None:
            store.armed = True
            with pytest.raises(BioverifyClientError) as info:
                client.enroll_face(subject, images, live_frames=own)
            assert info.value.code == grpc.StatusCode.ABORTED
            assert info.value.reason == "TEMPLATE_CHANGED"
            message = info.value.message
            assert f"subject {subject!r}'s face template changed" in message and "retry" in message
            rival = store.rival_template
            assert rival is not None and not store.armed
            now = store.get_template("default", subject, "face")
            assert now.revision == rival.revision and now.sample_ids == ("rival",)

        # Nobody enrolled when the capture was checked, someone by the time of the write.
        aborted("alice", images)
        # Enrolled when checked, replaced by the time of the write.
        reply = client.enroll_face("bob", images, live_frames=own)
        assert reply.liveness.live and reply.template.sample_count == 2
        aborted("bob", [probe])
        # A dry run writes nothing, so it expects nothing of the template either.
        store.armed = True
        client.enroll_face("carol", [probe], live_frames=own, dry_run=True)
        assert store.armed


class UnavailableOnce(StoreFault):
    """Fault injector around a service's store: its next write, once armed, fails as a store
    outage does (Unavailable), before anything is written."""

    def __init__(self, store: TemplateStore) -> None:
        super().__init__(store)
        self.armed = False
        self.failed = 0

    def save(self, write: TemplateWrite) -> Template:
        if self.armed:
            self.armed = False
            self.failed += 1
            raise Unavailable("the template store (Redis) is unreachable; retry later")
        return super().save(write)


def test_enroll_face_retried_after_a_store_outage_answers_its_challenge_again(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EnrollFace with a performed challenge whose write meets a store outage answers
    UNAVAILABLE without using the challenge up, so the SDK's retry of the same request (same
    nonce) enrolls; after that success the nonce is used up."""
    neutral = frames_of("Krzysiek354", ("0000", "0020", "0119"))
    (turned,) = frames_of("Krzysiek354", ("0060",))
    frames_for = turns_of(turned, margin=32)
    images = frames_of("Krzysiek354", ("0099", "0139"))
    with (
        faulty_stores(monkeypatch, lambda store, _: UnavailableOnce(store)) as stores,
        custom_service(tmp_path, models_dir, face_liveness_pack="auto") as client,
    ):
        (store,) = stores
        challenge = drawn_challenge(
            lambda: client.start_liveness_challenge(subject_id="performer"), frames_for
        )
        frames = list(neutral)
        for action in challenge.actions:
            frames += [frames_for[action], neutral[0]]
        answer: ChallengeAnswer = {"challenge_id": challenge.challenge_id, "nonce": challenge.nonce}
        client.retries, client.backoff = 2, 0.05  # as the SDK's default client does
        store.armed = True
        reply = client.enroll_face("performer", images, live_frames=frames, fps=5, **answer)
        assert store.failed == 1
        assert check(reply, "active_challenge").passed and reply.liveness.live, reply.liveness
        assert reply.template.sample_count == 2
        with pytest.raises(BioverifyClientError) as info:
            client.enroll_face("performer", images, live_frames=frames, fps=5, **answer)
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert client.get_subject("performer").templates[0].sample_count == 2
