"""End to end, on a real server: requests that are subtly wrong are refused or normalised,
never quietly taken for something else (subject ids in another Unicode form, a challenge
answered by half, enum numbers the contract does not define, a face count lost)."""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.v1 import (
    common_pb2,
    face_pb2,
    face_pb2_grpc,
    liveness_pb2,
    liveness_pb2_grpc,
    subjects_pb2,
    subjects_pb2_grpc,
    voice_pb2,
    voice_pb2_grpc,
)
from tests.conftest import DATA, MODELS, lfw, running_service

CLINTON = [lfw("Bill_Clinton", n) for n in (1, 3, 7)]
RICE = lfw("Condoleezza_Rice", 1)
CLIP = DATA / "speaker" / "audio" / "timit_dr1-mcpm0" / "sa1.flac"
WEBCAM = DATA / "face_pad" / "webcam_replay" / "Krzysiek354"
NFC = unicodedata.normalize("NFC", "José Müller")
NFD = unicodedata.normalize("NFD", "José Müller")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real service with face liveness (for challenges) and voice, on a loopback port."""
    with running_service(
        tmp_path_factory.mktemp("strict-data"), MODELS, face_liveness_pack="auto"
    ) as target:
        yield target


@pytest.fixture(scope="module")
def client(target: str) -> Iterator[BioverifyClient]:
    with BioverifyClient(target, timeout=120, retries=0) as c:
        c.wait_until_serving(timeout=120)
        yield c


@pytest.fixture(scope="module")
def channel(target: str, client: BioverifyClient) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(target) as ch:
        yield ch


def refused(
    call: Callable[[], object], code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT
) -> str:
    """The message of the error ``call`` fails with, which must have ``code``."""
    with pytest.raises((BioverifyClientError, grpc.RpcError)) as info:
        call()
    err = info.value
    if isinstance(err, BioverifyClientError):
        assert err.code == code, err
        return err.message
    assert isinstance(err, grpc.RpcError)
    assert err.code() == code, err.details()
    return str(err.details())


# -- 1. subject ids ---------------------------------------------------------------------------
def test_subject_ids_in_nfc_and_nfd_are_one_subject(client: BioverifyClient) -> None:
    assert NFC != NFD
    first = client.enroll_face(NFC, [CLINTON[0].read_bytes()])
    assert first.accepted_count == 1 and first.subject_id == NFC
    # typed on macOS: the same name in NFD finds the subject, and enrolling extends it
    verified = client.verify_face(NFD, CLINTON[2].read_bytes())
    assert verified.subject_id == NFC
    assert verified.decision == common_pb2.ACCEPT
    second = client.enroll_face(NFD, [CLINTON[1].read_bytes()])
    assert second.subject_id == NFC and second.template.sample_count == 2
    assert client.get_subject(NFD).subject_id == NFC
    listed = [s.subject_id for s in client.list_subjects().subjects]
    assert listed.count(NFC) == 1 and NFD not in listed
    challenge = client.start_liveness_challenge(subject_id=NFD)  # bound to the NFC subject
    assert challenge.challenge_id
    deleted = client.delete_subject(NFD)
    assert deleted.subject_id == NFC and deleted.templates_deleted == 1
    refused(lambda: client.get_subject(NFC), grpc.StatusCode.NOT_FOUND)


@pytest.mark.parametrize(
    "separator",
    ["\u00a0", "\u2028", "\u2029", "\u2003", "\u3000", "\u202f"],
    ids=[
        "no-break-space",
        "line-separator",
        "paragraph-separator",
        "em-space",
        "ideographic",
        "narrow-nbsp",
    ],
)
def test_subject_ids_with_separators_other_than_a_space_are_refused(
    client: BioverifyClient, separator: str
) -> None:
    subject = f"Ann{separator}Lee"
    for call in (
        lambda: client.enroll_face(subject, [CLINTON[0].read_bytes()]),
        lambda: client.verify_face(subject, CLINTON[0].read_bytes()),
        lambda: client.get_subject(subject),
        lambda: client.delete_subject(subject),
        lambda: client.start_liveness_challenge(subject_id=subject),
    ):
        with pytest.raises(BioverifyClientError) as info:
            call()
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.reason == "INVALID_SUBJECT_ID"
        assert f"U+{ord(separator):04X}" in info.value.message
    assert client.enroll_face("Ann Lee", [CLINTON[0].read_bytes()]).accepted_count == 1  # U+0020
    client.delete_subject("Ann Lee")


# -- 2. a challenge answered by half ----------------------------------------------------------
def frames() -> list[bytes]:
    return [(WEBCAM / f"real_{n}.png").read_bytes() for n in ("0000", "0020", "0040")]


def test_a_nonce_without_its_challenge_id_is_refused(client: BioverifyClient) -> None:
    challenge = client.start_liveness_challenge()
    message = refused(lambda: client.check_liveness(frames=frames(), nonce=challenge.nonce))
    assert "nonce given without challenge_id" in message
    for face_call in (
        lambda: client.verify_face(
            "anyone", CLINTON[0].read_bytes(), live_frames=frames(), nonce=challenge.nonce
        ),
        lambda: client.enroll_face(
            "anyone", [CLINTON[0].read_bytes()], live_frames=frames(), nonce=challenge.nonce
        ),
        lambda: client.identify_face(
            CLINTON[0].read_bytes(), live_frames=frames(), nonce=challenge.nonce
        ),
    ):
        assert "nonce given without challenge_id" in refused(face_call)
    singles: tuple[dict[str, object], ...] = (
        {"image": CLINTON[0].read_bytes()},
        {"clip": client.audio(CLIP.read_bytes())},
    )
    for single in singles:
        for answer in ({"nonce": "n"}, {"challenge_id": challenge.challenge_id}):
            message = refused(lambda s=single, a=answer: client.check_liveness(**s, **a))  # type: ignore[misc]
            assert "with frames" in message


def test_a_challenge_id_without_its_nonce_is_refused_and_leaves_the_challenge_usable(
    client: BioverifyClient,
) -> None:
    challenge = client.start_liveness_challenge()
    message = refused(
        lambda: client.check_liveness(frames=frames(), challenge_id=challenge.challenge_id)
    )
    assert "challenge_id given without nonce" in message
    # the challenge was not looked up, so the full answer still gets a verdict
    answered = client.check_liveness(
        frames=frames(), challenge_id=challenge.challenge_id, nonce=challenge.nonce
    )
    assert answered.liveness.checked
    assert "active_challenge" in [c.name for c in answered.liveness.checks]


# -- 3. enum numbers the contract does not define ---------------------------------------------
def test_unknown_enum_values_are_invalid_argument_naming_the_field(
    client: BioverifyClient, channel: grpc.Channel
) -> None:
    face = face_pb2_grpc.FaceServiceStub(channel)
    voice = voice_pb2_grpc.VoiceServiceStub(channel)
    subjects = subjects_pb2_grpc.SubjectServiceStub(channel)
    liveness = liveness_pb2_grpc.LivenessServiceStub(channel)
    clip = CLIP.read_bytes()
    good = voice_pb2.Audio(data=clip)
    # 99 is no value of its enum: the generated stubs take only the enum's members, the
    # messages any int (proto3 enums are open), hence each `type: ignore[arg-type]` here.
    bad = voice_pb2.Audio(data=clip, encoding=99)  # type: ignore[arg-type]
    assert client.enroll_voice("voice-subject", [good]).accepted_count == 1

    def stream() -> list[voice_pb2.VoiceStreamResponse]:
        config = voice_pb2.VoiceStreamConfig(
            subject_id="voice-subject",
            encoding=99,  # type: ignore[arg-type]
            sample_rate_hz=8000,
        )
        messages = [voice_pb2.VoiceStreamRequest(config=config)]
        return list(voice.VerifyVoiceStream(iter(messages), timeout=60))

    cases: list[tuple[Callable[[], object], str, str]] = [
        (
            lambda: voice.VerifyVoice(
                voice_pb2.VerifyVoiceRequest(subject_id="voice-subject", clip=bad), timeout=60
            ),
            "clip.encoding",
            "PCM_S16LE",
        ),
        (
            lambda: voice.CompareVoices(
                voice_pb2.CompareVoicesRequest(clip_a=good, clip_b=bad), timeout=60
            ),
            "clip_b.encoding",
            "MULAW",
        ),
        (
            lambda: voice.IdentifyVoice(voice_pb2.IdentifyVoiceRequest(clip=bad), timeout=60),
            "clip.encoding",
            "ALAW",
        ),
        (
            lambda: voice.EnrollVoice(
                voice_pb2.EnrollVoiceRequest(subject_id="v2", clips=[good, bad]), timeout=60
            ),
            "clips[1].encoding",
            "AUDIO_ENCODING_UNSPECIFIED",
        ),
        (
            lambda: voice.EnrollVoice(
                voice_pb2.EnrollVoiceRequest(subject_id="v2", clips=[good], duplicate_action=99),  # type: ignore[arg-type]
                timeout=60,
            ),
            "duplicate_action",
            "DUPLICATE_REFUSE",
        ),
        (stream, "config.encoding", "PCM_S16LE"),
        (
            lambda: face.EnrollFace(
                face_pb2.EnrollFaceRequest(
                    subject_id="f2",
                    images=[CLINTON[0].read_bytes()],
                    duplicate_action=99,  # type: ignore[arg-type]
                ),
                timeout=60,
            ),
            "duplicate_action",
            "DUPLICATE_REPORT",
        ),
        (
            lambda: subjects.ListSubjects(
                subjects_pb2.ListSubjectsRequest(modality=99),  # type: ignore[arg-type]
                timeout=60,
            ),
            "modality",
            "FACE, VOICE",
        ),
        (
            lambda: liveness.CheckLiveness(liveness_pb2.CheckLivenessRequest(clip=bad), timeout=60),
            "clip.encoding",
            "PCM_S16LE",
        ),
        (
            lambda: liveness.CheckLiveness(
                liveness_pb2.CheckLivenessRequest(
                    frames=liveness_pb2.FrameSequence(frames=frames(), fps=15, audio=bad)
                ),
                timeout=60,
            ),
            "frames.audio.encoding",
            "PCM_S16LE",
        ),
    ]
    for call, field, valid in cases:
        message = refused(call)
        assert f"{field} is 99" in message and valid in message, message
    # nothing was enrolled by the refused enrolments
    listed = {s.subject_id for s in client.list_subjects().subjects}
    assert "v2" not in listed and "f2" not in listed
    client.delete_subject("voice-subject")


# -- 6. the face count of a sample rejected for several faces ---------------------------------
def side_by_side(a: Path, b: Path) -> bytes:
    pixels = np.concatenate(
        [np.asarray(Image.open(a).convert("RGB")), np.asarray(Image.open(b).convert("RGB"))],
        axis=1,
    )
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG")
    return buf.getvalue()


def test_an_enrolment_sample_with_several_faces_reports_how_many(
    client: BioverifyClient,
) -> None:
    two = side_by_side(CLINTON[0], RICE)
    reply = client.enroll_face("two-faces", [two, CLINTON[1].read_bytes()], dry_run=True)
    rejected, accepted = reply.samples
    assert accepted.accepted and accepted.analysis.faces_detected == 1
    assert not rejected.accepted
    (reason,) = rejected.reasons
    assert reason.code == "MULTIPLE_FACES"
    assert rejected.analysis.faces_detected >= 2
    assert reason.message.startswith(f"{rejected.analysis.faces_detected} faces")
    width, height = Image.open(io.BytesIO(two)).size
    assert (rejected.analysis.image_width, rejected.analysis.image_height) == (width, height)
    assert not rejected.analysis.HasField("face")
