"""API tokens confined to tenants, on a real service (in process, loopback, real models): a
token may act only on the tenants its line of the tokens file names; a request naming another
tenant (an empty one is the default tenant) is PERMISSION_DENIED and changes nothing. A line
with a digest alone (the format of earlier versions) or ``*`` acts on every tenant."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import soundfile as sf
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.server.auth import token_digest
from bioverify.v1 import common_pb2
from bioverify.voice.audio_decode import resample
from tests.conftest import DATA, REPO, lfw, running_service

A, B = "bank-a", "bank-b"  # tenants; B's token may also act on the default tenant
TOKENS = {
    "a-token": A,  # confined to bank-a
    "b-token": f"{B}, default",
    "star-token": "*",
    "legacy-token": "",  # a digest alone: every tenant
}
FEDERER = lfw("Roger_Federer", 8).read_bytes()
FEDERER_2 = lfw("Roger_Federer", 9).read_bytes()
CLINTON = lfw("Bill_Clinton", 7).read_bytes()
SPEAKER = sorted((DATA / "speaker" / "audio" / "timit_dr1-mcpm0").glob("*.flac"))
RATE = 16000
ADMIN = [sys.executable, "-m", "bioverify_admin.cli"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[str]:

    root = tmp_path_factory.mktemp("scoped-tokens")
    tokens = root / "tokens"
    tokens.write_text(
        "# tokens and the tenants they may act on\n"
        + "".join(f"{token_digest(t)}  {tenants}\n" for t, tenants in TOKENS.items())
    )
    with running_service(
        root / "data", models_dir, auth_tokens_file=str(tokens), face_liveness_pack="auto"
    ) as target:
        yield target


@pytest.fixture(scope="module")
def clients(service: str) -> Iterator[dict[str, BioverifyClient]]:
    made = {t: BioverifyClient(service, token=t, timeout=120, retries=0) for t in TOKENS}
    made["a-token"].wait_until_serving(timeout=120)
    yield made
    for client in made.values():
        client.close()


def denied(call: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """The message of the PERMISSION_DENIED ``call`` must give."""
    with pytest.raises(BioverifyClientError) as info:
        result = call(*args, **kwargs)
        if isinstance(result, Iterator):
            list(result)
    assert info.value.code == grpc.StatusCode.PERMISSION_DENIED, info.value
    assert info.value.reason == "TENANT_NOT_ALLOWED"
    return info.value.message


def pcm16(path: Path) -> bytes:
    wave, sr = sf.read(str(path), dtype="float32")
    wave = resample(wave, sr, RATE) if sr != RATE else wave
    return (np.clip(wave, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def subjects(client: BioverifyClient, tenant: str) -> dict[str, str]:
    """Each subject of ``tenant``, with its templates' modalities and last changes."""
    return {
        s.subject_id: ",".join(f"{t.modality}:{t.updated_at}" for t in s.templates)
        for s in client.iter_subjects(tenant=tenant)
    }


def test_a_confined_token_acts_in_its_tenant_and_nowhere_else(
    clients: dict[str, BioverifyClient],
) -> None:
    a, b = clients["a-token"], clients["b-token"]
    assert b.enroll_face("victim", [CLINTON], tenant=B).accepted_count == 1
    assert b.enroll_face("victim", [CLINTON]).accepted_count == 1  # the default tenant
    before = {tenant: subjects(b, tenant) for tenant in (B, "")}

    assert a.enroll_face("alice", [FEDERER], tenant=A).accepted_count == 1
    assert a.verify_face("alice", FEDERER_2, tenant=A).decision == common_pb2.ACCEPT  # MATCH
    assert [c.subject_id for c in a.identify_face(FEDERER_2, tenant=A).candidates] == ["alice"]
    assert list(subjects(a, A)) == ["alice"]
    assert a.get_subject("alice", tenant=A).tenant == A

    for tenant in (B, "", "default", "no-such-tenant"):
        denied(a.enroll_face, "victim", [FEDERER], tenant=tenant, replace=True)
        denied(a.enroll_face, "intruder", [FEDERER], tenant=tenant)
        denied(a.verify_face, "victim", CLINTON, tenant=tenant)
        denied(a.identify_face, CLINTON, tenant=tenant)
        denied(a.get_subject, "victim", tenant=tenant)
        denied(a.list_subjects, tenant=tenant)
        denied(a.delete_subject, "victim", tenant=tenant)
    # The refusal names the tenant asked for, never the token's, and reads the same whether
    # that tenant exists or not.
    message = denied(a.list_subjects, tenant=B)
    assert A not in message
    assert denied(a.list_subjects, tenant="no-such-tenant") == message.replace(B, "no-such-tenant")

    # Nothing changed where the token was refused: the token of B's tenants sees them as before.
    assert {tenant: subjects(b, tenant) for tenant in (B, "")} == before
    assert subjects(clients["legacy-token"], "no-such-tenant") == {}
    # ... and that token is confined too.
    denied(b.get_subject, "alice", tenant=A)
    denied(b.delete_subject, "alice", tenant=A)
    assert list(subjects(a, A)) == ["alice"]


