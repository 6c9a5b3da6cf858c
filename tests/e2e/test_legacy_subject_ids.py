"""End to end, on a real server over a store written as versions before NFC ids wrote it
(ids exactly as sent: "José Müller" in NFD from macOS, "Ann Lee" with a NO-BREAK SPACE, and
NFC and NFD twins of "Zoë"): such subjects are still fetched, verified, identified, extended
and erased, while new ids are normalised or refused as for any other subject."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.errors import NotEnrolled
from bioverify.settings import Settings
from bioverify.store.ports import TemplateWrite
from bioverify.store.sqlite_store import SqliteTemplateStore
from bioverify.v1 import common_pb2
from bioverify_admin.cli import main as admin_main
from tests.conftest import DATA, MODELS, custom_service, lfw, running_service

CLINTON = [lfw("Bill_Clinton", n) for n in (1, 3, 7, 17)]
RICE = [lfw("Condoleezza_Rice", n) for n in (1, 2, 5)]
CLIP = DATA / "speaker" / "audio" / "timit_dr1-mcpm0" / "sa1.flac"
JOSE_NFC = unicodedata.normalize("NFC", "José Müller")
JOSE_NFD = unicodedata.normalize("NFD", "José Müller")
ANN_NBSP = "Ann\u00a0Lee"
ZOE_NFC = unicodedata.normalize("NFC", "Zoë Ray")
ZOE_NFD = unicodedata.normalize("NFD", "Zoë Ray")


def sqlite_store(data: Path) -> SqliteTemplateStore:
    return SqliteTemplateStore(Settings(data_dir=data, model_dir=MODELS).sqlite_path)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose store holds the legacy subjects with real embeddings: made by
    enrolling plain ids through this version, then written under the raw ids through the
    store API (what an older version did) and the plain ones erased."""
    data = tmp_path_factory.mktemp("legacy-ids")
    with custom_service(data, MODELS, gallery_snapshots=False) as client:
        assert client.enroll_face("clinton", [p.read_bytes() for p in CLINTON[:2]]).accepted_count
        assert client.enroll_face("rice", [p.read_bytes() for p in RICE[:2]]).accepted_count
        assert client.enroll_voice("voice", [client.audio(CLIP.read_bytes())]).accepted_count
    store = sqlite_store(data)
    try:
        clinton = store.get_template("default", "clinton", "face")
        rice = store.get_template("default", "rice", "face")
        voice = store.get_template("default", "voice", "voice")
        for subject_id, template in (
            (JOSE_NFD, clinton),
            (JOSE_NFD, voice),
            (ANN_NBSP, rice),
            (ZOE_NFC, clinton),
            (ZOE_NFD, clinton),
        ):
            store.save(
                TemplateWrite(
                    tenant="default",
                    subject_id=subject_id,
                    modality=template.modality,
                    model=template.model,
                    new_samples=template.samples,
                    extra=dict(template.extra),
                    sample_ids=template.sample_ids,
                )
            )
        for plain in ("clinton", "rice", "voice"):
            store.delete_subject("default", plain)
    finally:
        store.close()
    return data


@pytest.fixture(scope="module")
def target(data: Path) -> Iterator[str]:
    """The service on the legacy data directory (no liveness packs), on a loopback port."""
    with running_service(data, MODELS, gallery_snapshots=False) as target:
        yield target


@pytest.fixture(scope="module")
def client(target: str) -> Iterator[BioverifyClient]:
    with BioverifyClient(target, timeout=60, retries=0) as client:
        client.wait_until_serving(timeout=60)
        yield client


def stored_ids(data: Path) -> list[str]:
    store = sqlite_store(data)
    try:
        return [s.subject_id for s in store.list_subjects("default", limit=100)]
    finally:
        store.close()


def failure(call: object) -> BioverifyClientError:
    assert callable(call)
    with pytest.raises(BioverifyClientError) as info:
        call()
    return info.value


