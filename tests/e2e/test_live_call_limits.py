"""Live calls cannot starve the service or outlive a revoked identity: each VerifyVoiceStream
holds an RPC thread for the whole call, so calls past MAX_LIVE_CALLS are refused at once,
silent calls are cancelled after LIVE_CALL_IDLE_S, a caller hanging up is not logged as a
server fault, and a subject deleted mid-call stops verifying."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from bioverify.client import BioverifyClient
from bioverify.errors import ConfigurationError
from bioverify.settings import Settings
from bioverify.v1 import common_pb2, voice_pb2, voice_pb2_grpc
from tests.conftest import DATA
from tests.e2e.test_voice_stream_liveness import chunks, pcm16
from tests.redis_server import RedisServer
from tests.service_process import ServiceProcess

SPEAKER = DATA / "speaker" / "audio" / "libri_2033"


class HeldCall:
    """A live call that sends its config, then only what the test puts on ``audio``."""

    def __init__(
        self,
        stub: voice_pb2_grpc.VoiceServiceStub,
        subject_id: str,
        interim_s: float = 0.0,
        deadline_s: float = 60.0,
        tenant: str = "",
    ) -> None:
        self.audio: queue.Queue[bytes | None] = queue.Queue()
        self.replies: list[voice_pb2.VoiceStreamResponse] = []
        config = voice_pb2.VoiceStreamConfig(
            tenant=tenant,
            subject_id=subject_id,
            encoding=voice_pb2.PCM_S16LE,
            sample_rate_hz=16000,
            interim_every_speech_seconds=interim_s,
        )

        def messages() -> Iterator[voice_pb2.VoiceStreamRequest]:
            yield voice_pb2.VoiceStreamRequest(config=config)
            while (chunk := self.audio.get()) is not None:
                yield voice_pb2.VoiceStreamRequest(audio=chunk)

        self.call = stub.VerifyVoiceStream(messages(), timeout=deadline_s)
        self.code: grpc.StatusCode | None = None
        self.error: grpc.RpcError | None = None
        self.done = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        try:
            for reply in self.call:
                self.replies.append(reply)
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            self.code = exc.code()
            self.error = exc
        finally:
            self.done.set()

    def send(self, pcm: bytes) -> None:
        """Queue 16 kHz PCM in 100 ms chunks (sent as fast as the call takes them)."""
        for chunk in chunks(pcm, ms=100):
            self.audio.put(chunk)

    def wait_for(self, reply_seen: Callable[[voice_pb2.VoiceStreamResponse], bool]) -> None:
        """Until a reply satisfies ``reply_seen`` (30 s at most, and the call still open)."""
        deadline = time.monotonic() + 30
        while not any(reply_seen(r) for r in self.replies):
            assert time.monotonic() < deadline and not self.done.is_set(), self.replies
            time.sleep(0.1)

    def end(self, timeout: float = 60.0) -> None:
        """Send the end of the stream and wait for the call to finish."""
        self.audio.put(None)
        assert self.done.wait(timeout)

    def hang_up(self) -> None:
        self.call.cancel()
        self.audio.put(None)


def _serve(work: Path, tenants: tuple[str, ...] = ("",), **settings: str) -> ServiceProcess:
    """A service with (unless ``settings`` say otherwise) two live-call slots and a 3 s idle
    limit, "caller" enrolled in each of ``tenants`` (a fresh one per test: a slot is freed on
    the server a moment after the client sees its call end)."""
    limits = {"max_live_calls": "2", "live_call_idle_s": "3", **settings}
    svc = ServiceProcess(work, work / "data", **limits).start()
    with BioverifyClient(svc.target, timeout=120.0, retries=0) as client:
        client.wait_until_serving(timeout=120)
        clips = [client.audio(c.read_bytes()) for c in sorted(SPEAKER.glob("*.flac"))[:3]]
        for tenant in tenants:
            client.enroll_voice("caller", clips, tenant=tenant)
    return svc


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    svc = _serve(tmp_path)
    try:
        yield svc
    finally:
        svc.stop()


def _wait_logged(service: ServiceProcess, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in service.log():
        assert time.monotonic() < deadline, f"{text!r} not logged"
        time.sleep(0.1)


def test_calls_past_the_limit_are_refused_and_others_still_served(
    service: ServiceProcess,
) -> None:
    with grpc.insecure_channel(service.target) as channel:
        stub = voice_pb2_grpc.VoiceServiceStub(channel)
        held = [HeldCall(stub, "caller") for _ in range(2)]
        try:
            time.sleep(2.0)  # both admitted and waiting for audio
            assert not any(h.done.is_set() for h in held)
            third = HeldCall(stub, "caller")
            assert third.done.wait(10)
            assert third.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            # unary requests and health checks still find a thread
            with BioverifyClient(service.target, timeout=10.0, retries=0) as client:
                assert client.get_subject("caller").subject_id == "caller"
        finally:
            for h in held:
                h.hang_up()
        assert all(h.done.wait(10) for h in held)
        # the slots are free again once the callers hung up
        time.sleep(0.5)
        again = HeldCall(stub, "caller")
        try:
            time.sleep(2.0)
            assert not again.done.is_set()
        finally:
            again.hang_up()
        assert again.done.wait(10)
    log = service.log()
    assert "status=CANCELLED" in log
    assert "Traceback" not in log and "status=INTERNAL" not in log


def test_one_tenant_cannot_take_every_slot(tmp_path: Path) -> None:
    svc = _serve(
        tmp_path,
        ("cards", "loans"),
        max_live_calls="3",
        max_live_calls_per_tenant="1",
        live_call_idle_s="30",
    )
    try:
        with grpc.insecure_channel(svc.target) as channel:
            stub = voice_pb2_grpc.VoiceServiceStub(channel)
            first = HeldCall(stub, "caller", tenant="cards")
            try:
                time.sleep(2.0)
                assert not first.done.is_set()
                second = HeldCall(stub, "caller", tenant="cards")
                assert second.done.wait(20)
                assert second.code == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert second.error is not None
                assert "tenant 'cards' already has 1 live calls" in (second.error.details() or "")
                other = HeldCall(stub, "caller", tenant="loans")  # a slot is left for others
                try:
                    time.sleep(2.0)
                    assert not other.done.is_set()
                finally:
                    other.hang_up()
            finally:
                first.hang_up()
            assert first.done.wait(10)
    finally:
        svc.stop()


def test_a_silent_call_is_cancelled_and_frees_its_slot(service: ServiceProcess) -> None:
    with grpc.insecure_channel(service.target) as channel:
        stub = voice_pb2_grpc.VoiceServiceStub(channel)
        silent = HeldCall(stub, "caller")
        talking = HeldCall(stub, "caller")
        try:
            started = time.monotonic()
            for _ in range(60):  # 6 s of 100 ms chunks of quiet audio
                talking.audio.put(b"\x00\x00" * 1600)
                time.sleep(0.1)
                if silent.done.is_set():
                    break
            assert silent.done.wait(10)
            assert silent.code == grpc.StatusCode.CANCELLED
            assert 2.5 <= time.monotonic() - started <= 10
            assert not talking.done.is_set()  # heard from: kept
        finally:
            silent.hang_up()
            talking.audio.put(None)  # ends the call normally
        assert talking.done.wait(30) and talking.code == grpc.StatusCode.OK
    _wait_logged(service, "cancelled: no audio for 3 s")


def test_live_calls_must_leave_threads_for_other_requests() -> None:
    with pytest.raises(ConfigurationError, match="max_live_calls"):
        Settings(rpc_threads=16, max_live_calls=16).validate()
    with pytest.raises(ConfigurationError, match="max_live_calls"):
        Settings(max_concurrent_rpcs=8, max_live_calls=8).validate()
    Settings(rpc_threads=16, max_concurrent_rpcs=16, max_live_calls=8).validate()
    # Unset, it follows the thread settings: a configuration from before the setting (the
    # old default RPC_THREADS=16, or a small pool) still starts.
    for threads, rpcs, limit in ((64, 64, 32), (16, 64, 8), (64, 20, 10), (1, 64, 1)):
        settings = Settings(rpc_threads=threads, max_concurrent_rpcs=rpcs)
        settings.validate()
        assert settings.live_call_limit == limit


def test_a_subject_deleted_mid_call_stops_verifying(service: ServiceProcess) -> None:
    """A revoked identity must not keep verifying for the rest of an hour-long call: every
    update compares against the subject's current template, and a deleted one ends the call
    with NOT_FOUND."""
    clips = sorted(SPEAKER.glob("*.flac"))
    speech = pcm16(clips[6]) + pcm16(clips[8])  # 16 s
    with BioverifyClient(service.target, timeout=60.0, retries=0) as client:
        client.enroll_voice("revoked", [client.audio(c.read_bytes()) for c in clips[:3]])
        with grpc.insecure_channel(service.target) as channel:
            call = HeldCall(voice_pb2_grpc.VoiceServiceStub(channel), "revoked", interim_s=1.0)
            try:
                half = len(speech) * 2 // 3 // 3200 * 3200
                call.send(speech[:half])
                call.wait_for(lambda r: r.decision == common_pb2.ACCEPT)
                client.delete_subject("revoked")
                call.send(speech[half:])
                call.end(30)
            finally:
                call.hang_up()
    assert call.code == grpc.StatusCode.NOT_FOUND
    # no final verdict: updates computed before the deletion may still arrive, none after
    assert not any(r.final for r in call.replies)


def test_a_store_outage_mid_call_does_not_end_it(tmp_path: Path) -> None:
    """A template store that goes away mid-call (Redis failover) must not end the call: it is
    scored against the template read last, and the outage is logged once."""
    clips = sorted(SPEAKER.glob("*.flac"))
    speech = pcm16(clips[6]) + pcm16(clips[8])  # 16 s
    with RedisServer(tmp_path / "redis") as redis_server:
        service = _serve(tmp_path / "svc", store="redis", redis_url=redis_server.url)
        try:
            with grpc.insecure_channel(service.target) as channel:
                call = HeldCall(voice_pb2_grpc.VoiceServiceStub(channel), "caller", interim_s=1.0)
                try:
                    half = len(speech) // 3 // 3200 * 3200
                    call.send(speech[:half])
                    call.wait_for(lambda r: True)  # the call is verifying
                    redis_server.stop()
                    call.send(speech[half:])
                    call.end()
                finally:
                    call.hang_up()
        finally:
            service.stop()
    assert call.code == grpc.StatusCode.OK, call.code
    assert call.replies[-1].final and call.replies[-1].decision == common_pb2.ACCEPT
    assert service.log().count("live call: the template store is unavailable") == 1


def test_a_call_past_its_deadline_is_logged_as_such(service: ServiceProcess) -> None:
    """A call whose client deadline passes while it streams ends DEADLINE_EXCEEDED for the
    client and in the service's log: not an INTERNAL error, nor OK."""
    speech = pcm16(sorted(SPEAKER.glob("*.flac"))[6])
    with grpc.insecure_channel(service.target) as channel:
        call = HeldCall(
            voice_pb2_grpc.VoiceServiceStub(channel), "caller", interim_s=1.0, deadline_s=2.0
        )
        try:
            for chunk in chunks(speech, ms=100):  # 8 s of audio in real time
                if call.done.is_set():
                    break
                call.audio.put(chunk)
                time.sleep(0.1)
            assert call.done.wait(10)
        finally:
            call.hang_up()
    assert call.code == grpc.StatusCode.DEADLINE_EXCEEDED
    _wait_logged(service, "status=DEADLINE_EXCEEDED")
    log = service.log()
    assert "Traceback" not in log and "status=INTERNAL" not in log
