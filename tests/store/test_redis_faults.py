"""Redis-only behaviour: outages, crashes mid-write, lost replies, races between a write's read
and its script, and following the feed."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from bioverify.errors import ConfigurationError, NotEnrolled, TemplateChanged, Unavailable
from bioverify.store import redis_store
from bioverify.store.ports import ExpectedTemplate, TemplateWrite
from bioverify.store.redis_store import UNREACHABLE, RedisTemplateStore
from tests.redis_server import RedisServer


def unit(rng: np.random.Generator, n: int, dim: int = 8) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    rows: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return rows


def save(store: RedisTemplateStore, subject_id: str, samples: np.ndarray, **kw: Any) -> int:
    t = store.save(
        TemplateWrite(
            tenant=kw.pop("tenant", "t"),
            subject_id=subject_id,
            modality=kw.pop("modality", "face"),
            model=kw.pop("model", "m"),
            new_samples=samples,
            metadata=kw.pop("metadata", {}),
            replace=kw.pop("replace", False),
        )
    )
    return t.sample_count


@contextlib.contextmanager
def opened(url: str, **kw: Any) -> Iterator[RedisTemplateStore]:
    store = RedisTemplateStore(url, **kw)
    try:
        yield store
    finally:
        store.close()


def assert_consistent(store: RedisTemplateStore, url: str, tenant: str = "t") -> None:
    """Every template has its subject and vice versa; indexes and feed agree with the data."""
    with redis.Redis.from_url(url) as raw:
        template_keys = {k.decode() for k in raw.scan_iter(match="bioverify:tpl:*")}
        subject_keys = {k.decode() for k in raw.scan_iter(match="bioverify:subj:*")}
        indexed = {
            m.decode() for k in raw.scan_iter("bioverify:idx:*") for m in raw.zrange(k, 0, -1)
        }
        seq = int(raw.get("bioverify:seq") or 0)
    subjects = store.list_subjects(tenant, limit=100_000)
    assert {f"bioverify:subj:{tenant}:{s.subject_id}" for s in subjects} == subject_keys
    expected_templates = set()
    for s in subjects:
        assert s.templates, f"subject {s.subject_id} without a template"
        for summary in s.templates:
            t = store.get_template(tenant, s.subject_id, summary.modality)
            assert t.sample_count == summary.sample_count and t.model == summary.model
            assert np.linalg.norm(t.vector) == pytest.approx(1.0, abs=1e-5)
            expected_templates.add(f"bioverify:tpl:{tenant}:{summary.modality}:{s.subject_id}")
    assert template_keys == expected_templates == indexed
    changes = store.changes_since(0, limit=1_000_000)
    assert [c.seq for c in changes] == list(range(1, seq + 1))
    last_op = {(c.tenant, c.subject_id, c.modality): c.op for c in changes}
    live = {key for key, op in last_op.items() if op == "upsert" and key[0] == tenant}
    assert live == {(tenant, s.subject_id, t.modality) for s in subjects for t in s.templates}
    assert store.latest_seq() == seq


def test_outage_raises_unavailable_fast_and_recovers_with_acknowledged_data(
    durable_redis: RedisServer,
) -> None:
    rng = np.random.default_rng(0)
    with opened(durable_redis.url, socket_timeout=1.0) as store:
        for i in range(5):
            save(store, f"s{i}", unit(rng, 2))
        before = store.get_template("t", "s3", "face")
        durable_redis.kill()

        calls: dict[str, Callable[[], object]] = {
            "save": lambda: save(store, "new", unit(rng, 1)),
            "get_template": lambda: store.get_template("t", "s1", "face"),
            "get_subject": lambda: store.get_subject("t", "s1"),
            "list_subjects": lambda: store.list_subjects("t", limit=10),
            "delete_subject": lambda: store.delete_subject("t", "s1"),
            "iter_templates": lambda: list(store.iter_templates("face")),
            "changes_since": lambda: store.changes_since(0),
            "latest_seq": store.latest_seq,
            "wait_for_changes": lambda: store.wait_for_changes(0, 500),
            "ping": store.ping,
        }
        for name, call in calls.items():
            started = time.monotonic()
            with pytest.raises(Unavailable) as info:
                call()
            assert time.monotonic() - started < 3.0, name
            assert str(info.value) == UNREACHABLE, name
            assert isinstance(info.value.__cause__, redis.RedisError), name

        durable_redis.start()  # same port, same AOF directory; the script cache is empty
        after = store.get_template("t", "s3", "face")
        np.testing.assert_array_equal(after.samples, before.samples)
        assert [s.subject_id for s in store.list_subjects("t", limit=10)] == [
            f"s{i}" for i in range(5)
        ]
        assert save(store, "s3", unit(rng, 1)) == 3
        assert store.delete_subject("t", "s0") == 1
        assert_consistent(store, durable_redis.url)


def test_unresponsive_server_times_out_as_unavailable() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        with opened(url, socket_timeout=0.2, retries=1) as store:
            started = time.monotonic()
            with pytest.raises(Unavailable):
                store.ping()
            with pytest.raises(Unavailable):
                store.wait_for_changes(0, 2_000)
            assert time.monotonic() - started < 3.0


def test_loading_and_readonly_replies_are_unavailable(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with opened(redis_url) as store:
        for error in (
            redis.exceptions.BusyLoadingError("LOADING Redis is loading the dataset"),
            redis.exceptions.ReadOnlyError("READONLY You can't write against a replica"),
            redis.exceptions.ResponseError("MISCONF Redis is configured to save RDB snapshots"),
        ):

            def fail(*args: object, _error: Exception = error, **kwargs: object) -> None:
                raise _error

            monkeypatch.setattr(store._redis, "ping", fail)
            with pytest.raises(Unavailable, match="unreachable"):
                store.ping()


def test_credentials_refused_after_startup_are_unavailable_and_logged_as_such(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis's password changed under a running service: its calls fail UNAVAILABLE (health
    goes NOT_SERVING), and the log says the credentials were refused, not just "down"."""
    with RedisServer(tmp_path, password="old-secret") as server:
        url = f"redis://:old-secret@127.0.0.1:{server.port}/0"
        with opened(url, retries=0) as store:
            store.ping()
            with redis.Redis(port=server.port, password="old-secret") as admin:
                admin.config_set("requirepass", "new-secret")
                admin.client_kill_filter(_type="normal", skipme=True)
            with caplog.at_level(logging.WARNING), pytest.raises(Unavailable, match="unreachable"):
                store.get_subject("t", "nobody")
            assert "refused the credentials" in caplog.text
            assert "old-secret" not in caplog.text


