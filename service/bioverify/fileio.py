"""Small file-system helpers shared by the parts that write durable files."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Protocol

from bioverify.errors import ConfigurationError

PRIVATE_FILE_MODE = 0o600

logger = logging.getLogger(__name__)


class ByteSink(Protocol):
    """Where a file's bytes are written: an open binary file, or a sealing writer."""

    def write(self, data: bytes | memoryview, /) -> int: ...


class ByteSource(Protocol):
    """Where a file's bytes are read from: an open binary file, or a sealed file's reader."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (all that is left when -1); fewer only at the end."""
        ...

    def readinto(self, buffer: memoryview, /) -> int:
        """Fills ``buffer`` (fewer bytes only at the end); returns how many were read."""
        ...


def fsync_dir(directory: Path) -> None:
    """Flush ``directory``'s entries (a rename or unlink in it) to disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_secret_text(path: Path, what: str) -> str:
    """The text of a file holding secrets (``what`` names it in messages, e.g. "template key
    file"), with a warning when other users may read it; ConfigurationError when it cannot
    be read as UTF-8 text."""
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigurationError(f"cannot read the {what} {path}: {reason}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("the %s %s can be read by other users (chmod 600)", what, path)
    return text


def create_key_file(path: Path, nbytes: int = 32) -> bool:
    """Write a new random key (``nbytes`` as hex) to ``path``, mode 0600 whatever the umask,
    unless one is there already; returns whether this call made it. Two processes making it
    at once end up with the same key: the file is written aside and linked into place, and
    a link never replaces the key another process linked first. Raises OSError."""
    tmp = _written_aside(path, (secrets.token_hex(nbytes) + "\n").encode("ascii"))
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    fsync_dir(path.parent)
    return True


def open_private(path: Path, flags: int) -> int:
    """``os.open(path, flags | O_CREAT)`` of a file for its owner alone: a new one is created
    ``0600`` whatever the umask (never readable by others, not even before a chmod), and an
    existing regular file that group or others may access loses that access before anything
    is written through the descriptor. Anything else (``/dev/null``, ``/dev/stdout``, a FIFO)
    is written as it is: its mode is not this file's to change. Raises OSError."""
    fd = os.open(path, flags | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        status = os.fstat(fd)
        mode = stat.S_IMODE(status.st_mode)
        if stat.S_ISREG(status.st_mode) and mode & 0o077:
            os.fchmod(fd, mode & ~0o077)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private_text(path: Path, text: str) -> None:
    """``path`` holding ``text`` (UTF-8) and nothing else, for its owner alone: for files that
    name subjects or hold their metadata, file paths or scores. The text is written to a new
    file beside ``path`` (created ``0600``, exclusively, never through a link) and renamed
    over it, so nothing already at ``path`` is written through: not a file someone else
    created there and holds open, nor a link or FIFO planted in a shared folder; and a reader
    never sees half a file. Written in place instead: a terminal, ``/dev/null`` or a pipe of
    the caller's (``/dev/stdout``, a FIFO it made), and a regular file of the caller's in a
    folder it may not create files in. Raises OSError."""
    try:
        entry: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        entry = None
    if entry is not None and _written_in_place(path, entry):
        _write_through(path, text, os.O_WRONLY | os.O_TRUNC)  # follows /dev/stdout's link
        return
    try:
        _replace_with(path, text)
    except PermissionError:
        ours = entry is not None and stat.S_ISREG(entry.st_mode) and entry.st_uid == os.geteuid()
        if not ours:
            raise
        _write_through(path, text, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)


def _written_in_place(path: Path, entry: os.stat_result) -> bool:
    """Whether ``path`` (``entry``: its own lstat) is a device or pipe the caller may write as
    it is: a character device of root's or the caller's (``/dev/null``, its terminal) or a
    FIFO or socket of the caller's, itself or behind a link. Regular files, links to them,
    and devices or pipes of other users are replaced instead."""
    if stat.S_ISREG(entry.st_mode):
        return False
    try:
        target = os.stat(path)
    except OSError:
        return False
    me = os.geteuid()
    if stat.S_ISCHR(target.st_mode):
        return target.st_uid in (0, me)
    if stat.S_ISFIFO(target.st_mode) or stat.S_ISSOCK(target.st_mode):
        return target.st_uid == me
    return False


def _write_through(path: Path, text: str, flags: int) -> None:
    with os.fdopen(open_private(path, flags), "w", encoding="utf-8") as out:
        out.write(text)


def _replace_with(path: Path, text: str) -> None:
    """A new ``0600`` file beside ``path`` holding ``text``, renamed over ``path``."""
    tmp = _written_aside(path, text.encode("utf-8"))
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(PermissionError):  # a folder the caller may write but not list
        fsync_dir(path.parent)


def _written_aside(path: Path, data: bytes) -> Path:
    """A new file beside ``path`` (hidden, random name; created exclusively, never through a
    link; ``0600`` whatever the umask) holding ``data``, flushed to disk; its path."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp
