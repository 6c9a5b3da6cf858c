"""What an audit line holds of a call's messages (``CallRecord.entry``), without a server:
who and about whom from the request (a live call's from its config), the outcome from the
reply, and never a score."""

from __future__ import annotations

from bioverify.errors import NotEnrolled
from bioverify.server.audit import CallRecord, audited, token_id
from bioverify.v1 import common_pb2, face_pb2, voice_pb2

PEER = "ipv4:127.0.0.1:5000"


def record(method: str) -> CallRecord:
    return CallRecord(method, "rid-1", token_id("ab" * 32))


def test_a_live_calls_line_names_its_configs_subject_and_its_last_reply() -> None:
    call = record("/bioverify.v1.VoiceService/VerifyVoiceStream")
    call.request = voice_pb2.VoiceStreamRequest(
        config=voice_pb2.VoiceStreamConfig(subject_id="cfo", tenant="treasury")
    )
    call.response = voice_pb2.VoiceStreamResponse(
        final=True,
        decision=common_pb2.SPOOF_SUSPECTED,
        match=common_pb2.MatchScore(similarity=0.71, confidence=0.93),
        liveness=common_pb2.LivenessReport(checked=True, live=False, score=0.2),
        reasons=[common_pb2.Reason(code="SYNTHETIC_SPEECH", message="...")],
    )
    entry = call.entry(12.345, PEER)
    assert entry["method"] == "VerifyVoiceStream" and entry["token_id"] == "ab" * 8
    assert entry["tenant"] == "treasury" and entry["subject_id"] == "cfo"
    assert entry["decision"] == "SPOOF_SUSPECTED" and entry["liveness"] == "not_live"
    assert entry["reasons"] == ["SYNTHETIC_SPEECH"] and entry["final"] is True
    assert entry["duration_ms"] == 12.3
    assert entry["peer"] == PEER
    written = str({k: v for k, v in entry.items() if k != "ts"})  # a time may hold "0.2"
    assert "0.71" not in written and "0.93" not in written and "0.2" not in written


def test_a_failed_calls_line_has_its_status_and_reason() -> None:
    call = record("/bioverify.v1.FaceService/VerifyFace")
    call.request = face_pb2.VerifyFaceRequest(subject_id="nobody", image=b"\xff\xd8")
    call.failed(NotEnrolled("subject 'nobody' is not enrolled"), "NOT_FOUND")
    entry = call.entry(1.0, PEER)
    assert entry["status"] == "NOT_FOUND" and entry["reason"] == "NOT_ENROLLED"
    assert entry["tenant"] == "default" and entry["subject_id"] == "nobody"
    assert "image" not in entry and "decision" not in entry


def test_only_the_services_that_name_people_are_audited() -> None:
    assert audited("/bioverify.v1.FaceService/EnrollFace")
    assert audited("/bioverify.v1.SubjectService/ListSubjects")
    assert not audited("/bioverify.v1.InfoService/GetServiceInfo")
    assert not audited("/grpc.health.v1.Health/Check")
    assert token_id(None) is None
