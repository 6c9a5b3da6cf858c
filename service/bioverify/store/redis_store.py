"""The shared store: templates in Redis, so several replicas serve one population.

Key layout (``P`` is the key prefix; tenant and modality are escaped so ``:`` stays a separator)::

    P seq                          INCR counter: the change sequence
    P epoch                        random id of the change feed, set by the first
                                   ``feed_position`` that finds none (a new or emptied Redis)
    P changes                      stream; entry id ``<seq>-0``; op, tenant, subject_id, modality;
                                   trimmed to the newest ``change_retention`` entries
    P subj:<tenant>:<subject>      hash: c, u, v (seq of its last change), m:<key> metadata,
                                   t:<modality> JSON summary {model, n, c, u}
    P tpl:<tenant>:<modality>:<subject>
                                   hash: tenant, subject_id, modality, model, dim, n,
                                   vec (float32 template), samples (float32 n x dim), extra, c, u,
                                   ids, rev (seq of the change that wrote it; absent: 0)
    P subjects:<tenant>            zset (score 0) of subject ids, paged with ZRANGEBYLEX
    P subjects:<tenant>:<modality> zset of the subject ids holding that modality
    P idx:<modality>:<model>       zset (score 0) of template keys, paged by iter_templates
    P models:<modality>            set of models that have templates of that modality
    P op:<token>                   short-lived result of a write, so a retried write is not doubled

Writes are optimistic: read the subject (one MULTI/EXEC), compute the new template in numpy,
then run one Lua script that applies everything only if the subject's version ``v`` is still
the one read (else read again). A script runs atomically; every command that can fail
(INCR, XADD) runs before the first data write, so no template is ever half-written. The change
is appended to the stream inside the same script, so a follower that sees seq N also sees its data.
Every write and delete of a subject changes ``v``, so a script that runs wrote over the
template as read: a write's compare-and-set expectation (``TemplateWrite.expected``) is checked
on that read, and a template written before revisions (no ``rev``) counts as revision 0.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import redis

from bioverify.errors import ConfigurationError, NotEnrolled, TemplateUnreadable, Unavailable
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
    template_changed,
    utc_now,
)
from bioverify.store.redis_connection import (
    CREDENTIALS_REFUSED,
    RedisErrors,
    connect,
    key_part,
    unescape_key_part,
)
from bioverify.store.redis_turns import RedisTurns
from bioverify.store.sealing import (
    NO_SEALING,
    SEALED_PREFIX,
    SEALING_OVERHEAD,
    BlobSealer,
    LeftOut,
    SubjectMetadata,
    TemplateBlobs,
    metadata_or_why,
    unless_unreadable,
)

logger = logging.getLogger(__name__)

STORE_NAME = "the template store (Redis)"
UNREACHABLE = RedisErrors(STORE_NAME, logger).unreachable
_CONFLICT, _APPLIED, _ALREADY_APPLIED, _TURN_LOST, _GONE = 0, 1, 2, 3, -1
_MAX_ATTEMPTS = 200
_OP_TTL_SECONDS = 120
_PAGE = 500
_TEMPLATE_FIELDS = (
    "tenant",
    "subject_id",
    "model",
    "dim",
    "vec",
    "samples",
    "extra",
    "c",
    "u",
    "ids",
    "rev",
)

# KEYS: seq, changes, op, subj, tpl, subjects, subjects-of-modality, idx(new model),
#       models(modality), idx(old model)[, turn]
# ARGV: expected v, tenant, subject, modality, model, old model, dim, n, vec, samples, extra,
#       created, now, summary, op ttl, sample ids (JSON), change retention, turn token ('':
#       none), metadata field/value pairs...
# Returns {3, 0} (nothing written) when the write's turn is no longer held with its token.
_SAVE_LUA = """
local done = redis.call('GET', KEYS[3])
if done then return {2, tonumber(done)} end
if #KEYS >= 11 and redis.call('GET', KEYS[11]) ~= ARGV[18] then return {3, 0} end
local v = redis.call('HGET', KEYS[4], 'v')
if (v or '') ~= ARGV[1] then return {0, 0} end
local seq = string.format('%d', redis.call('INCR', KEYS[1]))
redis.call('XADD', KEYS[2], seq .. '-0', 'op', 'upsert', 'tenant', ARGV[2],
           'subject_id', ARGV[3], 'modality', ARGV[4])
