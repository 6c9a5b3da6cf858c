"""What the deployment exposes: a private data directory for the templates, and warnings for a
service reachable from the network without TLS or API tokens, or with a TLS private key that
other users can read.

Biometric templates are personal data: the data directory is created ``0700`` and the SQLite
files ``0600`` (whatever the process umask), and an existing data directory or database that
other local users can read is tightened, with a warning.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from bioverify.settings import Settings

logger = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


@contextmanager
def private_umask() -> Iterator[None]:
    """Files and folders created inside are readable by their owner only.

    The umask is per process: use this only where no other thread creates files meanwhile
    (building the application, saving snapshots after the server stopped).
    """
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def restrict(path: Path) -> None:
    """Take group and other access away from ``path`` if it has any (with a warning)."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & 0o077 == 0:
        return
    private = current & ~0o077
    try:
        path.chmod(private)
    except OSError as exc:
        logger.warning(
            "%s is accessible to other users (mode %o) and cannot be restricted: %s",
            path,
            current,
            exc.strerror,
        )
        return
    logger.warning("%s was accessible to other users (mode %o): now %o", path, current, private)


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data directory ``0700`` (missing parents too), or restrict an existing one."""
    with private_umask():
        data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    restrict(data_dir)


def restrict_sqlite_files(database: Path) -> None:
    """The database and its WAL / shared-memory / journal files: owner only. (SQLite creates
    the WAL and shared-memory files later with the database file's mode.)"""
    for suffix in SQLITE_SUFFIXES:
        restrict(database.with_name(database.name + suffix))


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a listening address) is reachable from this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name other than localhost, or "" / "0.0.0.0" / "::" (all)


def exposure_warnings(settings: Settings) -> list[str]:
    """What an operator should hear about at startup: a network listener without TLS or
    without API tokens, a TLS private key other users can read, an API tokens file other users
    can write, a Redis store on the network without a password, without TLS, or holding
    templates unencrypted (no ``template_key_file``)."""
    warnings = []
    if settings.tls_key_file:
        key = Path(settings.tls_key_file)
        key_mode = _mode(key)
        if key_mode & 0o077:
            warnings.append(
                f"the TLS private key {key} is accessible to other users (mode {key_mode:o}): "
                "whoever reads it can impersonate the service (chmod 600, owned by the "
                "service's user)"
            )
    if settings.auth_tokens_file:
        tokens = Path(settings.auth_tokens_file)
        tokens_mode = _mode(tokens)
        if tokens_mode & 0o022:
            warnings.append(
                f"the API tokens file {tokens} is writable by other users (mode "
                f"{tokens_mode:o}): whoever can write it can add a token of their own (chmod "
                "600 or 644, owned by root or the service's user)"
            )
    if not is_loopback(settings.host):
        where = f"{settings.host or '*'}:{settings.port}"
        if not settings.tls_cert_file:
            warnings.append(
                f"listening on {where}, a non-loopback address, without TLS: biometric samples "
                "and API tokens cross the network in clear text (set tls_cert_file and "
                "tls_key_file)"
            )
        if not settings.auth_tokens_file:
            warnings.append(
                f"listening on {where}, a non-loopback address, without API tokens: anyone "
                "who can reach the port can enroll, verify, list and delete subjects (set "
                "auth_tokens_file)"
            )
    if settings.store == "redis":
        url = urlsplit(settings.redis_url)
        remote = url.scheme in ("redis", "rediss") and not is_loopback(url.hostname or "localhost")
        if remote and not url.password:
            warnings.append(
                f"the Redis store at {url.hostname} is used without a password: put it in "
                "redis_url (redis://:PASSWORD@host:port/db, or rediss:// for TLS)"
            )
        if remote and url.scheme == "redis":
            warnings.append(
                f"the Redis store at {url.hostname} is reached without TLS: templates and the "
                "Redis password cross the network in clear text (use rediss://)"
            )
        if remote and not settings.template_key_file:
            warnings.append(
                f"templates are stored unencrypted on {url.hostname}: whoever reads that "
                "server, its replicas or its backups gets every enrolled embedding (set "
                "template_key_file)"
            )
    return warnings


def _mode(path: Path) -> int:
    """``path``'s permission bits; 0 when it cannot be read (it is refused where it is read)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0
