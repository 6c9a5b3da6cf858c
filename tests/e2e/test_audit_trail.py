"""End to end: with AUDIT_LOG_FILE, every enrol, verify, identify and subject call leaves one
JSON line (who: the token's id and peer; about whom: tenant and subject; the outcome: status,
decision, reasons, subjects named), in a private file, and never a score or a sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.errors import ConfigurationError
from bioverify.server.auth import token_digest
from bioverify.v1 import common_pb2
from tests.conftest import MODELS, lfw, mode, running_service, tokens_file

TOKEN = "token-of-the-audited-client-01"
CLINTON = [lfw("Bill_Clinton", n).read_bytes() for n in (1, 3, 7, 17)]
RICE = lfw("Condoleezza_Rice", 1).read_bytes()


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_call_leaves_one_audit_line(tmp_path: Path) -> None:
    tokens, audit = tokens_file(tmp_path, TOKEN), tmp_path / "audit" / "audit.jsonl"
    with (
        running_service(
            tmp_path / "data", MODELS, auth_tokens_file=str(tokens), audit_log_file=str(audit)
        ) as target,
        BioverifyClient(target, token=TOKEN, timeout=60, retries=0) as client,
    ):
        client.wait_until_serving(timeout=60)
        assert audit.read_text() == ""  # health checks are not audited
        client.enroll_face("clinton", CLINTON[:2], tenant="cards")
        assert client.verify_face("clinton", CLINTON[2], tenant="cards").decision == (
            common_pb2.ACCEPT
        )
        client.verify_face("clinton", RICE, tenant="cards")
        with pytest.raises(BioverifyClientError):
            client.verify_face("nobody", CLINTON[2], tenant="cards")
        client.identify_face(CLINTON[3], top_k=3, tenant="cards")
        client.service_info()  # not audited: it names nobody
        client.delete_subject("clinton", tenant="cards")
        with BioverifyClient(target, timeout=60, retries=0) as anonymous:  # refused unread
            with pytest.raises(BioverifyClientError) as refused:
                anonymous.verify_face("clinton", CLINTON[2], tenant="cards")
            assert refused.value.code.name == "UNAUTHENTICATED"
    assert mode(audit) == 0o600 and mode(audit.parent) == 0o700
    entries = lines(audit)
    assert [e["method"] for e in entries] == [
        "EnrollFace",
        "VerifyFace",
        "VerifyFace",
        "VerifyFace",
        "IdentifyFace",
        "DeleteSubject",
    ]
    token_id = token_digest(TOKEN)[:16]
    for entry in entries:
        assert entry["token_id"] == token_id and entry["tenant"] == "cards"
        assert entry["request_id"] and entry["peer"].startswith("ipv") and entry["ts"]
        assert isinstance(entry["duration_ms"], float)
        assert not {"score", "similarity", "confidence", "match", "image"} & set(entry)
    enrol, accept, reject, unknown, identify, delete = entries
    assert enrol["subject_id"] == "clinton" and enrol["accepted_count"] == 2
    assert enrol["status"] == "OK" and enrol["stored_subject_id"] == "clinton"
    assert accept["decision"] == "ACCEPT" and reject["decision"] == "REJECT"
    assert unknown["status"] == "NOT_FOUND" and unknown["reason"] == "NOT_ENROLLED"
    assert unknown["subject_id"] == "nobody" and "decision" not in unknown
    assert identify["candidates"][0] == "clinton" and "subject_id" not in identify
    assert delete["templates_deleted"] == 1


def test_an_audit_log_that_cannot_be_opened_stops_the_service(tmp_path: Path) -> None:
    planted = tmp_path / "planted"
    planted.mkdir()
    with (
        pytest.raises(ConfigurationError, match="cannot open the audit log file"),
        running_service(tmp_path / "data", MODELS, audit_log_file=str(planted)),
    ):
        pass
