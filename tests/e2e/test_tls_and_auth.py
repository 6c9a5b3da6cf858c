"""TLS (server and mutual) and API-token authentication on a real server process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.server.auth import token_digest
from tests.conftest import lfw
from tests.service_process import ServiceProcess

ADMIN = [sys.executable, "-m", "bioverify_admin.cli"]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    d = tmp_path_factory.mktemp("pki")
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=bioverify-test-ca",
        cwd=d,
    )
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
            cwd=d,
        )
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
            cwd=d,
        )
    return d


def test_tls_with_token_and_client_certificate(pki: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# ops team\n{token_digest('s3cret-token')}\n")
    service = ServiceProcess(
        tmp_path / "svc",
        tmp_path / "data",
        tls_cert_file=str(pki / "server.pem"),
        tls_key_file=str(pki / "server.key"),
        tls_client_ca_file=str(pki / "ca.pem"),
        auth_tokens_file=str(tokens),
    ).start()
    ca = (pki / "ca.pem").read_bytes()
    cert = (pki / "client.pem").read_bytes()
    key = (pki / "client.key").read_bytes()
    image = lfw("Roger_Federer", 8).read_bytes()
    try:
        good = BioverifyClient(
            service.target,
            tls_ca=ca,
            tls_client_cert=cert,
            tls_client_key=key,
            token="s3cret-token",
            retries=0,
        )
        good.wait_until_serving()
        assert good.enroll_face("tls-subject", [image]).accepted_count == 1

        wrong_token = BioverifyClient(
            service.target,
            tls_ca=ca,
            tls_client_cert=cert,
            tls_client_key=key,
            token="guess",
            retries=0,
        )
        with pytest.raises(BioverifyClientError) as info:
            wrong_token.get_subject("tls-subject")
        assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
        no_token = BioverifyClient(
            service.target, tls_ca=ca, tls_client_cert=cert, tls_client_key=key, retries=0
        )
        with pytest.raises(BioverifyClientError) as info:
            list(
                no_token.verify_voice_stream(
                    "x", [b"\xff" * 160], encoding="MULAW", sample_rate_hz=8000
                )
            )
        assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
        no_client_cert = BioverifyClient(
            service.target, tls_ca=ca, token="s3cret-token", retries=0, timeout=5
        )
        with pytest.raises(BioverifyClientError) as info:
            no_client_cert.get_subject("tls-subject")
        assert info.value.code == grpc.StatusCode.UNAVAILABLE  # handshake refused
        plaintext = BioverifyClient(service.target, token="s3cret-token", retries=0, timeout=5)
        with pytest.raises(BioverifyClientError):
            plaintext.get_subject("tls-subject")

        # The admin tool takes the same options, before or after the command.
        secured = [
            "--tls-ca",
            str(pki / "ca.pem"),
            "--tls-cert",
            str(pki / "client.pem"),
            "--tls-key",
            str(pki / "client.key"),
            "--token",
            "s3cret-token",
        ]
        command = ["subjects", "list", "--server", service.target]
        for argv in ([*secured, *command], [*command, *secured]):
            out = subprocess.run([*ADMIN, *argv], capture_output=True, text=True, timeout=60)
            assert out.returncode == 0 and out.stdout.split() == ["tls-subject"], out.stderr
        for c in (good, wrong_token, no_token, no_client_cert, plaintext):
            c.close()
    finally:
        service.stop()


def test_a_readable_tls_key_is_warned_about_and_refusals_carry_their_reason(
    pki: Path, tmp_path: Path
) -> None:
    """A TLS private key other users can read gets one WARNING line at startup (as a loose
    data folder does); a call without a valid token is UNAUTHENTICATED with the reason
    trailer UNAUTHENTICATED, unary and streaming alike."""
    key = tmp_path / "server.key"
    key.write_bytes((pki / "server.key").read_bytes())
    key.chmod(0o644)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{token_digest('s3cret-token')}\n")
    service = ServiceProcess(
        tmp_path / "svc",
        tmp_path / "data",
        tls_cert_file=str(pki / "server.pem"),
        tls_key_file=str(key),
        auth_tokens_file=str(tokens),
        face_liveness_pack="none",
        voice_pack="none",
        voice_antispoof_pack="none",
    ).start()
    try:
        ca = (pki / "ca.pem").read_bytes()
        for token in ("guess", None):
            with BioverifyClient(service.target, tls_ca=ca, token=token, retries=0) as client:
                with pytest.raises(BioverifyClientError) as info:
                    client.get_subject("someone")
                assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
                assert info.value.reason == "UNAUTHENTICATED"
                with pytest.raises(BioverifyClientError) as info:
                    list(
                        client.verify_voice_stream(
                            "x", [b"\xff" * 160], encoding="MULAW", sample_rate_hz=8000
                        )
                    )
                assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
                assert info.value.reason == "UNAUTHENTICATED"
    finally:
        assert service.stop() == 0
    warned = [line for line in service.log().splitlines() if str(key) in line]
    assert len(warned) == 1 and " WARNING " in warned[0], service.log()
    assert "accessible to other users (mode 644)" in warned[0]

    key.chmod(0o600)  # as it should be: not a word
    quiet = ServiceProcess(
        tmp_path / "svc-quiet",
        tmp_path / "data",
        tls_cert_file=str(pki / "server.pem"),
        tls_key_file=str(key),
        face_liveness_pack="none",
        voice_pack="none",
        voice_antispoof_pack="none",
    ).start()
    assert quiet.stop() == 0
    assert str(key) not in quiet.log()


def test_bad_tokens_file_is_a_startup_error(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("plaintext-token-not-a-digest\n")
    service = ServiceProcess(tmp_path / "svc", tmp_path / "data", auth_tokens_file=str(tokens))
    with pytest.raises(RuntimeError, match="SHA-256"):
        service.start(timeout=60)


def _admin(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BIOVERIFY_TOKEN"}
    return subprocess.run([*ADMIN, *argv], capture_output=True, text=True, timeout=300, env=env)


def _figures(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if "latency" not in k}


def test_evals_send_the_token_and_stop_on_a_wrong_one(data_dir: Path, tmp_path: Path) -> None:
    """`eval face-identify` (and `face-pairs`) through a service that wants a token give the
    same figures as without one; a wrong token fails the command (exit 1, one line) instead
    of counting every probe as failed."""
    rows = (data_dir / "face_images.tsv").read_text().splitlines()
    images = tmp_path / "images.tsv"
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    images.write_text("\n".join([*rows[:41], "corrupt.jpg\tNobody_At_All"]) + "\n")
    header, *pair_rows = (data_dir / "face_pairs.tsv").read_text().splitlines()
    same = [r for r in pair_rows if r.endswith("\t1")][:3]
    diff = [r for r in pair_rows if r.endswith("\t0")][:3]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("\n".join([header, *same, *diff]) + "\n")
    (tmp_path / "face_verification").symlink_to(data_dir / "face_verification")
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{token_digest('eval-token')}\n")
    identify = ("eval", "face-identify", str(images), "--json")
    compare = ("eval", "face-pairs", str(pairs), "--json")

    service = ServiceProcess(tmp_path / "svc", tmp_path / "data", auth_tokens_file=str(tokens))
    service.start()
    try:
        server = ("--server", service.target)
        with_token = _admin("--token", "eval-token", *identify, *server)
        assert with_token.returncode == 0, with_token.stderr
        result = json.loads(with_token.stdout)
        assert result["n_failed"] == 1 and result["n_enrolled"] >= 8, result  # corrupt.jpg
        assert result["rank1"] >= 0.95
        pairs_with_token = _admin(*compare, *server, "--token", "eval-token")
        assert pairs_with_token.returncode == 0, pairs_with_token.stderr
        for command in (identify, compare):
            for token in (("--token", "wrong"), ()):
                refused = _admin(*command, *server, *token)
                assert refused.returncode == 1, refused.stdout
                assert refused.stdout == ""  # no report
                (line,) = refused.stderr.splitlines()
                assert line.startswith("bioverify-admin: ") and "UNAUTHENTICATED" in line
    finally:
        assert service.stop() == 0
    open_service = ServiceProcess(tmp_path / "svc-open", tmp_path / "data").start()
    try:
        server = ("--server", open_service.target)
        without_auth = _admin(*identify, *server)
        assert without_auth.returncode == 0, without_auth.stderr
        pairs_without_auth = _admin(*compare, *server)
        assert pairs_without_auth.returncode == 0, pairs_without_auth.stderr
    finally:
        open_service.stop()
    assert _figures(result) == _figures(json.loads(without_auth.stdout))
    pair_result = json.loads(pairs_with_token.stdout)
    assert pair_result["n_pairs"] == 6 and pair_result["n_failed"] == 0
    assert _figures(pair_result) == _figures(json.loads(pairs_without_auth.stdout))
