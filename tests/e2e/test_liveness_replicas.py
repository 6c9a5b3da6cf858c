"""Active-liveness challenges across replicas: two service processes sharing one real
redis-server behind no load balancer but the test, which sends each request where it likes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.v1 import liveness_pb2
from tests.e2e.test_liveness_service import check, frames_of
from tests.redis_server import RedisServer
from tests.service_process import ServiceProcess

LIVE = frames_of("Krzysiek354", ("0000", "0020", "0060", "0079"))


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BioverifyClient, ...]]:
    """Two replicas with face liveness (no voice pack: it is not needed here) on one Redis."""
    root = tmp_path_factory.mktemp("liveness-replicas")
    redis = RedisServer(root / "redis").start()
    settings = {
        "store": "redis",
        "redis_url": redis.url,
        "voice_pack": "none",
        "sample_id_key": "replicas-share-this-sample-id-key",
    }
    processes = [
        ServiceProcess(root / name, root / name / "data", **settings).start() for name in "ab"
    ]
    try:
        with (
            BioverifyClient(processes[0].target, timeout=60) as a,
            BioverifyClient(processes[1].target, timeout=60) as b,
        ):
            a.wait_until_serving(timeout=120)
            b.wait_until_serving(timeout=120)
            yield a, b
    finally:
        for process in processes:
            process.stop()
        redis.stop()


def answer(
    client: BioverifyClient, challenge: liveness_pb2.LivenessChallenge, frames: list[bytes]
) -> liveness_pb2.CheckLivenessResponse:
    reply: liveness_pb2.CheckLivenessResponse = client.check_liveness(
        frames=frames,
        fps=2,
        challenge_id=challenge.challenge_id,
        nonce=challenge.nonce,
        tenant="t",
    )
    return reply


def test_a_challenge_started_on_one_replica_is_answered_on_another_once(
    replicas: tuple[BioverifyClient, ...],
) -> None:
    a, b = replicas
    challenge = a.start_liveness_challenge(tenant="t")
    # A request rejected for a bad frame does not use the challenge up, on any replica.
    with pytest.raises(BioverifyClientError) as info:
        answer(b, challenge, [*LIVE, b"junk"])
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and "frame 4:" in info.value.message
    reply = answer(b, challenge, LIVE)
    # Redeemed and judged on b: these frames were not taken for this challenge's actions.
    assert not check(reply, "active_challenge").passed
    for client in (a, b):
        with pytest.raises(BioverifyClientError) as info:
            answer(client, challenge, LIVE)
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert info.value.reason == "CHALLENGE_INVALID"


def test_one_challenge_answered_on_both_replicas_at_once_gives_one_verdict(
    replicas: tuple[BioverifyClient, ...],
) -> None:
    """Both requests find the challenge and assess their frames in parallel; only one may
    turn that into a verdict."""
    a, b = replicas
    for _ in range(3):
        challenge = b.start_liveness_challenge(tenant="t")
        outcomes = race([a, b, a, b], challenge)
        assert sorted(outcomes) == ["FAILED_PRECONDITION"] * 3 + ["verdict"], outcomes


def race(clients: list[BioverifyClient], challenge: liveness_pb2.LivenessChallenge) -> list[str]:
    """Each client answers ``challenge`` at the same moment: "verdict" or the status name."""
    start = threading.Barrier(len(clients))
    outcomes: list[str] = []

    def send(client: BioverifyClient) -> None:
        start.wait()
        try:
            answer(client, challenge, LIVE)
            outcomes.append("verdict")
        except BioverifyClientError as exc:
            outcomes.append(exc.code.name)

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_the_pending_cap_is_per_tenant_across_replicas(
    replicas: tuple[BioverifyClient, ...],
) -> None:
    """A tenant flooding both replicas with challenges is refused at its cap (1000 by default)
    and pushes out no other tenant's challenge (before, the 10 000 newest of all tenants were
    kept, in each replica's memory)."""
    a, b = replicas
    victim = a.start_liveness_challenge(tenant="t")
    refused = None
    for i in range(10_001):
        try:
            (a, b)[i % 2].start_liveness_challenge(tenant="flood")
        except BioverifyClientError as exc:
            refused = (i, exc)
            break
    assert refused is not None, "never refused"
    issued, error = refused
    assert issued == 1000
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.reason == "TOO_MANY_CHALLENGES"
    assert b.start_liveness_challenge(tenant="t")  # other tenants go on
    reply = answer(b, victim, LIVE)  # still pending: redeemed and judged, not refused
    judged = check(reply, "active_challenge")
    assert not judged.passed, judged.detail  # these frames were not taken for its actions
    assert "CHALLENGE_FAILED" in [r.code for r in reply.reasons]
