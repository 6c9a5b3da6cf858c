"""An enrolment cannot mix people: a second person's photo or voice slipped into a subject's
samples is refused (SUBJECT_MISMATCH), so that person cannot then verify as the subject."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.client_requests import audio
from bioverify.v1 import common_pb2
from tests.conftest import DATA, custom_service, lfw
from tests.e2e.store_faults import raced_stores, same_person, slow_stores, someone_else
from tests.redis_server import RedisServer

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


def test_enrolments_racing_on_one_subject_are_each_checked_against_the_other(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another replica writes the subject's template between an enrolment's SUBJECT_MISMATCH
    check and its write: the write does not go through; the samples are checked again against
    the template now stored. Two people enrolling one new id at once cannot both be its first
    samples, while two enrolments of the same person both land."""
    federer = lfw("Roger_Federer", 8).read_bytes()
    voice = [audio(p.read_bytes()) for p in sorted((AUDIO / "libri_2033").glob("*.flac"))[:2]]
    with (
        raced_stores(monkeypatch) as stores,
        custom_service(tmp_path, models_dir) as client,
    ):
        (store,) = stores
        for modality, enroll in (
            ("face", lambda subject: client.enroll_face(subject, [federer])),
            ("voice", lambda subject: client.enroll_voice(subject, voice)),
        ):
            # Someone else enrolled the new id first: these samples are refused as unlike them.
            store.armed, store.rival_vector = True, someone_else
            reply = enroll(f"{modality}-contested")
            assert [_codes(s) for s in reply.samples] == [["SUBJECT_MISMATCH"]] * len(
                reply.samples
            ), modality
            assert reply.accepted_count == 0 and not reply.HasField("template")
            stored = store.get_template("default", f"{modality}-contested", modality)
            assert stored.sample_ids == ("rival",)  # nothing of the refused enrolment

            # The same person enrolled first: both enrolments are in the template.
            store.armed, store.rival_vector = True, same_person
            reply = enroll(f"{modality}-shared")
            assert not store.armed and reply.accepted_count == len(reply.samples), modality
            stored = store.get_template("default", f"{modality}-shared", modality)
            assert stored.sample_ids[0] == "rival" and len(stored.sample_ids) == 1 + len(
                reply.samples
            )
            assert reply.template.sample_count == stored.sample_count


def enrol_together(clients: tuple[BioverifyClient, BioverifyClient]) -> dict[str, str]:
    """Two enrolments of one person under two ids at once, one through each client, refusing
    duplicates: each id's outcome, "OK" or the status code's name."""
    photos = [lfw("Roger_Federer", 8).read_bytes()], [lfw("Roger_Federer", 9).read_bytes()]
    outcomes: dict[str, str] = {}

    def enroll(client: BioverifyClient, subject: str, images: list[bytes]) -> None:
        try:
            client.enroll_face(subject, images, refuse_duplicates=True)
            outcomes[subject] = "OK"
        except BioverifyClientError as exc:
            outcomes[subject] = exc.code.name

    threads = [
        threading.Thread(target=enroll, args=(client, f"federer-{n}", images))
        for n, (client, images) in enumerate(zip(clients, photos, strict=True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


def test_one_face_enrolled_under_two_ids_at_once_is_refused_once(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With duplicate_action=DUPLICATE_REFUSE, two enrolments of one person under two ids
    arriving together (each write slow, so both would search before either wrote) are taken
    in turn: one is written, the other finds it and is refused (ALREADY_EXISTS)."""
    with slow_stores(monkeypatch), custom_service(tmp_path, models_dir) as client:
        outcomes = enrol_together((client, client))
        assert sorted(outcomes.values()) == ["ALREADY_EXISTS", "OK"], outcomes
        listed = [s.subject_id for s in client.list_subjects().subjects]
        assert len(listed) == 1 and outcomes[listed[0]] == "OK"


def test_one_face_enrolled_under_two_ids_on_two_replicas_at_once_is_refused_once(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same through two replicas of one Redis store: their enrolments of a tenant take
    turns held in Redis, and each catches its gallery up before searching, so the second
    finds the first's write even before its follower has applied it."""
    with (
        RedisServer(tmp_path / "redis") as redis_server,
        slow_stores(monkeypatch),
        custom_service(tmp_path / "a", models_dir, store="redis", redis_url=redis_server.url) as a,
        custom_service(tmp_path / "b", models_dir, store="redis", redis_url=redis_server.url) as b,
    ):
        outcomes = enrol_together((a, b))
        assert sorted(outcomes.values()) == ["ALREADY_EXISTS", "OK"], outcomes
        listed = [s.subject_id for s in b.list_subjects().subjects]
        assert len(listed) == 1 and outcomes[listed[0]] == "OK"
