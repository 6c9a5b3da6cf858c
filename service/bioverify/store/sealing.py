"""Templates sealed at rest: the embeddings a store keeps (a template's vector and its
per-sample embeddings) are written as AES-256-GCM ciphertexts when the service holds template
keys (``template_key_file``), and as plain float32 bytes when it holds none. So are subjects'
metadata values (as UTF-8 text), bound to their subject the same way (``MetadataPlace``).

A sealed blob is ``SEALED_PREFIX`` (whose first 4 bytes are a float32 NaN, so no plain
embedding blob begins with it), the 8-byte id of the key that sealed it, a random 12-byte
nonce and the ciphertext with its 16-byte tag. The associated data binds it to where it is
stored: tenant, subject id, modality and column. A blob altered, or copied onto another
subject's row (to make one person verify as another), fails the tag check and the template is
refused (``TemplateUnreadable``), never used.

The key file holds one key per line, 64 hex digits (``openssl rand -hex 32``); ``#`` starts a
comment. The first key seals; every key opens, so keys are rotated by putting a new one first,
running ``bioverify seal-templates`` (which rewrites every template under the first key) and
then dropping the old ones. Keys are never logged; only their ids are.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bioverify.errors import ConfigurationError, MetadataUnreadable, TemplateUnreadable
from bioverify.fileio import read_secret_text

SEALED_PREFIX = b"\xff\xff\xff\x7fBVS1"
KEY_BYTES = 32
KEY_ID_BYTES = 8
NONCE_BYTES = 12
TAG_BYTES = 16
SEALING_OVERHEAD = len(SEALED_PREFIX) + KEY_ID_BYTES + NONCE_BYTES + TAG_BYTES
"""How many bytes a sealed value has over its plain bytes."""

logger = logging.getLogger(__name__)
T = TypeVar("T")
Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class BlobPlace:
    """Where a blob is stored: what its seal binds it to."""

    tenant: str
    subject_id: str
    modality: str
    column: str  # "vector" | "samples"

    def associated_data(self) -> bytes:
        return length_prefixed((self.tenant, self.subject_id, self.modality, self.column))

    def describe(self) -> str:
        return f"subject {self.subject_id!r}'s {self.modality} template"


@dataclass(frozen=True)
class MetadataPlace:
    """Where a subject's metadata is stored: all of it as one value (``key`` None: SQLite), or
    the value of one key (Redis). Its associated data cannot be a template's (those begin with
    a length, these with text)."""

    tenant: str
    subject_id: str
    key: str | None = None

    def associated_data(self) -> bytes:
        parts = (self.tenant, self.subject_id) + (
            ("all",) if self.key is None else ("value", self.key)
        )
        return b"subject metadata\0" + length_prefixed(parts)

    def describe(self) -> str:
        return f"subject {self.subject_id!r}'s metadata"


class SealPlace(Protocol):
    """What a sealed value is bound to (``BlobPlace``, ``MetadataPlace``)."""

    def associated_data(self) -> bytes: ...

    def describe(self) -> str: ...


def metadata_or_why(read: Callable[[], dict[str, str]]) -> tuple[dict[str, str], str]:
    """``read()`` and "", or no metadata and why when it raises MetadataUnreadable: how a
    listing holds a subject whose metadata cannot be opened."""
    try:
        return read(), ""
    except MetadataUnreadable as exc:
        return {}, exc.message


@dataclass(frozen=True)
class SubjectMetadata:
    """A subject's metadata as a store keeps it, sealed by ``sealer`` for where it is stored:
    all of it as one text (``key`` None: SQLite), or one value per key (Redis)."""

    sealer: BlobSealer
    tenant: str
    subject_id: str

    def seal(self, text: str, key: str | None = None) -> bytes | str:
        """How ``text`` is stored: sealed bytes, or the text itself without keys."""
        blob = self.sealer.seal(text.encode("utf-8"), self._place(key))
        return blob if is_sealed(blob) else text

    def open(self, stored: bytes | str, key: str | None = None) -> str:
        """The text ``seal`` stored; MetadataUnreadable when it cannot be opened here.

        Unlike a template, metadata stored plain is read whatever the keys: it was written
        before the deployment had keys (or by a replica of an older version), is sealed at the
        subject's next write or by ``seal-templates``, and decides nothing the service does,
        so its sealing is for confidentiality. A sealed value must open: one altered or moved
        is refused."""
        raw = stored.encode("utf-8") if isinstance(stored, str) else stored
        place = self._place(key)
        try:
            return (self.sealer.open(raw, place) if is_sealed(raw) else raw).decode("utf-8")
        except TemplateUnreadable as exc:
            raise MetadataUnreadable(exc.message) from None
        except UnicodeDecodeError:
            raise MetadataUnreadable(f"{place.describe()} is not text and is not used") from None

    def _place(self, key: str | None) -> MetadataPlace:
        return MetadataPlace(self.tenant, self.subject_id, key)


@dataclass(frozen=True)
class TemplateBlobs:
    """A template's embeddings as a store keeps them: its vector and its (n, dim) samples as
    two float32 blobs, sealed by ``sealer`` for where they are stored."""

    sealer: BlobSealer
    tenant: str
    subject_id: str
    modality: str

    def _place(self, column: str) -> BlobPlace:
        return BlobPlace(self.tenant, self.subject_id, self.modality, column)

    def seal(self, vector: Vector, samples: Vector) -> tuple[bytes, bytes]:
        """The stored blobs of ``vector`` and ``samples``."""
        return (
            self.sealer.seal(
                np.ascontiguousarray(vector, np.float32).tobytes(), self._place("vector")
            ),
            self.sealer.seal(
                np.ascontiguousarray(samples, np.float32).tobytes(), self._place("samples")
            ),
        )

    def open_samples(self, blob: bytes, dim: int) -> Vector:
        """The (n, ``dim``) samples of a stored blob (a read-only view of it)."""
        opened = self.sealer.open(blob, self._place("samples"))
        return np.frombuffer(opened, dtype=np.float32).reshape(-1, dim)

    def open(self, vector_blob: bytes, samples_blob: bytes, dim: int) -> tuple[Vector, Vector]:
        """The vector and samples of the stored blobs (arrays of their own)."""
        vector = np.frombuffer(self.sealer.open(vector_blob, self._place("vector")), np.float32)
        return vector.copy(), self.open_samples(samples_blob, dim).copy()


def length_prefixed(parts: Sequence[str]) -> bytes:
    """``parts`` as associated data: each length-prefixed, so no two lists give the same bytes."""
    out = bytearray()
    for part in parts:
        raw = part.encode("utf-8")
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


def is_sealed(blob: bytes) -> bool:
    return blob[: len(SEALED_PREFIX)] == SEALED_PREFIX


class BlobSealer(Protocol):
    """Seals the blobs a store writes (embeddings, metadata) and opens those it reads."""

    description: str  # for the startup log, e.g. "AES-256-GCM, key 1a2b3c4d5e6f7a8b"

    def seal(self, plain: bytes, place: SealPlace) -> bytes: ...

    def is_current(self, blob: bytes) -> bool:
        """Whether ``blob`` is stored as ``seal`` would store it now (not plain where keys
        seal, nor sealed with an older key): a write may leave it as it is."""
        ...

    def open(self, blob: bytes, place: SealPlace) -> bytes:
        """The plain bytes; TemplateUnreadable when the blob cannot be opened here."""
        ...


class NoSealing:
    """Blobs stored as they are: a service without template keys."""

    description = "not encrypted (no template_key_file)"

    def seal(self, plain: bytes, place: SealPlace) -> bytes:
        return plain

    def is_current(self, blob: bytes) -> bool:
        return not is_sealed(blob)

    def open(self, blob: bytes, place: SealPlace) -> bytes:
        if is_sealed(blob):
            raise TemplateUnreadable(
                f"{place.describe()} is encrypted and this service holds no template key; "
                "the operator must give it the deployment's template_key_file"
            )
        return blob


NO_SEALING = NoSealing()


def key_id(key: bytes) -> bytes:
    """A key's public id: names it in sealed blobs and logs, tells nothing of the key."""
    return hashlib.sha256(b"bioverify template key id\0" + key).digest()[:KEY_ID_BYTES]


