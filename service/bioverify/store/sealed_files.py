"""Files sealed at rest: what the service writes to disk beside its template store (the
galleries' snapshots, which hold every enrolled vector) is sealed with the template keys
(``template_key_file``) when the service holds them, and written plain when it holds none.

A sealed file is streamed in chunks, so sealing or opening a snapshot of a million templates
never holds a second copy of it in memory. The layout is ``FILE_MAGIC``, the 8-byte id of the
template key, a random 16-byte salt, then chunks of ``CHUNK_BYTES`` plain bytes (the last one
shorter, possibly empty), each an AES-256-GCM ciphertext with its 16-byte tag. Each file has a
key of its own, derived with HKDF-SHA256 from the template key, the salt and where the file is
(``FilePlace``: what it is and the names that identify it), so a file renamed or copied into
another snapshot fails to open. A chunk's nonce is its number and whether it is the last one
(the "STREAM" construction of Hoang, Reyhanitabar, Rogaway and Vizár, 2015), so chunks that
were reordered, dropped, or cut off at a chunk boundary, and bytes appended after the last
chunk, are all found: a file opens whole or not at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bioverify.fileio import ByteSink, ByteSource
from bioverify.store.sealing import KEY_BYTES, KEY_ID_BYTES, TAG_BYTES, KeyRing, length_prefixed

FILE_MAGIC = b"\xffBVSF1\n\x00"
SALT_BYTES = 16
HEADER_BYTES = len(FILE_MAGIC) + KEY_ID_BYTES + SALT_BYTES
CHUNK_BYTES = 1 << 20
_COUNTER_BYTES = 11  # + 1 byte "last chunk" flag = the 12-byte GCM nonce


class SealedFileUnreadable(ValueError):
    """A file that cannot be opened here: altered, cut short, sealed with a key this service
    does not hold, or plain where sealed is required (and the other way round)."""


@dataclass(frozen=True)
class FilePlace:
    """What a file is (``what``, for messages) and the names its seal binds it to."""

    what: str
    names: tuple[str, ...]

    def info(self) -> bytes:
        return b"bioverify sealed file\0" + length_prefixed(self.names)


class FileSealer(Protocol):
    """Writes and reads the files kept beside the template store."""

    description: str  # for the startup log

    def writing(self, path: Path, place: FilePlace) -> AbstractContextManager[ByteSink]:
        """A new file at ``path``, flushed to disk when the block ends without an error."""
        ...

    def reading(self, path: Path, place: FilePlace) -> AbstractContextManager[ByteSource]:
        """The file at ``path``; SealedFileUnreadable when it cannot be opened here, and (when
        sealed) when the block ends without having read it whole, so every byte is checked."""
        ...


class PlainFiles:
    """Files as they are: a service without template keys."""

    description = "not encrypted (no template_key_file)"

    @contextmanager
    def writing(self, path: Path, place: FilePlace) -> Iterator[ByteSink]:
        with open(path, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())

    @contextmanager
    def reading(self, path: Path, place: FilePlace) -> Iterator[ByteSource]:
        with open(path, "rb") as f:
            if f.read(len(FILE_MAGIC)) == FILE_MAGIC:
                raise SealedFileUnreadable(
                    f"{place.what} is encrypted and this service holds no template key"
                )
            f.seek(0)
            yield f


PLAIN_FILES = PlainFiles()


class AesGcmFiles:
    """Files sealed with the first of ``keys``; opens files sealed with any of them. A plain
    file is refused: it may have been planted, and a snapshot is only ever rebuilt."""

    def __init__(self, keys: Sequence[bytes], *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._ring = KeyRing.of(keys)
        self._chunk = chunk_bytes
        self.description = self._ring.description

    @contextmanager
    def writing(self, path: Path, place: FilePlace) -> Iterator[ByteSink]:
        header = FILE_MAGIC + self._ring.sealing_id + os.urandom(SALT_BYTES)
        cipher = _file_cipher(self._ring.by_id[self._ring.sealing_id], header, place)
        with open(path, "wb") as f:
            f.write(header)
            writer = _SealedWriter(f, cipher, header, self._chunk)
            yield writer
            writer.finish()
            f.flush()
            os.fsync(f.fileno())

    @contextmanager
    def reading(self, path: Path, place: FilePlace) -> Iterator[ByteSource]:
        with open(path, "rb") as f:
            header = f.read(HEADER_BYTES)
            if header[: len(FILE_MAGIC)] != FILE_MAGIC:
                raise SealedFileUnreadable(
                    f"{place.what} is not encrypted, and this service reads only encrypted ones"
                )
            if len(header) < HEADER_BYTES:
                raise SealedFileUnreadable(f"{place.what} is cut short")
            key = self._ring.by_id.get(header[len(FILE_MAGIC) : HEADER_BYTES - SALT_BYTES])
            if key is None:
                raise SealedFileUnreadable(
                    f"{place.what} is encrypted with a key this service does not hold"
                )
            reader = _SealedReader(f, _file_cipher(key, header, place), header, place, self._chunk)
            yield reader
            reader.check_read_whole()


def _file_cipher(key: bytes, header: bytes, place: FilePlace) -> AESGCM:
    salt = header[-SALT_BYTES:]
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=place.info())
    return AESGCM(hkdf.derive(key))


def _nonce(number: int, last: bool) -> bytes:
    return number.to_bytes(_COUNTER_BYTES, "big") + (b"\x01" if last else b"\x00")


class _SealedWriter:
    """Seals what is written, a chunk at a time. A full chunk is held until more is written
    (it is then not the last one) or ``finish`` seals it as the last."""

    def __init__(self, out: BinaryIO, cipher: AESGCM, header: bytes, chunk: int) -> None:
        self._out, self._cipher, self._header, self._chunk = out, cipher, header, chunk
        self._pending = bytearray()
        self._number = 0

    def write(self, data: bytes | memoryview, /) -> int:
        view = memoryview(data).cast("B")
        written = len(view)
        while view:
            if len(self._pending) == self._chunk:
                self._seal(last=False)
            take = self._chunk - len(self._pending)
            self._pending += view[:take]
            view = view[take:]
        return written

    def finish(self) -> None:
        self._seal(last=True)

    def _seal(self, *, last: bool) -> None:
        nonce = _nonce(self._number, last)
        self._out.write(self._cipher.encrypt(nonce, bytes(self._pending), self._header))
        self._pending.clear()
        self._number += 1


class _SealedReader:
    """Opens a sealed file a chunk at a time; a chunk is the last one when no byte follows
    it, which its nonce must confirm."""

    def __init__(
        self, source: BinaryIO, cipher: AESGCM, header: bytes, place: FilePlace, chunk: int
    ) -> None:
        self._source, self._cipher, self._header, self._place = source, cipher, header, place
        self._sealed_chunk = chunk + TAG_BYTES
        self._ahead = source.read(self._sealed_chunk)
        self._plain = memoryview(b"")
        self._number = 0
        self._ended = False

    def read(self, size: int = -1, /) -> bytes:
        parts: list[bytes] = []
        wanted = size if size >= 0 else None
        while wanted is None or wanted > 0:
            if not self._plain and not self._open_next():
                break
            take = len(self._plain) if wanted is None else min(wanted, len(self._plain))
            parts.append(bytes(self._plain[:take]))
            self._plain = self._plain[take:]
            if wanted is not None:
                wanted -= take
        return b"".join(parts)

    def readinto(self, buffer: memoryview, /) -> int:
        target = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(target):
            if not self._plain and not self._open_next():
                break
            take = min(len(target) - filled, len(self._plain))
            target[filled : filled + take] = self._plain[:take]
            self._plain = self._plain[take:]
            filled += take
        return filled

    def check_read_whole(self) -> None:
        while not self._plain and self._open_next():
            pass  # chunks left unread must be empty (a file's only chunk may be)
        if self._plain:
            raise SealedFileUnreadable(f"{self._place.what} holds more than was read of it")

    def _open_next(self) -> bool:
        """Opens the next chunk into ``_plain``; False after the last."""
        if self._ended:
            return False
        sealed = self._ahead
        if len(sealed) < TAG_BYTES:
            raise SealedFileUnreadable(f"{self._place.what} is cut short")
        full = len(sealed) == self._sealed_chunk
        self._ahead = self._source.read(self._sealed_chunk) if full else b""
        last = not self._ahead
        try:
            plain = self._cipher.decrypt(_nonce(self._number, last), sealed, self._header)
        except InvalidTag:
            raise SealedFileUnreadable(
                f"{self._place.what} failed its integrity check (altered, cut short, or "
                "moved from where it was written)"
            ) from None
        self._plain = memoryview(plain)
        self._number += 1
        self._ended = last
        return True


def file_sealer(keys: Sequence[bytes]) -> FileSealer:
    """The file sealer for the service's template keys: plain without any."""
    return AesGcmFiles(keys) if keys else PLAIN_FILES
