"""Liveness over the real service: CheckLiveness on PAD images, liveness inside VerifyFace,
active challenges (single-use nonces, replayed still images fail)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from bioverify.client import BioverifyClient
from bioverify.v1 import common_pb2, face_pb2, liveness_pb2, liveness_pb2_grpc
from tests.conftest import DATA, MODELS, lfw

SAMPLES = MODELS / "silent_face_antispoof" / "samples"


@pytest.fixture(scope="module")
def client(face_server: str) -> Iterator[BioverifyClient]:
    with BioverifyClient(face_server, timeout=120.0, retries=0) as c:
        c.wait_until_serving(timeout=60)
        yield c


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


def test_bad_liveness_requests(liveness: liveness_pb2_grpc.LivenessServiceStub) -> None:
    for request in (
        liveness_pb2.CheckLivenessRequest(),
        liveness_pb2.CheckLivenessRequest(image=b"junk"),
        liveness_pb2.CheckLivenessRequest(frames=liveness_pb2.FrameSequence(frames=[b"x"])),
    ):
        with pytest.raises(grpc.RpcError) as info:
            liveness.CheckLiveness(request, timeout=60)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
