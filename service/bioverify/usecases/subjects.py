"""Subject administration: look up, page through, erase."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass

from bioverify.errors import InvalidInput
from bioverify.index.gallery import Gallery
from bioverify.store.ports import SubjectRecord, TemplateStore, listing_bytes
from bioverify.usecases.common import on_stored_form, validate_tenant

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_BYTES = 3 * 1024 * 1024
"""The most bytes of a ListSubjects reply, whatever the message limit: a page stays under
gRPC's default 4 MiB receive limit (grpcurl, clients that do not raise it), and so does what
the service holds to build one."""
# Upper bound of protobuf's framing of one field: its tag (one byte: every field number of the
# subject messages is below 16) and a varint length or value (at most ten bytes).
_FIELD_BYTES = 11


def page_bytes(max_message_bytes: int) -> int:
    """The byte budget of a ListSubjects reply: half the largest message the service sends,
    at most MAX_PAGE_BYTES."""
    return min(max_message_bytes // 2, MAX_PAGE_BYTES)


def reply_bytes(record: SubjectRecord) -> int:
    """An upper bound of the bytes ``record`` takes in a ListSubjects reply (its protobuf
    encoding, with the framing of the reply's repeated field); at least its
    :func:`listing_bytes`, which the store's early stop counts."""
    strings = [record.tenant, record.created_at, record.updated_at, record.unreadable_metadata]
    for t in record.templates:
        strings += [t.model, t.created_at, t.updated_at]
    # the subject and its 5 string fields, 3 per metadata entry, 6 per template (5 fields)
    fields = 6 + 3 * len(record.metadata) + 6 * len(record.templates)
    return (
        listing_bytes(record.subject_id, record.metadata)
        + sum(len(s.encode("utf-8")) for s in strings)
        + fields * _FIELD_BYTES
    )


@dataclass(frozen=True)
class SubjectPage:
    subjects: list[SubjectRecord]
    next_page_token: str


def encode_page_token(tenant: str, after: str, modality: str) -> str:
    raw = json.dumps({"t": tenant, "a": after, "m": modality}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii")


def decode_page_token(token: str) -> tuple[str, str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        return str(data["t"]), str(data["a"]), str(data["m"])
    except (binascii.Error, UnicodeError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("page_token is not a token returned by ListSubjects") from exc


class SubjectAdministration:
    def __init__(
        self,
        store: TemplateStore,
        *,
        max_subject_id_length: int = 128,
        galleries: Sequence[Gallery] = (),
        page_bytes: int = MAX_PAGE_BYTES,
    ) -> None:
        """``page_bytes``: the byte budget of a ListSubjects reply (see :func:`page_bytes`)."""
        self.store = store
        self.max_subject_id_length = max_subject_id_length
        self.galleries = tuple(galleries)
        self.page_bytes = page_bytes

    def get(self, tenant: str, subject_id: str) -> SubjectRecord:
        """The subject under its NFC id or, when only that is stored, the legacy form a
        version before NFC ids stored it under (``on_stored_form``)."""
        tenant = validate_tenant(tenant)
        found = on_stored_form(
            subject_id,
            self.max_subject_id_length,
            lambda form: self.store.get_subject(tenant, form),
        )
        return found[0][1]

    def list(self, tenant: str, page_size: int, page_token: str, modality: str) -> SubjectPage:
        """Up to ``page_size`` subjects (default 100, at most 1000), fewer when the reply
        would pass ``page_bytes`` (its next_page_token counted); always at least one subject
        when any follows, however large it is alone."""
        tenant = validate_tenant(tenant)
        if page_size < 0:
            raise InvalidInput("page_size must not be negative")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = ""
        if page_token:
            token_tenant, after, token_modality = decode_page_token(page_token)
            if token_tenant != tenant or token_modality != modality:
                raise InvalidInput("page_token belongs to a different listing (tenant or modality)")
        # one subject more than the page takes, by count or by bytes, tells that another follows
        found = self.store.list_subjects(
            tenant, limit=size + 1, after=after, modality=modality, max_bytes=self.page_bytes
        )
        subjects: list[SubjectRecord] = []
        total = 0
        for record in found[:size]:
            total += reply_bytes(record)
            token = encode_page_token(tenant, record.subject_id, modality)
            if subjects and total + _FIELD_BYTES + len(token) > self.page_bytes:
                break
            subjects.append(record)
        next_token = ""
        if len(subjects) < len(found):
            next_token = encode_page_token(tenant, subjects[-1].subject_id, modality)
        return SubjectPage(subjects=subjects, next_page_token=next_token)

    def delete(self, tenant: str, subject_id: str) -> tuple[str, int]:
        """Erase the subject under every form it is stored under: its NFC id and the legacy
        forms a version before NFC ids may have stored it under (as sent, NFD), so that no twin
        enrolled from another keyboard survives an erasure. Returns the first form erased (the
        NFC one when it was stored) and the number of templates erased in all."""
        tenant = validate_tenant(tenant)
        try:
            erased = on_stored_form(
                subject_id,
                self.max_subject_id_length,
                lambda form: self.store.delete_subject(tenant, form),
                every_form=True,
            )
        finally:  # erased subjects vanish from search at once (also when a later form failed)
            for gallery in self.galleries:
                gallery.catch_up(self.store)
        return erased[0][0], sum(count for _, count in erased)
