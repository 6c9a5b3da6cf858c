"""The bulk-enrolment journal: the sample files the service has already answered for, so that a
re-run (or a resumed interrupted run) sends only the rest.

One JSON object per line: ``tenant``, ``subject_id``, ``modality``, ``sample`` and
``accepted``. ``sample`` is an HMAC-SHA256 of the file's bytes under a random key kept in the
journal's folder (``journal.key``, made once), as the service keys its sample ids: whoever holds
a journal but not its key cannot check whether a given photo or clip was enrolled. A folder the
journal creates is ``0700``, journals and the key ``0600`` whatever the umask; an existing
journal or key that other users can read is restricted, with a warning.

Journals of earlier versions hold plain SHA-256 digests (``sha256``). They are still honoured:
a file one of them names is not sent again, and is journalled under its keyed fingerprint.
When the run is over the journal is rewritten without any plain digest (those of files no
longer in the source are dropped: a later run sends them again, which the service answers
without enrolling the same bytes twice).

:func:`drop_subject` takes a deleted subject's lines out of a journal.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bioverify.errors import InvalidInput
from bioverify.fileio import create_key_file, fsync_dir, open_private
from bioverify.server.exposure import restrict
from bioverify.usecases.common import validate_tenant

logger = logging.getLogger(__name__)

DEFAULT_FOLDER = Path(".bioverify-enroll")  # in the current folder, unless --journal says
DIR_MODE = 0o700
KEY_FILE_NAME = "journal.key"
KEY_BYTES = 32

Key = tuple[str, str, str, str]  # tenant, subject, modality, fingerprint


@dataclass(frozen=True)
class Entry:
    tenant: str
    subject_id: str
    modality: str
    fingerprint: str
    accepted: bool

    @property
    def key(self) -> Key:
        return (tenant_name(self.tenant), self.subject_id, self.modality, self.fingerprint)

    def line(self) -> str:
        return json.dumps(
            {
                "tenant": self.tenant,
                "subject_id": self.subject_id,
                "modality": self.modality,
                "sample": self.fingerprint,
                "accepted": self.accepted,
            }
        )


class JournalError(Exception):
    """The journal or its key cannot be read or written."""


def make_private_dir(folder: Path) -> None:
    """Create ``folder`` ``0700`` (its missing parents as the umask says)."""
    try:
        folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise JournalError(f"cannot create the journal folder {folder}: {exc.strerror}") from exc


def load_or_create_key(folder: Path) -> bytes:
    """The journal key of ``folder``; when there is none yet, a random one made there ``0600``
    (two runs making it at once end up with the same key: the first one linked wins)."""
    path = folder / KEY_FILE_NAME
    if not path.exists():
        try:
            create_key_file(path, KEY_BYTES)
        except OSError as exc:
            raise JournalError(f"cannot create the journal key {path}: {exc.strerror}") from exc
    restrict(path)
    try:
        text = path.read_text(encoding="ascii").strip()
        return bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise JournalError(f"cannot read the journal key {path}") from exc


def _parse(line: str) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None  # a torn last line from a crash: that subject is redone
    return entry if isinstance(entry, dict) else None


def tenant_name(tenant: Any) -> Any:
    """The tenant as the service names it: the empty tenant is ``default``, as ``--tenant``
    left out and ``--tenant default`` are one tenant. A name the service would refuse (no
    journal line of an accepted sample has one) is left as it is."""
    try:
        return validate_tenant(tenant) if isinstance(tenant, str) else tenant
    except InvalidInput:
        return tenant


def _entry_key(entry: dict[str, Any], field: str) -> Key | None:
    """The entry's key; its tenant as the service names it, its subject id in normal form C as
    the service stores it (journals written before ids were normalised may hold a macOS folder
    name in NFD)."""
    try:
        subject_id = entry["subject_id"]
        if isinstance(subject_id, str):
            subject_id = unicodedata.normalize("NFC", subject_id)
        return (tenant_name(entry["tenant"]), subject_id, entry["modality"], entry[field])
    except KeyError:
        return None


class Journal:
    """Samples the service has already answered for, keyed by (tenant, subject, modality,
    keyed fingerprint). Appends are fsynced, so a crash loses at most the batch in flight."""

    def __init__(self, path: Path, *, own_folder: bool = False) -> None:
        """``own_folder``: the folder is this tool's (the default ``.bioverify-enroll``), so
        one that other users can read is restricted too, with a warning."""
        self.path = path
        self._lock = threading.Lock()
        make_private_dir(path.parent)
        if own_folder:
            restrict(path.parent)
        self._key = load_or_create_key(path.parent)
        self._done: dict[Key, bool] = {}
        self._legacy: dict[Key, bool] = {}  # plain SHA-256 entries of earlier versions
        if path.exists():
            restrict(path)
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                entry = _parse(line)
                if entry is None:
                    continue
                accepted = bool(entry.get("accepted", False))
                if (key := _entry_key(entry, "sample")) is not None:
                    self._done[key] = accepted
                elif (key := _entry_key(entry, "sha256")) is not None:
                    self._legacy[key] = accepted

    def fingerprint(self, data: bytes) -> str:
        """The keyed fingerprint of a sample file's bytes."""
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def done(self, tenant: str, subject: str, modality: str, fingerprint: str, data: bytes) -> bool:
        """Whether the service has answered for this sample (``data``, fingerprinted)."""
        tenant = tenant_name(tenant)
        key = (tenant, subject, modality, fingerprint)
        with self._lock:
            if key in self._done:
                return True
            if not self._legacy:
                return False
            legacy = (tenant, subject, modality, hashlib.sha256(data).hexdigest())
            if legacy not in self._legacy:
                return False
            self._done[key] = self._legacy[legacy]  # written keyed by finish()
            return True

    def record(self, entries: Iterable[Entry]) -> None:
        entries = list(entries)
        lines = [e.line() + "\n" for e in entries]
        with self._lock:
            try:
                fd = open_private(self.path, os.O_WRONLY | os.O_APPEND)
                with os.fdopen(fd, "a", encoding="utf-8") as handle:
                    handle.write("".join(lines))
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise JournalError(f"cannot write the journal {self.path}: {exc.strerror}") from exc
            for e in entries:
                self._done[e.key] = e.accepted

    def finish(self) -> None:
        """After a run: rewrite a journal of an earlier version keyed, without plain digests."""
        with self._lock:
            if not self._legacy:
                return
            entries = [Entry(*key, accepted) for key, accepted in self._done.items()]
            _rewrite(self.path, (e.line() for e in entries))
            self._legacy.clear()
        logger.info("rewrote %s with keyed sample fingerprints", self.path)


