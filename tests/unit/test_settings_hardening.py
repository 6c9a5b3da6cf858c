"""Settings that harden a deployment: reflection off unless asked for, log level validated."""

from __future__ import annotations

import pytest

from bioverify.errors import ConfigurationError
from bioverify.settings import Settings


def test_reflection_is_off_by_default() -> None:
    assert Settings().reflection is False
    assert Settings.from_env({"BIOVERIFY_REFLECTION": "true"}).reflection is True


@pytest.mark.parametrize("level", ["debug", "INFO", "Warning", "ERROR", "CRITICAL"])
def test_log_level_names(level: str) -> None:
    assert Settings.from_env({"BIOVERIFY_LOG_LEVEL": level}).log_level == level


def test_unknown_log_level_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="log_level") as info:
        Settings.from_env({"BIOVERIFY_LOG_LEVEL": "LOUD"})
    assert "WARNING" in str(info.value)
