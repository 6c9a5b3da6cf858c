"""End to end: ListSubjects on a tenant whose subjects hold large metadata. Pages are cut by
bytes as well as by count, so no reply passes the service's byte budget (half of its
MAX_MESSAGE_BYTES here) and every subject, the largest the metadata limits allow included, is
listed exactly once; the SDK's iteration and `bioverify-admin subjects export` get them all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.store.ports import MAX_METADATA_ENTRIES
from bioverify.usecases.common import MAX_METADATA_VALUE
from bioverify.v1 import subjects_pb2
from tests.conftest import lfw, running_service

TENANT = "big-metadata"
MAX_MESSAGE = 1 << 20  # the service's MAX_MESSAGE_BYTES: pages of at most 512 KiB
PAGE_BYTES = MAX_MESSAGE // 2
WIDE = "\U0001f600"  # 4 bytes in UTF-8
PHOTO = lfw("Roger_Federer", 13)
ADMIN = [sys.executable, "-m", "bioverify_admin.cli"]


def metadata(entries: int, *, key_chars: int = 8) -> dict[str, str]:
    """``entries`` keys of ``key_chars`` characters, each with the longest value allowed, all
    of 4-byte characters (so about 4 KiB an entry)."""
    return {f"k{i:02d}" + WIDE * (key_chars - 3): WIDE * MAX_METADATA_VALUE for i in range(entries)}


def pages(client: BioverifyClient, page_size: int) -> list[subjects_pb2.ListSubjectsResponse]:
    out: list[subjects_pb2.ListSubjectsResponse] = []
    token = ""
    while True:
        page = client.list_subjects(tenant=TENANT, page_size=page_size, page_token=token)
        out.append(page)
        token = page.next_page_token
        if not token:
            return out


def test_large_subjects_are_listed_in_pages_under_the_byte_budget(
    tmp_path: Path, models_dir: Path
) -> None:
    largest = metadata(MAX_METADATA_ENTRIES, key_chars=128)  # about 294 KB: alone on its page
    expected = {f"medium-{i:02d}": metadata(24) for i in range(10)}  # about 99 KB each
    expected |= {"largest": largest, "small-a": {"k": "v"}, "small-b": {}}
    photo = PHOTO.read_bytes()
    with (
        running_service(
            tmp_path / "data", models_dir, max_message_bytes=MAX_MESSAGE, voice_pack="none"
        ) as target,
        BioverifyClient(target, timeout=60, retries=0) as client,
    ):
        client.wait_until_serving(timeout=60)
        for subject_id, meta in expected.items():
            reply = client.enroll_face(subject_id, [photo], tenant=TENANT, metadata=meta)
            assert reply.accepted_count == 1, subject_id
        # together about 1.3 MB: more than one message may carry
        for page_size in (1000, 3):
            listed = pages(client, page_size)
            for page in listed:
                assert page.ByteSize() <= PAGE_BYTES
                assert 1 <= len(page.subjects) <= page_size
            ids = [s.subject_id for page in listed for s in page.subjects]
            assert ids == sorted(expected)  # each once, in order
            got = {s.subject_id: dict(s.metadata) for page in listed for s in page.subjects}
            assert got == expected
        by_bytes = pages(client, 1000)
        assert 3 <= len(by_bytes) < len(expected)  # cut by bytes, yet several to a page
        assert [s.subject_id for s in client.iter_subjects(tenant=TENANT)] == sorted(expected)
        # a subject does not grow past the limits by enrolling again with other keys
        for dry_run in (True, False):
            with pytest.raises(BioverifyClientError) as refused:
                client.enroll_face(
                    "largest", [photo], tenant=TENANT, metadata={"+": "x"}, dry_run=dry_run
                )
            assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert "65 metadata entries" in refused.value.message
        assert client.enroll_face("largest", [photo], tenant=TENANT).accepted_count == 1

        out = tmp_path / "subjects.jsonl"
        command = [*ADMIN, "subjects", "export", "--tenant", TENANT, "--server", target]
        export = subprocess.run(
            [*command, "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert export.returncode == 0, export.stderr
    assert f"exported {len(expected)} subject(s)" in export.stderr
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(s["subject_id"] for s in exported) == sorted(expected)
    assert {s["subject_id"]: s["metadata"] for s in exported} == expected
