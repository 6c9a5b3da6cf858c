"""1:N identification and duplicate checks over the real service (face and voice)."""

from __future__ import annotations

import grpc
import pytest

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.v1 import common_pb2, face_pb2, voice_pb2
from tests.conftest import DATA, lfw

AUDIO = DATA / "speaker" / "audio"


def identify_face(
    client: BioverifyClient, image: bytes, tenant: str, **kw: object
) -> face_pb2.IdentifyFaceResponse:
    request = face_pb2.IdentifyFaceRequest(image=image, tenant=tenant, **kw)  # type: ignore[arg-type]
    reply: face_pb2.IdentifyFaceResponse = client.face.IdentifyFace(request, timeout=60)
    return reply


def test_identify_face_open_set(client: BioverifyClient) -> None:
    tenant = "ident-face"
    gallery = {
        "rice": lfw("Condoleezza_Rice", 1),
        "federer": lfw("Roger_Federer", 8),
        "bassett": lfw("Angela_Bassett", 3),
        "clinton": lfw("Bill_Clinton", 1),
    }
    for subject, path in gallery.items():
        client.enroll_face(subject, [path.read_bytes()], tenant=tenant)

    hit = identify_face(client, lfw("Roger_Federer", 13).read_bytes(), tenant, top_k=3)
    assert hit.candidates[0].subject_id == "federer" and hit.candidates[0].rank == 1
    assert hit.candidates[0].confidence > 0.5 and hit.decision == common_pb2.ACCEPT
    assert hit.model.startswith("onnx-arcface:MobileFaceNet")
    # 4 subjects x FMR 1e-3 keeps a stranger's chance of a false hit under 1 %
    assert hit.operating_point == "fmr_1e-3" and hit.threshold == pytest.approx(
        operating_points(client)["fmr_1e-3"]
    )
    assert hit.HasField("expected_fpir")
    assert hit.expected_fpir == pytest.approx(1 - (1 - 1e-3) ** 4)

    # Someone never enrolled: nobody is a normal answer, not an error.
    aniston = sorted((DATA / "face_verification" / "lfw" / "Jennifer_Aniston").glob("*.jpg"))[0]
    stranger = identify_face(client, aniston.read_bytes(), tenant)
    assert list(stranger.candidates) == [] and stranger.decision == common_pb2.REJECT

    # min_confidence adds weaker hits for review and never hides one that passes the point.
    probe = lfw("Roger_Federer", 13).read_bytes()
    strict = identify_face(client, probe, tenant, top_k=3, min_confidence=1.0)
    assert strict.decision == common_pb2.ACCEPT and strict.candidates[0].subject_id == "federer"
    assert [c.subject_id for c in strict.candidates] == [c.subject_id for c in hit.candidates]
    loose = identify_face(client, probe, tenant, top_k=3, min_confidence=1e-9)
    assert loose.candidates[0].subject_id == "federer" and len(loose.candidates) == 3
    assert all(c.rank == i + 1 for i, c in enumerate(loose.candidates))
    assert loose.decision == common_pb2.ACCEPT

    # Other tenants' galleries are never searched.
    other = identify_face(client, lfw("Roger_Federer", 13).read_bytes(), "ident-face-other")
    assert list(other.candidates) == []

    # Erasure removes the subject from search at once.
    client.delete_subject("federer", tenant=tenant)
    gone = identify_face(client, lfw("Roger_Federer", 13).read_bytes(), tenant)
    assert all(c.subject_id != "federer" for c in gone.candidates)


def operating_points(client: BioverifyClient) -> dict[str, float]:
    (face,) = [m for m in client.service_info().models if m.role == "face-matcher"]
    return {p.name: p.threshold for p in face.operating_points}


