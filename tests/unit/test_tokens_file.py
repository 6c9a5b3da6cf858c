"""The auth tokens file: digests, optionally followed by the tenants each token may act on; and
the tenants a request names, read from its descriptor."""

from __future__ import annotations

from pathlib import Path

import pytest

from bioverify.errors import ConfigurationError, TenantNotAllowed
from bioverify.server.auth import load_tokens, token_digest
from bioverify.server.tenant_scope import (
    ALL_TENANTS,
    TenantScope,
    check_request,
    request_tenants,
)
from bioverify.v1 import face_pb2, info_pb2, subjects_pb2, voice_pb2

ONE, TWO, THREE = (token_digest(t) for t in ("one", "two", "three"))


def tokens_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_digest_alone_acts_on_every_tenant_as_before(tmp_path: Path) -> None:
    path = tokens_file(tmp_path, f"# ops\n{ONE}\n\n  {TWO.upper()}  # upper case is fine\n")
    assert load_tokens(path) == {ONE: ALL_TENANTS, TWO: ALL_TENANTS}


def test_a_digest_may_name_its_tenants(tmp_path: Path) -> None:
    path = tokens_file(
        tmp_path,
        f"{ONE}  Cards-EU, cards.test  # tenant names keep their case\n{TWO}\tdefault\n{THREE} *\n",
    )
    assert load_tokens(path) == {
        ONE: TenantScope(frozenset({"Cards-EU", "cards.test"})),
        TWO: TenantScope(frozenset({"default"})),
        THREE: ALL_TENANTS,
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("plaintext-token", "SHA-256 hex digest"),
        (f"{ONE} a,,b", "empty tenant name"),
        (f"{ONE} a,", "empty tenant name"),
        (f"{ONE} *,a", "goes alone"),
        (f"{ONE} a b", "tenant names separated by commas"),
        (f"{ONE} -a", "tenant names separated by commas"),
    ],
)
def test_a_bad_line_is_a_configuration_error_naming_it(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tokens_file(tmp_path, f"{TWO}\n{line}\n")
    with pytest.raises(ConfigurationError, match=message) as info:
        load_tokens(path)
    assert f"{path}:2:" in info.value.message


def test_a_token_listed_twice_must_have_the_same_tenants(tmp_path: Path) -> None:
    assert load_tokens(tokens_file(tmp_path, f"{ONE} a,b\n{ONE} b,a\n")) == {
        ONE: TenantScope(frozenset({"a", "b"}))
    }
    with pytest.raises(ConfigurationError, match="listed earlier with other tenants"):
        load_tokens(tokens_file(tmp_path, f"{ONE} a\n{ONE}\n"))


def test_an_empty_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="holds no token digests"):
        load_tokens(tokens_file(tmp_path, "# nobody yet\n"))


def test_the_tenants_a_request_names() -> None:
    assert list(request_tenants(face_pb2.EnrollFaceRequest(tenant="a"))) == ["a"]
    assert list(request_tenants(subjects_pb2.ListSubjectsRequest())) == ["default"]
    assert list(request_tenants(face_pb2.CompareFacesRequest())) == []
    assert list(request_tenants(info_pb2.GetServiceInfoRequest())) == []
    # A live call: the config names one (empty: the default tenant), an audio chunk none.
    config = voice_pb2.VoiceStreamConfig
    assert list(request_tenants(voice_pb2.VoiceStreamRequest(config=config(tenant="a")))) == ["a"]
    assert list(request_tenants(voice_pb2.VoiceStreamRequest(config=config()))) == ["default"]
    assert list(request_tenants(voice_pb2.VoiceStreamRequest(audio=b"\x00\x00"))) == []


def test_the_check_refuses_a_tenant_outside_the_scope() -> None:
    scope = TenantScope(frozenset({"a"}))
    check_request(scope, subjects_pb2.ListSubjectsRequest(tenant="a"), "/m")
    check_request(ALL_TENANTS, subjects_pb2.ListSubjectsRequest(tenant="b"), "/m")
    for request in (
        subjects_pb2.ListSubjectsRequest(tenant="b"),
        subjects_pb2.ListSubjectsRequest(),  # the default tenant
        b"not a message",  # nothing to read the tenant from: refused, never guessed
    ):
        with pytest.raises(TenantNotAllowed):
            check_request(scope, request, "/m")


def test_admin_token_digest_prints_the_line_to_add(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bioverify_admin import cli

    token = "s3cret-0123456789"
    lines = []
    for tenants in ([], ["--tenants", "cards-test, cards"], ["--tenants", "*"]):
        assert cli.main(["token-digest", token, *tenants]) == 0
        lines.append(capsys.readouterr().out.strip())
    digest = token_digest(token)
    assert lines == [digest, f"{digest}  cards,cards-test", f"{digest}  *"]
    assert load_tokens(tokens_file(tmp_path, f"{lines[1]}\n")) == {
        digest: TenantScope(frozenset({"cards", "cards-test"}))
    }
    assert cli.main(["token-digest", token, "--tenants", "cards,,x"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("bioverify-admin: --tenants: ") and "empty" in err
    # A short token is refused: the file's unsalted digest would give it away to a search.
    assert cli.main(["token-digest", "s3cret"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "6 characters can be guessed" in err and "at least 16" in err
