"""ListSubjects pages cut by bytes as well as by count (SubjectAdministration.list over a real
SQLite store): no reply passes the byte budget unless one subject alone does, every subject
is listed once, and the store is never asked to read much more than a page."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bioverify.server.convert import subject_to_proto
from bioverify.settings import MIN_MESSAGE_BYTES
from bioverify.store.ports import (
    MAX_METADATA_ENTRIES,
    SubjectRecord,
    TemplateStore,
    TemplateSummary,
    TemplateWrite,
    listing_bytes,
)
from bioverify.store.sqlite_store import SqliteTemplateStore
from bioverify.usecases.common import (
    MAX_METADATA_VALUE,
    validate_metadata,
    validate_subject_id,
)
from bioverify.usecases.subjects import (
    MAX_PAGE_BYTES,
    SubjectAdministration,
    SubjectPage,
    encode_page_token,
    page_bytes,
    reply_bytes,
)
from bioverify.v1 import subjects_pb2

WIDE = "\U0001f600"  # 4 bytes in UTF-8
STAMP = "2026-11-02T10:11:12.345Z"


def reply(page: SubjectPage) -> subjects_pb2.ListSubjectsResponse:
    """The reply the servicer sends for ``page``."""
    return subjects_pb2.ListSubjectsResponse(
        subjects=[subject_to_proto(s) for s in page.subjects],
        next_page_token=page.next_page_token,
    )


def record(subject_id: str, metadata: dict[str, str], modalities: int = 1) -> SubjectRecord:
    templates = tuple(
        TemplateSummary(m, "face-yunet-mobilefacenet", 2**31 - 1, STAMP, STAMP)
        for m in ("face", "voice")[:modalities]
    )
    return SubjectRecord("bank-a", subject_id, metadata, templates, STAMP, STAMP)


def largest_subject() -> SubjectRecord:
    """The largest subject the limits allow: the longest id and the most metadata, all of
    4-byte characters, and a template of each modality."""
    metadata = validate_metadata(
        {f"{i:02d}" + WIDE * 126: WIDE * MAX_METADATA_VALUE for i in range(MAX_METADATA_ENTRIES)}
    )
    return record(validate_subject_id(WIDE * 128), metadata, modalities=2)


@pytest.mark.parametrize(
    "subject",
    [
        record("a", {}, modalities=0),
        record("ann", {"k": "v"}),
        record("José " + WIDE, {WIDE * 3: "é" * 300, "x": ""}, modalities=2),
        largest_subject(),
        dataclasses.replace(
            record(WIDE * 128, {}, modalities=2),
            unreadable_metadata="subject's metadata failed its integrity check " * 4,
        ),
    ],
)
def test_reply_bytes_bounds_the_encoded_subject(subject: SubjectRecord) -> None:
    token = encode_page_token(subject.tenant, subject.subject_id, "voice")
    one = subjects_pb2.ListSubjectsResponse(subjects=[subject_to_proto(subject)])
    with_token = subjects_pb2.ListSubjectsResponse(
        subjects=[subject_to_proto(subject)] * 3, next_page_token=token
    )
    assert listing_bytes(subject.subject_id, subject.metadata) <= reply_bytes(subject)
    assert one.ByteSize() <= reply_bytes(subject)
    assert with_token.ByteSize() <= 3 * reply_bytes(subject) + 11 + len(token)


def test_the_largest_subject_fits_a_page_of_the_smallest_message_limit() -> None:
    subject = largest_subject()
    token = encode_page_token("a" * 64, subject.subject_id, "voice")
    assert 290_000 < reply_bytes(subject) + len(token) < page_bytes(MIN_MESSAGE_BYTES)


def test_the_budget_is_half_the_message_limit_at_most_3_mib() -> None:
    assert page_bytes(MIN_MESSAGE_BYTES) == MIN_MESSAGE_BYTES // 2
    assert page_bytes(4 << 20) == 2 << 20
    assert page_bytes(32 << 20) == page_bytes(1 << 30) == MAX_PAGE_BYTES == 3 << 20


class CountingStore:
    """The store, keeping what each listing returned."""

    def __init__(self, store: TemplateStore) -> None:
        self._store = store
        self.returned: list[list[SubjectRecord]] = []

    def list_subjects(self, tenant: str, **kwargs: Any) -> list[SubjectRecord]:
        found = self._store.list_subjects(tenant, **kwargs)
        self.returned.append(found)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    """Subjects of 1, 2 and 10 KB metadata and small ones, "huge" (40 KB) alone over the
    budget of the tests below (16 KiB)."""
    sqlite = SqliteTemplateStore(tmp_path / "t.sqlite3")
    sizes = {f"s{i:02d}": (i % 3 + 1) * 1000 for i in range(30)} | {"s07": 10_000}
    sizes |= {"huge": 40_000, "tiny": 0}
    rng = np.random.default_rng(1)
    for subject_id, size in sizes.items():
        meta = {"note": WIDE * (size // 4)} if size else {}
        vector = rng.normal(size=(1, 8)).astype(np.float32)
        modality = "voice" if subject_id.endswith("5") else "face"
        sqlite.save(TemplateWrite("t", subject_id, modality, "m", vector, metadata=meta))
    yield CountingStore(sqlite)
    sqlite.close()


def pages(admin: SubjectAdministration, page_size: int, modality: str = "") -> list[SubjectPage]:
    out, token = [], ""
    while True:
        page = admin.list("t", page_size, token, modality)
        out.append(page)
        token = page.next_page_token
        if not token:
            return out


@pytest.mark.parametrize("modality", ["", "voice"])
@pytest.mark.parametrize("page_size", [1000, 4])
def test_pages_stay_within_the_byte_budget_and_list_each_subject_once(
    store: CountingStore, page_size: int, modality: str
) -> None:
    budget = 16 * 1024
    admin = SubjectAdministration(store, page_bytes=budget)
    listed = pages(admin, page_size, modality)
    reads = list(store.returned)
    every = store.list_subjects("t", limit=1000, modality=modality)
    ids = [s.subject_id for page in listed for s in page.subjects]
    assert ids == [s.subject_id for s in every]  # each once, in order
    for page in listed:
        assert 1 <= len(page.subjects) <= page_size
        if reply(page).ByteSize() > budget:
            assert [s.subject_id for s in page.subjects] == ["huge"]  # alone
    if not modality:
        assert "huge" in ids and "tiny" in ids
        assert any(reply(page).ByteSize() > budget for page in listed)  # "huge", alone
        assert len(listed) >= 90_000 // budget  # cut by bytes: about 90 KB in all
    # the store read a budget's worth (or one subject, however large) and one subject more
    assert len(reads) == len(listed)
    for found in reads:
        held = sum(listing_bytes(s.subject_id, s.metadata) for s in found[:-1])
        assert held <= budget or len(found) <= 2


def test_a_page_stops_only_before_a_subject_that_would_pass_the_budget(
    store: CountingStore,
) -> None:
    budget = 16 * 1024
    admin = SubjectAdministration(store, page_bytes=budget)
    listed = pages(admin, 1000)
    for page in listed[:-1]:
        last = page.subjects[-1].subject_id
        (following,) = store.list_subjects("t", limit=1, after=last)
        longer = sum(map(reply_bytes, [*page.subjects, following]))
        token = encode_page_token("t", following.subject_id, "")
        assert longer + 11 + len(token) > budget


def test_the_default_budget_lets_a_thousand_small_subjects_through(tmp_path: Path) -> None:
    sqlite = SqliteTemplateStore(tmp_path / "t.sqlite3")
    try:
        vector = np.ones((1, 8), dtype=np.float32)
        writes = [TemplateWrite("t", f"s{i:04d}", "face", "m", vector) for i in range(1001)]
        sqlite.save_many(writes)
        page = SubjectAdministration(sqlite).list("t", 1000, "", "")
        assert len(page.subjects) == 1000 and page.next_page_token
    finally:
        sqlite.close()
