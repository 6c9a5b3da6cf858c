"""Validation and small types shared by the use cases."""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from bioverify.errors import InvalidInput, InvalidSubjectId, NotImplementedYet, Overloaded

T = TypeVar("T")

DEFAULT_TENANT = "default"
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_METADATA_ENTRIES = 64
MAX_METADATA_VALUE = 1024


def validate_subject_id(subject_id: str, max_length: int = 128) -> str:
    if not subject_id:
        raise InvalidSubjectId("subject_id is empty")
    if len(subject_id) > max_length:
        raise InvalidSubjectId(f"subject_id is longer than {max_length} characters")
    if subject_id != subject_id.strip():
        raise InvalidSubjectId("subject_id has leading or trailing white space")
    for ch in subject_id:
        if unicodedata.category(ch).startswith("C"):
            raise InvalidSubjectId(
                f"subject_id contains a control or invisible character (U+{ord(ch):04X})"
            )
    return subject_id


def validate_tenant(tenant: str) -> str:
    if not tenant:
        return DEFAULT_TENANT
    if not _TENANT_RE.match(tenant):
        raise InvalidInput(
            "tenant must be 1-64 characters of letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return tenant


def validate_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise InvalidInput(f"metadata has more than {MAX_METADATA_ENTRIES} entries")
    out: dict[str, str] = {}
    for key, value in metadata.items():
        if not key or len(key) > 128 or any(unicodedata.category(c).startswith("C") for c in key):
            raise InvalidInput("metadata keys must be 1-128 printable characters")
        if len(value) > MAX_METADATA_VALUE:
            raise InvalidInput(f"metadata value for {key!r} is longer than {MAX_METADATA_VALUE}")
        out[key] = value
    return out


@dataclass(frozen=True)
class Issue:
    """A reason with a stable code, e.g. ("BLURRED", "the face is blurred")."""

    code: str
    message: str


@dataclass(frozen=True)
class RequestPolicy:
    require_liveness: bool | None = None
    operating_point: str = ""
    observe_only: bool = False


def sample_id(data: bytes) -> str:
    """Content hash of a raw sample: enrolling the same bytes twice adds them once."""
    return hashlib.sha256(data).hexdigest()


def check_liveness_policy(policy: RequestPolicy) -> None:
    if policy.require_liveness:
        raise NotImplementedYet(
            "require_liveness is not available yet in this service version; "
            "send the request without it"
        )


class InferencePool:
    """A bounded pool for blocking model inference. RPC threads submit work here, so at most
    ``workers`` inferences run at once (one per core) and at most ``max_queue`` wait; beyond
    that callers get Overloaded (RESOURCE_EXHAUSTED) instead of unbounded queueing."""

    def __init__(self, workers: int, max_queue: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference")
        self._max_pending = workers + max_queue
        self._pending = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., T], *args: object) -> Future[T]:
        with self._lock:
            if self._pending >= self._max_pending:
                raise Overloaded("the service is at capacity; retry with backoff")
            self._pending += 1
        try:
            future = self._executor.submit(fn, *args)
        except RuntimeError as exc:
            with self._lock:
                self._pending -= 1
            raise Overloaded("the service is shutting down") from exc
        future.add_done_callback(self._done)
        return future

    def run(self, fn: Callable[..., T], *args: object) -> T:
        return self.submit(fn, *args).result()

    def _done(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
