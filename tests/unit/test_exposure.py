"""What a deployment exposes, without a service: a private data directory and database files
whatever the umask, and the startup warnings about network listeners and Redis."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bioverify.server.app import build_store
from bioverify.server.exposure import exposure_warnings, is_loopback, prepare_data_dir
from bioverify.settings import Settings
from tests.conftest import mode


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The umask of a careless deployment (022): what the service must not rely on."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("open_umask")
def test_sqlite_store_creates_a_private_data_dir_and_database(tmp_path: Path) -> None:
    data = tmp_path / "var" / "data"
    store = build_store(Settings(store="sqlite", data_dir=data))
    try:
        assert mode(data) == 0o700
        files = sorted(data.glob("bioverify.sqlite3*"))
        assert tmp_path / "var" / "data" / "bioverify.sqlite3" in files
        assert len(files) >= 2  # WAL mode: the -wal / -shm files exist while it is open
        for f in files:
            assert mode(f) == 0o600, f
    finally:
        store.close()
    # Files made later (snapshots, a new WAL) land in a folder nobody else can enter.
    assert mode(data) == 0o700


@pytest.mark.usefixtures("open_umask")
def test_existing_readable_data_dir_and_database_are_restricted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "bioverify.sqlite3").touch(mode=0o644)  # as an older version left them
    with caplog.at_level(logging.WARNING, logger="bioverify.server.exposure"):
        build_store(Settings(store="sqlite", data_dir=data)).close()
    assert mode(data) == 0o700
    assert mode(data / "bioverify.sqlite3") == 0o600
    assert "accessible to other users" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bioverify.server.exposure"):
        prepare_data_dir(data)  # already private: nothing to say
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("[::]", False),
        ("", False),
        ("10.0.0.5", False),
        ("bioverify.bank.internal", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_exposure_warnings() -> None:
    assert exposure_warnings(Settings(host="127.0.0.1")) == []
    open_port = exposure_warnings(Settings(host="0.0.0.0"))
    assert len(open_port) == 2
    assert "without TLS" in open_port[0] and "without API tokens" in open_port[1]
    tls_only = exposure_warnings(Settings(host="0.0.0.0", tls_cert_file="c", tls_key_file="k"))
    assert len(tls_only) == 1 and "without API tokens" in tls_only[0]
    tokens_only = exposure_warnings(Settings(host="10.0.0.5", auth_tokens_file="tokens"))
    assert len(tokens_only) == 1 and "without TLS" in tokens_only[0]
    closed = Settings(host="::", tls_cert_file="c", tls_key_file="k", auth_tokens_file="t")
    assert exposure_warnings(closed) == []


def test_redis_without_a_password_on_the_network_is_warned_about() -> None:
    def warned(url: str) -> bool:
        found = exposure_warnings(Settings(store="redis", redis_url=url))
        return any("without a password" in w for w in found)

    def in_clear(url: str) -> bool:
        found = exposure_warnings(Settings(store="redis", redis_url=url))
        return any("without TLS" in w for w in found)

    assert warned("redis://10.0.0.5:6379/0")
    assert warned("rediss://redis.bank.internal:6380/0")
    assert in_clear("redis://:s3cret@10.0.0.5:6379/0")
    assert not in_clear("rediss://bioverify:s3cret@10.0.0.5:6380/0")
    assert not in_clear("redis://127.0.0.1:6379/0")
    assert not warned("rediss://bioverify:s3cret@10.0.0.5:6380/0")
    assert not warned("redis://127.0.0.1:6379/0")
    assert not warned("unix:///run/redis/redis.sock")
    assert all("s3cret" not in w for w in exposure_warnings(Settings(store="redis")))


def test_unencrypted_templates_on_a_network_redis_are_warned_about() -> None:
    def unencrypted(url: str, keys: str = "") -> bool:
        settings = Settings(store="redis", redis_url=url, template_key_file=keys)
        return any("stored unencrypted" in w for w in exposure_warnings(settings))

    assert unencrypted("rediss://bioverify:s3cret@10.0.0.5:6380/0")
    assert not unencrypted("rediss://bioverify:s3cret@10.0.0.5:6380/0", "/etc/bioverify/keys")
    assert not unencrypted("redis://127.0.0.1:6379/0")
    assert not unencrypted("unix:///run/redis/redis.sock")


def test_a_tokens_file_others_can_write_is_warned_about(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("")
    local = Settings(host="127.0.0.1", auth_tokens_file=str(tokens))
    for private in (0o600, 0o644, 0o640):
        tokens.chmod(private)
        assert exposure_warnings(local) == []
    for loose in (0o664, 0o666, 0o622):
        tokens.chmod(loose)
        (warning,) = exposure_warnings(local)
        assert "writable by other users" in warning and f"mode {loose:o}" in warning
