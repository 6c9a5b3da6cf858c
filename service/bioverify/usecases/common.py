"""Validation and small types shared by the use cases."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from bioverify.errors import (
    BioverifyError,
    InvalidInput,
    InvalidSubjectId,
    ModelMismatch,
    NotEnrolled,
    Overloaded,
    TemplateChanged,
    TooLarge,
)
from bioverify.index.gallery import Gallery
from bioverify.packs import PackManifest
from bioverify.scoring import Calibration, OperatingPoint
from bioverify.store.ports import (
    MAX_METADATA_ENTRIES,
    Template,
    TemplateStore,
    TemplateWrite,
    check_metadata_entries,
)
from bioverify.subject_ids import (
    basic_problem,
    legacy_subject_id_forms,
    odd_separator,
    too_long_to_normalise,
)
from bioverify.usecases.gallery_search import Duplicate, find_duplicates

T = TypeVar("T")
A = TypeVar("A")

DEFAULT_TENANT = "default"
_TENANT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # whole string: fullmatch
MAX_METADATA_VALUE = 1024


def validate_subject_id(subject_id: str, max_length: int = 128) -> str:
    """``subject_id`` in Unicode normal form C, the form every id is stored and looked up in,
    so "José" typed on macOS (NFD: "e" and a combining accent) is the same subject as "José"
    typed elsewhere (NFC). InvalidSubjectId when empty, too long (counted after
    normalisation), padded with white space, or holding a control, format or unassigned
    character (category C*) or a separator other than a plain space (U+00A0 NO-BREAK SPACE,
    U+2028 LINE SEPARATOR, ...: ids that look alike but are not equal)."""
    if too_long_to_normalise(subject_id, max_length):  # refused before the costly NFC
        raise InvalidSubjectId(f"subject_id is longer than {max_length} characters")
    subject_id = unicodedata.normalize("NFC", subject_id)
    problem = basic_problem(subject_id, max_length)
    if problem:
        raise InvalidSubjectId(problem)
    separator = odd_separator(subject_id)
    if separator:
        raise InvalidSubjectId(
            f"subject_id contains a space or separator character other than a plain space "
            f"({separator}); use U+0020"
        )
    return subject_id


def on_stored_form(
    subject_id: str, max_length: int, fn: Callable[[str], T], *, every_form: bool = False
) -> list[tuple[str, T]]:
    """``fn`` (a look-up or erasure that raises NotEnrolled when nothing is stored under the
    id it is given) on the form of ``subject_id`` the store holds the subject under: its NFC
    form (``validate_subject_id``) first, then ``legacy_subject_id_forms``, so a subject a
    version before NFC ids stored under an NFD id, or one with a NO-BREAK SPACE, is still
    found, verified and erased. Returns (form, result) for the first form found, or with
    ``every_form`` for each form found (an erasure reaches every one, twins included). When
    none is found: the InvalidSubjectId of an id this version refuses, else the NFC form's
    NotEnrolled. Only for subjects that exist: an id is never created in a legacy form."""
    refused: InvalidSubjectId | None = None
    missing: NotEnrolled | None = None
    forms = legacy_subject_id_forms(subject_id, max_length)
    try:
        nfc = validate_subject_id(subject_id, max_length)
        forms = [nfc, *(form for form in forms if form != nfc)]
    except InvalidSubjectId as exc:
        refused = exc
    found: list[tuple[str, T]] = []
    for form in forms:
        try:
            found.append((form, fn(form)))
        except NotEnrolled as exc:
            missing = missing or exc
            continue
        if not every_form:
            break
    if found:
        return found
    if refused is not None:
        raise refused
    assert missing is not None  # the NFC form was tried
    raise missing


def enrolment_subject_id(
    store: TemplateStore, tenant: str, subject_id: str, nfc: str, max_length: int
) -> str:
    """The id an enrolment sent as ``subject_id`` (``nfc``: its validated NFC form) writes
    under: ``nfc``, unless only a legacy form of it is stored (a subject enrolled from macOS
    by a version before NFC ids), which the enrolment then extends rather than starting a
    twin. A look-up is spent only on ids whose forms differ."""
    forms = [form for form in legacy_subject_id_forms(subject_id, max_length) if form != nfc]
    if not forms:
        return nfc
    for form in (nfc, *forms):
        try:
            store.get_subject(tenant, form)
        except NotEnrolled:
            continue
        return form
    return nfc


def validate_tenant(tenant: str) -> str:
    if not tenant:
        return DEFAULT_TENANT
    if not _TENANT_RE.fullmatch(tenant):
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


def validate_enrollment(
    tenant: str,
    subject_id: str,
    metadata: Mapping[str, str],
    samples: Sequence[object],
    *,
    noun: str,
    max_samples: int,
    max_subject_id_length: int,
) -> tuple[str, str, dict[str, str]]:
    """The checks of an enroll request before any inference: tenant, subject id, metadata and
    the number of samples (``noun``: "images", "clips"). Returns (tenant, subject_id, metadata)."""
    tenant = validate_tenant(tenant)
    subject_id = validate_subject_id(subject_id, max_subject_id_length)
    meta = validate_metadata(metadata)
    if not samples:
        raise InvalidInput(f"no {noun} to enroll: send at least one")
    if len(samples) > max_samples:
        raise TooLarge(f"at most {max_samples} {noun} per enrollment, got {len(samples)}")
    return tenant, subject_id, meta


def stored_template(
    store: TemplateStore, tenant: str, subject_id: str, modality: str
) -> Template | None:
    """The subject's template of ``modality``, whichever model made it; None when there is
    none."""
    try:
        return store.get_template(tenant, subject_id, modality)
    except NotEnrolled:
        return None


def template_for(
    store: TemplateStore, tenant: str, subject_id: str, modality: str, model: str
) -> Template:
    """The subject's template to compare against; ModelMismatch when another model made it."""
    template = store.get_template(tenant, subject_id, modality)
    if template.model != model:
        raise ModelMismatch(
            f"subject {subject_id!r} was enrolled with {modality} model {template.model}, but "
            f"this service runs {model}; re-enroll the subject with the current model"
        )
    return template