def _rewrite(path: Path, lines: Iterable[str]) -> None:
    """Replace ``path`` atomically by ``lines`` (a new file, ``0600``)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = open_private(tmp, os.O_WRONLY | os.O_EXCL)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise JournalError(f"cannot rewrite the journal {path}: {exc.strerror}") from exc


def journal_files(path: Path) -> Iterator[Path]:
    """``path`` itself, or the journals (``*.jsonl``) of a folder."""
    if path.is_dir():
        yield from sorted(path.glob("*.jsonl"))
    elif path.exists():
        yield path


def drop_subject(path: Path, tenant: str, subject_id: str) -> int:
    """Take every line of ``subject_id`` in ``tenant`` out of the journal at ``path`` (keyed and
    plain alike; ``""`` and ``default`` are one tenant); returns how many were taken out. The
    journal is rewritten only if any was."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise JournalError(f"cannot read the journal {path}: {exc.strerror}") from exc
    subject_id = unicodedata.normalize("NFC", subject_id)
    tenant = tenant_name(tenant)
    kept = []
    for line in lines:
        entry = _parse(line)
        if (
            entry is not None
            and tenant_name(entry.get("tenant")) == tenant
            and isinstance(entry.get("subject_id"), str)
            and unicodedata.normalize("NFC", entry["subject_id"]) == subject_id
        ):
            continue
        kept.append(line)
    dropped = len(lines) - len(kept)
    if dropped:
        _rewrite(path, kept)
    return dropped
