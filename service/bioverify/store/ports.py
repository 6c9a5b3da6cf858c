"""The template store port. Stores keep per-sample embeddings (to re-score and to rebuild
templates) and one template per (tenant, subject, modality); they never keep raw images or audio.
A change feed (monotonic sequence of upserts/deletes) lets derived indexes catch up. It names
subjects, never holds embeddings, and keeps only its newest changes (``change_retention``, at
least the newest one): a follower older than :meth:`TemplateStore.pruned_seq` rebuilds instead.

The feed has an ``epoch``: a random id the store writes once, when its feed starts. A derived
index remembers the (epoch, seq) it reflects; another epoch (the store was emptied, e.g. a Redis
restarted without persistence or flushed, or another store took its place) or a seq behind its
own (the store was restored from an older backup) means its changes are no longer a continuation
of what the index saw, and the index must be rebuilt (see :class:`FeedPosition`).

Every template carries a ``revision``: the seq of the change that last wrote it. Seqs are never
reused, so a template deleted and enrolled again gets a new revision, never its old one. A write
may carry an :class:`ExpectedTemplate` (compare-and-set): the store applies it only if the
template is still the one its caller read, atomically with the write, and else raises
TemplateChanged and writes nothing."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from bioverify.errors import InvalidInput, ModelMismatch, TemplateChanged
from bioverify.scoring import mean_template
from bioverify.store.turns import TurnFence, Turns

if TYPE_CHECKING:
    from bioverify.store.sealing import LeftOut

Vector = npt.NDArray[np.float32]

DEFAULT_CHANGE_RETENTION = 100_000
"""How many of the newest changes a store keeps in its change feed unless told otherwise."""
MAX_METADATA_ENTRIES = 64
"""The most metadata entries a subject holds, all its enrolments together: with the length
limits of keys and values (``validate_metadata``) this bounds the bytes of one subject."""


@dataclass(frozen=True)
class Template:
    tenant: str
    subject_id: str
    modality: str  # "face" | "voice"
    model: str  # PackManifest.template_model of the model that made it
    vector: Vector  # unit-norm template embedding
    samples: npt.NDArray[np.float32]  # (n, dim) per-sample embeddings
    created_at: str
    updated_at: str
    extra: Mapping[str, float] = field(default_factory=dict)  # e.g. net speech seconds
    sample_ids: tuple[str, ...] = ()  # content hashes of the samples, for idempotent enrollment
    revision: int = 0  # seq of the change that last wrote it; 0: written before revisions

    @property
    def sample_count(self) -> int:
        return int(self.samples.shape[0])


@dataclass(frozen=True)
class ExpectedTemplate:
    """A write's compare-and-set condition: the template it writes over is still the one read
    at ``revision``, or (``revision`` None) there is still none."""

    revision: int | None

    @classmethod
    def of(cls, template: Template | None) -> ExpectedTemplate:
        """The condition that ``template`` (None: no template) is still what is stored."""
        return cls(template.revision if template is not None else None)


@dataclass(frozen=True)
class TemplateWrite:
    """One template write: what ``save`` and ``save_many`` take."""

    tenant: str
    subject_id: str
    modality: str
    model: str
    new_samples: npt.NDArray[np.float32]
    metadata: Mapping[str, str] = field(default_factory=dict)
    replace: bool = False
    extra: Mapping[str, float] | None = None
    sample_ids: Sequence[str] = ()
    expected: ExpectedTemplate | None = None  # None: write whatever is stored
    # Per new sample: the id versions before keyed ids gave it (a plain SHA-256), so that a
    # sample stored under it is known too. Compared only, never stored (see merge_samples).
    legacy_sample_ids: Sequence[str] = ()
    # Per new sample: values added to ``extra`` only if that sample is added (a sample the
    # template already holds adds nothing), e.g. each clip's net speech seconds.
    sample_extra: Sequence[Mapping[str, float]] = ()
    # The enrolment turn the write was made in, when turns are shared through the store (the
    # stores whose turns are the process's get None): ``save`` applies it only while that
    # turn is still held (else Unavailable, nothing written); ``save_many`` refuses it.
    turn: TurnFence | None = None


@dataclass(frozen=True)
class StoredTemplate:
    """What a store holds of the template a write would extend, as the store read it."""

    model: str
    samples: npt.NDArray[np.float32]  # (n, dim)
    sample_ids: Sequence[str]
    extra: Mapping[str, float]
    created_at: str


@dataclass(frozen=True)
class TemplateSummary:
    modality: str
    model: str
    sample_count: int
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class SubjectRecord:
    tenant: str
    subject_id: str
    metadata: Mapping[str, str]
    templates: tuple[TemplateSummary, ...]
    created_at: str
    updated_at: str
    unreadable_metadata: str = ""
    """In a listing: why its metadata (then empty) could not be opened. A listing shows such
    a subject (to be deleted) rather than fail for it; reading it alone raises."""


def listing_bytes(subject_id: str, metadata: Mapping[str, str]) -> int:
    """The UTF-8 bytes of a subject's id and metadata keys and values: what makes a subject
    large (see ``TemplateStore.list_subjects``). Stores compute it alike (the Redis store in
    its listing script)."""
    return len(subject_id.encode("utf-8")) + sum(
        len(key.encode("utf-8")) + len(value.encode("utf-8")) for key, value in metadata.items()
    )


@dataclass(frozen=True)
class Change:
    seq: int
    op: str  # "upsert" | "delete"
    tenant: str
    subject_id: str
    modality: str


@dataclass(frozen=True)
class FeedPosition:
    """Where a store's change feed stands, read at one instant: its ``epoch`` and newest ``seq``
    (0 when there is no change yet)."""

    epoch: str
    seq: int

    def continues(self, epoch: str | None, seq: int) -> bool:
        """Whether this can be the feed that was at (``epoch``, ``seq``), moved on: the same
        epoch and not behind. (A store restored from an older backup keeps its epoch; once its
        seq has passed the old one again, only a new epoch can tell.)"""
        return epoch == self.epoch and seq <= self.seq


class TemplateStore(Protocol):
    name: str

    def save(self, write: TemplateWrite) -> Template:
        """Atomically add samples to (or replace) the subject's template of this modality.

        ``write.sample_ids`` (one per new sample, e.g. a hash of the raw sample) make the call
        idempotent: samples whose id the template already holds are not added again, so a
        retried or resumed enrollment never counts a sample twice.
        Raises ModelMismatch when extending a template made by another model, and
        TemplateChanged when ``write.expected`` does not hold at the moment of the write (checked
        atomically with it); either way nothing is written.
        """
        ...

    def save_many(self, writes: Sequence[TemplateWrite]) -> list[Template]:
        """Bulk load: the same as ``save`` for each write in order (same merging,
        idempotency, ModelMismatch and TemplateChanged rules, one change each), with fewer round
        trips or commits. A write expecting anything of a template an earlier write of the
        batch makes fails (that template has a new revision). Each template is written
        atomically; the batch as a whole is atomic on SQLite (one transaction: an error saves
        none of it) but not on Redis (an error may leave the writes before it saved; only the
        expectations are all checked before the first write, so one that no longer holds when
        the batch starts saves nothing). Meant for imports and benchmarks, not for the request
        path.
        """
        ...

    def get_template(self, tenant: str, subject_id: str, modality: str) -> Template:
        """Raises NotEnrolled when the subject has no template of this modality."""
        ...

    def get_subject(self, tenant: str, subject_id: str) -> SubjectRecord: ...

    def list_subjects(
        self, tenant: str, *, limit: int, after: str = "", modality: str = "", max_bytes: int = 0
    ) -> list[SubjectRecord]:
        """At most ``limit`` subjects ordered by id, strictly after ``after``. With
        ``max_bytes``, the store stops reading early: after the subject that takes the
        :func:`listing_bytes` of those read over ``max_bytes``, but never before the second.
        So it holds about ``max_bytes`` at a time, and a caller that keeps the subjects within
        a budget of at least ``max_bytes`` (and at least one) sees whether another follows."""
        ...

    def delete_subject(self, tenant: str, subject_id: str) -> int:
        """Erase the subject and every template; returns how many templates it deleted.

        Raises NotEnrolled when the subject is absent.
        """
        ...

    def iter_templates(
        self, modality: str, model: str = "", *, left_out: LeftOut | None = None
    ) -> Iterator[Template]:
        """Every template of ``modality`` (and ``model``); one that cannot be opened is left
        out, logged, and ``left_out`` is told of it."""
        ...

    def changes_since(self, seq: int, limit: int = 10_000) -> list[Change]: ...

    def latest_seq(self) -> int:
        """The seq of the newest change; 0 when there is none."""
        ...

    def feed_position(self) -> FeedPosition:
        """The feed's epoch and newest seq, read together; the first call on a store without
        an epoch (new, emptied, or written by a version before epochs) gives it one."""
        ...

    def pruned_seq(self) -> int:
        """Changes up to this seq may have been pruned from the feed (0: none was). A follower
        at an older seq cannot catch up from changes: it must rebuild from the templates."""
        ...

    def wait_for_changes(
        self, after_seq: int, timeout_ms: int, limit: int = 10_000
    ) -> list[Change]:
        """Changes after ``after_seq``, waiting up to ``timeout_ms`` for one; [] on timeout."""
        ...

    def ping(self) -> None:
        """Raises Unavailable when the backing store cannot be reached."""
        ...

    def turns(self) -> Turns:
        """Turns among everyone who writes through this store as the service does: every
        replica sharing it (Redis), or the threads of this process (SQLite)."""
        ...

    def close(self) -> None: ...


def merge_samples(
    old_samples: npt.NDArray[np.float32] | None,
    old_ids: Sequence[str],
    new_samples: npt.NDArray[np.float32],
    new_ids: Sequence[str],
    legacy_ids: Sequence[str] = (),
) -> tuple[npt.NDArray[np.float32], tuple[str, ...], list[int]]:
    """Old samples plus the new ones whose id is not already there (ids may be empty, then
    every new sample counts as new). A new sample whose legacy id (``legacy_ids``, one per new
    sample, may be empty) is among the old ids is there too: that old id becomes its id, so
    the plain hash is not kept. Returns (samples, ids, rows of ``new_samples`` added)."""
    new = np.ascontiguousarray(np.atleast_2d(new_samples), dtype=np.float32)
    ids = list(new_ids) if new_ids else [""] * new.shape[0]
    legacy = list(legacy_ids) if legacy_ids else [""] * new.shape[0]
    if len(ids) != new.shape[0] or len(legacy) != new.shape[0]:
        raise ValueError("one sample id (and legacy id) per new sample")
    known = {i for i in old_ids if i}
    upgraded: dict[str, str] = {}  # legacy id held -> the sample's id
    keep = []
    for row, sample_id in enumerate(ids):
        if sample_id and sample_id in known:
            continue
        if sample_id and legacy[row] and legacy[row] in known:
            upgraded[legacy[row]] = sample_id
            known.add(sample_id)
            continue
        known.add(sample_id)
        keep.append(row)
    added = new[keep]
    kept_ids = tuple(upgraded.get(i, i) for i in old_ids)
    if old_samples is None or old_samples.size == 0:
        return added, tuple(ids[r] for r in keep), keep
    return (
        np.concatenate([old_samples, added], axis=0),
        (*kept_ids, *(ids[r] for r in keep)),
        keep,
    )


def check_expected(w: TemplateWrite, revision: int | None) -> None:
    """Raises TemplateChanged unless ``w.expected`` holds of the stored template (its
    ``revision``; None when there is none). A write without expectation always holds."""
    if w.expected is not None and w.expected.revision != revision:
        raise template_changed(w)


def template_changed(w: TemplateWrite) -> TemplateChanged:
    """The error of a write whose expectation does not hold (see :func:`check_expected`)."""
    return TemplateChanged(
        f"subject {w.subject_id!r}'s {w.modality} template changed while this enrollment was "
        "being checked against it; nothing was saved: retry the enrollment"
    )


def check_metadata_entries(w: TemplateWrite, stored_keys: Collection[str]) -> None:
    """Raises InvalidInput when ``w`` adds keys to the subject's metadata (``stored_keys``)
    and it would then hold more than MAX_METADATA_ENTRIES entries. A write that adds none (new
    values for keys held, or no metadata) passes, even on a subject that holds more (stored by
    a version before this limit)."""
    added = len(set(w.metadata).difference(stored_keys))
    if added and len(stored_keys) + added > MAX_METADATA_ENTRIES:
        raise InvalidInput(
            f"subject {w.subject_id!r} would hold {len(stored_keys) + added} metadata "
            f"entries, more than {MAX_METADATA_ENTRIES} ({added} new keys sent); nothing was "
            "saved: send values for the keys it has only, or delete the subject first"
        )


def utc_now() -> str:
    """A store timestamp: UTC, milliseconds, ``Z`` suffix."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def apply_write(w: TemplateWrite, old: StoredTemplate | None, now: str) -> Template:
    """The template ``w`` makes of the stored one, the same in every store. ``old`` is the
    template it extends: None when there is none or ``w.replace`` (the stores do not even
    parse a template that is replaced). The new samples join the old ones (see
    :func:`merge_samples`), ``extra`` values add up (``sample_extra`` those of the samples
    added) and the creation time stays; extending a template made by another model raises
    ModelMismatch."""
    if w.sample_extra and len(w.sample_extra) != len(np.atleast_2d(w.new_samples)):
        raise ValueError("one sample_extra per new sample")
    extra = {k: float(v) for k, v in (w.extra or {}).items()}
    created = now
    if old is not None:
        if old.model != w.model:
            raise ModelMismatch(
                f"subject {w.subject_id!r} has a {w.modality} template made by model "
                f"{old.model}, but this service runs {w.model}; re-enroll with "
                "replace=true to rebuild it with the current model"
            )
        created = old.created_at
        for key, value in old.extra.items():
            extra[key] = extra.get(key, 0.0) + float(value)
    samples, ids, added = merge_samples(
        old.samples if old else None,
        old.sample_ids if old else (),
        w.new_samples,
        w.sample_ids,
        w.legacy_sample_ids,
    )
    if w.sample_extra:
        for row in added:
            for key, value in w.sample_extra[row].items():
                extra[key] = extra.get(key, 0.0) + float(value)
    return Template(
        tenant=w.tenant,
        subject_id=w.subject_id,
        modality=w.modality,
        model=w.model,
        vector=mean_template(samples),
        samples=samples,
        created_at=created,
        updated_at=now,
        extra=extra,
        sample_ids=ids,
    )