def test_voice_rpcs_and_the_live_call_are_confined(clients: dict[str, BioverifyClient]) -> None:
    a, b = clients["a-token"], clients["b-token"]
    clips = [a.audio(p.read_bytes()) for p in SPEAKER[:3]]
    probe = a.audio(SPEAKER[3].read_bytes())
    assert b.enroll_voice("caller", clips, tenant=B).accepted_count == 3
    assert a.enroll_voice("caller", clips, tenant=A).accepted_count == 3
    assert a.verify_voice("caller", probe, tenant=A).decision == common_pb2.ACCEPT
    pcm = pcm16(SPEAKER[3])
    chunks = [pcm[i : i + 640] for i in range(0, len(pcm), 640)]
    replies = list(
        a.verify_voice_stream("caller", chunks, encoding="PCM_S16LE", sample_rate_hz=RATE, tenant=A)
    )
    assert replies[-1].final and replies[-1].decision == common_pb2.ACCEPT
    before = subjects(b, B)

    for tenant in (B, ""):
        denied(a.enroll_voice, "caller", clips, tenant=tenant, replace=True)
        denied(a.verify_voice, "caller", probe, tenant=tenant)
        denied(a.identify_voice, probe, tenant=tenant)
        denied(
            a.verify_voice_stream,
            "caller",
            chunks,
            encoding="PCM_S16LE",
            sample_rate_hz=RATE,
            tenant=tenant,
        )
    assert subjects(b, B) == before
    assert b.verify_voice("caller", probe, tenant=B).decision == common_pb2.ACCEPT


def test_liveness_rpcs_are_confined(clients: dict[str, BioverifyClient]) -> None:
    a, b = clients["a-token"], clients["b-token"]
    assert a.start_liveness_challenge(tenant=A, subject_id="alice").nonce
    assert a.check_liveness(image=FEDERER, tenant=A).liveness.checked
    theirs = b.start_liveness_challenge(tenant=B)
    for tenant in (B, ""):
        denied(a.start_liveness_challenge, tenant=tenant)
        denied(a.check_liveness, image=FEDERER, tenant=tenant)
        denied(
            a.check_liveness,
            frames=[FEDERER, FEDERER_2],
            fps=10.0,
            challenge_id=theirs.challenge_id,
            nonce=theirs.nonce,
            tenant=tenant,
        )


def test_legacy_and_star_lines_act_on_every_tenant(clients: dict[str, BioverifyClient]) -> None:
    for token in ("legacy-token", "star-token"):
        client = clients[token]
        for tenant in (A, B, "", f"{token}-own"):
            reply = client.enroll_face("everywhere", [FEDERER], tenant=tenant)
            assert reply.accepted_count == 1, (token, tenant)
            assert "everywhere" in subjects(client, tenant)
            assert client.start_liveness_challenge(tenant=tenant).nonce
            assert client.delete_subject("everywhere", tenant=tenant).templates_deleted == 1


# -- every RPC that takes a tenant is checked ---------------------------------------------------

PROTO_MODULES = sorted(p.stem for p in (REPO / "proto" / "bioverify" / "v1").glob("*.proto"))


def tenant_paths(descriptor: Descriptor, seen: frozenset[str] = frozenset()) -> list[list[str]]:
    """The field paths from ``descriptor`` to every string field named ``tenant``."""
    if descriptor.full_name in seen:
        return []
    paths: list[list[str]] = []
    for field in descriptor.fields:
        if field.name == "tenant" and field.type == FieldDescriptor.TYPE_STRING:
            paths.append([field.name])
        elif field.message_type is not None and not field.is_repeated:
            sub = tenant_paths(field.message_type, seen | {descriptor.full_name})
            paths.extend([field.name, *path] for path in sub)
    return paths