@dataclass(frozen=True)
class KeyRing:
    """Template keys by id: the first (``sealing_id``) seals, every one opens."""

    by_id: dict[bytes, bytes]
    sealing_id: bytes

    @classmethod
    def of(cls, keys: Sequence[bytes]) -> KeyRing:
        if not keys:
            raise ConfigurationError("template sealing needs at least one key")
        by_id: dict[bytes, bytes] = {}
        for key in keys:
            if len(key) != KEY_BYTES:
                raise ConfigurationError(f"a template key must be {KEY_BYTES} bytes")
            by_id.setdefault(key_id(key), key)
        return cls(by_id, key_id(keys[0]))

    @property
    def description(self) -> str:
        """For the startup log: ids only, never keys."""
        older = len(self.by_id) - 1
        extra = f" (+{older} older keys that only open)" if older else ""
        return f"AES-256-GCM, key {self.sealing_id.hex()}{extra}"


class AesGcmSealer:
    """AES-256-GCM with the first of ``keys``; opens blobs sealed with any of them. With
    ``allow_unsealed``, plain blobs (written before the deployment had keys) are read as they
    are; without it they are refused, so a plain template written into the store behind the
    service's back is never trusted."""

    def __init__(self, keys: Sequence[bytes], *, allow_unsealed: bool = False) -> None:
        ring = KeyRing.of(keys)
        self._ciphers = {kid: AESGCM(key) for kid, key in ring.by_id.items()}
        self._sealing_id = ring.sealing_id
        self._allow_unsealed = allow_unsealed
        self.description = ring.description

    def is_current(self, blob: bytes) -> bool:
        return blob.startswith(SEALED_PREFIX + self._sealing_id)

    def seal(self, plain: bytes, place: SealPlace) -> bytes:
        header = SEALED_PREFIX + self._sealing_id
        nonce = os.urandom(NONCE_BYTES)
        cipher = self._ciphers[self._sealing_id]
        return header + nonce + cipher.encrypt(nonce, plain, header + place.associated_data())

    def open(self, blob: bytes, place: SealPlace) -> bytes:
        if not is_sealed(blob):
            if self._allow_unsealed:
                return blob
            raise TemplateUnreadable(
                f"{place.describe()} is stored unencrypted, and this service reads only "
                "encrypted templates; delete the subject and enroll it again, or the operator "
                "can encrypt the stored templates with `bioverify seal-templates`"
            )
        header_end = len(SEALED_PREFIX) + KEY_ID_BYTES
        if len(blob) < header_end + NONCE_BYTES + TAG_BYTES:
            raise _altered(place)
        cipher = self._ciphers.get(blob[len(SEALED_PREFIX) : header_end])
        if cipher is None:
            raise TemplateUnreadable(
                f"{place.describe()} is encrypted with a key this service does not hold; "
                "the operator must add that key to the template_key_file"
            )
        try:
            return cipher.decrypt(
                blob[header_end : header_end + NONCE_BYTES],
                blob[header_end + NONCE_BYTES :],
                blob[:header_end] + place.associated_data(),
            )
        except InvalidTag:
            raise _altered(place) from None


