"""The per-deployment secret that sample ids are keyed with (see
:func:`bioverify.usecases.common.sample_id`).

It comes from ``sample_id_key`` or ``sample_id_key_file`` in the settings; without either, a
random key is made once and kept in ``DATA_DIR/sample-id.key`` (mode 0600), and read again on
every start. Replicas sharing a Redis store must share one key, or a sample enrolled through
one replica is not recognised through another. The key is never logged.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bioverify.errors import ConfigurationError
from bioverify.fileio import create_key_file, read_secret_text
from bioverify.settings import MIN_SAMPLE_ID_KEY_LENGTH, Settings

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "sample-id.key"


def sample_id_key(settings: Settings) -> bytes:
    """The configured key, or the data directory's own one (made on first use)."""
    if settings.sample_id_key:
        return settings.sample_id_key.encode("utf-8")
    if settings.sample_id_key_file:
        return read_key_file(Path(settings.sample_id_key_file))
    path = settings.data_dir / KEY_FILE_NAME
    if settings.store == "redis":
        logger.warning(
            "no sample_id_key is configured: this replica keys sample ids with %s, so a sample "
            "enrolled through another replica is not recognised as the same; give every "
            "replica one key (sample_id_key_file)",
            path,
        )
    return load_or_create_key_file(path)


def read_key_file(path: Path) -> bytes:
    """The key a file holds (surrounding whitespace ignored)."""
    text = read_secret_text(path, "sample id key file").strip()
    if len(text) < MIN_SAMPLE_ID_KEY_LENGTH:
        raise ConfigurationError(
            f"the sample id key file {path} must hold at least {MIN_SAMPLE_ID_KEY_LENGTH} "
            "characters (e.g. `openssl rand -hex 32`)"
        )
    return text.encode("utf-8")


def load_or_create_key_file(path: Path) -> bytes:
    """The key in ``path``; when there is none yet, a random one written there with mode 0600.
    Two processes creating it at once end up with the same key (the first one linked)."""
    if path.exists():
        return read_key_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if create_key_file(path):
            logger.info("made a new sample id key in %s", path)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the sample id key file {path}: {exc.strerror}"
        ) from exc
    return read_key_file(path)
