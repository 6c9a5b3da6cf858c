"""The audit trail (``AUDIT_LOG_FILE``): one JSON line per call that enrols, verifies,
identifies, checks liveness, or reads or deletes subjects, saying who asked (the API token's
id: the first 16 hex digits of its SHA-256 digest; the peer), about whom (tenant, subject ids),
when, and what came of it (gRPC status, the domain reason of a failure, the decision, reason
codes, the liveness verdict, the subjects an identification or duplicate search named).
Never samples, embeddings, scores or metadata values.

A line is written when the call ends, for every call whose request was read (a call refused
before that, e.g. without a valid token, is in the service log instead). The file is opened
for appending (``O_APPEND``; 0600, an existing file losing others' access; no link
followed), so external rotation must copy and truncate it (logrotate's ``copytruncate``).
A line that cannot be written is logged at ERROR; the call's answer stands.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from google.protobuf.message import Message

from bioverify.errors import BioverifyError, ConfigurationError, InvalidInput
from bioverify.fileio import open_private
from bioverify.server.tenant_scope import request_tenants
from bioverify.store.ports import utc_now

logger = logging.getLogger(__name__)

AUDITED_SERVICES = (
    "/bioverify.v1.FaceService/",
    "/bioverify.v1.VoiceService/",
    "/bioverify.v1.LivenessService/",
    "/bioverify.v1.SubjectService/",
)
TOKEN_ID_HEX = 16


class AuditTrail(Protocol):
    enabled: bool  # False: record() is never called (no line is even made)

    def record(self, entry: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class NoAudit:
    """No audit trail (``AUDIT_LOG_FILE`` unset)."""

    enabled = False

    def record(self, entry: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class AuditFile:
    """Appends each entry as one JSON line to a private file."""

    enabled = True

    def __init__(self, path: Path) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._fd = open_private(path, flags)  # an existing file loses others' access
        except OSError as exc:
            raise ConfigurationError(
                f"cannot open the audit log file {path}: {exc.strerror}"
            ) from exc
        if not stat.S_ISREG(os.fstat(self._fd).st_mode):
            os.close(self._fd)
            raise ConfigurationError(f"the audit log file {path} is not a regular file")
        self._path = path
        self._lock = threading.Lock()

    def record(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        data = line.encode("utf-8")
        try:
            with self._lock:  # one write per line: lines never interleave
                written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(f"wrote {written} of {len(data)} bytes")
        except OSError as exc:
            logger.error("could not write an audit line to %s: %s", self._path, exc)

    def close(self) -> None:
        os.close(self._fd)


NO_AUDIT = NoAudit()


def open_audit_trail(path: str) -> AuditTrail:
    return AuditFile(Path(path)) if path else NO_AUDIT


def audited(method: str) -> bool:
    return method.startswith(AUDITED_SERVICES)


@dataclass
class CallRecord:
    """What one call's audit line is made of, gathered while it runs."""

    method: str
    request_id: str
    token_id: str | None
    request: Any = None  # the (first) request message, once read
    response: Any = None  # the (last) response message
    status: str = "OK"
    reason: str = ""

    def failed(self, exc: BaseException, status: str) -> None:
        self.status = status
        self.reason = exc.reason if isinstance(exc, BioverifyError) else ""

    def entry(self, duration_ms: float, peer: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ts": utc_now(),
            "request_id": self.request_id,
            "method": self.method.rsplit("/", 1)[-1],
            "token_id": self.token_id,
            "peer": peer,
        }
        if isinstance(self.request, Message):
            out.update(_request_fields(self.request))
        out["status"] = self.status
        if self.reason:
            out["reason"] = self.reason
        if isinstance(self.response, Message):
            out.update(_response_fields(self.response))
        out["duration_ms"] = round(duration_ms, 1)
        return out


def token_id(digest: str | None) -> str | None:
    """A token's id in the audit trail: enough of its digest to tell clients apart."""
    return digest[:TOKEN_ID_HEX] if digest else None


def _request_fields(request: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        tenants = sorted(set(request_tenants(request)))
    except InvalidInput:
        tenants = []  # the call was refused for it; the status says so
    if tenants:
        out["tenant"] = tenants[0] if len(tenants) == 1 else tenants
    subjects = [s for s in _strings_named(request, "subject_id") if s]
    if subjects:
        out["subject_id"] = subjects[0] if len(subjects) == 1 else subjects
    return out


def _response_fields(response: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fields = response.DESCRIPTOR.fields_by_name
    if "subject_id" in fields and response.subject_id:  # as stored (e.g. normalised)
        out["stored_subject_id"] = response.subject_id
    decision = fields.get("decision")
    if decision is not None and decision.enum_type is not None and response.decision:
        out["decision"] = decision.enum_type.values_by_number[response.decision].name
    if "reasons" in fields and response.reasons:
        out["reasons"] = [r.code for r in response.reasons]
    if "liveness" in fields and response.HasField("liveness") and response.liveness.checked:
        report = response.liveness
        out["liveness"] = ("live" if report.live else "not_live") + (
            " (observe only)" if report.observe_only else ""
        )
    for name in ("candidates", "duplicates"):
        if name in fields and getattr(response, name):
            out[name] = [c.subject_id for c in getattr(response, name)]
    for name in ("accepted_count", "rejected_count", "templates_deleted", "final"):
        if name in fields:
            out[name] = getattr(response, name)
    if "subjects" in fields:  # a page of ListSubjects
        out["listed"] = len(response.subjects)
    return out


def _strings_named(message: Message, name: str) -> Iterator[str]:
    """The ``name`` string fields of ``message`` and of the sub-messages it has set (one level:
    a stream's config)."""
    for descriptor, value in message.ListFields():
        if descriptor.name == name and isinstance(value, str):
            yield value
        elif isinstance(value, Message):
            for sub, sub_value in value.ListFields():
                if sub.name == name and isinstance(sub_value, str):
                    yield sub_value
