"""The 1:N gallery: FAISS indexes kept as derived state of a template store.

One ``Gallery`` serves one (modality, model). Each tenant has its own partition — its own
index and id maps — so a search can never return another tenant's subject, a small tenant
is searched exactly however large the others are, and a tenant can be rebuilt or dropped
alone. (One shared index filtered by an ``IDSelector`` would scan or traverse other tenants'
vectors on every query, and filtered graph/PQ searches lose recall when the filter is narrow.)

Partitions up to ``exact_max`` templates use ``ExactIndex``; larger ones use the ANN factory
(``FastScanIndex`` by default). The kind is chosen again whenever a partition is rebuilt and
by ``maintain()`` for partitions that changed (growing past ``exact_max`` → ANN; shrinking
below half of it → exact; an ANN asking ``needs_rebuild()`` → compacted). ``maintain`` can take
seconds (building a 1M ANN), so ``GalleryFollower`` runs it and ``catch_up`` never does: a
request thread that catches up to see its own write only pays for applying the changes (and,
once after the store's feed started over, for the rebuild below, which it would otherwise wait
for behind the follower's). Rebuilds happen outside the lock that searches take; only the swap
is exclusive.

The gallery follows the store: ``rebuild`` records the store's feed position (epoch and seq)
*before* reading templates, then ``catch_up`` applies ``changes_since(seq)``. Re-applying a
change is harmless (upserts re-read the template, deletes are idempotent), so nothing is missed
or doubled. A feed that does not continue the one followed — another epoch (the store was
emptied, e.g. Redis restarted without persistence or flushed, or replaced) or a seq behind the
gallery's (restored from an older backup) — makes ``catch_up`` rebuild instead: its changes say
nothing about what the gallery holds. ``save``/``load`` keep a snapshot with the position it
reflects, so a restart loads it and then catches up; ``restore`` does that, and rebuilds when
there is no usable snapshot or it was taken of another feed.
The store prunes its change feed (``store.pruned_seq()``): a gallery that finds changes
missing after its seq, older than what the store still keeps, rebuilds instead of
applying the rest.

A snapshot must not outlive a deletion: it holds the vectors of every subject it was taken
of. So the gallery remembers the directories it saved a snapshot to or loaded one from (and
the one ``restore`` was given), and removes the snapshots there whenever it drops a subject it
held (deleted, even when enrolled again in the same run of changes; or its template gone or
now made by another model) or rebuilds (a rebuild may drop anyone), before the change that
dropped it returns: on the request thread for a replica's own ``DeleteSubject`` (which catches
up), on the follower's for other replicas' deletions. The
next ``save`` (at shutdown) writes the contents of then; until then a crash costs a rebuild.
A removal that fails is logged and tried again by every ``maintain()``.

A service with template keys seals every file of a snapshot (``AesGcmFiles``): the snapshot
then holds no vector or subject id in the clear, and one altered, cut short, moved between
snapshots or sealed with a key no longer held is not loaded (the gallery is rebuilt instead).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from bioverify.errors import NotEnrolled, Unavailable
from bioverify.fileio import ByteSource, fsync_dir
from bioverify.index.faiss_ann import FastScanIndex
from bioverify.index.faiss_exact import ExactIndex
from bioverify.index.ports import Ids, VectorIndex, Vectors, as_vectors
from bioverify.store.ports import Change, FeedPosition, TemplateStore
from bioverify.store.sealed_files import PLAIN_FILES, FilePlace, FileSealer
from bioverify.store.sealing import unless_unreadable
from bioverify.store.turns import ProcessTurns, TurnFence, Turns

logger = logging.getLogger(__name__)

AnnFactory = Callable[[Ids, Vectors], VectorIndex]

INDEX_LOADERS: dict[str, Callable[[ByteSource], VectorIndex]] = {
    ExactIndex.kind: ExactIndex.load,
    FastScanIndex.kind: FastScanIndex.load,
}
"""Snapshot loaders by ``VectorIndex.kind``."""

SNAPSHOT_FORMAT = 1
_CURRENT = "CURRENT"
_MANIFEST = "manifest.json"


def default_ann(ids: Ids, vectors: Vectors) -> VectorIndex:
    return FastScanIndex.build(ids, vectors, seed=0)


class RWLock:
    """Many readers or one writer; a waiting writer blocks new readers (no writer starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass
class _Partition:
    """One tenant's index and its id ↔ subject maps (ids are unique gallery-wide)."""

    index: VectorIndex
    subjects: dict[int, str]
    ids: dict[str, int]


@dataclass
class _Batch:
    """Net effect of a run of changes on one tenant: subjects to drop, vectors to (re)place,
    and the subjects deleted in the run (even if enrolled again after: a snapshot holding
    their old vector must go)."""

    drop: set[str]
    put: dict[str, npt.NDArray[np.float32]]
    deleted: set[str] = field(default_factory=set)


class Gallery:
    """Per-tenant 1:N search over one (modality, model)'s templates. Thread-safe."""

    def __init__(
        self,
        modality: str,
        model: str,
        dim: int,
        *,
        exact_max: int = 50_000,
        ann_factory: AnnFactory = default_ann,
        search_threads: int | None = 1,
        change_batch: int = 10_000,
        turns: Turns | None = None,
        files: FileSealer = PLAIN_FILES,
    ) -> None:
        """``search_threads`` sets FAISS's OpenMP threads in each searching thread (None: leave
        as is); one query per thread measured faster and steadier than two on 2 cores.
        ``files`` writes and reads the snapshot's files: sealed with the template keys, so a
        snapshot keeps no vector (nor subject id) in the clear where the store keeps none."""
        if exact_max < 1:
            raise ValueError("exact_max must be positive")
        self.modality = modality
        self.model = model
        self.dim = dim
        self.exact_max = exact_max
        self._ann_factory = ann_factory
        self._search_threads = search_threads
        self._change_batch = change_batch
        self._parts: dict[str, _Partition] = {}
        self._seq = 0
        self._epoch: str | None = None  # the store feed's epoch; None: never built from one
        self._next_id = 0
        self._pending: set[str] = set()  # tenants changed since the last maintain()
        self._rw = RWLock()
        self._writer = threading.RLock()  # serialises rebuild / catch_up / save / load
        self._snapshot_dirs: set[Path] = set()  # hold a snapshot of what the gallery holds
        self._stale_snapshots: set[Path] = set()  # hold one that may keep a dropped subject
        self._ready = False  # built from the store (rebuild, or restore done): searchable
        self._turns = turns if turns is not None else ProcessTurns()
        self._files = files

    def enrolment_turn(self, tenant: str) -> AbstractContextManager[TurnFence | None]:
        """Held by an enrolment that searches this tenant for duplicates and then writes: one
        at a time per tenant and modality, so two enrolments of one person under two ids
        arriving together cannot both find the other absent (each writes, and catches the
        gallery up, before the next catches up and searches). Held in this process, or across
        replicas with turns shared through their store (``RedisTurns``)."""
        return self._turns.turn(f"enrolment:{self.modality}:{tenant}")

    # -- reads --------------------------------------------------------------------------------
    @property
    def seq(self) -> int:
        """The store change seq this gallery reflects."""
        return self._seq

    def follows(self, position: FeedPosition) -> bool:
        """Whether the store's feed at ``position`` continues the one this gallery reflects."""
        return position.continues(self._epoch, self._seq)

    def __len__(self) -> int:
        with self._rw.read():
            return sum(len(p.ids) for p in self._parts.values())

    def tenants(self) -> list[str]:
        with self._rw.read():
            return sorted(self._parts)

    @property
    def ready(self) -> bool:
        """Whether the gallery reflects its store (built or restored): until then searches
        raise Unavailable, as an empty gallery would answer that nobody is enrolled."""
        return self._ready

    def _require_ready(self) -> None:
        if not self._ready:
            raise Unavailable(f"the {self.modality} gallery is still loading; retry shortly")

    def size(self, tenant: str) -> int:
        """How many templates ``tenant``'s partition holds (one per subject)."""
        self._require_ready()
        with self._rw.read():
            part = self._parts.get(tenant)
            return len(part.ids) if part is not None else 0

    def describe(self) -> dict[str, tuple[str, int]]:
        """tenant → (index kind, templates)."""
        with self._rw.read():
            return {t: (p.index.kind, len(p.ids)) for t, p in self._parts.items()}

    def search(self, tenant: str, vector: npt.ArrayLike, k: int) -> list[tuple[str, float]]:
        """The ``k`` most similar subjects of ``tenant`` as (subject_id, cosine), best first."""
        query = as_vectors(vector, self.dim)
        if query.shape[0] != 1:
            raise ValueError("search takes one vector")
        return self.search_many(tenant, query, k)[0]

    def search_many(
        self, tenant: str, vectors: npt.ArrayLike, k: int
    ) -> list[list[tuple[str, float]]]:
        """:meth:`search` for each row of ``vectors``, in one index call."""
        self._require_ready()
        query = as_vectors(vectors, self.dim)
        if self._search_threads is not None:
            faiss.omp_set_num_threads(self._search_threads)  # this thread's OpenMP setting
        with self._rw.read():
            part = self._parts.get(tenant)
            if part is None:
                return [[] for _ in range(query.shape[0])]
            scores, ids = part.index.search(query, k)
            return [
                [
                    (part.subjects[int(i)], float(s))
                    for s, i in zip(row_s, row_i, strict=True)
                    if i >= 0
                ]
                for row_s, row_i in zip(scores, ids, strict=True)
            ]

    # -- following the store -----------------------------------------------------------------
    def rebuild(self, store: TemplateStore) -> None:
        """Replace everything with the store's current templates of this modality and model."""
        started = time.perf_counter()
        with self._writer:
            position = store.feed_position()  # before reading: later changes are caught up
            seq = position.seq
            groups: dict[str, tuple[list[str], list[npt.NDArray[np.float32]]]] = {}
            for t in store.iter_templates(self.modality, self.model):
                if t.vector.shape != (self.dim,):
                    logger.warning(
                        "skipping a %s template of dimension %s (gallery dimension %d)",
                        self.modality,
                        t.vector.shape,
                        self.dim,
                    )
                    continue
                subjects, vectors = groups.setdefault(t.tenant, ([], []))
                subjects.append(t.subject_id)
                vectors.append(t.vector)
            next_id = self._next_id
            parts: dict[str, _Partition] = {}
            for tenant, (subjects, vectors) in groups.items():
                ids = np.arange(next_id, next_id + len(subjects), dtype=np.int64)
                next_id += len(subjects)
                parts[tenant] = self._partition(ids, subjects, np.stack(vectors))
            with self._rw.write():
                self._parts, self._seq, self._next_id = parts, seq, next_id
                self._epoch = position.epoch
                self._pending.clear()
                self._ready = True
            self._remove_snapshots("the gallery was rebuilt")  # the old contents: anyone
        logger.info(
            "gallery %s/%s rebuilt: %d templates, %d tenants, seq %d, %.1f s",
            self.modality,
            self.model,
            sum(len(p.ids) for p in parts.values()),
            len(parts),
            seq,
            time.perf_counter() - started,
        )

    def catch_up(self, store: TemplateStore) -> int:
        """Apply every change after ``seq``; returns how many changes were read. When the
        store's feed does not continue the one this gallery reflects, rebuild from the store
        first (searches see the old contents until the new ones are swapped in whole). A
        gallery not yet built or restored reads nothing: ``restore`` (or ``rebuild``) will
        reflect the store as it is then."""
        if not self._ready:
            return 0
        return self._catch_up(store)

    def _catch_up(self, store: TemplateStore) -> int:
        read = 0
        with self._writer:
            position = store.feed_position()
            if not self.follows(position):
                self._log_divergence("gallery", position)
                self.rebuild(store)
            while True:
                changes = store.changes_since(self._seq, self._change_batch)
                if not changes:
                    return read
                read += self.apply_changes(store, changes)

    def apply_changes(self, store: TemplateStore, changes: Sequence[Change]) -> int:
        """Apply changes already fetched (e.g. by ``wait_for_changes``); older ones are skipped."""
        with self._writer:
            fresh = [c for c in changes if c.seq > self._seq]
            if not fresh:
                return 0
            if min(c.seq for c in fresh) > self._seq + 1 and self._pruned_past(store):
                self.rebuild(store)
                return len(fresh)
            batches = self._net_effect(store, fresh)
            dropped = False
            with self._rw.write():
                for tenant, batch in batches.items():
                    dropped |= self._mutate(tenant, batch)
                self._seq = max(c.seq for c in fresh)
            self._pending.update(batches)
            if dropped:
                self._remove_snapshots("a subject it held was dropped")
            return len(fresh)

    def maintain(self) -> int:
        """Rebuild changed partitions whose size calls for the other index kind, or whose
        index asks for it (tombstones); returns how many were rebuilt."""
        rebuilt = 0
        with self._writer:
            if self._stale_snapshots:
                self._remove_snapshots("retrying")  # an earlier removal failed
            pending, self._pending = self._pending, set()
            for tenant in sorted(pending):
                rebuilt += self._reshape(tenant)
        return rebuilt

    def restore(self, store: TemplateStore, snapshot_dir: Path | None = None) -> str:
        """Load the snapshot (if usable) and catch up, else rebuild; returns which was done.
        A snapshot left unused is removed by the rebuild: it may hold subjects deleted since."""
        with self._writer:
            if snapshot_dir is not None:
                self._snapshot_dirs.add(snapshot_dir)
            if snapshot_dir is not None and self.load(snapshot_dir):
                position = store.feed_position()
                if self.follows(position):
                    self._catch_up(store)
                    self.maintain()
                    self._ready = True
                    return "snapshot"
                self._log_divergence("gallery snapshot of", position)
            self.rebuild(store)
            self._catch_up(store)
            self.maintain()
            return "rebuild"

    # -- snapshots ----------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        """Write a snapshot under ``directory`` and point ``CURRENT`` at it; returns its path."""
        with self._writer:  # no mutation can run; searches go on
            self._snapshot_dirs.add(directory)  # a partial one is removed like a whole one
            directory.mkdir(parents=True, exist_ok=True)
            snap = directory / f"snapshot-{self._seq:012d}-{uuid.uuid4().hex[:8]}"
            snap.mkdir()
            try:
                self._write_snapshot(snap)
            except BaseException:
                shutil.rmtree(snap, ignore_errors=True)  # never named by CURRENT: not kept
                raise
            _write_atomic(directory / _CURRENT, snap.name)
            self._stale_snapshots.discard(directory)
            try:
                remove_snapshots(directory, keep=snap.name)
            except OSError as exc:
                logger.warning(
                    "could not remove an older gallery snapshot in %s: %s", directory, exc
                )
                self._stale_snapshots.add(directory)  # the next maintain() removes them all
            return snap

    def _write_snapshot(self, snap: Path) -> None:
        """Every file of a snapshot into the new folder ``snap``, flushed to disk."""
        entries = []
        for n, (tenant, part) in enumerate(sorted(self._parts.items())):
            index_file, map_file = f"p{n:06d}.index", f"p{n:06d}.json"
            with self._files.writing(snap / index_file, self._place(snap, index_file)) as f:
                part.index.save(f)
            ids = list(part.subjects)
            mapping = {"ids": ids, "subjects": [part.subjects[i] for i in ids]}
            self._write_json(snap, map_file, mapping)
            entries.append(
                {
                    "tenant": tenant,
                    "kind": part.index.kind,
                    "index": index_file,
                    "map": map_file,
                }
            )
        manifest = {
            "format": SNAPSHOT_FORMAT,
            "modality": self.modality,
            "model": self.model,
            "dim": self.dim,
            "seq": self._seq,
            "store_epoch": self._epoch,
            "next_id": self._next_id,
            "partitions": entries,
        }
        self._write_json(snap, _MANIFEST, manifest)
        fsync_dir(snap)  # its files are on disk before CURRENT names it

    def load(self, directory: Path) -> bool:
        """Replace the contents with the current snapshot; False (and unchanged) when there is
        none or it was made for another modality, model or dimension, or cannot be read."""
        with self._writer:
            try:
                snap = directory / (directory / _CURRENT).read_text().strip()
            except (OSError, ValueError):
                return False
            try:
                manifest = self._read_json(snap, _MANIFEST)
                if not isinstance(manifest, dict):
                    raise ValueError("its manifest is not a JSON object")
            except (OSError, ValueError) as exc:
                logger.warning("gallery snapshot %s is unreadable (%s); ignoring it", snap, exc)
                return False
            made_for = (manifest.get("modality"), manifest.get("model"), manifest.get("dim"))
            if manifest.get("format") != SNAPSHOT_FORMAT or made_for != (
                self.modality,
                self.model,
                self.dim,
            ):
                logger.info("gallery snapshot %s was made for %s; ignoring it", snap, made_for)
                return False
            try:
                seq, next_id = int(manifest["seq"]), int(manifest["next_id"])
                parts = {e["tenant"]: self._load_partition(snap, e) for e in manifest["partitions"]}
            except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
                logger.warning("gallery snapshot %s is unreadable (%s); ignoring it", snap, exc)
                return False
            epoch = manifest.get("store_epoch")  # absent: made before epochs
            with self._rw.write():
                self._parts = parts
                self._seq = seq
                self._epoch = epoch if isinstance(epoch, str) else None
                self._next_id = next_id
                self._pending = set(parts)
            self._snapshot_dirs.add(directory)
            return True

    # -- internals ----------------------------------------------------------------------------
    def _log_divergence(self, what: str, position: FeedPosition) -> None:
        """Say why ``what`` (the gallery, or the snapshot just loaded) is rebuilt rather than
        caught up. Positions only: no biometric data."""
        if self._epoch is None:
            if self._seq == 0 and not self._parts:
                return  # never built: its first rebuild is no news
            why = "has no store feed epoch (made by an older version)"
        elif self._epoch != position.epoch:
            why = (
                f"reflects store feed epoch {self._epoch[:8]}, but the store's is "
                f"{position.epoch[:8]} (emptied or replaced)"
            )
        else:
            why = (
                f"reflects store seq {self._seq}, but the store is back at {position.seq} "
                "(restored from an older backup?)"
            )
        logger.warning(
            "%s %s/%s %s; rebuilding from the store", what, self.modality, self.model, why
        )

    def _remove_snapshots(self, why: str) -> None:
        """Remove every snapshot this gallery saved or loaded (caller holds ``_writer``); one
        that cannot be removed is logged and tried again by ``maintain()``."""
        self._stale_snapshots |= self._snapshot_dirs
        self._snapshot_dirs.clear()
        self._stale_snapshots = remove_snapshots_in(
            self._stale_snapshots,
            f"gallery {self.modality}/{self.model}",
            why=why,
            retried="retrying",
        )

    def _pruned_past(self, store: TemplateStore) -> bool:
        """Whether the store pruned changes this gallery has not applied (asked after reading
        the changes, so a pruning in between errs towards a rebuild)."""
        pruned = store.pruned_seq()
        if pruned <= self._seq:
            return False
        logger.warning(
            "gallery %s/%s is at seq %d but the store kept only changes after %d; rebuilding",
            self.modality,
            self.model,
            self._seq,
            pruned,
        )
        return True

    def _load_partition(self, snap: Path, entry: dict[str, Any]) -> _Partition:
        loader = INDEX_LOADERS[entry["kind"]]
        name = str(entry["index"])
        with self._files.reading(snap / name, self._place(snap, name)) as f:
            index = loader(f)
        mapping = self._read_json(snap, str(entry["map"]))
        subjects = dict(zip(mapping["ids"], mapping["subjects"], strict=True))
        if index.dim != self.dim or len(index) != len(subjects):
            raise ValueError(f"partition {entry['index']} does not match its id map")
        return _Partition(index, subjects, {s: i for i, s in subjects.items()})

    def _place(self, snap: Path, name: str) -> FilePlace:
        """What a snapshot file's seal binds it to: its snapshot (whose name is unique) and
        its name there. The gallery it was made for is in the manifest, checked once opened,
        so a snapshot of another model is ignored as such, not as an altered file."""
        return FilePlace(
            f"gallery snapshot file {snap.name}/{name}", ("gallery snapshot", snap.name, name)
        )

    def _write_json(self, snap: Path, name: str, value: Any) -> None:
        with self._files.writing(snap / name, self._place(snap, name)) as f:
            f.write(json.dumps(value).encode("utf-8"))

    def _read_json(self, snap: Path, name: str) -> Any:
        with self._files.reading(snap / name, self._place(snap, name)) as f:
            return json.loads(f.read())

    def _partition(self, ids: Ids, subjects: list[str], vectors: Vectors) -> _Partition:
        index = self._new_index(ids, vectors)
        return _Partition(
            index,
            dict(zip(ids.tolist(), subjects, strict=True)),
            dict(zip(subjects, ids.tolist(), strict=True)),
        )

    def _new_index(self, ids: Ids, vectors: Vectors) -> VectorIndex:
        if ids.shape[0] > self.exact_max:
            return self._ann_factory(ids, vectors)
        index = ExactIndex(self.dim)
        index.add(ids, vectors)
        return index

    def _net_effect(self, store: TemplateStore, changes: Sequence[Change]) -> dict[str, _Batch]:
        """Collapse changes to the last op per subject and read the templates upserted; the
        subjects deleted on the way are remembered."""
        last: dict[tuple[str, str], str] = {}
        deleted: set[tuple[str, str]] = set()
        for c in changes:
            if c.modality == self.modality:
                last[(c.tenant, c.subject_id)] = c.op
                if c.op == "delete":
                    deleted.add((c.tenant, c.subject_id))
        batches: dict[str, _Batch] = {}
        for (tenant, subject_id), op in last.items():
            batch = batches.setdefault(tenant, _Batch(set(), {}))
            if (tenant, subject_id) in deleted:
                batch.deleted.add(subject_id)
            if op == "upsert":
                try:  # None (logged): unusable until deleted or enrolled again
                    template = unless_unreadable(
                        partial(store.get_template, tenant, subject_id, self.modality)
                    )
                except NotEnrolled:
                    template = None  # deleted after this change was written
                if template is None:
                    batch.drop.add(subject_id)
                    continue
                if template.model == self.model and template.vector.shape == (self.dim,):
                    batch.put[subject_id] = template.vector
                else:
                    batch.drop.add(subject_id)  # now made by another model
            elif op == "delete":
                batch.drop.add(subject_id)
            else:
                logger.warning("ignoring change %s with unknown op %r", tenant, op)
        return batches

    def _mutate(self, tenant: str, batch: _Batch) -> bool:
        """Apply one tenant's batch in place (caller holds the write lock); returns whether a
        subject the partition held was dropped (or deleted, even if enrolled again since)."""
        part = self._parts.get(tenant)
        if part is None:
            if not batch.put:
                return False
            part = self._parts[tenant] = _Partition(ExactIndex(self.dim), {}, {})
        dropped = any(s in part.ids for s in batch.drop | batch.deleted)
        stale = [part.ids[s] for s in (batch.drop | batch.put.keys()) if s in part.ids]
        if stale:
            part.index.remove(np.asarray(stale, dtype=np.int64))
            for i in stale:
                del part.ids[part.subjects.pop(i)]
        if batch.put:
            subjects = list(batch.put)
            ids = np.arange(self._next_id, self._next_id + len(subjects), dtype=np.int64)
            self._next_id += len(subjects)
            part.index.add(ids, np.stack([batch.put[s] for s in subjects]))
            part.subjects.update(zip(ids.tolist(), subjects, strict=True))
            part.ids.update(zip(subjects, ids.tolist(), strict=True))
        if not part.ids:
            del self._parts[tenant]
        return dropped

    def _reshape(self, tenant: str) -> bool:
        """Rebuild a partition whose size calls for the other kind, or that asks for it.

        Caller holds ``_writer``, so nothing mutates between export and swap; searches keep
        using the old index until the swap.
        """
        part = self._parts.get(tenant)
        if part is None:
            return False
        size = len(part.ids)
        is_exact = isinstance(part.index, ExactIndex)
        if is_exact and size > self.exact_max:
            target = "ann"
        elif not is_exact and size < self.exact_max // 2:
            target = "exact"
        elif part.index.needs_rebuild():
            target = "ann" if not is_exact else "exact"
        else:
            return False
        started = time.perf_counter()
        ids, vectors = part.index.export()
        if target == "ann":
            index = self._ann_factory(ids, vectors)
        else:
            index = ExactIndex(self.dim)
            index.add(ids, vectors)
        with self._rw.write():
            if self._parts.get(tenant) is part:
                part.index = index
        logger.info(
            "gallery %s/%s: tenant partition rebuilt as %s (%d templates, %.1f s)",
            self.modality,
            self.model,
            index.kind,
            size,
            time.perf_counter() - started,
        )
        return True


class GalleryFollower:
    """A daemon thread that keeps a gallery caught up with its store (rebuilding it when the
    store's feed starts over, see ``Gallery.catch_up``), and runs the gallery's
    ``maintain()``, until ``stop()``."""

    def __init__(
        self,
        gallery: Gallery,
        store: TemplateStore,
        poll: float = 1.0,
        *,
        retry: float = 1.0,
        on_store_reachable: Callable[[bool], None] | None = None,
    ) -> None:
        """``poll``: longest wait for a change per round (also the longest ``stop()`` takes);
        ``retry``: pause after a failed round (store down); ``on_store_reachable``: called
        from the follower's thread with False when a round fails because the store is
        unreachable (Unavailable), and with True when a later round has caught up again."""
        self._gallery = gallery
        self._store = store
        self._poll_ms = max(1, int(poll * 1000))
        self._retry = retry
        self._on_store_reachable = on_store_reachable
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"gallery-follower-{gallery.modality}", daemon=True
        )
        self.last_error: BaseException | None = None
        self.store_reachable = True  # as last seen by this follower

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._gallery.catch_up(self._store)
                self._reachable(True)
                if self._stop.is_set():
                    return
                changes = self._store.wait_for_changes(self._gallery.seq, self._poll_ms)
                if changes:
                    self._gallery.apply_changes(self._store, changes)
                self._gallery.maintain()
                self.last_error = None
            except Exception as exc:
                self.last_error = exc
                if isinstance(exc, Unavailable):
                    # An outage is news once (then DEBUG each retry), and our own message
                    # says what it is: no traceback every second while Redis is down.
                    news = self.store_reachable
                    self._reachable(False)
                    logger.log(
                        logging.WARNING if news else logging.DEBUG,
                        "gallery %s: the template store is unavailable (%s); retrying every %.1f s",
                        self._gallery.modality,
                        exc,
                        self._retry,
                    )
                else:
                    logger.warning(
                        "gallery %s: catching up failed (%s); retrying in %.1f s",
                        self._gallery.modality,
                        exc,
                        self._retry,
                        exc_info=True,
                    )
                self._stop.wait(self._retry)

    def _reachable(self, reachable: bool) -> None:
        if reachable == self.store_reachable:
            return
        self.store_reachable = reachable
        if self._on_store_reachable is not None:
            try:
                self._on_store_reachable(reachable)
            except Exception:  # the listener's bug must not stop the follower
                logger.exception("gallery %s: store state listener failed", self._gallery.modality)


