"""Several service processes sharing one real redis-server; crashes of the service and of
Redis; acknowledged enrollments must survive and replicas must agree within a second."""

from __future__ import annotations

import hashlib
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.store.ports import TemplateWrite
from bioverify.store.redis_store import RedisTemplateStore
from bioverify.store.sqlite_store import SqliteTemplateStore
from bioverify.usecases.common import DEFAULT_TENANT
from bioverify.v1 import face_pb2
from tests.conftest import DATA, custom_service, files_holding, lfw
from tests.redis_server import RedisServer
from tests.service_process import ServiceProcess

FEDERER = [lfw("Roger_Federer", n).read_bytes() for n in (8, 9, 13)]
RICE = lfw("Condoleezza_Rice", 1).read_bytes()
LIBRI = sorted((DATA / "speaker" / "audio" / "libri_2033").glob("*.flac"))


def top_subject(client: BioverifyClient, image: bytes) -> str | None:
    reply = client.face.IdentifyFace(face_pb2.IdentifyFaceRequest(image=image), timeout=30)
    return reply.candidates[0].subject_id if reply.candidates else None


def within(seconds: float, check: Callable[[], bool]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"not true within {seconds} s")


@pytest.fixture
def redis_aof(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", durable=True).start()
    yield server
    server.stop()


def two_replicas(tmp_path: Path, redis: RedisServer) -> tuple[ServiceProcess, ServiceProcess]:
    """Two service processes, each with its own data dir, sharing ``redis``."""
    settings = {
        "store": "redis",
        "redis_url": redis.url,
        "gallery_follow_poll_s": "0.2",
        "sample_id_key": "replicas-share-this-sample-id-key",
    }
    a = ServiceProcess(tmp_path / "a", tmp_path / "a" / "data", **settings).start()
    b = ServiceProcess(tmp_path / "b", tmp_path / "b" / "data", **settings).start()
    return a, b


@contextmanager
def clients_of(a: ServiceProcess, b: ServiceProcess) -> Iterator[tuple[BioverifyClient, ...]]:
    with BioverifyClient(a.target) as ca, BioverifyClient(b.target) as cb:
        ca.wait_until_serving()
        cb.wait_until_serving()
        yield ca, cb


def test_two_replicas_share_one_gallery(tmp_path: Path, redis_aof: RedisServer) -> None:
    a, b = two_replicas(tmp_path, redis_aof)
    try:
        with clients_of(a, b) as (ca, cb):
            ca.enroll_face("federer", FEDERER[:2])
            lag = within(1.0, lambda: top_subject(cb, FEDERER[2]) == "federer")
            assert lag < 1.0
            assert cb.verify_face("federer", FEDERER[2]).match.decision == 1
            # A retry through the other replica is recognised: they share the sample id key.
            assert cb.enroll_face("federer", FEDERER[:2]).template.sample_count == 2
            cb.delete_subject("federer")
            within(1.0, lambda: top_subject(ca, FEDERER[2]) is None)
    finally:
        assert a.stop() == 0 and b.stop() == 0


def test_a_deleted_subject_leaves_no_snapshot_in_any_replica(
    tmp_path: Path, redis_aof: RedisServer
) -> None:
    a, b = two_replicas(tmp_path, redis_aof)
    try:
        with clients_of(a, b) as (ca, cb):
            ca.enroll_face("federer", FEDERER[:2])
            ca.enroll_face("rice", [RICE])
            within(1.0, lambda: top_subject(cb, FEDERER[2]) == "federer")
        assert a.stop() == 0 and b.stop() == 0  # each writes a snapshot in its data dir
        store = RedisTemplateStore(redis_aof.url)
        try:
            federer = store.get_template(DEFAULT_TENANT, "federer", "face").vector
        finally:
            store.close()
        assert files_holding(a.data_dir, federer) and files_holding(b.data_dir, federer)
        a.start()
        b.start()
        with clients_of(a, b) as (ca, cb):
            assert top_subject(cb, FEDERER[2]) == "federer"
            ca.delete_subject("federer")
            assert files_holding(a.data_dir, federer) == []  # when DeleteSubject returns
            within(1.0, lambda: files_holding(b.data_dir, federer) == [])  # b's follower
            assert top_subject(cb, FEDERER[2]) is None
        assert a.stop() == 0 and b.stop() == 0  # new snapshots: rice without federer
        for replica in (a, b):
            assert "face gallery ready from snapshot" in replica.log()
            assert "snapshot in" in replica.log() and "removed" in replica.log()
            assert files_holding(replica.data_dir, federer) == []
            assert list((replica.data_dir / "index" / "face").glob("snapshot-*"))
    finally:
        a.stop()
        b.stop()


def test_acknowledged_enrollment_survives_a_service_crash(tmp_path: Path) -> None:
    data = tmp_path / "data"
    service = ServiceProcess(tmp_path / "svc", data).start()
    with BioverifyClient(service.target) as client:
        client.wait_until_serving()
        client.enroll_face("federer", FEDERER[:2])
    service.kill()  # no graceful drain, no gallery snapshot
    service.start()
    try:
        with BioverifyClient(service.target) as client:
            client.wait_until_serving()
            assert client.get_subject("federer").templates[0].sample_count == 2
            assert top_subject(client, FEDERER[2]) == "federer"  # gallery rebuilt from the store
            # The same bytes after a restart are known: the data dir's sample id key is reused.
            assert client.enroll_face("federer", FEDERER[:2]).template.sample_count == 2
            assert stat.S_IMODE((data / "sample-id.key").stat().st_mode) == 0o600
            client.enroll_face("rice", [RICE])
        assert service.stop() == 0  # graceful: writes a gallery snapshot
        assert (data / "index" / "face").exists()
        service.start()
        with BioverifyClient(service.target) as client:
            client.wait_until_serving()
            assert top_subject(client, RICE) == "rice"
        assert "face gallery ready from snapshot" in service.log()
    finally:
        service.stop()


def test_samples_enrolled_before_keyed_ids_are_known_when_sent_again(
    tmp_path: Path, models_dir: Path
) -> None:
    """Templates written before sample ids were keyed hold plain SHA-256 ids: re-sending
    those samples (``enroll --force``, a client retry) leaves the subject unchanged."""
    data = tmp_path / "data"
    clips = [p.read_bytes() for p in LIBRI[:3]]
    with custom_service(data, models_dir) as client:
        client.enroll_face("federer", FEDERER[:2])
        client.enroll_voice("cfo", [client.audio(c) for c in clips])
    store = SqliteTemplateStore(data / "bioverify.sqlite3")
    try:
        before = {}
        for subject, modality, sent in (("federer", "face", FEDERER[:2]), ("cfo", "voice", clips)):
            t = store.get_template(DEFAULT_TENANT, subject, modality)
            plain = [hashlib.sha256(b).hexdigest() for b in sent]
            legacy = TemplateWrite(  # as the version before keyed ids wrote it
                tenant=DEFAULT_TENANT,
                subject_id=subject,
                modality=modality,
                model=t.model,
                new_samples=t.samples,
                replace=True,
                extra=t.extra,
                sample_ids=plain,
            )
            before[modality] = store.save(legacy)
    finally:
        store.close()
    with custom_service(data, models_dir) as client:
        face = client.enroll_face("federer", FEDERER[:2])
        assert face.accepted_count == 2 and face.template.sample_count == 2
        for _ in range(2):  # ids now keyed: known too, and no speech is counted twice
            voice = client.enroll_voice("cfo", [client.audio(c) for c in clips])
            assert voice.accepted_count == 3 and voice.template.sample_count == 3
    store = SqliteTemplateStore(data / "bioverify.sqlite3")
    try:
        for subject, modality in (("federer", "face"), ("cfo", "voice")):
            after = store.get_template(DEFAULT_TENANT, subject, modality)
            old = before[modality]
            assert after.sample_count == old.sample_count and after.extra == old.extra
            assert not set(after.sample_ids) & set(old.sample_ids)  # keyed now
        held = after.extra["net_speech_s"]
    finally:
        store.close()
    # A clip sent again adds no speech, so it cannot lift a template over a stricter minimum.
    with custom_service(data, models_dir, voice_min_enroll_total_speech_s=held + 1.0) as client:
        again = client.enroll_voice("cfo", [client.audio(clips[0])])
        assert [r.code for r in again.reasons] == ["NOT_ENOUGH_SPEECH"]
        assert "new to the template" in again.reasons[0].message


def test_snapshots_this_run_will_not_use_are_removed_at_startup(tmp_path: Path) -> None:
    """Snapshots switched off, or a modality no longer served: no gallery would ever remove
    those snapshots when a subject they hold is deleted, so the start removes them."""
    data = tmp_path / "data"
    service = ServiceProcess(tmp_path / "svc", data).start()
    with BioverifyClient(service.target) as client:
        client.wait_until_serving()
        client.enroll_face("federer", FEDERER[:2])
    assert service.stop() == 0  # graceful: a snapshot per gallery
    store = SqliteTemplateStore(data / "bioverify.sqlite3")
    try:
        federer = store.get_template(DEFAULT_TENANT, "federer", "face").vector
    finally:
        store.close()
    index = data / "index"
    assert files_holding(index / "face", federer)
    voice = index / "voice"  # as a run with a voice pack leaves it (none may be installed)
    (voice / "snapshot-000000000001-00000000").mkdir(parents=True, exist_ok=True)
    (voice / "CURRENT").write_text("snapshot-000000000001-00000000")
    service = ServiceProcess(
        tmp_path / "svc", data, gallery_snapshots="false", voice_pack="none"
    ).start()
    try:
        with BioverifyClient(service.target) as client:
            client.wait_until_serving()
            assert sorted(p.relative_to(index) for p in index.rglob("*")) == [
                Path("face"),
                Path("voice"),
            ]
            client.delete_subject("federer")
        assert service.stop() == 0
        assert files_holding(data, federer) == []
        for modality in ("face", "voice"):
            assert f"snapshot in {index / modality} removed (not used by this run)" in service.log()
    finally:
        service.stop()


def test_redis_outage_is_unavailable_then_recovers(tmp_path: Path, redis_aof: RedisServer) -> None:
    service = ServiceProcess(
        tmp_path / "svc", tmp_path / "data", store="redis", redis_url=redis_aof.url
    ).start()
    try:
        with BioverifyClient(service.target, retries=0, timeout=30) as client:
            client.wait_until_serving()
            client.enroll_face("federer", FEDERER[:1])
            redis_aof.kill()  # crash Redis after the acknowledged write
            with pytest.raises(BioverifyClientError) as info:
                client.enroll_face("rice", [RICE])
            assert info.value.code == grpc.StatusCode.UNAVAILABLE
            assert "Redis" in info.value.message and "redis://" not in info.value.message
            with pytest.raises(BioverifyClientError) as info:
                client.verify_face("federer", FEDERER[1])
            assert info.value.code == grpc.StatusCode.UNAVAILABLE
            redis_aof.restart()
            # Recovers by itself; the write acknowledged before the crash is there (AOF).
            within(10.0, lambda: _try(lambda: client.get_subject("federer")))
            assert client.get_subject("federer").templates[0].sample_count == 1
            client.enroll_face("rice", [RICE])
            within(2.0, lambda: top_subject(client, RICE) == "rice")
    finally:
        service.stop()


def test_redis_restarted_empty_is_not_serving_then_the_gallery_is_rebuilt(
    tmp_path: Path,
) -> None:
    volatile = RedisServer(tmp_path / "redis").start()  # no persistence: restarts empty
    service = ServiceProcess(
        tmp_path / "svc",
        tmp_path / "data",
        store="redis",
        redis_url=volatile.url,
        gallery_follow_poll_s="0.2",
    ).start()
    try:
        with BioverifyClient(service.target, retries=0, timeout=30) as client:
            client.wait_until_serving()
            client.enroll_face("federer", FEDERER[:2])
            assert top_subject(client, FEDERER[2]) == "federer"
            volatile.stop()
            within(
                10.0, lambda: health(service.target) == health_pb2.HealthCheckResponse.NOT_SERVING
            )
            volatile.start()  # same port, empty
            within(10.0, lambda: health(service.target) == health_pb2.HealthCheckResponse.SERVING)
            # The store no longer has federer: neither has the gallery.
            within(5.0, lambda: top_subject(client, FEDERER[2]) is None)
            client.enroll_face("rice", [RICE])  # its change seq is 1, far below the old ones
            assert top_subject(client, RICE) == "rice"
        log = service.log()
        assert "health NOT_SERVING" in log and "emptied or replaced" in log
    finally:
        service.stop()
        volatile.stop()


def health(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
    return int(reply.status)


def _try(fn: Callable[[], object]) -> bool:
    try:
        fn()
        return True
    except BioverifyClientError:
        return False