def save_enrollment(
    store: TemplateStore,
    gallery: Gallery,
    write: TemplateWrite,
    *,
    calibration: Calibration,
    point: OperatingPoint,
    refuse_duplicates: bool,
    dry_run: bool,
) -> tuple[Template | None, tuple[Duplicate, ...]]:
    """Search the gallery for other subjects matching the new samples (AlreadyExists with
    ``refuse_duplicates``), then save them unless ``dry_run``. Returns the saved template (None
    on a dry run) and the duplicates found. The save raises TemplateChanged when
    ``write.expected`` no longer holds; a dry run writes nothing, so it does not check it
    (nothing could be written over a changed template, and the real enrollment checks), but it
    checks, as the save does, that the subject would not hold too many metadata entries."""

    def search(refuse: bool) -> tuple[Duplicate, ...]:
        return find_duplicates(
            gallery,
            write.tenant,
            write.subject_id,
            write.new_samples,
            calibration=calibration,
            point=point,
            refuse=refuse,
        )

    if dry_run:
        duplicates = search(refuse=False)
        if write.metadata:
            try:
                stored = store.get_subject(write.tenant, write.subject_id).metadata
            except NotEnrolled:
                stored = {}
            check_metadata_entries(write, stored.keys())
        return None, duplicates
    # The search and the write take the tenant's turn: no other enrolment of the tenant
    # writes between them (see Gallery.enrolment_turn). With turns shared across replicas
    # (a fence), the gallery first catches up with what others wrote in their turns (its
    # follower may not have yet); a turn of this process was left caught up by its holder.
    with gallery.enrolment_turn(write.tenant) as fence:
        if fence is not None:
            gallery.catch_up(store)
        duplicates = search(refuse=refuse_duplicates)
        template = store.save(dataclasses.replace(write, turn=fence))
        gallery.catch_up(store)  # this replica sees its own write at once
    return template, duplicates


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


def sample_id(key: bytes, data: bytes) -> str:
    """The id of a raw sample: HMAC-SHA256 of its bytes under the deployment's secret ``key``.
    Enrolling the same bytes twice adds them once, while someone holding the store but not the
    key cannot check whether a given photo or clip was enrolled (as with a plain hash)."""
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def legacy_sample_id(data: bytes) -> str:
    """The id versions before keyed ids gave a raw sample (its plain SHA-256), under which
    templates written then hold it: compared with a template's ids, never stored
    (``TemplateWrite.legacy_sample_ids``)."""
    return hashlib.sha256(data).hexdigest()


NOTHING_ACCEPTED = Issue(
    "NO_SAMPLE_ACCEPTED", "no sample was accepted (see each sample's reasons); nothing was enrolled"
)


SUBJECT_MISMATCH = "SUBJECT_MISMATCH"


def mismatched_samples(
    embeddings: npt.NDArray[np.float32],
    existing: npt.NDArray[np.float32] | None,
    threshold: float,
) -> dict[int, Issue]:
    """The rows of ``embeddings`` (one enrolment's new samples) that do not look like the
    subject, each with its reason: below ``threshold`` against the ``existing`` template when
    there is one, else matching fewer than half of the other new samples (two samples that do
    not match each other are both refused). A second person's photo or voice slipped into an
    enrolment would otherwise let both people verify as the subject."""
    vectors = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    if existing is not None:
        similarity = vectors @ (existing / np.linalg.norm(existing))
        issue = Issue(
            SUBJECT_MISMATCH,
            "the sample does not match the subject's enrolled template (another person?); it "
            "was not added (delete the subject to enroll someone else under its id)",
        )
        return {int(i): issue for i in np.flatnonzero(similarity < threshold)}
    n = len(vectors)
    if n < 2:
        return {}
    others_matched = (vectors @ vectors.T >= threshold).sum(axis=1) - 1  # less itself
    issue = Issue(
        SUBJECT_MISMATCH,
        f"the sample does not match at least half of the enrolment's other {n - 1} sample(s) "
        "(another person?); it was not enrolled",
    )
    return {int(i): issue for i in np.flatnonzero(others_matched * 2 < n - 1)}