def _altered(place: SealPlace) -> TemplateUnreadable:
    return TemplateUnreadable(
        f"{place.describe()} failed its integrity check (it was altered, or copied from "
        "another subject or place) and is not used; delete the subject and enroll it again"
    )


LeftOut = Callable[[TemplateUnreadable], None]
"""Told of each template a scan leaves out (see ``unless_unreadable``)."""


def unless_unreadable(read: Callable[[], T], left_out: LeftOut | None = None) -> T | None:
    """``read()``, or None (logged, and ``left_out`` told) when it raises TemplateUnreadable:
    how a scan over many templates leaves out one it cannot open (it stays unusable and is
    named in the log) instead of failing whole, e.g. the gallery's rebuild at startup."""
    try:
        return read()
    except TemplateUnreadable as exc:
        logger.error("%s; it is left out", exc)
        if left_out is not None:
            left_out(exc)
        return None


def read_template_keys(path: Path) -> list[bytes]:
    """The keys of a template key file, first (sealing) key first."""
    text = read_secret_text(path, "template key file")
    keys: list[bytes] = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            key = bytes.fromhex(entry)
        except ValueError:
            key = b""
        if len(key) != KEY_BYTES:
            raise ConfigurationError(
                f"line {number} of the template key file {path} is not a key: each key is "
                f"{KEY_BYTES * 2} hex digits (`openssl rand -hex {KEY_BYTES}`)"
            )
        keys.append(key)
    if not keys:
        raise ConfigurationError(f"the template key file {path} holds no key")
    return keys


def template_keys(path: str) -> list[bytes]:
    """The keys of the configured template key file (first, sealing, key first); none
    without one."""
    return read_template_keys(Path(path)) if path else []


def blob_sealer(keys: Sequence[bytes], *, allow_unsealed: bool) -> BlobSealer:
    """The store's sealer for ``keys``: none without keys."""
    return AesGcmSealer(keys, allow_unsealed=allow_unsealed) if keys else NO_SEALING