def rpcs_with_a_tenant() -> list[tuple[MethodDescriptor, list[str]]]:
    found: list[tuple[MethodDescriptor, list[str]]] = []
    for name in PROTO_MODULES:
        module = importlib.import_module(f"bioverify.v1.{name}_pb2")
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found.extend((method, path) for path in tenant_paths(method.input_type))
    return found


def request_naming(method: MethodDescriptor, path: list[str], tenant: str) -> Message:
    request = message_factory.GetMessageClass(method.input_type)()
    target = request
    for name in path[:-1]:
        target = getattr(target, name)
    setattr(target, path[-1], tenant)
    return request


def call(channel: grpc.Channel, method: MethodDescriptor, request: Message, token: str) -> Any:
    """``request`` (the first and only message of a request stream) with ``token``; the
    status code of the call (OK, or its error's)."""
    name = f"/{method.containing_service.full_name}/{method.name}"
    kind = (
        ("stream" if method.client_streaming else "unary")
        + "_"
        + ("stream" if method.server_streaming else "unary")
    )
    stub = getattr(channel, kind)(
        name, request_serializer=lambda m: m.SerializeToString(), response_deserializer=bytes
    )
    metadata = (("authorization", f"Bearer {token}"),)
    try:
        result = stub(iter([request]) if method.client_streaming else request, metadata=metadata)
        if method.server_streaming:
            list(result)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_every_rpc_naming_a_tenant_is_checked(service: str) -> None:
    """Every RPC of every proto file whose request has a tenant field (at any depth, e.g. a
    live call's first message's config) refuses a tenant the token may not act on, and lets
    one it may through to the servicer."""
    rpcs = rpcs_with_a_tenant()
    assert {m.name for m, _ in rpcs} >= {
        "EnrollFace",
        "VerifyFace",
        "IdentifyFace",
        "EnrollVoice",
        "VerifyVoice",
        "IdentifyVoice",
        "VerifyVoiceStream",
        "StartLivenessChallenge",
        "CheckLiveness",
        "GetSubject",
        "ListSubjects",
        "DeleteSubject",
    }
    with grpc.insecure_channel(service) as channel:
        for method, path in rpcs:
            where = f"{method.full_name} ({'.'.join(path)})"
            for other in (B, "", "default"):
                code = call(channel, method, request_naming(method, path, other), "a-token")
                assert code == grpc.StatusCode.PERMISSION_DENIED, (where, other, code)
            code = call(channel, method, request_naming(method, path, A), "a-token")
            assert code != grpc.StatusCode.PERMISSION_DENIED, where
            code = call(channel, method, request_naming(method, path, B), "legacy-token")
            assert code != grpc.StatusCode.PERMISSION_DENIED, where


# -- the admin tool ---------------------------------------------------------------------------


def test_admin_tool_works_with_a_token_for_its_tenant(service: str, tmp_path: Path) -> None:
    people = tmp_path / "people" / "admin-enrolled"
    people.mkdir(parents=True)
    (people / "1.jpg").write_bytes(FEDERER_2)
    common = ["--server", service, "--token", "a-token"]

    def admin(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ADMIN, *argv], capture_output=True, text=True, timeout=300, cwd=tmp_path
        )

    enrolled = admin("enroll", str(tmp_path / "people"), "--tenant", A, "--quiet", *common)
    assert enrolled.returncode == 0, enrolled.stderr
    listed = admin("subjects", "list", "--tenant", A, *common)
    assert listed.returncode == 0, listed.stderr
    assert "admin-enrolled" in listed.stdout.split()
    deleted = admin("subjects", "delete", "admin-enrolled", "--tenant", A, *common)
    assert deleted.returncode == 0, deleted.stderr
    for tenant in (B, ""):
        refused = admin("subjects", "list", "--tenant", tenant, *common)
        assert refused.returncode == 1 and refused.stdout == ""
        (line,) = refused.stderr.splitlines()
        assert line.startswith("bioverify-admin: ") and "PERMISSION_DENIED" in line, line