class _SampleOutcome(Protocol):
    @property
    def accepted(self) -> bool: ...


Outcome = TypeVar("Outcome", bound=_SampleOutcome)


def refuse_unlike_subject(
    outcomes: Sequence[Outcome],
    embeddings: npt.NDArray[np.float32],
    template: Template | None,
    pack: PackManifest,
) -> tuple[list[Outcome], list[int]]:
    """``outcomes`` (in sample order) with the accepted samples (the rows of ``embeddings``,
    in order) that ``mismatched_samples`` finds unlike the subject at ``pack``'s loosest
    operating point refused for that reason; returns them and the rows still accepted.
    ``template``: the subject's stored one (None: none), a reference only when ``pack``'s
    model made it."""
    model = pack.template_model
    reference = template.vector if template is not None and template.model == model else None
    mismatched = mismatched_samples(embeddings, reference, pack.loosest_operating_point().threshold)
    result = list(outcomes)
    kept = []
    accepted = [pos for pos, outcome in enumerate(outcomes) if outcome.accepted]
    for row, pos in enumerate(accepted):
        if row in mismatched:
            result[pos] = dataclasses.replace(  # type: ignore[type-var]
                outcomes[pos], accepted=False, reasons=(mismatched[row],)
            )
        else:
            kept.append(row)
    return result, kept


ENROLMENT_WRITE_ATTEMPTS = 3
"""How often an enrolment re-reads the subject's template and re-checks its samples against
it when another request changed the template between the read and the write."""


def against_current_template(
    read: Callable[[], Template | None],
    write: Callable[[Template | None], T],
    *,
    stored: Template | None,
    attempts: int = ENROLMENT_WRITE_ATTEMPTS,
) -> T:
    """``write(stored)``, which checks the samples against ``stored`` (the subject's template
    as read, None: none) and saves expecting it to be still what is stored. When another
    request or replica changed it in between (TemplateChanged, nothing written), the template
    is read again and ``write`` runs on it, at most ``attempts`` times in all; the last
    TemplateChanged is raised. So two first enrolments of one id racing each other cannot
    both pass as the first: the later one is checked against the earlier one's template."""
    attempt = 1
    while True:
        try:
            return write(stored)
        except TemplateChanged:
            if attempt >= attempts:
                raise
        attempt += 1
        stored = read()


def prepare_all(
    pool: InferencePool, fn: Callable[[A], T], items: Sequence[A], labels: Sequence[str]
) -> list[T]:
    """``fn`` on every item in parallel on the pool; an error names the item that caused it
    (its message is prefixed with the item's label, e.g. "image_a: ...")."""
    futures = [pool.submit(fn, item) for item in items]
    results: list[T] = []
    for label, future in zip(labels, futures, strict=True):
        try:
            results.append(future.result())
        except BioverifyError as exc:
            exc.message = f"{label}: {exc.message}"
            raise
    return results


Rejected = InvalidInput | TooLarge
"""What rejects one enrolment sample the client got wrong, without failing the others."""


def issue_of(rejected: Rejected) -> Issue:
    return Issue(rejected.reason, rejected.message)


def prepare_each(
    pool: InferencePool, fn: Callable[[A], T], items: Sequence[A]
) -> list[T | Rejected]:
    """``fn`` on every item in parallel on the pool, for enrollment: an item the client got
    wrong (InvalidInput, TooLarge) gives the error that rejects it (``issue_of``: its reason)
    instead of failing them all. The error is kept without its traceback, whose frames would
    hold what the item had decoded (a clip's samples, an image) until every item is done."""

    def rejecting(item: A) -> T | Rejected:
        try:
            return fn(item)
        except (InvalidInput, TooLarge) as exc:
            return without_tracebacks(exc)

    futures = [pool.submit(rejecting, item) for item in items]
    return [future.result() for future in futures]


E = TypeVar("E", bound=BaseException)


def without_tracebacks(error: E) -> E:
    """``error`` with the tracebacks of it and of its causes and contexts dropped (the frames
    they reference, and those frames' locals, can then be freed); its message and reason stay."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        link.__traceback__ = None
        pending.extend(e for e in (link.__cause__, link.__context__) if e is not None)
    return error


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
