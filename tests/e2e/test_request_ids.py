"""The per-RPC log line takes a client's x-request-id only when it is a plain token: one with
spaces or '=' would forge the line's fields (status=OK, another peer=)."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest

from bioverify.v1 import subjects_pb2, subjects_pb2_grpc
from tests.conftest import running_service


def test_request_ids_cannot_forge_fields_of_the_log_line(
    tmp_path: Path, models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    forged = "x status=OK duration_ms=1.0 peer=ipv4:10.20.30.40:5555"
    with (
        caplog.at_level(logging.INFO, logger="bioverify.rpc"),
        running_service(tmp_path, models_dir, log_level="INFO") as target,
        grpc.insecure_channel(target) as channel,
    ):
        stub = subjects_pb2_grpc.SubjectServiceStub(channel)
        for request_id in ("req-42.a:b/c+d", forged, "a" * 65):
            with pytest.raises(grpc.RpcError):
                stub.GetSubject(
                    subjects_pb2.GetSubjectRequest(subject_id="nobody"),
                    metadata=(("x-request-id", request_id),),
                    timeout=30,
                )
    lines = [r.getMessage() for r in caplog.records if "GetSubject" in r.getMessage()]
    assert len(lines) == 3, lines
    assert "request_id=req-42.a:b/c+d status=NOT_FOUND" in lines[0]
    for line in lines[1:]:
        assert line.count("status=") == 1 and line.count("peer=") == 1, line
        assert "10.20.30.40" not in line and "status=NOT_FOUND" in line