def test_the_admin_tool_lists_subjects_stored_under_legacy_ids(
    target: str, client: BioverifyClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs first, while every legacy subject is still stored."""
    assert admin_main(["subjects", "list", "--legacy", "--server", target]) == 0
    lines = sorted(capsys.readouterr().out.splitlines())
    assert lines == sorted(
        [
            f"{json.dumps(JOSE_NFD)}\tnot in Unicode normal form C",
            f"{json.dumps(ANN_NBSP)}\tholds U+00A0 NO-BREAK SPACE",
            f"{json.dumps(ZOE_NFD)}\tnot in Unicode normal form C",
        ]
    )
    assert admin_main(["subjects", "list", "--legacy", "--json", "--server", target]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {s["subject_id"] for s in listed} == {JOSE_NFD, ANN_NBSP, ZOE_NFD}


def test_a_legacy_nfd_subject_is_fetched_verified_extended_and_erased(
    client: BioverifyClient, data: Path
) -> None:
    assert JOSE_NFC != JOSE_NFD and JOSE_NFD in stored_ids(data)
    # found whichever form the client sends, and answered in the form it is stored in
    for sent in (JOSE_NFD, JOSE_NFC):
        assert client.get_subject(sent).subject_id == JOSE_NFD
        verified = client.verify_face(sent, CLINTON[2].read_bytes())
        assert verified.decision == common_pb2.ACCEPT and verified.subject_id == JOSE_NFD
    voice = client.verify_voice(JOSE_NFC, client.audio(CLIP.read_bytes()))
    assert voice.subject_id == JOSE_NFD and voice.decision == common_pb2.ACCEPT
    found = client.identify_face(CLINTON[3].read_bytes(), top_k=5)
    assert JOSE_NFD in [c.subject_id for c in found.candidates]
    # enrolling extends the legacy subject rather than starting an NFC twin
    extended = client.enroll_face(JOSE_NFC, [CLINTON[2].read_bytes()])
    assert extended.subject_id == JOSE_NFD and extended.template.sample_count == 3
    assert JOSE_NFC not in stored_ids(data)

    deleted = client.delete_subject(JOSE_NFD)
    assert deleted.subject_id == JOSE_NFD and deleted.templates_deleted == 2  # face and voice
    assert JOSE_NFD not in stored_ids(data)
    assert failure(lambda: client.get_subject(JOSE_NFD)).code == grpc.StatusCode.NOT_FOUND
    assert failure(lambda: client.verify_face(JOSE_NFD, CLINTON[2].read_bytes())).code == (
        grpc.StatusCode.NOT_FOUND
    )
    found = client.identify_face(CLINTON[3].read_bytes(), top_k=5)
    assert JOSE_NFD not in [c.subject_id for c in found.candidates]
    # once it is gone, the id is a new subject taken in NFC as for anyone
    fresh = client.enroll_face(JOSE_NFD, [CLINTON[0].read_bytes()])
    assert fresh.subject_id == JOSE_NFC and stored_ids(data).count(JOSE_NFC) == 1
    client.delete_subject(JOSE_NFC)


def test_a_legacy_subject_with_a_no_break_space_is_reached_but_never_enrolled(
    client: BioverifyClient, data: Path
) -> None:
    assert client.get_subject(ANN_NBSP).subject_id == ANN_NBSP
    verified = client.verify_face(ANN_NBSP, RICE[2].read_bytes())
    assert verified.decision == common_pb2.ACCEPT and verified.subject_id == ANN_NBSP
    found = client.identify_face(RICE[2].read_bytes(), top_k=5)
    assert found.candidates[0].subject_id == ANN_NBSP
    refused = failure(lambda: client.enroll_face(ANN_NBSP, [RICE[2].read_bytes()]))
    assert refused.reason == "INVALID_SUBJECT_ID" and "U+00A0" in refused.message
    assert failure(lambda: client.get_subject("Ann Lee")).code == grpc.StatusCode.NOT_FOUND

    deleted = client.delete_subject(ANN_NBSP)
    assert deleted.subject_id == ANN_NBSP and deleted.templates_deleted == 1
    assert ANN_NBSP not in stored_ids(data)
    found = client.identify_face(RICE[2].read_bytes(), top_k=5)
    assert ANN_NBSP not in [c.subject_id for c in found.candidates]
    # with nothing stored under it, the id is refused again as any new one is
    for call in (
        lambda: client.get_subject(ANN_NBSP),
        lambda: client.delete_subject(ANN_NBSP),
        lambda: client.verify_face(ANN_NBSP, RICE[2].read_bytes()),
    ):
        assert failure(call).reason == "INVALID_SUBJECT_ID"


def test_deleting_a_subject_erases_its_legacy_twin_too(client: BioverifyClient, data: Path) -> None:
    assert {ZOE_NFC, ZOE_NFD} <= set(stored_ids(data))
    assert client.get_subject(ZOE_NFD).subject_id == ZOE_NFC  # the NFC form comes first
    deleted = client.delete_subject(ZOE_NFC)
    assert deleted.subject_id == ZOE_NFC and deleted.templates_deleted == 2
    assert not {ZOE_NFC, ZOE_NFD} & set(stored_ids(data))
    store = sqlite_store(data)
    try:
        with pytest.raises(NotEnrolled):
            store.get_template("default", ZOE_NFD, "face")
    finally:
        store.close()
    found = client.identify_face(CLINTON[3].read_bytes(), top_k=5)
    assert not {ZOE_NFC, ZOE_NFD} & {c.subject_id for c in found.candidates}