def test_bad_url_is_a_configuration_error_without_the_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisTemplateStore("http://user:s3cret@example:6379/0")
    assert "s3cret" not in str(info.value)
    assert info.value.__cause__ is None


def test_crash_during_writes_loses_nothing_acknowledged_and_leaves_no_half_write(
    durable_redis: RedisServer,
) -> None:
    rng = np.random.default_rng(1)
    vectors = unit(rng, 2_000)
    acknowledged: dict[str, int] = {}
    stop = threading.Event()

    def writer(worker: int, store: RedisTemplateStore) -> None:
        for i in range(len(vectors)):
            sid = f"w{worker}-{i % 7}"
            modality = "voice" if i % 3 == 0 else "face"
            try:
                count = save(store, sid, vectors[i][None], modality=modality)
            except Unavailable:
                stop.set()
                return
            acknowledged[f"{sid}/{modality}"] = count
            if stop.is_set():
                return

    with opened(durable_redis.url, socket_timeout=1.0) as store:
        threads = [threading.Thread(target=writer, args=(w, store)) for w in range(3)]
        for th in threads:
            th.start()
        while len(acknowledged) < 20 and all(th.is_alive() for th in threads):
            time.sleep(0.005)
        durable_redis.kill()
        for th in threads:
            th.join(timeout=30)
        assert stop.is_set(), "the writers should have seen the outage"

        durable_redis.start()
        for key, count in acknowledged.items():
            sid, modality = key.split("/")
            stored = store.get_template("t", sid, modality).sample_count
            # Every acknowledged sample survived; at most the one unacknowledged write landed.
            assert count <= stored <= count + 1, key
        assert_consistent(store, durable_redis.url)


