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
from bioverify.usecases.common import validate_subject_id, validate_tenant

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
        tenant = validate_tenant(tenant)
        subject_id = validate_subject_id(subject_id, self.max_subject_id_length)
        return self.store.get_subject(tenant, subject_id)

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
        """Erase the subject; returns its id as stored (normalised) and the number of
        templates erased."""
        tenant = validate_tenant(tenant)
        subject_id = validate_subject_id(subject_id, self.max_subject_id_length)
        deleted = self.store.delete_subject(tenant, subject_id)
        for gallery in self.galleries:  # erased subjects vanish from search at once
            gallery.catch_up(self.store)
        return subject_id, deleted
