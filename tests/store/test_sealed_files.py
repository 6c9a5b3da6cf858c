"""Files sealed at rest (chunked AES-256-GCM): a sealed file opens whole and only where it was
written, or not at all; and a gallery of a service with template keys keeps its snapshots
sealed, loads them back, and rebuilds instead of loading one it cannot open."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import numpy as np
import pytest

from bioverify.fileio import ByteSink, ByteSource
from bioverify.index.gallery import Gallery
from bioverify.store.sealed_files import (
    FILE_MAGIC,
    HEADER_BYTES,
    PLAIN_FILES,
    AesGcmFiles,
    FilePlace,
    FileSealer,
    SealedFileUnreadable,
)
from bioverify.store.sealing import TAG_BYTES, key_id
from bioverify.store.sqlite_store import SqliteTemplateStore
from tests.conftest import files_containing, files_holding
from tests.index.test_gallery import DIM, People, enroll, top
from tests.store.test_template_sealing import KEY, OTHER_KEY

CHUNK = 64  # small chunks: every case below spans several
MAP = FilePlace(
    "a test file", ("gallery snapshot", "snapshot-000000000001-abcd0123", "p000000.json")
)
# Sealed by the first version of this format: snapshots must open in later versions.
GOLDEN = bytes.fromhex(
    "ff42565346310a0086cb1889cf616ab301e8b7cd6b2b362fd29ed0f51ffda5b1566c51248a6b89c21a11fd"
    "6f405507eb405ddcb164a4636b3a72f99ff8e3022bcefcd6153de54440d667092c483e4d6e071cd5"
)


def sealed(path: Path, plain: bytes, files: AesGcmFiles, place: FilePlace = MAP) -> bytes:
    with files.writing(path, place) as out:
        for start in range(0, len(plain), 7):  # writes that straddle chunk boundaries
            out.write(plain[start : start + 7])
    return path.read_bytes()


def opened(path: Path, files: AesGcmFiles, place: FilePlace = MAP) -> bytes:
    with files.reading(path, place) as source:
        return source.read()


def test_a_file_sealed_by_the_first_version_opens(tmp_path: Path) -> None:
    (tmp_path / "golden").write_bytes(GOLDEN)
    assert GOLDEN.startswith(FILE_MAGIC + key_id(KEY))
    assert opened(tmp_path / "golden", AesGcmFiles([KEY])) == b'{"ids": [0], "subjects": ["alice"]}'


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 5 * CHUNK + 3])
def test_sealed_files_round_trip_in_chunks(tmp_path: Path, size: int) -> None:
    files = AesGcmFiles([KEY], chunk_bytes=CHUNK)
    plain = np.random.default_rng(size).bytes(size)
    first = sealed(tmp_path / "a", plain, files)
    second = sealed(tmp_path / "b", plain, files)
    chunks = max(1, -(-size // CHUNK))
    assert len(first) == HEADER_BYTES + size + chunks * TAG_BYTES
    assert first != second  # a fresh salt, so a fresh file key, each time
    assert size < 8 or plain[:8] not in first
    assert opened(tmp_path / "a", files) == opened(tmp_path / "b", files) == plain
    with files.reading(tmp_path / "a", MAP) as source:  # read in pieces and into buffers
        head = source.read(5)
        body = bytearray(max(0, size - 10))
        assert source.readinto(memoryview(body)) == len(body)
        tail = source.read(100)
        assert source.read(1) == b""
    assert head + bytes(body) + tail == plain


def _flip(at: int) -> Callable[[bytes], bytes]:
    return lambda data: data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


SEALED_CHUNK = CHUNK + TAG_BYTES
ALTERATIONS: dict[str, Callable[[bytes], bytes]] = {
    "magic": _flip(0),
    "key id": _flip(len(FILE_MAGIC)),
    "salt": _flip(HEADER_BYTES - 1),
    "first chunk": _flip(HEADER_BYTES + 3),
    "last chunk's tag": _flip(-1),
    "cut at a chunk boundary": lambda d: d[: HEADER_BYTES + 2 * SEALED_CHUNK],
    "cut mid-chunk": lambda d: d[: HEADER_BYTES + SEALED_CHUNK + 10],
    "cut to the header": lambda d: d[:HEADER_BYTES],
    "header cut": lambda d: d[: HEADER_BYTES - 3],
    "a chunk dropped": lambda d: (
        d[: HEADER_BYTES + SEALED_CHUNK] + d[HEADER_BYTES + 2 * SEALED_CHUNK :]
    ),
    "two chunks swapped": lambda d: (
        d[:HEADER_BYTES]
        + d[HEADER_BYTES + SEALED_CHUNK : HEADER_BYTES + 2 * SEALED_CHUNK]
        + d[HEADER_BYTES : HEADER_BYTES + SEALED_CHUNK]
        + d[HEADER_BYTES + 2 * SEALED_CHUNK :]
    ),
    "bytes appended": lambda d: d + b"\0" * 5,
    "the last chunk repeated": lambda d: d + d[HEADER_BYTES + 3 * SEALED_CHUNK :],
}


@pytest.mark.parametrize("alter", ALTERATIONS.values(), ids=ALTERATIONS.keys())
def test_an_altered_file_does_not_open(tmp_path: Path, alter: Callable[[bytes], bytes]) -> None:
    files = AesGcmFiles([KEY], chunk_bytes=CHUNK)
    path = tmp_path / "f"
    path.write_bytes(alter(sealed(path, bytes(range(200)), files)))  # 4 chunks, last 8 bytes
    with pytest.raises(SealedFileUnreadable, match="a test file"):
        opened(path, files)


def test_a_file_opens_only_where_it_was_written(tmp_path: Path) -> None:
    files = AesGcmFiles([KEY])
    sealed(tmp_path / "f", b"contents", files)
    purpose, snapshot, name = MAP.names
    for elsewhere in (
        FilePlace(MAP.what, (purpose, snapshot, "p000001.json")),  # another file of it
        FilePlace(MAP.what, (purpose, "snapshot-000000000002-abcd0123", name)),
        FilePlace(MAP.what, ("another purpose", snapshot, name)),
    ):
        with pytest.raises(SealedFileUnreadable, match="integrity check"):
            opened(tmp_path / "f", files, elsewhere)


@pytest.mark.parametrize("stop_at", [0, 60, CHUNK])  # mid-chunk, and at a chunk boundary
def test_a_file_must_be_read_whole(tmp_path: Path, stop_at: int) -> None:
    files = AesGcmFiles([KEY], chunk_bytes=CHUNK)
    sealed(tmp_path / "f", bytes(100), files)
    reading = files.reading(tmp_path / "f", MAP)
    with pytest.raises(SealedFileUnreadable, match="more than was read"), reading as source:
        assert len(source.read(stop_at)) == stop_at
    sealed(tmp_path / "empty", b"", files)
    with files.reading(tmp_path / "empty", MAP):
        pass  # nothing to read is read whole


def test_a_file_whose_writing_failed_does_not_open(tmp_path: Path) -> None:
    files = AesGcmFiles([KEY], chunk_bytes=CHUNK)
    with pytest.raises(RuntimeError), files.writing(tmp_path / "f", MAP) as out:
        out.write(bytes(300))
        raise RuntimeError("the index failed to serialise")
    with pytest.raises(SealedFileUnreadable):
        opened(tmp_path / "f", files)


def test_rotation_seals_with_the_first_key_and_opens_with_every_key(tmp_path: Path) -> None:
    sealed(tmp_path / "old", b"old", AesGcmFiles([OTHER_KEY]))
    rotated = AesGcmFiles([KEY, OTHER_KEY])
    assert opened(tmp_path / "old", rotated) == b"old"
    assert sealed(tmp_path / "new", b"new", rotated).startswith(FILE_MAGIC + key_id(KEY))
    with pytest.raises(SealedFileUnreadable, match="key this service does not hold"):
        opened(tmp_path / "old", AesGcmFiles([KEY]))


def test_plain_and_sealed_files_are_not_mistaken_for_each_other(tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b'{"ids": []}')
    with pytest.raises(SealedFileUnreadable, match="not encrypted"):
        opened(tmp_path / "plain", AesGcmFiles([KEY]))
    sealed(tmp_path / "sealed", b"x", AesGcmFiles([KEY]))
    reading = PLAIN_FILES.reading(tmp_path / "sealed", MAP)
    with pytest.raises(SealedFileUnreadable, match="holds no template key"), reading as source:
        source.read()
    with PLAIN_FILES.reading(tmp_path / "plain", MAP) as source:
        assert source.read() == b'{"ids": []}'


# -- a gallery's sealed snapshots --------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteTemplateStore]:
    s = SqliteTemplateStore(tmp_path / "templates.sqlite3")
    yield s
    s.close()


def filled(store: SqliteTemplateStore, seed: int) -> People:
    """Two tenants: ``bank`` with one subject, ``big`` past ``face_gallery``'s exact_max (an
    ANN partition); returns the people enrolled."""
    people = People(seed)
    enroll(store, people, "bank", "alice-0042")
    for i in range(30):
        enroll(store, people, "big", f"customer-{i:04d}")
    return people


def face_gallery(files: FileSealer = PLAIN_FILES) -> Gallery:
    return Gallery("face", "m1", DIM, exact_max=10, files=files)


def saved(store: SqliteTemplateStore, files: FileSealer, snap: Path) -> Gallery:
    """A gallery of ``store`` with its snapshot saved under ``snap``."""
    gallery = face_gallery(files)
    gallery.rebuild(store)
    gallery.save(snap)
    return gallery


def no_trace_of(folder: Path, store: SqliteTemplateStore) -> bool:
    """No file under ``folder`` holds a stored vector or a subject id in the clear."""
    for tenant, subject in (("bank", "alice-0042"), ("big", "customer-0007")):
        if files_holding(folder, store.get_template(tenant, subject, "face").vector):
            return False
    return not files_containing(folder, b"customer-")


def test_a_sealed_snapshot_holds_nothing_in_the_clear_and_loads_back(
    store: SqliteTemplateStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    people, snap = filled(store, 11), tmp_path / "index" / "face"
    files = AesGcmFiles([KEY])
    gallery = saved(store, files, snap)
    assert no_trace_of(snap, store)
    restarted = face_gallery(AesGcmFiles([OTHER_KEY, KEY]))
    assert restarted.restore(store, snap) == "snapshot"
    assert restarted.describe() == gallery.describe()
    assert top(restarted, "bank", people.probe("alice-0042")) == "alice-0042"
    assert top(restarted, "big", people.probe("customer-0017")) == "customer-0017"
    # Once opened, the manifest says which gallery it is of: another model's is ignored as such.
    with caplog.at_level(logging.INFO, logger="bioverify.index.gallery"):
        assert not Gallery("face", "m2", DIM, files=files).load(snap)
    assert "was made for ('face', 'm1', 32)" in caplog.text and "unreadable" not in caplog.text
    # The plain gallery of the same deployment writes both in the clear (the check above can fail).
    saved(store, PLAIN_FILES, tmp_path / "plain")
    assert not no_trace_of(tmp_path / "plain", store)


def _alter_partition(snap: Path) -> None:
    current = snap / (snap / "CURRENT").read_text().strip()
    index = current / "p000001.index"
    data = bytearray(index.read_bytes())
    data[len(data) // 2] ^= 1
    index.write_bytes(bytes(data))


def _move_partitions(snap: Path) -> None:
    """The first partition's files in place of the second's (another tenant's)."""
    current = snap / (snap / "CURRENT").read_text().strip()
    for suffix in (".index", ".json"):
        (current / f"p000001{suffix}").write_bytes((current / f"p000000{suffix}").read_bytes())


@pytest.mark.parametrize(
    ("case", "spoil"),
    [
        ("altered", _alter_partition),
        ("moved", _move_partitions),
        ("key dropped", None),
        ("plain", "plain"),
    ],
)
def test_a_snapshot_that_cannot_be_opened_is_rebuilt_and_removed(
    store: SqliteTemplateStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: str,
    spoil: Callable[[Path], None] | str | None,
) -> None:
    people, snap = filled(store, 12), tmp_path / "index" / "face"
    saved(store, PLAIN_FILES if spoil == "plain" else AesGcmFiles([OTHER_KEY]), snap)
    if callable(spoil):
        spoil(snap)
    keys = [KEY] if case == "key dropped" else [KEY, OTHER_KEY]
    restarted = face_gallery(AesGcmFiles(keys))
    with caplog.at_level(logging.WARNING, logger="bioverify.index.gallery"):
        assert restarted.restore(store, snap) == "rebuild"
    assert "unreadable" in caplog.text and "ignoring it" in caplog.text
    assert not list(snap.glob("snapshot-*"))  # the rebuild removed it
    assert top(restarted, "big", people.probe("customer-0003")) == "customer-0003"
    restarted.save(snap)
    assert no_trace_of(snap, store)


def test_a_snapshot_whose_pointer_or_manifest_is_garbage_is_ignored(
    store: SqliteTemplateStore, tmp_path: Path
) -> None:
    snap = tmp_path / "index" / "face"
    filled(store, 13)
    gallery = saved(store, PLAIN_FILES, snap)
    current = snap / (snap / "CURRENT").read_text().strip()
    manifest = (current / "manifest.json").read_text()
    loaded = face_gallery()
    (snap / "CURRENT").write_bytes(b"\xff\xfe")
    assert not loaded.load(snap)
    (snap / "CURRENT").write_text(current.name)
    for garbage in ("[1, 2]", manifest.replace('"next_id"', '"next"')):
        (current / "manifest.json").write_text(garbage)
        assert not loaded.load(snap)
        assert len(loaded) == 0 and loaded.seq == 0  # unchanged
    (current / "manifest.json").write_text(manifest)
    assert loaded.load(snap) and len(loaded) == len(gallery)


class DiskFullAfter:
    """A FileSealer (fault injector) whose ``n``-th file fails midway, as on a full disk."""

    def __init__(self, files: AesGcmFiles, n: int) -> None:
        self._files, self._left = files, n
        self.description = files.description

    @contextmanager
    def writing(self, path: Path, place: FilePlace) -> Iterator[ByteSink]:
        self._left -= 1
        with self._files.writing(path, place) as out:
            if self._left == 0:
                out.write(b"partial")
                raise OSError(errno.ENOSPC, "No space left on device")
            yield out

    def reading(self, path: Path, place: FilePlace) -> AbstractContextManager[ByteSource]:
        return self._files.reading(path, place)


def test_a_snapshot_that_fails_midway_leaves_the_last_one_in_place(
    store: SqliteTemplateStore, tmp_path: Path
) -> None:
    snap = tmp_path / "index" / "face"
    filled(store, 14)
    files = AesGcmFiles([KEY])
    saved(store, files, snap)
    (first,) = snap.glob("snapshot-*")
    failing = face_gallery(DiskFullAfter(files, 3))
    failing.rebuild(store)
    with pytest.raises(OSError, match="No space left"):
        failing.save(snap)
    assert list(snap.glob("snapshot-*")) == [first]  # the partial one is gone
    assert face_gallery(files).restore(store, snap) == "snapshot"