def test_identification_gets_stricter_as_the_gallery_grows(client: BioverifyClient) -> None:
    """12 subjects at FMR 1e-3 would give a stranger a 1.2 % chance of matching someone: the
    search moves to FMR 1e-4 unless the request names its operating point."""
    tenant = "ident-growing"
    people = sorted(p for p in (DATA / "face_verification" / "lfw").iterdir() if p.is_dir())
    assert len(people) >= 12
    for person in people[:12]:
        first = sorted(person.glob("*.jpg"))[0]
        client.enroll_face(person.name, [first.read_bytes()], tenant=tenant)
    probe = lfw("Roger_Federer", 13).read_bytes()
    scaled = identify_face(client, probe, tenant)
    assert scaled.operating_point == "fmr_1e-4"
    assert scaled.threshold == pytest.approx(operating_points(client)["fmr_1e-4"])
    assert scaled.expected_fpir == pytest.approx(1 - (1 - 1e-4) ** 12)
    named = identify_face(
        client, probe, tenant, policy=common_pb2.Policy(operating_point="fmr_1e-2")
    )
    assert named.operating_point == "fmr_1e-2"  # the request's choice stands
    assert named.expected_fpir == pytest.approx(1 - 0.99**12)  # and says what it costs
    for person in people[:12]:
        client.delete_subject(person.name, tenant=tenant)


def test_identify_validates_arguments(client: BioverifyClient) -> None:
    with pytest.raises(grpc.RpcError) as info:
        identify_face(client, lfw("Roger_Federer", 13).read_bytes(), "x", top_k=1000)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        identify_face(client, b"junk", "x")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_duplicate_identity_reported_and_refused(client: BioverifyClient) -> None:
    tenant = "fraud-ring"
    client.enroll_face("customer-1", [lfw("Bill_Clinton", 3).read_bytes()], tenant=tenant)
    reported = client.enroll_face(
        "customer-2", [lfw("Bill_Clinton", 7).read_bytes()], tenant=tenant
    )
    assert [d.subject_id for d in reported.duplicates] == ["customer-1"]
    assert reported.duplicates[0].confidence > 0.5 and reported.template.sample_count == 1

    request = face_pb2.EnrollFaceRequest(
        subject_id="customer-3",
        images=[lfw("Bill_Clinton", 17).read_bytes()],
        tenant=tenant,
        duplicate_action=common_pb2.DUPLICATE_REFUSE,
    )
    with pytest.raises(grpc.RpcError) as info:
        client.face.EnrollFace(request, timeout=60)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "customer-1" in info.value.details() or "customer-2" in info.value.details()
    with pytest.raises(BioverifyClientError):
        client.get_subject("customer-3", tenant=tenant)  # nothing written
    # A different person is not a duplicate, and re-enrolling yourself is not one either.
    fine = client.enroll_face("customer-4", [lfw("Angela_Bassett", 4).read_bytes()], tenant=tenant)
    assert list(fine.duplicates) == []
    again = client.enroll_face("customer-1", [lfw("Bill_Clinton", 17).read_bytes()], tenant=tenant)
    assert [d.subject_id for d in again.duplicates] == ["customer-2"]


def test_identify_voice(client: BioverifyClient) -> None:
    tenant = "ident-voice"
    speakers = ["libri_2033", "libri_2414", "timit_dr1-mcpm0", "timit_dr3-falk0"]
    for speaker in speakers:
        clips = sorted((AUDIO / speaker).glob("*.flac"))[:3]
        client.enroll_voice(speaker, [client.audio(c.read_bytes()) for c in clips], tenant=tenant)
    probe = sorted((AUDIO / "libri_2414").glob("*.flac"))[6]
    reply: voice_pb2.IdentifyVoiceResponse = client.voice.IdentifyVoice(
        voice_pb2.IdentifyVoiceRequest(clip=client.audio(probe.read_bytes()), tenant=tenant),
        timeout=60,
    )
    assert reply.candidates[0].subject_id == "libri_2414" and reply.decision == common_pb2.ACCEPT
    impostor = sorted((DATA / "speaker" / "impostors").glob("*.flac"))[0]
    reply = client.voice.IdentifyVoice(
        voice_pb2.IdentifyVoiceRequest(clip=client.audio(impostor.read_bytes()), tenant=tenant),
        timeout=60,
    )
    assert list(reply.candidates) == [] and reply.decision == common_pb2.REJECT
