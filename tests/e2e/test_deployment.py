"""A service listening on the network as deployed: a private data directory, startup warnings
about what it exposes, reflection only when switched on; and the deploy/ examples (systemd
unit, Redis configuration) checked with the real tools."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import redis

from bioverify.client import BioverifyClient
from bioverify.errors import BioverifyError
from bioverify.server.app import Application, build, build_store
from bioverify.settings import Settings
from bioverify.store.ports import TemplateWrite
from tests.conftest import REPO, lfw, mode
from tests.redis_server import RedisServer
from tests.service_process import ServiceProcess

DEPLOY = REPO / "deploy"
SERVICES = {
    "bioverify.v1.FaceService",
    "bioverify.v1.VoiceService",
    "bioverify.v1.LivenessService",
    "bioverify.v1.SubjectService",
    "bioverify.v1.InfoService",
    "grpc.health.v1.Health",
}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def exposed(
    tmp_path_factory: pytest.TempPathFactory, models_dir: Path
) -> Iterator[tuple[Application, _Records]]:
    """A service on every interface (port 0), without TLS or tokens, reflection on, in a data
    directory that does not exist yet; and the warnings it logged."""
    data = tmp_path_factory.mktemp("exposed") / "var" / "data"
    settings = Settings(
        host="0.0.0.0",
        port=0,
        data_dir=data,
        model_dir=models_dir,
        voice_pack="none",
        face_liveness_pack="none",
        voice_antispoof_pack="none",
        reflection=True,
        log_level="WARNING",
    )
    records = _Records()
    logger = logging.getLogger("bioverify.server.app")
    logger.addHandler(records)
    try:
        app = build(settings)
        app.start()
    finally:
        logger.removeHandler(records)
    yield app, records
    app.stop(grace=1.0)


def list_services(target: str) -> set[str]:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        return {s.name for r in responses for s in r.list_services_response.service}


def test_startup_warns_about_a_network_port_without_tls_or_tokens(
    exposed: tuple[Application, _Records],
) -> None:
    _, records = exposed
    warnings = [r.getMessage() for r in records.records if r.levelno == logging.WARNING]
    assert any("without TLS" in w and "0.0.0.0" in w for w in warnings), warnings
    assert any("without API tokens" in w for w in warnings), warnings


def test_reflection_when_switched_on(exposed: tuple[Application, _Records]) -> None:
    app, _ = exposed
    assert list_services(f"127.0.0.1:{app.port}") >= SERVICES


def test_reflection_is_off_by_default(face_server: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        list_services(face_server)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_data_dir_and_snapshots_are_private(exposed: tuple[Application, _Records]) -> None:
    """Runs last in this module: it stops the service to see the snapshot it saves."""
    app, _ = exposed
    data = app.settings.data_dir
    with BioverifyClient(f"127.0.0.1:{app.port}", timeout=60) as client:
        client.wait_until_serving(timeout=60)
        client.enroll_face("private-subject", [lfw("Roger_Federer", 8).read_bytes()])
    assert mode(data) == 0o700
    assert mode(data / "bioverify.sqlite3") == 0o600
    app.stop(grace=1.0)
    created = list(data.rglob("*"))
    assert any(p.parent.name == "face" for p in created), created  # the gallery snapshot
    for path in created:
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path


# -- deploy/ examples ---------------------------------------------------------------------------
def test_systemd_unit_is_sandboxed(tmp_path: Path) -> None:
    unit = (DEPLOY / "bioverify.service").read_text()
    assert re.search(r"^UMask=0077$", unit, re.M)
    assert re.search(r"^ReadWritePaths=/var/lib/bioverify$", unit, re.M)
    assert re.search(r"^ProtectSystem=strict$", unit, re.M)
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the exposure score is not measured")
    shutil.copy(DEPLOY / "bioverify.service", tmp_path / "bioverify.service")
    out = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", "bioverify.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--offline" in out.stderr and "unrecognized" in out.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    score = re.search(r"Overall exposure level for bioverify\.service: ([0-9.]+)", out.stdout)
    assert score, out.stdout + out.stderr
    assert float(score.group(1)) <= 2.0, out.stdout


def test_redis_example_requires_a_password_that_the_service_url_carries(tmp_path: Path) -> None:
    """redis-server runs deploy/redis.conf.example (bind, port and password overridden): a
    client without the password is refused, and the service's redis://:PASSWORD@ URL works."""
    conf = (DEPLOY / "redis.conf.example").read_text()
    directives = [line.split() for line in conf.splitlines() if line and line[0] != "#"]
    assert ["protected-mode", "yes"] in directives
    assert any(d[0] == "requirepass" and "CHANGE-ME" in d[1] for d in directives)

    password = "test-pass/with:odd@chars"
    server = RedisServer(tmp_path, config=DEPLOY / "redis.conf.example", password=password)
    with server:
        port = server.port
        with (
            redis.Redis(port=port, socket_timeout=1) as anonymous,
            pytest.raises(redis.AuthenticationError),
        ):
            anonymous.ping()
        with pytest.raises(BioverifyError) as info:
            build_store(Settings(store="redis", redis_url=f"redis://127.0.0.1:{port}/0"))
        assert password not in str(info.value)

        from urllib.parse import quote

        url = f"redis://:{quote(password, safe='')}@127.0.0.1:{port}/0"
        store = build_store(Settings(store="redis", redis_url=url))
        try:
            store.save(TemplateWrite("t", "s", "face", "m", np.ones((1, 4), np.float32)))
            assert store.get_subject("t", "s").templates[0].sample_count == 1
        finally:
            store.close()


@pytest.mark.parametrize("password", ["wrong-Pa55word", None])
def test_credentials_redis_refuses_are_one_configuration_line_at_startup(
    tmp_path: Path, password: str | None
) -> None:
    """`bioverify serve` with a password Redis refuses (or none where Redis wants one): exit 2
    and one line saying that Redis refused the credentials, not that it is unreachable (retrying
    will not mend it), and never the password."""
    with RedisServer(tmp_path / "redis", password="the-right-one") as server:
        auth = f":{password}@" if password else ""
        service = ServiceProcess(
            tmp_path / "svc",
            tmp_path / "data",
            store="redis",
            redis_url=f"redis://{auth}127.0.0.1:{server.port}/0",
        )
        with pytest.raises(RuntimeError, match="service exited"):
            service.start(timeout=60)
    assert service.proc is not None and service.proc.returncode == 2
    log = service.log()
    said = [  # what bioverify says, and warnings; not faiss's loader chatter (INFO)
        line
        for line in log.splitlines()
        if line.startswith("bioverify") or re.search(r" (WARNING|ERROR|CRITICAL) ", line)
    ]
    assert said == [
        "bioverify: cannot start: Redis refused the credentials: check the password (and the "
        "user, if any) in redis_url"
    ], log
    assert "unreachable" not in log and "the-right-one" not in log
    assert password is None or password not in log
