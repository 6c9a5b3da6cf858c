"""Settings that harden a deployment: reflection off unless asked for, log level validated."""

from __future__ import annotations

from pathlib import Path

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


def test_a_misspelt_variable_is_refused_not_ignored() -> None:
    """A typo must not quietly drop a setting: liveness would silently stay off."""
    with pytest.raises(ConfigurationError, match="BIOVERIFY_REQUIRE_FACE_LIVENES") as info:
        Settings.from_env({"BIOVERIFY_REQUIRE_FACE_LIVENES": "true"})
    assert "BIOVERIFY_REQUIRE_FACE_LIVENESS" in str(info.value)  # names the valid ones
    # variables that are not settings stay allowed
    allowed = {"BIOVERIFY_TOKEN": "t", "BIOVERIFY_SHARED_DIR": "/x", "OTHER_VAR": "1"}
    assert Settings.from_env(allowed) == Settings()


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("CHALLENGE_TTL_S", "nan", "finite"),
        ("MAX_AUDIO_SECONDS", "inf", "finite"),
        ("GRACE_SECONDS", "-1", "negative"),
        ("VOICE_MIN_VERIFY_SPEECH_S", "-5", "negative"),
        ("GALLERY_FOLLOW_POLL_S", "0", "positive"),
        ("CHALLENGE_TTL_S", "0", "positive"),
        ("GALLERY_EXACT_MAX", "0", "positive"),  # Gallery refused it with a traceback
        ("MAX_MESSAGE_BYTES", "1048575", "at least 1048576"),  # a page holds any subject
    ],
)
def test_numbers_out_of_range_are_configuration_errors(name: str, value: str, why: str) -> None:
    with pytest.raises(ConfigurationError, match=why):
        Settings.from_env({f"BIOVERIFY_{name}": value})


def test_a_key_with_no_value_in_the_yaml_file_means_the_default(tmp_path: Path) -> None:
    """``key:`` (null) in the YAML file is the default, as an empty variable is: never the
    string "None" (a key prefix "None", a key file named None). ``key: ""`` stays the empty
    string, as before: a deployment with no Redis key prefix keeps seeing its data."""
    config = tmp_path / "bioverify.yaml"
    config.write_text(
        "face_operating_point:\n"
        "sample_id_key_file:\n"
        "port:\n"
        "reflection:\n"
        'redis_key_prefix: ""\n'
        "host: 0.0.0.0\n",
        encoding="utf-8",
    )
    settings = Settings.from_env({"BIOVERIFY_CONFIG": str(config)})
    assert settings == Settings(host="0.0.0.0", redis_key_prefix="")
    assert settings.face_operating_point == Settings().face_operating_point
    assert settings.sample_id_key_file == ""
    config.write_text("redis_key_prefix:\nhost: 0.0.0.0\n", encoding="utf-8")
    assert Settings.from_env({"BIOVERIFY_CONFIG": str(config)}).redis_key_prefix == "bioverify:"
    # an empty variable is the default too, and over a YAML value it changes nothing
    env = {"BIOVERIFY_CONFIG": str(config), "BIOVERIFY_HOST": "", "BIOVERIFY_PORT": ""}
    assert Settings.from_env(env) == Settings(host="0.0.0.0")


def test_an_empty_unknown_key_in_the_yaml_file_is_still_refused(tmp_path: Path) -> None:
    config = tmp_path / "bioverify.yaml"
    config.write_text("redis_key_prefx:\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="redis_key_prefx"):
        Settings.from_env({"BIOVERIFY_CONFIG": str(config)})


def test_a_null_value_given_directly_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="redis_key_prefix has no value"):
        Settings.from_mapping({"redis_key_prefix": None})
