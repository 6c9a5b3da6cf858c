"""An enrolment cannot mix people: a second person's photo or voice slipped into a subject's
samples is refused (SUBJECT_MISMATCH), so that person cannot then verify as the subject."""

from __future__ import annotations

import pytest

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.v1 import common_pb2
from tests.conftest import DATA, lfw

AUDIO = DATA / "speaker" / "audio"


def _codes(sample: object) -> list[str]:
    return [r.code for r in sample.reasons]  # type: ignore[attr-defined]


def test_two_people_in_one_new_face_enrolment_enroll_nobody(client: BioverifyClient) -> None:
    tenant = "mix-new"
    images = [lfw("Roger_Federer", 8).read_bytes(), lfw("Bill_Clinton", 1).read_bytes()]
    reply = client.enroll_face("mixed", images, tenant=tenant)
    assert reply.accepted_count == 0
    assert [_codes(s) for s in reply.samples] == [["SUBJECT_MISMATCH"], ["SUBJECT_MISMATCH"]]
    assert "NO_SAMPLE_ACCEPTED" in [r.code for r in reply.reasons]
    with pytest.raises(BioverifyClientError) as info:
        client.get_subject("mixed", tenant=tenant)
    assert info.value.code.name == "NOT_FOUND"


def test_the_odd_face_out_is_refused_and_cannot_verify(client: BioverifyClient) -> None:
    tenant = "mix-odd"
    federer = [lfw("Roger_Federer", n).read_bytes() for n in (8, 9)]
    clinton = lfw("Bill_Clinton", 1).read_bytes()
    reply = client.enroll_face("federer", [federer[0], clinton, federer[1]], tenant=tenant)
    assert reply.accepted_count == 2
    assert [_codes(s) for s in reply.samples] == [[], ["SUBJECT_MISMATCH"], []]
    probe = client.verify_face("federer", lfw("Bill_Clinton", 17).read_bytes(), tenant=tenant)
    assert probe.match.decision == common_pb2.REJECT
    genuine = client.verify_face("federer", lfw("Roger_Federer", 13).read_bytes(), tenant=tenant)
    assert genuine.match.decision == common_pb2.ACCEPT


def test_extending_a_subject_with_someone_else_is_refused(client: BioverifyClient) -> None:
    tenant = "mix-extend"
    client.enroll_face("rice", [lfw("Condoleezza_Rice", 1).read_bytes()], tenant=tenant)
    reply = client.enroll_face(
        "rice",
        [lfw("Bill_Clinton", 3).read_bytes(), lfw("Condoleezza_Rice", 2).read_bytes()],
        tenant=tenant,
    )
    assert [_codes(s) for s in reply.samples] == [["SUBJECT_MISMATCH"], []]
    assert "enrolled template" in reply.samples[0].reasons[0].message
    subject = client.get_subject("rice", tenant=tenant)
    (face,) = [t for t in subject.templates if t.modality == common_pb2.FACE]
    assert face.sample_count == 2
    intruder = client.verify_face("rice", lfw("Bill_Clinton", 7).read_bytes(), tenant=tenant)
    assert intruder.match.decision == common_pb2.REJECT


def test_another_speakers_clips_are_refused(client: BioverifyClient) -> None:
    tenant = "mix-voice"
    own = sorted((AUDIO / "libri_2033").glob("*.flac"))
    other = sorted((AUDIO / "timit_dr3-falk0").glob("*.flac"))
    client.enroll_voice("caller", [client.audio(p.read_bytes()) for p in own[:3]], tenant=tenant)
    clips = [client.audio(p.read_bytes()) for p in (other[0], own[3], other[1])]
    reply = client.enroll_voice("caller", clips, tenant=tenant)
    assert [_codes(s) for s in reply.samples] == [["SUBJECT_MISMATCH"], [], ["SUBJECT_MISMATCH"]]
    assert reply.accepted_count == 1