redis.call('XTRIM', KEYS[2], 'MAXLEN', ARGV[17])
redis.call('HSETNX', KEYS[4], 'c', ARGV[13])
redis.call('HSET', KEYS[4], 'u', ARGV[13], 'v', seq, 't:' .. ARGV[4], ARGV[14])
for i = 19, #ARGV, 2 do redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]) end
redis.call('DEL', KEYS[5])
redis.call('HSET', KEYS[5], 'tenant', ARGV[2], 'subject_id', ARGV[3], 'modality', ARGV[4],
           'model', ARGV[5], 'dim', ARGV[7], 'n', ARGV[8], 'vec', ARGV[9], 'samples', ARGV[10],
           'extra', ARGV[11], 'c', ARGV[12], 'u', ARGV[13], 'ids', ARGV[16], 'rev', seq)
if ARGV[6] ~= '' and ARGV[6] ~= ARGV[5] then
  redis.call('ZREM', KEYS[10], KEYS[5])
  if redis.call('ZCARD', KEYS[10]) == 0 then redis.call('SREM', KEYS[9], ARGV[6]) end
end
redis.call('ZADD', KEYS[8], 0, KEYS[5])
redis.call('SADD', KEYS[9], ARGV[5])
redis.call('ZADD', KEYS[6], 0, ARGV[3])
redis.call('ZADD', KEYS[7], 0, ARGV[3])
redis.call('SET', KEYS[3], seq, 'EX', ARGV[15])
return {1, tonumber(seq)}
"""

# KEYS: seq, changes, op, subj, subjects, then per template: tpl, subjects-of-modality, idx, models
# ARGV: expected v, tenant, subject, op ttl, change retention, then per template: modality, model
_DELETE_LUA = """
local done = redis.call('GET', KEYS[3])
if done then return {2, tonumber(done)} end
local v = redis.call('HGET', KEYS[4], 'v')
if not v then return {-1, 0} end
if v ~= ARGV[1] then return {0, 0} end
local m = (#KEYS - 5) / 4
for i = 0, m - 1 do
  local seq = string.format('%d', redis.call('INCR', KEYS[1]))
  redis.call('XADD', KEYS[2], seq .. '-0', 'op', 'delete', 'tenant', ARGV[2],
             'subject_id', ARGV[3], 'modality', ARGV[6 + 2 * i])
end
redis.call('XTRIM', KEYS[2], 'MAXLEN', ARGV[5])
for i = 0, m - 1 do
  local tpl, idx = KEYS[6 + 4 * i], KEYS[8 + 4 * i]
  redis.call('DEL', tpl)
  redis.call('ZREM', KEYS[7 + 4 * i], ARGV[3])
  redis.call('ZREM', idx, tpl)
  if redis.call('ZCARD', idx) == 0 then redis.call('SREM', KEYS[9 + 4 * i], ARGV[7 + 2 * i]) end
end
redis.call('DEL', KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[3])
redis.call('SET', KEYS[3], m, 'EX', ARGV[4])
return {1, m}
"""

# KEYS: epoch, seq. ARGV: a new epoch, set if there is none. The feed's epoch and seq at once.
_POSITION_LUA = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
return {epoch, redis.call('GET', KEYS[2]) or '0'}
"""

# KEYS: subjects zset (of the modality). ARGV: after, limit, subject key prefix, max bytes (0:
# none), sealed value prefix, sealing overhead (bytes a sealed value has over its text). One
# atomic page of subjects; it stops as SqliteTemplateStore.list_subjects does: once two
# subjects or more are read and the listing_bytes of those read (id, metadata keys and values,
# as text) pass max bytes.
_LIST_LUA = """
local min = '-'
if ARGV[1] ~= '' then min = '(' .. ARGV[1] end
local ids = redis.call('ZRANGEBYLEX', KEYS[1], min, '+', 'LIMIT', 0, tonumber(ARGV[2]))
local max_bytes = tonumber(ARGV[4])
local out, read, total = {}, 0, 0
for _, id in ipairs(ids) do
  local fields = redis.call('HGETALL', ARGV[3] .. id)
  out[#out + 1] = id
  out[#out + 1] = fields
  if #fields > 0 then
    read = read + 1
    total = total + #id
    for i = 1, #fields, 2 do
      if string.sub(fields[i], 1, 2) == 'm:' then
        local value = #fields[i + 1]
        if string.sub(fields[i + 1], 1, #ARGV[5]) == ARGV[5] then
          value = math.max(value - tonumber(ARGV[6]), 0)
        end
        total = total + #fields[i] - 2 + value
      end
    end
    if max_bytes > 0 and read >= 2 and total > max_bytes then break end
  end
end
return out
"""


def _str(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class RedisTemplateStore:
    """TemplateStore on Redis (redis-py + hiredis); thread-safe, reconnects by itself."""

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "bioverify:",
        socket_timeout: float = 2.0,
        connect_timeout: float | None = None,
        retries: int = 2,
        max_connections: int = 64,
        change_retention: int = DEFAULT_CHANGE_RETENTION,
        sealer: BlobSealer = NO_SEALING,
    ) -> None:
        """``change_retention``: how many of the newest changes the change stream keeps;
        ``sealer``: how embeddings are sealed at rest (see ``bioverify.store.sealing``)."""
        if change_retention < 1:
            raise ConfigurationError("the change retention must be positive")
        self._sealer = sealer
        self._redis: redis.Redis = connect(
            url,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
            retries=retries,
            max_connections=max_connections,
        )
        self._socket_timeout = socket_timeout
        self._retention = change_retention
        self._p = key_prefix
        self._seq_key = key_prefix + "seq"
        self._stream = key_prefix + "changes"
        self._epoch_key = key_prefix + "epoch"
        self._save = self._redis.register_script(_SAVE_LUA)
        self._delete = self._redis.register_script(_DELETE_LUA)
        self._list = self._redis.register_script(_LIST_LUA)
        self._position = self._redis.register_script(_POSITION_LUA)
        self._errors = RedisErrors(STORE_NAME, logger)
        self._translate = self._errors.translate

    def turns(self) -> RedisTurns:
        """Turns shared by every replica of this store, on its connection."""
        return RedisTurns(self._redis, self._errors, key_prefix=self._p)

    # -- keys -------------------------------------------------------------------------------
    def _subject_key(self, tenant: str, subject_id: str) -> str:
        return f"{self._p}subj:{key_part(tenant)}:{subject_id}"

    def _template_key(self, tenant: str, subject_id: str, modality: str) -> str:
        return f"{self._p}tpl:{key_part(tenant)}:{key_part(modality)}:{subject_id}"

    def _stored_where(self, key: bytes) -> tuple[str, str]:
        """The (tenant, subject id) a template key names (see ``_template_key``)."""
        rest = _str(key)[len(f"{self._p}tpl:") :]
        tenant, _, rest = rest.partition(":")
        _, _, subject_id = rest.partition(":")  # the modality, then the id as it is
        return unescape_key_part(tenant), subject_id

    def _subjects_key(self, tenant: str, modality: str = "") -> str:
        key = f"{self._p}subjects:{key_part(tenant)}"
        return f"{key}:{key_part(modality)}" if modality else key

    def _index_key(self, modality: str, model: str) -> str:
        return f"{self._p}idx:{key_part(modality)}:{key_part(model)}"

    def _models_key(self, modality: str) -> str:
        return f"{self._p}models:{key_part(modality)}"

    # -- writes -----------------------------------------------------------------------------
    def save(self, write: TemplateWrite) -> Template:
        op_key = f"{self._p}op:{uuid.uuid4().hex}"
        with self._translate():
            for attempt in range(_MAX_ATTEMPTS):
                with self._redis.pipeline(transaction=True) as pipe:
                    self._read_for_save(pipe, write)
                    read = pipe.execute()
                keys, args, template = self._prepare_save(write, read, op_key)
                status, seq = self._save(keys=keys, args=args)
                if status == _TURN_LOST:
                    raise _turn_lost(write)
                if status != _CONFLICT:
                    return dataclasses.replace(template, revision=int(seq))
                _backoff(attempt)
        raise _too_busy()

    def save_many(self, writes: Sequence[TemplateWrite]) -> list[Template]:
        """Runs of writes to distinct subjects, each run in one pipelined round trip for the
        reads and one for the scripts. A write that lost a race to another writer is redone
        alone right after its run. Expectations are all checked first (one more round trip,
        only when a write has one), so a batch that fails one of them saves nothing. Writes
        made in a turn (``turn``) go through ``save``: a batch's scripts are not one
        transaction, so a turn lost midway would leave part of it written."""
        if any(w.turn is not None for w in writes):
            raise ValueError("save_many takes no write made in a turn; save each one")
        self._check_expectations(writes)
        out: list[Template] = []
        run: list[TemplateWrite] = []
        subjects: set[tuple[str, str]] = set()
        for w in writes:
            if (w.tenant, w.subject_id) in subjects:
                out += self._save_run(run)
                run, subjects = [], set()
            run.append(w)
            subjects.add((w.tenant, w.subject_id))
        out += self._save_run(run)
        return out

    def _save_run(self, writes: Sequence[TemplateWrite]) -> list[Template]:
        if not writes:
            return []
        op_keys = [f"{self._p}op:{uuid.uuid4().hex}" for _ in writes]
        with self._translate():
            with self._redis.pipeline(transaction=True) as pipe:  # one consistent read
                for w in writes:
                    self._read_for_save(pipe, w)
                reads = pipe.execute()
            prepared = [
                self._prepare_save(w, reads[3 * i : 3 * i + 3], op_keys[i])
                for i, w in enumerate(writes)
            ]
            with self._redis.pipeline(transaction=False) as pipe:
                for keys, args, _ in prepared:
                    self._save(keys=keys, args=args, client=pipe)
                statuses = pipe.execute()
        out: list[Template] = []
        for w, (_, _, template), (status, seq) in zip(writes, prepared, statuses, strict=True):
            if status == _CONFLICT:
                out.append(self.save(w))
            else:
                out.append(dataclasses.replace(template, revision=int(seq)))
        return out

    def _check_expectations(self, writes: Sequence[TemplateWrite]) -> None:
        """TemplateChanged unless every expectation of the batch holds of the store as it is
        now, in order: a write expecting anything of a template an earlier write of the batch
        makes fails. The scripts check them again, atomically, as they write."""
        expecting = [w for w in writes if w.expected is not None]
        if not expecting:
            return
        with self._translate(), self._redis.pipeline(transaction=True) as pipe:
            for w in expecting:
                pipe.hmget(self._template_key(w.tenant, w.subject_id, w.modality), ["model", "rev"])
            rows = iter(pipe.execute())
        written: set[tuple[str, str, str]] = set()
        for w in writes:
            key = (w.tenant, w.subject_id, w.modality)
            if w.expected is not None:
                if key in written:
                    raise template_changed(w)
                check_expected(w, _revision(*next(rows)))
            written.add(key)

    def _read_for_save(self, pipe: Any, w: TemplateWrite) -> None:
        """Three reads: the subject's version, its template of the modality, its fields."""
        subject = self._subject_key(w.tenant, w.subject_id)
        pipe.hget(subject, "v")
        pipe.hmget(
            self._template_key(w.tenant, w.subject_id, w.modality),
            ["model", "dim", "samples", "extra", "c", "ids", "rev", "tenant", "subject_id"],
        )
        pipe.hgetall(subject)

    def _prepare_save(
        self, w: TemplateWrite, read: Sequence[Any], op_key: str
    ) -> tuple[list[str], list[Any], Template]:
        """The keys and arguments of the save script, and the template it would write (its
        revision is the seq the script returns), from what ``_read_for_save`` read.
        TemplateChanged when ``w.expected`` does not hold of it; InvalidInput when the
        subject would hold too many metadata entries (both checked on this read, which the
        script's version check keeps current)."""
        version, old_row, subject_fields = read
        old_model, dim, blob, old_extra, old_created, old_ids, rev, *named = old_row
        check_expected(w, _revision(old_model, rev))
        if old_model is not None and not w.replace:  # as _template checks a read
            _check_stored_where(
                w.modality,
                [_str(n) if n is not None else "" for n in named],
                (w.tenant, w.subject_id),
            )
        tenant, subject_id, modality, model = w.tenant, w.subject_id, w.modality, w.model
        metadata = SubjectMetadata(self._sealer, tenant, subject_id)
        stored_metadata = _metadata(subject_fields, metadata)
        check_metadata_entries(w, stored_metadata.keys())
        # Values stored plain (before template keys) or under an older key are written again,
        # sealed with the current one (what seal-templates relies on); the others stay.
        rewrite: dict[str, str] = {}
        for raw_field, raw_value in subject_fields.items():
            field = _str(raw_field)
            if field.startswith("m:") and not self._sealer.is_current(raw_value):
                rewrite[field[2:]] = stored_metadata[field[2:]]
        meta_args: list[bytes | str] = []
        for key, value in {**rewrite, **dict(w.metadata)}.items():
            meta_args += [f"m:{key}", metadata.seal(value, key)]
        now = utc_now()
        old_model_name = _str(old_model) if old_model is not None else ""
        blobs = TemplateBlobs(self._sealer, tenant, subject_id, modality)
        old: StoredTemplate | None = None
        if old_model is not None and not w.replace:  # a replaced template is not parsed
            old = StoredTemplate(
                model=old_model_name,
                samples=blobs.open_samples(blob, int(dim)),
                sample_ids=json.loads(old_ids) if old_ids else [],
                extra=json.loads(old_extra),
                created_at=_str(old_created),
            )
        template = apply_write(w, old, now)
        samples, created = template.samples, template.created_at
        summary = {"model": model, "n": int(samples.shape[0]), "c": created, "u": now}
        keys = [
            self._seq_key,
            self._stream,
            op_key,
            self._subject_key(tenant, subject_id),
            self._template_key(tenant, subject_id, modality),
            self._subjects_key(tenant),
            self._subjects_key(tenant, modality),
            self._index_key(modality, model),
            self._models_key(modality),
            self._index_key(modality, old_model_name or model),
            *([w.turn.key] if w.turn is not None else []),
        ]
        args = [
            _str(version) if version is not None else "",
            tenant,
            subject_id,
            modality,
            model,
            old_model_name,
            int(samples.shape[1]),
            int(samples.shape[0]),
            *blobs.seal(template.vector, samples),
            json.dumps(dict(template.extra), sort_keys=True),
            created,
            now,
            json.dumps(summary, sort_keys=True),
            _OP_TTL_SECONDS,
            json.dumps(list(template.sample_ids)),
            self._retention,
            w.turn.token if w.turn is not None else "",
            *meta_args,
        ]
        return keys, args, template

    def delete_subject(self, tenant: str, subject_id: str) -> int:
        subj = self._subject_key(tenant, subject_id)
        op_key = f"{self._p}op:{uuid.uuid4().hex}"
        with self._translate():
            for attempt in range(_MAX_ATTEMPTS):
                fields = self._redis.hgetall(subj)
                if not fields:
                    raise NotEnrolled(f"subject {subject_id!r} is not enrolled")
                templates = _summaries(fields)  # not its metadata: an unreadable one goes too
                keys = [
                    self._seq_key,
                    self._stream,
                    op_key,
                    subj,
                    self._subjects_key(tenant),
                ]
                args: list[str | int] = [
                    _str(fields[b"v"]),
                    tenant,
                    subject_id,
                    _OP_TTL_SECONDS,
                    self._retention,
                ]
                for t in templates:
                    keys += [
                        self._template_key(tenant, subject_id, t.modality),
                        self._subjects_key(tenant, t.modality),
                        self._index_key(t.modality, t.model),
                        self._models_key(t.modality),
                    ]
                    args += [t.modality, t.model]
                status, count = self._delete(keys=keys, args=args)
                if status == _GONE:
                    raise NotEnrolled(f"subject {subject_id!r} is not enrolled")
                if status != _CONFLICT:
                    return int(count)
                _backoff(attempt)
        raise _too_busy()

    # -- reads ------------------------------------------------------------------------------
    def get_template(self, tenant: str, subject_id: str, modality: str) -> Template:
        with self._translate():
            row = self._redis.hmget(
                self._template_key(tenant, subject_id, modality), list(_TEMPLATE_FIELDS)
            )
        if row[2] is None:
            raise NotEnrolled(f"subject {subject_id!r} has no enrolled {modality} template")
        return _template(modality, row, self._sealer, (tenant, subject_id))

    def get_subject(self, tenant: str, subject_id: str) -> SubjectRecord:
        with self._translate():
            fields = self._redis.hgetall(self._subject_key(tenant, subject_id))
        if not fields:
            raise NotEnrolled(f"subject {subject_id!r} is not enrolled")
        metadata = _metadata(fields, SubjectMetadata(self._sealer, tenant, subject_id))
        return _subject_record(tenant, subject_id, fields, metadata)

    def list_subjects(
        self, tenant: str, *, limit: int, after: str = "", modality: str = "", max_bytes: int = 0
    ) -> list[SubjectRecord]:
        if limit <= 0:
            return []
        with self._translate():
            flat = self._list(
                keys=[self._subjects_key(tenant, modality)],
                args=[
                    after,
                    limit,
                    f"{self._p}subj:{key_part(tenant)}:",
                    max(max_bytes, 0),
                    SEALED_PREFIX,
                    SEALING_OVERHEAD,
                ],
            )
        out: list[SubjectRecord] = []
        for raw_id, raw_fields in zip(flat[::2], flat[1::2], strict=True):
            if raw_fields:
                fields = dict(zip(raw_fields[::2], raw_fields[1::2], strict=True))
                subject_id = _str(raw_id)
                metadata, why = metadata_or_why(
                    partial(_metadata, fields, SubjectMetadata(self._sealer, tenant, subject_id))
                )
                out.append(_subject_record(tenant, subject_id, fields, metadata, why))
        return out

    def iter_templates(
        self, modality: str, model: str = "", *, left_out: LeftOut | None = None
    ) -> Iterator[Template]:
        with self._translate():
            if model:
                models = [model]
            else:
                models = sorted(_str(m) for m in self._redis.smembers(self._models_key(modality)))
            for name in models:
                index, low = self._index_key(modality, name), b"-"
                while True:
                    # Lexicographic pages: each key once, even while the index changes.
                    keys: Any = self._redis.zrangebylex(index, low, b"+", start=0, num=_PAGE)
                    if not keys:
                        break
                    low = b"(" + keys[-1]
                    with self._redis.pipeline(transaction=False) as pipe:
                        for key in keys:
                            pipe.hmget(key, list(_TEMPLATE_FIELDS))
                        rows = pipe.execute()
                    for key, row in zip(keys, rows, strict=True):
                        if row[2] is None:  # deleted since the scan
                            continue
                        where = self._stored_where(key)
                        template = unless_unreadable(
                            partial(_template, modality, row, self._sealer, where), left_out
                        )
                        if template is not None:
                            yield template

    def changes_since(self, seq: int, limit: int = 10_000) -> list[Change]:
        if limit <= 0:
            return []
        with self._translate():
            entries: Any = self._redis.xrange(self._stream, min=f"{max(seq, 0) + 1}-0", count=limit)
        return [_change(entry_id, fields) for entry_id, fields in entries]

    def latest_seq(self) -> int:
        with self._translate():
            value = self._redis.get(self._seq_key)
        return int(value) if value is not None else 0

    def feed_position(self) -> FeedPosition:
        """One script: atomic, and a Redis that lost its data (restarted without persistence,
        flushed, failed over to an empty instance) gets a new epoch the first time it is read."""
        with self._translate():
            epoch, seq = self._position(
                keys=[self._epoch_key, self._seq_key], args=[uuid.uuid4().hex]
            )
        return FeedPosition(epoch=_str(epoch), seq=int(seq))

    def pruned_seq(self) -> int:
        """One less than the oldest entry of the stream; the newest seq when it is empty."""
        with self._translate():
            first: Any = self._redis.xrange(self._stream, count=1)
        if first:
            return _change(*first[0]).seq - 1
        return self.latest_seq()

    def wait_for_changes(
        self, after_seq: int, timeout_ms: int, limit: int = 10_000
    ) -> list[Change]:
        """Changes after ``after_seq``, waiting up to ``timeout_ms`` for one (XREAD BLOCK)."""
        deadline = time.monotonic() + max(timeout_ms, 0) / 1000.0
        # Block in slices shorter than the socket timeout, so a dead server is still noticed.
        slice_ms = max(1, int(self._socket_timeout * 500))
        with self._translate():
            while True:
                remaining_ms = int((deadline - time.monotonic()) * 1000)
                block = min(remaining_ms, slice_ms) if remaining_ms > 0 else None
                reply: Any = self._redis.xread(
                    {self._stream: f"{max(after_seq, 0)}-0"}, count=limit, block=block
                )
                if reply:
                    return [_change(entry_id, fields) for entry_id, fields in reply[0][1]]
                if block is None or time.monotonic() >= deadline:
                    return []

    def ping(self) -> None:
        """Whether Redis answers (at startup): Unavailable when it cannot be reached, a
        ConfigurationError when it refuses the credentials (no retry mends a wrong password)."""
        with self._translate():
            try:
                self._redis.ping()
            except redis.exceptions.AuthenticationError as exc:
                raise ConfigurationError(CREDENTIALS_REFUSED) from exc

    def close(self) -> None:
        self._redis.close()


def _backoff(attempt: int) -> None:
    """A short random pause after a lost race, growing with the number of attempts."""
    if attempt >= 2:
        time.sleep(random.uniform(0, min(0.001 * attempt, 0.02)))


def _too_busy() -> Unavailable:
    return Unavailable("the subject is being changed by many requests at once; retry later")


def _revision(model: Any, rev: Any) -> int | None:
    """A template's revision from its ``model`` and ``rev`` fields: None when there is no
    template, 0 for one last written before revisions (by an older version)."""
    if model is None:
        return None
    return int(rev) if rev is not None else 0


def _template(
    modality: str, row: Sequence[Any], sealer: BlobSealer, where: tuple[str, str]
) -> Template:
    """The template ``row`` holds, read from the key of (tenant, subject id) ``where``: its
    seal is checked against where it is stored, and a record naming another subject (a hash
    copied onto this key) is refused."""
    tenant, subject_id, model, dim, vec, samples, extra, created, updated, ids, rev = row
    tenant, subject_id = _str(tenant), _str(subject_id)
    _check_stored_where(modality, [tenant, subject_id], where)
    vector, samples = TemplateBlobs(sealer, tenant, subject_id, modality).open(
        vec, samples, int(dim)
    )
    return Template(
        tenant=tenant,
        subject_id=subject_id,
        modality=modality,
        model=_str(model),
        vector=vector,
        samples=samples,
        created_at=_str(created),
        updated_at=_str(updated),
        extra=json.loads(extra),
        sample_ids=tuple(json.loads(ids)) if ids else (),
        revision=int(rev) if rev is not None else 0,
    )


def _check_stored_where(modality: str, named: Sequence[str], where: tuple[str, str]) -> None:
    """TemplateUnreadable unless a template hash's own tenant and subject fields (``named``)
    are those of the key it is stored under (``where``): a hash copied onto another key."""
    if tuple(named) != where:
        raise TemplateUnreadable(
            f"subject {where[1]!r}'s {modality} template is stored under another subject's "
            "name (it was copied from another key) and is not used; delete the subject and "
            "enroll it again"
        )


def _turn_lost(w: TemplateWrite) -> Unavailable:
    return Unavailable(
        f"the enrolment of subject {w.subject_id!r} held the tenant's turn for longer than "
        "its hold time (this replica stalled) and another enrolment took it; nothing was "
        "saved: retry"
    )


def _metadata(fields: Mapping[Any, Any], metadata: SubjectMetadata) -> dict[str, str]:
    """The metadata of a subject hash's fields (``m:<key>``, each value sealed or plain)."""
    opened: dict[str, str] = {}
    for raw_key, raw_value in fields.items():
        key = _str(raw_key)
        if key.startswith("m:"):
            opened[key[2:]] = metadata.open(raw_value, key[2:])
    return opened


def _summaries(fields: Mapping[Any, Any]) -> tuple[TemplateSummary, ...]:
    """The template summaries of a subject hash's fields (``t:<modality>``)."""
    summaries: list[TemplateSummary] = []
    for raw_key, raw_value in fields.items():
        key = _str(raw_key)
        if key.startswith("t:"):
            s = json.loads(raw_value)
            summaries.append(
                TemplateSummary(
                    modality=key[2:],
                    model=str(s["model"]),
                    sample_count=int(s["n"]),
                    created_at=str(s["c"]),
                    updated_at=str(s["u"]),
                )
            )
    summaries.sort(key=lambda t: t.modality)
    return tuple(summaries)


def _subject_record(
    tenant: str,
    subject_id: str,
    fields: Mapping[Any, Any],
    metadata: dict[str, str],
    unreadable_metadata: str = "",
) -> SubjectRecord:
    return SubjectRecord(
        tenant=tenant,
        subject_id=subject_id,
        metadata=metadata,
        templates=_summaries(fields),
        created_at=_str(fields[b"c"]),
        updated_at=_str(fields[b"u"]),
        unreadable_metadata=unreadable_metadata,
    )


def _change(entry_id: bytes, fields: Mapping[Any, Any]) -> Change:
    return Change(
        seq=int(_str(entry_id).partition("-")[0]),
        op=_str(fields[b"op"]),
        tenant=_str(fields[b"tenant"]),
        subject_id=_str(fields[b"subject_id"]),
        modality=_str(fields[b"modality"]),
    )
