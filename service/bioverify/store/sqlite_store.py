"""The embedded default store: one SQLite file in WAL mode with ``synchronous=FULL``, so an
enrollment acknowledged to a client survives a crash of the process or the machine.

Erasure: the connection runs with ``secure_delete=ON``, so SQLite overwrites the content it
deletes (a deleted or replaced template's rows, the pages they free) with zeros instead of
leaving it in free pages, and a delete ends with ``wal_checkpoint(TRUNCATE)``: the zeroed pages
reach the database file and the write-ahead log, whose older frames still hold the deleted
templates, is cut to 0 bytes. Only then is a deleted subject's embedding gone from the files."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bioverify.errors import ConfigurationError, NotEnrolled, Unavailable
from bioverify.store.ports import (
    DEFAULT_CHANGE_RETENTION,
    Change,
    FeedPosition,
    StoredTemplate,
    SubjectRecord,
    Template,
    TemplateSummary,
    TemplateWrite,
    apply_write,
    check_expected,
    check_metadata_entries,
    listing_bytes,
    utc_now,
)
from bioverify.store.sealing import (
    NO_SEALING,
    BlobSealer,
    LeftOut,
    SubjectMetadata,
    TemplateBlobs,
    metadata_or_why,
    unless_unreadable,
)
from bioverify.store.turns import ProcessTurns

SCHEMA = """
CREATE TABLE IF NOT EXISTS subjects (
    tenant TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant, subject_id)
);
CREATE TABLE IF NOT EXISTS templates (
    tenant TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    modality TEXT NOT NULL,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    samples BLOB NOT NULL,
    sample_count INTEGER NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}',
    sample_ids TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, subject_id, modality),
    FOREIGN KEY (tenant, subject_id) REFERENCES subjects (tenant, subject_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS templates_by_model ON templates (modality, model);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    tenant TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    modality TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Columns added to ``templates`` since its first version, added on open to older databases.
# A template a migration finds gets revision 0; its next write gives it a real one.
_ADDED_COLUMNS = (
    ("sample_ids", "TEXT NOT NULL DEFAULT '[]'"),
    ("revision", "INTEGER NOT NULL DEFAULT 0"),
)

_POLL_SECONDS = 0.05
# How long the checkpoint after a delete waits for another process's readers or writer of the
# same file; it runs under the store's lock, so every request of this process waits too.
_CHECKPOINT_BUSY_MS = 2_000
_BUSY_MS = 30_000

logger = logging.getLogger(__name__)


class SqliteTemplateStore:
    name = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        change_retention: int = DEFAULT_CHANGE_RETENTION,
        sealer: BlobSealer = NO_SEALING,
    ) -> None:
        """``change_retention``: how many of the newest changes the change feed keeps;
        ``sealer``: how embeddings are sealed at rest (see ``bioverify.store.sealing``)."""
        if change_retention < 1:
            raise ConfigurationError("the change retention must be positive")
        self._sealer = sealer
        self._turns = ProcessTurns()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._retention = change_retention
        self._lock = threading.Lock()
        self._wal_holds_deleted = False  # a checkpoint after a delete could not truncate the WAL
        try:
            self._conn = sqlite3.connect(
                str(path),
                check_same_thread=False,
                isolation_level=None,
                timeout=_BUSY_MS / 1000.0,
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA secure_delete=ON")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(SCHEMA)
            self._migrate()
            self._ensure_epoch()
        except sqlite3.Error as exc:
            raise Unavailable(f"cannot open the template database at {path}: {exc}") from exc

    def turns(self) -> ProcessTurns:
        """This process's: another process writing the same file does not take them."""
        return self._turns

    # -- writes -----------------------------------------------------------------------------
    def save(self, write: TemplateWrite) -> Template:
        with self._lock:
            with self._transaction() as cur:
                saved = self._save(cur, write, utc_now())
                self._prune_changes(cur)
            self._retry_truncate()
        return saved

    def save_many(self, writes: Sequence[TemplateWrite]) -> list[Template]:
        """Every write in one transaction (one commit, one fsync): all saved or none."""
        now = utc_now()
        with self._lock:
            with self._transaction() as cur:
                saved = [self._save(cur, w, now) for w in writes]
                self._prune_changes(cur)
            self._retry_truncate()
        return saved

    def _save(self, cur: sqlite3.Cursor, w: TemplateWrite, now: str) -> Template:
        tenant, subject_id, modality = w.tenant, w.subject_id, w.modality
        existing = cur.execute(
            "SELECT model, dim, samples, extra, created_at, sample_ids, revision FROM templates "
            "WHERE tenant=? AND subject_id=? AND modality=?",
            (tenant, subject_id, modality),
        ).fetchone()
        check_expected(w, existing[6] if existing is not None else None)
        old: StoredTemplate | None = None
        blobs = TemplateBlobs(self._sealer, tenant, subject_id, modality)
        if existing is not None and not w.replace:  # a replaced template is not parsed
            old_model, dim, blob, old_extra, created, old_ids, _ = existing
            old = StoredTemplate(
                model=old_model,
                samples=blobs.open_samples(blob, dim),
                sample_ids=json.loads(old_ids),
                extra=json.loads(old_extra),
                created_at=created,
            )
        t = apply_write(w, old, now)
        vector_blob, samples_blob = blobs.seal(t.vector, t.samples)
        row = cur.execute(
            "SELECT metadata, created_at FROM subjects WHERE tenant=? AND subject_id=?",
            (tenant, subject_id),
        ).fetchone()
        stored_metadata = self._metadata(tenant, subject_id, row[0]) if row else {}
        check_metadata_entries(w, stored_metadata.keys())
        merged = {**stored_metadata, **dict(w.metadata)}
        subject_created = row[1] if row else now
        cur.execute(
            "INSERT INTO subjects (tenant, subject_id, metadata, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, subject_id) DO UPDATE SET "
            "metadata=excluded.metadata, updated_at=excluded.updated_at",
            (
                tenant,
                subject_id,
                SubjectMetadata(self._sealer, tenant, subject_id).seal(
                    json.dumps(merged, sort_keys=True)
                ),
                subject_created,
                now,
            ),
        )
        seq = cur.execute(
            "INSERT INTO changes (op, tenant, subject_id, modality) VALUES ('upsert', ?, ?, ?)",
            (tenant, subject_id, modality),
        ).lastrowid
        cur.execute(
            "INSERT OR REPLACE INTO templates (tenant, subject_id, modality, model, dim, "
            "vector, samples, sample_count, extra, sample_ids, created_at, updated_at, "
            "revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                tenant,
                subject_id,
                modality,
                t.model,
                int(t.samples.shape[1]),
                vector_blob,
                samples_blob,
                t.sample_count,
                json.dumps(dict(t.extra), sort_keys=True),
                json.dumps(list(t.sample_ids)),
                t.created_at,
                now,
                seq,
            ),
        )
        return dataclasses.replace(t, revision=int(seq or 0))

    def delete_subject(self, tenant: str, subject_id: str) -> int:
        with self._lock:
            count = self._delete_subject(tenant, subject_id)
            self._truncate_wal()
        return count

    def erase_replaced(self) -> bool:
        """Cut the write-ahead log, whose older frames still hold what writes replaced (as on
        a delete): e.g. plain templates once ``bioverify seal-templates`` has sealed them.
        False when another connection kept it from being cut (it is cut after a later
        write)."""
        with self._lock:
            self._truncate_wal()
            return not self._wal_holds_deleted

    def _delete_subject(self, tenant: str, subject_id: str) -> int:
        with self._transaction() as cur:
            modalities = [
                r[0]
                for r in cur.execute(
                    "SELECT modality FROM templates WHERE tenant=? AND subject_id=?",
                    (tenant, subject_id),
                )
            ]
            deleted = cur.execute(
                "DELETE FROM subjects WHERE tenant=? AND subject_id=?", (tenant, subject_id)
            ).rowcount
            if deleted == 0:
                raise NotEnrolled(f"subject {subject_id!r} is not enrolled")
            cur.execute(
                "DELETE FROM templates WHERE tenant=? AND subject_id=?", (tenant, subject_id)
            )
            for modality in modalities:
                cur.execute(
                    "INSERT INTO changes (op, tenant, subject_id, modality) "
                    "VALUES ('delete', ?, ?, ?)",
                    (tenant, subject_id, modality),
                )
            self._prune_changes(cur)
        return len(modalities)

    # -- reads ------------------------------------------------------------------------------
    def get_template(self, tenant: str, subject_id: str, modality: str) -> Template:
        with self._lock:
            row = self._query_one(
                "SELECT model, dim, vector, samples, extra, created_at, updated_at, sample_ids, "
                "revision FROM templates "
                "WHERE tenant=? AND subject_id=? AND modality=?",
                (tenant, subject_id, modality),
            )
        if row is None:
            raise NotEnrolled(f"subject {subject_id!r} has no enrolled {modality} template")
        return self._template(tenant, subject_id, modality, row)

    def get_subject(self, tenant: str, subject_id: str) -> SubjectRecord:
        with self._lock:
            row = self._query_one(
                "SELECT metadata, created_at, updated_at FROM subjects "
                "WHERE tenant=? AND subject_id=?",
                (tenant, subject_id),
            )
            if row is None:
                raise NotEnrolled(f"subject {subject_id!r} is not enrolled")
            summaries = self._summaries(tenant, [subject_id])
        return SubjectRecord(
            tenant=tenant,
            subject_id=subject_id,
            metadata=self._metadata(tenant, subject_id, row[0]),
            templates=summaries.get(subject_id, ()),
            created_at=row[1],
            updated_at=row[2],
        )

    def list_subjects(
        self, tenant: str, *, limit: int, after: str = "", modality: str = "", max_bytes: int = 0
    ) -> list[SubjectRecord]:
        """Rows are read one at a time, so ``max_bytes`` bounds what is parsed and held."""
        sql = "SELECT s.subject_id, s.metadata, s.created_at, s.updated_at FROM subjects s "
        args: list[object] = [tenant, after]
        if modality:
            sql += (
                "WHERE s.tenant=? AND s.subject_id>? AND EXISTS (SELECT 1 FROM templates t "
                "WHERE t.tenant=s.tenant AND t.subject_id=s.subject_id AND t.modality=?) "
            )
            args.append(modality)
        else:
            sql += "WHERE s.tenant=? AND s.subject_id>? "
        sql += "ORDER BY s.subject_id LIMIT ?"
        args.append(limit)
        rows: list[tuple[str, dict[str, str], str, str, str]] = []
        total = 0
        with self._lock, _reading():
            # closed when done: an unfinished statement would hold its read snapshot, which
            # keeps the checkpoint after a delete from truncating the WAL
            with contextlib.closing(self._conn.execute(sql, tuple(args))) as cursor:
                for subject_id, metadata, created_at, updated_at in cursor:
                    opened, why = metadata_or_why(
                        partial(self._metadata, tenant, subject_id, metadata)
                    )
                    rows.append((subject_id, opened, created_at, updated_at, why))
                    total += listing_bytes(subject_id, rows[-1][1])
                    if max_bytes and len(rows) >= 2 and total > max_bytes:
                        break
            summaries = self._summaries(tenant, [r[0] for r in rows])
        return [
            SubjectRecord(
                tenant=tenant,
                subject_id=subject_id,
                metadata=metadata,
                templates=summaries.get(subject_id, ()),
                created_at=created_at,
                updated_at=updated_at,
                unreadable_metadata=why,
            )
            for subject_id, metadata, created_at, updated_at, why in rows
        ]

    def _metadata(self, tenant: str, subject_id: str, stored: bytes | str) -> dict[str, str]:
        """A subject's metadata as stored (JSON text, or sealed bytes of it)."""
        text = SubjectMetadata(self._sealer, tenant, subject_id).open(stored)
        metadata: dict[str, str] = json.loads(text)
        return metadata

    def iter_templates(
        self, modality: str, model: str = "", *, left_out: LeftOut | None = None
    ) -> Iterator[Template]:
        sql = (
            "SELECT tenant, subject_id, model, dim, vector, samples, extra, created_at, "
            "updated_at, sample_ids, revision FROM templates WHERE modality=?"
        )
        args: tuple[object, ...] = (modality,)
        if model:
            sql += " AND model=?"
            args = (modality, model)
        with self._lock:
            rows = self._query_all(sql, args)
        for r in rows:
            read = partial(self._template, r[0], r[1], modality, r[2:])
            template = unless_unreadable(read, left_out)
            if template is not None:
                yield template

    def changes_since(self, seq: int, limit: int = 10_000) -> list[Change]:
        with self._lock:
            rows = self._query_all(
                "SELECT seq, op, tenant, subject_id, modality FROM changes WHERE seq>? "
                "ORDER BY seq LIMIT ?",
                (seq, limit),
            )
        return [
            Change(seq=r[0], op=r[1], tenant=r[2], subject_id=r[3], modality=r[4]) for r in rows
        ]

    def latest_seq(self) -> int:
        with self._lock:
            row = self._query_one("SELECT COALESCE(MAX(seq), 0) FROM changes", ())
        return int(row[0])

    def feed_position(self) -> FeedPosition:
        with self._lock:
            row = self._query_one(
                "SELECT (SELECT value FROM meta WHERE key='feed_epoch'), "
                "(SELECT COALESCE(MAX(seq), 0) FROM changes)",
                (),
            )
        return FeedPosition(epoch=str(row[0]), seq=int(row[1]))

    def pruned_seq(self) -> int:
        """One less than the oldest change kept; the newest seq when none is kept."""
        with self._lock:
            row = self._query_one(
                "SELECT MIN(seq), (SELECT seq FROM sqlite_sequence WHERE name='changes') "
                "FROM changes",
                (),
            )
        if row[0] is not None:
            return int(row[0]) - 1
        return int(row[1] or 0)

    def wait_for_changes(
        self, after_seq: int, timeout_ms: int, limit: int = 10_000
    ) -> list[Change]:
        """Changes after ``after_seq``, polling every 50 ms for up to ``timeout_ms``."""
        deadline = time.monotonic() + max(timeout_ms, 0) / 1000.0
        while True:
            changes = self.changes_since(after_seq, limit)
            remaining = deadline - time.monotonic()
            if changes or remaining <= 0:
                return changes
            time.sleep(min(_POLL_SECONDS, remaining))

    def ping(self) -> None:
        with self._lock:
            self._query_one("SELECT 1", ())

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- helpers ----------------------------------------------------------------------------
    def _prune_changes(self, cur: sqlite3.Cursor) -> None:
        """Drop the changes older than the newest ``change_retention`` (in the write's
        transaction; secure_delete zeroes them)."""
        cur.execute(
            "DELETE FROM changes WHERE seq <= (SELECT MAX(seq) FROM changes) - ?",
            (self._retention,),
        )

    def _truncate_wal(self) -> None:
        """Checkpoint the WAL into the database and cut it to 0 bytes (caller holds the lock;
        no transaction open). The delete is committed whatever happens here: when another
        process keeps the checkpoint from finishing, it is logged and retried after the next
        write, and the log keeps deleted bytes until then."""
        try:
            self._conn.execute(f"PRAGMA busy_timeout={_CHECKPOINT_BUSY_MS}")
            try:
                busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                self._conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        except sqlite3.Error as exc:
            busy = 1
            logger.warning("checkpoint after a delete failed: %s", exc)
        if busy:
            if not self._wal_holds_deleted:
                logger.warning(
                    "the SQLite write-ahead log could not be truncated after a delete (another "
                    "connection to %s is busy); it still holds deleted templates until the "
                    "next write truncates it",
                    self._path,
                )
            self._wal_holds_deleted = True
        else:
            self._wal_holds_deleted = False

    def _retry_truncate(self) -> None:
        if self._wal_holds_deleted:
            self._truncate_wal()

    def _migrate(self) -> None:
        """Add the columns a database made by an older version lacks (see _ADDED_COLUMNS)."""

        def missing() -> list[tuple[str, str]]:
            have = {r[1] for r in self._conn.execute("PRAGMA table_info(templates)")}
            return [c for c in _ADDED_COLUMNS if c[0] not in have]

        if not missing():  # a current database is not even locked
            return
        with self._transaction() as cur:  # another process may be migrating it too
            for name, definition in missing():
                cur.execute(f"ALTER TABLE templates ADD COLUMN {name} {definition}")

    def _ensure_epoch(self) -> None:
        """Give the database its feed epoch (once: a new one, or one made before epochs)."""
        if self._conn.execute("SELECT 1 FROM meta WHERE key='feed_epoch'").fetchone():
            return
        with self._transaction() as cur:  # another process may be opening it too
            cur.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('feed_epoch', ?)",
                (uuid.uuid4().hex,),
            )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    def _query_one(self, sql: str, args: tuple[object, ...]) -> Any:
        with _reading():
            return self._conn.execute(sql, args).fetchone()

    def _query_all(self, sql: str, args: tuple[object, ...]) -> list[Any]:
        with _reading():
            return list(self._conn.execute(sql, args).fetchall())

    def _summaries(
        self, tenant: str, subject_ids: list[str]
    ) -> dict[str, tuple[TemplateSummary, ...]]:
        if not subject_ids:
            return {}
        marks = ",".join("?" * len(subject_ids))
        rows = self._query_all(
            "SELECT subject_id, modality, model, sample_count, created_at, updated_at "
            f"FROM templates WHERE tenant=? AND subject_id IN ({marks}) ORDER BY modality",
            (tenant, *subject_ids),
        )
        out: dict[str, list[TemplateSummary]] = {}
        for r in rows:
            out.setdefault(str(r[0]), []).append(
                TemplateSummary(
                    modality=str(r[1]),
                    model=str(r[2]),
                    sample_count=int(r[3]),
                    created_at=str(r[4]),
                    updated_at=str(r[5]),
                )
            )
        return {k: tuple(v) for k, v in out.items()}

    def _template(self, tenant: str, subject_id: str, modality: str, row: Any) -> Template:
        model, dim, vector, samples, extra, created, updated, ids, revision = row
        vector, samples = TemplateBlobs(self._sealer, tenant, subject_id, modality).open(
            vector, samples, int(dim)
        )
        return Template(
            tenant=tenant,
            subject_id=subject_id,
            modality=modality,
            model=str(model),
            vector=vector,
            samples=samples,
            created_at=str(created),
            updated_at=str(updated),
            extra=json.loads(str(extra)),
            sample_ids=tuple(json.loads(str(ids))),
            revision=int(revision),
        )


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any exception (nothing half-written)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Cursor:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise Unavailable("the template database is not writable right now") from exc
        return self._conn.cursor()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as err:
                self._conn.execute("ROLLBACK")
                raise Unavailable("the template database could not commit the change") from err
            return
        self._conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise Unavailable("the template database could not apply the change") from exc


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    """A read of the database: its failure is Unavailable (retry), named for the client."""
    try:
        yield
    except sqlite3.Error as exc:
        raise Unavailable("the template database cannot be read") from exc
