"""Calls without a valid token are refused as soon as their headers arrive: a client that
opens calls and never sends their message cannot hold the service's RPC slots, and a flood of
refused calls is not a flood of log lines."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import grpc
import pytest

from bioverify.client import BioverifyClient
from bioverify.server.auth import RefusalLog
from bioverify.v1 import subjects_pb2, subjects_pb2_grpc
from tests.conftest import never_sent, running_service, tokens_file

TOKEN = "s3cret-token-for-the-slot-test"
SLOTS = 4


def _few_slots(tmp_path: Path, **settings: object) -> dict[str, object]:
    """Settings of a service taking TOKEN alone and SLOTS calls at once."""
    return {
        "auth_tokens_file": str(tokens_file(tmp_path, TOKEN)),
        "max_concurrent_rpcs": SLOTS,
        "rpc_threads": SLOTS,
        "max_live_calls": 1,
        **settings,
    }


@pytest.mark.parametrize(
    "method",
    [
        "/bioverify.v1.FaceService/VerifyFace",  # unary
        "/bioverify.v1.VoiceService/VerifyVoiceStream",  # bidirectional stream
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/bioverify.v1.FaceService/NoSuchMethod",
    ],
)
def test_calls_without_a_token_cannot_hold_the_rpc_slots(
    method: str, tmp_path: Path, models_dir: Path
) -> None:
    with running_service(tmp_path, models_dir, **_few_slots(tmp_path, reflection=True)) as target:
        stop = threading.Event()
        with grpc.insecure_channel(target) as channel:
            call = channel.stream_stream(method)
            try:
                # Each is refused at once, without its message (were it held until the
                # message came, the deadline would end it, and the first few would take
                # every slot).
                for _ in range(3 * SLOTS):
                    with pytest.raises(grpc.RpcError) as info:
                        next(iter(call(never_sent(stop), timeout=20)))
                    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
                    assert "missing or invalid API token" in (info.value.details() or "")
                with BioverifyClient(target, token=TOKEN, timeout=30, retries=0) as client:
                    client.wait_until_serving(timeout=60)
                    assert list(client.list_subjects().subjects) == []  # slots are free
            finally:
                stop.set()


def test_refused_calls_are_logged_once_per_period(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    log = RefusalLog(lambda: now[0], period_s=10.0)
    with caplog.at_level(logging.WARNING, logger="bioverify.server.auth"):
        for _ in range(500):
            log.note("/bioverify.v1.FaceService/VerifyFace")
        now[0] += 10.0
        log.note("/bioverify.v1.SubjectService/ListSubjects")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert (
        lines[0]
        == "rejected a call to /bioverify.v1.FaceService/VerifyFace without a valid API token"
    )
    assert "ListSubjects" in lines[1] and "499 more such calls in the last 10 s" in lines[1]


def test_a_flood_of_refused_calls_is_not_a_flood_of_log_lines(
    tmp_path: Path, models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = tokens_file(tmp_path, TOKEN)
    with (
        caplog.at_level(logging.INFO),
        running_service(
            tmp_path, models_dir, auth_tokens_file=str(tokens), log_level="INFO"
        ) as target,
        grpc.insecure_channel(target) as channel,
    ):
        stub = subjects_pb2_grpc.SubjectServiceStub(channel)
        caplog.clear()
        for _ in range(200):
            with pytest.raises(grpc.RpcError) as info:
                stub.ListSubjects(subjects_pb2.ListSubjectsRequest(), timeout=30)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    refused = [r.getMessage() for r in caplog.records if "ListSubjects" in r.getMessage()]
    assert refused == [
        "rejected a call to /bioverify.v1.SubjectService/ListSubjects without a valid API token"
    ]


def test_a_token_holder_cannot_hold_slots_by_never_sending_the_message(
    tmp_path: Path, models_dir: Path
) -> None:
    """With a valid token the call is admitted, but its message must come within
    REQUEST_READ_TIMEOUT_S: a call still waiting for it is cancelled and its slot freed."""
    overrides = _few_slots(tmp_path, request_read_timeout_s=2.0)
    with running_service(tmp_path, models_dir, **overrides) as target:
        stop = threading.Event()
        with grpc.insecure_channel(target) as channel:
            call = channel.stream_unary("/bioverify.v1.SubjectService/ListSubjects")
            metadata = (("authorization", f"Bearer {TOKEN}"),)
            try:
                held = [
                    call.future(never_sent(stop), metadata=metadata, timeout=60)
                    for _ in range(SLOTS)
                ]
                for future in held:  # each cancelled by the service, long before its deadline
                    with pytest.raises(grpc.RpcError) as info:
                        future.result(timeout=30)
                    assert info.value.code() == grpc.StatusCode.CANCELLED
                with BioverifyClient(target, token=TOKEN, timeout=30, retries=0) as client:
                    assert list(client.list_subjects().subjects) == []
            finally:
                stop.set()