def remove_snapshots(directory: Path, keep: str | None = None) -> int:
    """Remove the gallery snapshots under ``directory`` but ``keep`` (a snapshot folder's
    name); returns how many were removed. ``CURRENT`` goes first unless it names ``keep``, so
    a crash midway leaves nothing to load; the directory is synced so the removal is durable."""
    if not directory.is_dir():
        return 0
    current = directory / _CURRENT
    try:
        points_at_keep = keep is not None and current.read_text().strip() == keep
    except FileNotFoundError:
        points_at_keep = False
    if not points_at_keep:
        current.unlink(missing_ok=True)
    (directory / (_CURRENT + ".tmp")).unlink(missing_ok=True)
    removed = 0
    for old in sorted(directory.glob("snapshot-*")):
        if old.name != keep:
            shutil.rmtree(old)
            removed += 1
    fsync_dir(directory)
    return removed


def remove_snapshots_in(
    directories: Iterable[Path], owner: str, *, why: str, retried: str
) -> set[Path]:
    """``remove_snapshots`` in each directory, each removal and failure logged (a failure
    may leave deleted subjects on disk, so it is an error naming when it is ``retried``);
    returns the directories whose removal failed."""
    failed = set()
    for directory in sorted(directories):
        try:
            removed = remove_snapshots(directory)
        except OSError as exc:
            logger.error(
                "%s: could not remove the snapshot in %s, which may hold deleted subjects (%s); %s",
                owner,
                directory,
                exc,
                retried,
            )
            failed.add(directory)
            continue
        if removed:
            logger.info("%s: snapshot in %s removed (%s)", owner, directory, why)
    return failed


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
