"""The composition root picks the store engine from settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bioverify.errors import ConfigurationError, Unavailable
from bioverify.server.app import build_store
from bioverify.settings import Settings
from bioverify.store.ports import TemplateWrite
from tests.redis_server import free_port


def test_redis_store_from_settings(redis_url: str, tmp_path: Path) -> None:
    settings = Settings.from_mapping(
        {"store": "redis", "redis_url": redis_url, "redis_key_prefix": "bv-test:"}
    )
    store = build_store(settings)
    try:
        assert store.name == "redis"
        store.save(TemplateWrite("t", "a", "face", "m", np.ones((1, 4), np.float32)))
        assert store.get_subject("t", "a").templates[0].sample_count == 1
    finally:
        store.close()
    sqlite = build_store(Settings(store="sqlite", data_dir=tmp_path))
    assert sqlite.name == "sqlite"
    sqlite.close()


def test_unreachable_redis_fails_at_startup() -> None:
    settings = Settings(store="redis", redis_url=f"redis://:pw@127.0.0.1:{free_port()}/0")
    with pytest.raises(Unavailable) as info:
        build_store(settings)
    assert "pw" not in str(info.value)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_change_log_retention_from_settings(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    values = {"store": kind, "data_dir": str(tmp_path), "change_log_retention": "2"}
    if kind == "redis":
        values["redis_url"] = request.getfixturevalue("redis_url")
    store = build_store(Settings.from_mapping(values))
    try:
        for subject in "abc":
            store.save(TemplateWrite("t", subject, "face", "m", np.ones((1, 4), np.float32)))
        assert [c.subject_id for c in store.changes_since(0)] == ["b", "c"]
    finally:
        store.close()
    with pytest.raises(ConfigurationError):
        Settings.from_mapping({"change_log_retention": "0"})
