"""Subject administration: look up, page through, erase."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass

from bioverify.errors import InvalidInput
from bioverify.index.gallery import Gallery
from bioverify.store.ports import SubjectRecord, TemplateStore
from bioverify.usecases.common import on_stored_form, validate_tenant

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


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
    ) -> None:
        self.store = store
        self.max_subject_id_length = max_subject_id_length
        self.galleries = tuple(galleries)

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
        tenant = validate_tenant(tenant)
        if page_size < 0:
            raise InvalidInput("page_size must not be negative")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = ""
        if page_token:
            token_tenant, after, token_modality = decode_page_token(page_token)
            if token_tenant != tenant or token_modality != modality:
                raise InvalidInput("page_token belongs to a different listing (tenant or modality)")
        subjects = self.store.list_subjects(tenant, limit=size + 1, after=after, modality=modality)
        next_token = ""
        if len(subjects) > size:
            subjects = subjects[:size]
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