def test_torn_aof_write_is_dropped_whole(durable_redis: RedisServer) -> None:
    rng = np.random.default_rng(2)
    with opened(durable_redis.url) as store:
        save(store, "a", unit(rng, 2), modality="face", metadata={"k": "1"})
        save(store, "a", unit(rng, 1), modality="voice")
        save(store, "a", unit(rng, 1), modality="face", metadata={"k": "2"})  # to be torn
        durable_redis.kill()

        aof = next((durable_redis.workdir / "appendonlydir").glob("*.incr.aof"))
        data = aof.read_bytes()
        last = data.rfind(b"MULTI")
        assert last > 0 and data.rfind(b"EXEC") > last
        aof.write_bytes(data[: last + (data.rfind(b"EXEC") - last) // 2])  # cut inside it

        durable_redis.start()
        record = store.get_subject("t", "a")
        assert dict(record.metadata) == {"k": "1"}
        assert [(t.modality, t.sample_count) for t in record.templates] == [
            ("face", 2),
            ("voice", 1),
        ]
        assert store.get_template("t", "a", "face").sample_count == 2
        assert store.latest_seq() == 2
        assert_consistent(store, durable_redis.url)


class ReplyDroppingProxy:
    """A loopback TCP proxy that, when armed, forwards the next EVALSHA but closes the client
    connection instead of passing the reply on: the write happens, the client never hears."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.armed = threading.Event()
        self.dropped = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._spawn(self._accept_loop)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        th = threading.Thread(target=target, args=args, daemon=True)
        th.start()
        self._threads.append(th)

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, server]
            drop = threading.Event()  # set: the reply now on its way is to be lost
            self._spawn(self._pump, client, server, drop, True)
            self._spawn(self._pump, server, client, drop, False)

    def _pump(
        self, src: socket.socket, dst: socket.socket, drop: threading.Event, upstream: bool
    ) -> None:
        try:
            while data := src.recv(65536):
                if upstream and b"EVALSHA" in data and self.armed.is_set():
                    self.armed.clear()
                    drop.set()
                elif not upstream and drop.is_set():
                    self.dropped += 1
                    for s in (src, dst):
                        s.shutdown(socket.SHUT_RDWR)
                    return
                dst.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for th in self._threads:
            th.join(timeout=5)


def test_write_whose_reply_is_lost_is_not_applied_twice(redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as raw:
        raw.flushdb()
    proxy = ReplyDroppingProxy(redis_server.port)
    rng = np.random.default_rng(3)
    try:
        with opened(f"redis://127.0.0.1:{proxy.port}/0", socket_timeout=2.0) as store:
            save(store, "a", unit(rng, 1))
            proxy.armed.set()
            assert save(store, "a", unit(rng, 1)) == 2  # redis-py retried the lost reply
            assert proxy.dropped == 1
            assert store.get_template("t", "a", "face").sample_count == 2
            assert store.latest_seq() == 2
            save(store, "b", unit(rng, 1))
            proxy.armed.set()
            assert store.delete_subject("t", "b") == 1  # not NotEnrolled on the retry
            with pytest.raises(NotEnrolled):
                store.get_subject("t", "b")
            assert_consistent(store, redis_server.url)
    finally:
        proxy.close()


def test_follower_sees_another_clients_change_well_within_a_second(redis_url: str) -> None:
    rng = np.random.default_rng(4)
    with opened(redis_url) as writer, opened(redis_url) as follower:
        save(writer, "a", unit(rng, 1))
        after = follower.latest_seq()
        seen: list[tuple[float, list[Any]]] = []
        waiting = threading.Event()

        def follow() -> None:
            waiting.set()
            changes = follower.wait_for_changes(after, 10_000)
            seen.append((time.monotonic(), changes))

        th = threading.Thread(target=follow)
        th.start()
        waiting.wait(5)
        time.sleep(0.3)  # the follower is now blocked in XREAD
        save(writer, "b", unit(rng, 1))
        saved_at = time.monotonic()
        th.join(timeout=10)
        (seen_at, changes), *_ = seen
        assert [(c.op, c.subject_id, c.seq) for c in changes] == [("upsert", "b", after + 1)]
        assert seen_at - saved_at < 0.5


def test_iter_templates_pages_each_template_once_while_the_index_changes(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_store, "_PAGE", 3)
    rng = np.random.default_rng(5)
    with opened(redis_url) as store:
        for i in range(20):
            save(store, f"s{i:02d}", unit(rng, 1))
        seen = []
        for t in store.iter_templates("face", "m"):
            seen.append(t.subject_id)
            if t.subject_id == "s05":
                store.delete_subject("t", "s10")  # ahead of the cursor: skipped
                save(store, "s00", unit(rng, 1))  # behind it: not yielded again
                save(store, "s15b", unit(rng, 1))  # new, ahead: yielded
        expected = [f"s{i:02d}" for i in range(20) if i != 10]
        assert seen == sorted([*expected, "s15b"])


def test_save_many_redoes_a_write_that_lost_a_race(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another replica writes a subject between save_many's read and its script: that write
    is redone on top of the other one (nothing of either is lost); the others in the run keep
    their first result."""
    rng = np.random.default_rng(11)
    with opened(redis_url) as store, opened(redis_url) as rival:
        assert save(store, "raced", unit(rng, 1)) == 1
        prepare = store._prepare_save
        raced: list[str] = []

        def racing(w: TemplateWrite, *args: Any) -> Any:  # fault injector: a rival write
            prepared = prepare(w, *args)
            if w.subject_id == "raced" and not raced:
                raced.append(w.subject_id)
                assert save(rival, "raced", unit(rng, 2)) == 3
            return prepared

        monkeypatch.setattr(store, "_prepare_save", racing)
        writes = [
            TemplateWrite("t", "raced", "face", "m", unit(rng, 1)),
            TemplateWrite("t", "calm", "face", "m", unit(rng, 2)),
        ]
        raced_template, calm_template = store.save_many(writes)
        assert raced == ["raced"]
        assert raced_template.sample_count == 4  # 1 before + 2 of the rival + 1 of ours
        assert store.get_template("t", "raced", "face").sample_count == 4
        assert calm_template.sample_count == 2
        assert store.get_template("t", "calm", "face").sample_count == 2
        assert_consistent(store, redis_url)


@pytest.mark.parametrize("rival_modality", ["face", "voice"])
def test_an_expectation_is_checked_again_when_a_rival_writes_before_the_script(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, rival_modality: str
) -> None:
    """Another replica writes the subject between save's read (where the expectation held) and
    its script: the script finds the subject changed and the write is read again. A rival write
    of the same template fails the expectation (nothing of ours saved); one of the subject's
    other template does not change this one, so ours is saved beside it."""
    rng = np.random.default_rng(12)
    with opened(redis_url) as store, opened(redis_url) as rival:
        save(store, "a", unit(rng, 1), modality="voice")
        prepare = store._prepare_save
        reads: list[str] = []

        def racing(w: TemplateWrite, *args: Any) -> Any:  # fault injector: a rival write
            reads.append(w.modality)
            prepared = prepare(w, *args)
            if len(reads) == 1:
                save(rival, "a", unit(rng, 2), modality=rival_modality)
            return prepared

        monkeypatch.setattr(store, "_prepare_save", racing)
        write = TemplateWrite("t", "a", "face", "m", unit(rng, 1), expected=ExpectedTemplate(None))
        if rival_modality == "face":
            with pytest.raises(TemplateChanged):
                store.save(write)
            assert store.get_template("t", "a", "face").sample_count == 2  # the rival's alone
        else:
            assert store.save(write).sample_count == 1
            assert store.get_template("t", "a", "voice").sample_count == 3
        assert reads == ["face", "face"]  # read again after the script refused the first
        assert_consistent(store, redis_url)
