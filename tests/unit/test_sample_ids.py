"""Sample ids are keyed (HMAC-SHA256 under a per-deployment secret), and the secret is
configured or made once in the data directory with mode 0600."""

from __future__ import annotations

import hashlib
import logging
import stat
from pathlib import Path

import pytest

from bioverify.errors import ConfigurationError
from bioverify.server.sample_id_key import KEY_FILE_NAME, sample_id_key
from bioverify.settings import Settings
from bioverify.usecases.common import sample_id

PHOTO = b"\xff\xd8\xff\xe0 the bytes of an enrolled photo"
KEY_A = b"a" * 32
KEY_B = b"b" * 32


def test_same_bytes_same_id_under_one_key() -> None:
    assert sample_id(KEY_A, PHOTO) == sample_id(KEY_A, bytes(PHOTO))
    assert sample_id(KEY_A, PHOTO) != sample_id(KEY_A, PHOTO + b"\x00")


def test_other_key_other_id_and_never_the_plain_hash() -> None:
    assert sample_id(KEY_A, PHOTO) != sample_id(KEY_B, PHOTO)
    plain = hashlib.sha256(PHOTO).hexdigest()
    assert plain not in (sample_id(KEY_A, PHOTO), sample_id(KEY_B, PHOTO))
    # HMAC-SHA256 (RFC 4231 test case 2), hex
    assert sample_id(b"Jefe", b"what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_key_file_is_made_once_with_mode_0600_and_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    data = tmp_path / "data"  # does not exist yet
    settings = Settings(data_dir=data)
    key = sample_id_key(settings)
    path = data / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 32
    assert sample_id_key(settings) == key  # a restart reads the same key
    assert sample_id_key(Settings(data_dir=data)) == key
    assert list(data.iterdir()) == [path]  # no temporary file left behind
    assert sample_id_key(Settings(data_dir=tmp_path / "other")) != key
    assert key.decode() not in caplog.text  # never logged
    assert key.decode() not in repr(Settings(data_dir=data, sample_id_key=key.decode()))


def test_a_configured_key_wins_over_the_data_dir(tmp_path: Path) -> None:
    configured = "k" * 40
    settings = Settings.from_env(
        {"BIOVERIFY_SAMPLE_ID_KEY": configured, "BIOVERIFY_DATA_DIR": str(tmp_path)}
    )
    assert sample_id_key(settings) == configured.encode()
    key_file = tmp_path / "mounted.key"
    key_file.write_text("f" * 64 + "\n")
    key_file.chmod(0o600)
    from_file = Settings.from_mapping(
        {"sample_id_key_file": str(key_file), "data_dir": str(tmp_path)}
    )
    assert sample_id_key(from_file) == b"f" * 64
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_bad_keys_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"sample_id_key": "short-secret"})
    assert "short-secret" not in str(info.value)
    with pytest.raises(ConfigurationError):
        Settings.from_mapping({"sample_id_key": "k" * 40, "sample_id_key_file": "/x"})
    with pytest.raises(ConfigurationError, match="cannot read"):
        sample_id_key(Settings(sample_id_key_file=str(tmp_path / "missing.key")))
    short = tmp_path / "short.key"
    short.write_text("too short")
    with pytest.raises(ConfigurationError, match="at least 32"):
        sample_id_key(Settings(sample_id_key_file=str(short)))
    (tmp_path / "blocked").write_text("a file where the data directory should be")
    with pytest.raises(ConfigurationError, match="cannot create"):
        sample_id_key(Settings(data_dir=tmp_path / "blocked"))


def test_readable_key_file_and_redis_without_a_key_are_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "open.key"
    key_file.write_text("f" * 64)
    key_file.chmod(0o644)
    sample_id_key(Settings(sample_id_key_file=str(key_file)))
    assert "can be read by other users" in caplog.text
    caplog.clear()
    sample_id_key(Settings(store="redis", data_dir=tmp_path / "replica"))
    assert "another replica" in caplog.text
