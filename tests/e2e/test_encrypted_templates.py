"""End to end: a service given a template key file keeps its templates sealed (no file under
its data directory holds an embedding: not the database, not its sealed gallery snapshot,
which the next start loads), refuses a template moved onto another subject with DATA_LOSS
while serving the others, and ``bioverify seal-templates`` moves a deployment that stored
plain templates to sealed ones."""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import numpy.typing as npt
import pytest

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.settings import Settings
from bioverify.store.sealing import NO_SEALING, AesGcmSealer, BlobSealer, read_template_keys
from bioverify.store.sqlite_store import SqliteTemplateStore
from bioverify.v1 import common_pb2
from tests.conftest import MODELS, custom_service, files_containing, files_holding, lfw
from tests.store.test_template_sealing import move_sqlite_template

CLINTON = [lfw("Bill_Clinton", n).read_bytes() for n in (1, 3, 7, 17)]
RICE = [lfw("Condoleezza_Rice", n).read_bytes() for n in (1, 2, 5)]


DISPLAY_NAME = "William J. Clinton-Ostravic"


def key_file(folder: Path) -> Path:
    path = folder / "template.keys"
    path.write_text(f"{secrets.token_hex(32)}\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def stored_vector(data: Path, subject_id: str, sealer: BlobSealer) -> npt.NDArray[np.float32]:
    store = SqliteTemplateStore(
        Settings(data_dir=data, model_dir=MODELS).sqlite_path, sealer=sealer
    )
    try:
        return store.get_template("default", subject_id, "face").vector
    finally:
        store.close()


def top_subject(client: BioverifyClient, image: bytes) -> str:
    return str(client.identify_face(image, top_k=1).candidates[0].subject_id)


def test_sealed_templates_serve_and_a_moved_one_is_refused(tmp_path: Path) -> None:
    keys, data = key_file(tmp_path), tmp_path / "data"
    with custom_service(data, MODELS, template_key_file=str(keys)) as client:
        client.enroll_face("clinton", CLINTON[:2])
        client.enroll_face("rice", RICE[:2])
        assert client.verify_face("clinton", CLINTON[2]).decision == common_pb2.ACCEPT
        assert top_subject(client, RICE[2]) == "rice"
        # Behind the service's back, rice's row gets clinton's sealed template.
        move_sqlite_template(
            Settings(data_dir=data, model_dir=MODELS).sqlite_path, "clinton", "rice"
        )
        with pytest.raises(BioverifyClientError) as refused:
            client.verify_face("rice", CLINTON[2])
        assert refused.value.code == grpc.StatusCode.DATA_LOSS
        assert refused.value.reason == "TEMPLATE_UNREADABLE"
        assert "'rice'" in refused.value.message and "integrity check" in refused.value.message
        assert "clinton" not in refused.value.message
    clinton = stored_vector(data, "clinton", AesGcmSealer(read_template_keys(keys)))
    assert files_holding(data, clinton) == []  # nor the gallery snapshot written at the stop
    (snapshot,) = data.glob("index/face/snapshot-*")
    assert not [p for p in snapshot.iterdir() if b"clinton" in p.read_bytes()]
    # A restart loads the sealed snapshot (a rebuild would have removed it), serves the
    # others and still refuses the altered template.
    with custom_service(data, MODELS, template_key_file=str(keys)) as client:
        assert snapshot.is_dir()
        assert top_subject(client, CLINTON[3]) == "clinton"
        with pytest.raises(BioverifyClientError) as again:
            client.verify_face("rice", RICE[2])
        assert again.value.code == grpc.StatusCode.DATA_LOSS
        client.delete_subject("rice")
        client.enroll_face("rice", RICE[:2])
        assert client.verify_face("rice", RICE[2]).decision == common_pb2.ACCEPT


def test_sealed_metadata_moved_onto_another_subject_is_refused(tmp_path: Path) -> None:
    keys, data = key_file(tmp_path), tmp_path / "data"
    with custom_service(data, MODELS, template_key_file=str(keys)) as client:
        client.enroll_face("clinton", CLINTON[:1], metadata={"display_name": DISPLAY_NAME})
        client.enroll_face("rice", RICE[:1], metadata={"display_name": "Condoleezza Rice"})
        assert files_containing(data, DISPLAY_NAME.encode()) == []
        with sqlite3.connect(Settings(data_dir=data, model_dir=MODELS).sqlite_path) as db:
            db.execute(  # behind the service's back: rice's record says she is clinton
                "UPDATE subjects SET metadata=(SELECT metadata FROM subjects WHERE "
                "subject_id='clinton') WHERE subject_id='rice'"
            )
        with pytest.raises(BioverifyClientError) as refused:
            client.get_subject("rice")
        assert refused.value.code == grpc.StatusCode.DATA_LOSS
        assert refused.value.reason == "METADATA_UNREADABLE"
        assert "'rice''s metadata" in refused.value.message
        assert "clinton" not in refused.value.message
        # Listings show her without metadata and say why, page by page past her.
        listed = list(client.iter_subjects(page_size=1))
        assert [(s.subject_id, dict(s.metadata)) for s in listed] == [
            ("clinton", {"display_name": DISPLAY_NAME}),
            ("rice", {}),
        ]
        assert "'rice''s metadata failed its integrity" in listed[1].metadata_unreadable
        assert not listed[0].metadata_unreadable
        client.delete_subject("rice")
        assert [s.subject_id for s in client.list_subjects().subjects] == ["clinton"]


def seal_templates(data: Path, keys: Path | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BIOVERIFY_DATA_DIR": str(data), "BIOVERIFY_MODEL_DIR": str(MODELS)}
    if keys is not None:
        env["BIOVERIFY_TEMPLATE_KEY_FILE"] = str(keys)
    return subprocess.run(
        [sys.executable, "-m", "bioverify.cli", "seal-templates"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_seal_templates_moves_a_plain_deployment_to_sealed_templates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with custom_service(data, MODELS) as client:
        client.enroll_face("clinton", CLINTON[:2], metadata={"display_name": DISPLAY_NAME})
    clinton = stored_vector(data, "clinton", NO_SEALING)
    holding = files_holding(data, clinton)
    assert any(p.name.endswith(".sqlite3") for p in holding)
    assert files_containing(data, DISPLAY_NAME.encode())
    assert any("snapshot" in str(p) for p in holding)  # the gallery snapshot of the stop

    refused = seal_templates(data, None)
    assert refused.returncode == 2 and "set template_key_file" in refused.stderr
    keys = key_file(tmp_path)
    with sqlite3.connect(Settings(data_dir=data, model_dir=MODELS).sqlite_path) as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM templates").fetchone()  # a reader holds the log
        busy = seal_templates(data, keys)
        reader.execute("ROLLBACK")
    assert busy.returncode == 1 and "still holds the plain templates" in busy.stderr
    sealed = seal_templates(data, keys)
    assert sealed.returncode == 0, sealed.stderr
    assert "sealed 1 face, 0 voice templates (0 deleted during the run)" in sealed.stdout
    assert "sealed 1 face" in busy.stdout  # the first run sealed it; this one wrote it again
    assert files_holding(data, clinton) == []  # the database, its log and the snapshots
    assert files_containing(data, DISPLAY_NAME.encode()) == []  # its metadata was sealed too
    with custom_service(data, MODELS, template_key_file=str(keys)) as client:
        assert client.get_subject("clinton").metadata["display_name"] == DISPLAY_NAME
        assert client.verify_face("clinton", CLINTON[2]).decision == common_pb2.ACCEPT
        assert top_subject(client, CLINTON[3]) == "clinton"
