"""ExactIndex and FastScanIndex: search, deletions, persistence; ANN recall against exact."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from bioverify.index.faiss_ann import _MAGIC, FastScanIndex, _read_arrays, _write_arrays
from bioverify.index.faiss_exact import ExactIndex
from bioverify.index.gallery import INDEX_LOADERS
from bioverify.index.ports import VectorIndex

F32 = npt.NDArray[np.float32]


def unit(x: npt.NDArray[np.floating]) -> F32:
    rows: F32 = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return rows


def gallery_and_probes(n: int, dim: int, nq: int, seed: int) -> tuple[F32, F32, F32]:
    """Templates around random identity centres; genuine probes of the first ``nq``
    identities (cosine ~0.75 to their template) and probes of unseen identities."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(n + nq, dim)))
    noise = 1.0 / np.sqrt(dim)
    templates = unit(centres[:n] + 0.4 * noise * rng.normal(size=(n, dim)))
    mated = unit(centres[:nq] + 0.7 * noise * rng.normal(size=(nq, dim)))
    nonmated = unit(centres[n:] + 0.7 * noise * rng.normal(size=(nq, dim)))
    return templates, mated, nonmated


def make_exact(ids: npt.NDArray[np.int64], x: F32) -> VectorIndex:
    index = ExactIndex(x.shape[1])
    index.add(ids, x)
    return index


def make_ann(ids: npt.NDArray[np.int64], x: F32) -> VectorIndex:
    return FastScanIndex.build(ids, x, seed=0)


FACTORIES = pytest.mark.parametrize("make", [make_exact, make_ann], ids=["exact", "ann"])
Make = Callable[[npt.NDArray[np.int64], F32], VectorIndex]


@FACTORIES
def test_search_finds_the_genuine_template_with_exact_scores(make: Make) -> None:
    x, mated, _ = gallery_and_probes(2000, 64, 50, seed=1)
    ids = np.arange(2000, dtype=np.int64) * 3 + 7
    index = make(ids, x)
    assert len(index) == 2000 and index.dim == 64
    scores, found = index.search(mated, 5)
    assert scores.shape == found.shape == (50, 5)
    np.testing.assert_array_equal(found[:, 0], ids[:50])
    assert np.all(np.diff(scores, axis=1) <= 0)
    np.testing.assert_allclose(scores[:, 0], np.sum(mated * x[:50], axis=1), rtol=1e-5)


@FACTORIES
def test_missing_neighbours_are_padded(make: Make) -> None:
    x, mated, _ = gallery_and_probes(1000, 32, 2, seed=2)
    index = make(np.arange(1000, dtype=np.int64), x)
    index.remove(np.arange(3, 1000, dtype=np.int64))
    scores, found = index.search(mated, 5)
    assert sorted(found[0, :3].tolist()) == [0, 1, 2]
    assert found[0, 3:].tolist() == [-1, -1]
    assert np.all(np.isneginf(scores[:, 3:]))


@FACTORIES
def test_deleted_ids_are_never_returned(make: Make) -> None:
    x, mated, _ = gallery_and_probes(3000, 64, 100, seed=3)
    ids = np.arange(3000, dtype=np.int64)
    index = make(ids, x)
    gone = np.concatenate([ids[:50], ids[500:900]])
    assert index.remove(gone) == gone.size
    assert index.remove(gone) == 0  # already gone; unknown ids are ignored
    assert len(index) == 3000 - gone.size
    _, found = index.search(mated, 20)
    assert not np.isin(found, gone).any()
    np.testing.assert_array_equal(found[50:, 0], ids[50:100])
    exported_ids, exported = index.export()
    assert sorted(exported_ids.tolist()) == sorted(set(ids.tolist()) - set(gone.tolist()))
    np.testing.assert_array_equal(exported[np.argsort(exported_ids)][0], x[50])


@FACTORIES
def test_incremental_adds_match_a_bulk_build(make: Make) -> None:
    x, mated, nonmated = gallery_and_probes(2000, 64, 40, seed=4)
    ids = np.arange(2000, dtype=np.int64)
    bulk = make(ids, x)
    grown = make(ids[:1000], x[:1000])
    grown.add(ids[1000:1013], x[1000:1013])  # not a multiple of FAISS's 32-code blocks
    grown.add(ids[1013:], x[1013:])
    for q in (mated, nonmated):
        np.testing.assert_array_equal(grown.search(q, 3)[1], bulk.search(q, 3)[1])


def save_to(index: VectorIndex, path: Path) -> None:
    with open(path, "wb") as f:
        index.save(f)


def load_from(kind: str, path: Path) -> VectorIndex:
    with open(path, "rb") as f:
        return INDEX_LOADERS[kind](f)


@FACTORIES
def test_save_and_load_round_trip(make: Make, tmp_path: Path) -> None:
    x, mated, _ = gallery_and_probes(1500, 32, 20, seed=5)
    index = make(np.arange(1500, dtype=np.int64), x)
    index.remove(np.arange(10, dtype=np.int64))
    save_to(index, tmp_path / "index")
    loaded = load_from(index.kind, tmp_path / "index")
    assert len(loaded) == len(index)
    for a, b in zip(loaded.search(mated, 4), index.search(mated, 4), strict=True):
        np.testing.assert_array_equal(a, b)
    # Removed vectors are not written (the ANN's tombstoned ones included), kept ones are.
    data = (tmp_path / "index").read_bytes()
    assert not any(x[i].tobytes() in data for i in range(10))
    assert all(x[i].tobytes() in data for i in range(10, 20))
    if isinstance(loaded, FastScanIndex):
        assert loaded._pq.ntotal == len(index)  # nor their PQ codes
    loaded.add(np.arange(10, dtype=np.int64), x[:10])  # and the loaded index takes them back
    np.testing.assert_array_equal(loaded.search(x[:10], 1)[1][:, 0], np.arange(10))


def test_wrong_dimension_is_refused() -> None:
    index = ExactIndex(8)
    with pytest.raises(ValueError, match="dimension 8"):
        index.add(np.array([1]), np.ones((1, 9), np.float32))
    with pytest.raises(ValueError, match="dimension 8"):
        index.search(np.ones((1, 4), np.float32), 1)


def test_ann_refuses_duplicate_ids_and_untrained_adds() -> None:
    x, _, _ = gallery_and_probes(200, 16, 1, seed=6)
    with pytest.raises(ValueError, match="train"):
        FastScanIndex(16).add(np.arange(200), x)
    index = FastScanIndex.build(np.arange(200, dtype=np.int64), x)
    with pytest.raises(ValueError, match="already"):
        index.add(np.array([5], np.int64), x[:1])
    index.remove(np.array([5], np.int64))
    index.add(np.array([5], np.int64), x[:1])  # a removed id may come back
    assert len(index) == 200


def test_ann_asks_for_a_rebuild_past_the_dead_fraction() -> None:
    x, _, _ = gallery_and_probes(1000, 16, 1, seed=7)
    index = FastScanIndex.build(np.arange(1000, dtype=np.int64), x, max_dead_fraction=0.1)
    index.remove(np.arange(100, dtype=np.int64))
    assert not index.needs_rebuild()
    index.remove(np.array([100], np.int64))
    assert index.needs_rebuild()


@pytest.mark.parametrize("dim", [128, 192])
def test_ann_recall_at_1_against_exact(dim: int) -> None:
    """recall@1 ≥ 0.99 against exact search on genuine and on unseen-identity probes."""
    n = 20_000
    x, mated, nonmated = gallery_and_probes(n, dim, 300, seed=8)
    ids = np.arange(n, dtype=np.int64)
    exact, ann = make_exact(ids, x), make_ann(ids, x)
    # Deletions shift nothing: delete 5% (including some true neighbours) from both.
    gone = np.random.default_rng(9).choice(n, n // 20, replace=False).astype(np.int64)
    exact.remove(gone)
    ann.remove(gone)
    for probes in (mated, nonmated):
        se, ie = exact.search(probes, 1)
        sa, ia = ann.search(probes, 1)
        assert np.mean(ia[:, 0] == ie[:, 0]) >= 0.99
        hit = ia[:, 0] == ie[:, 0]
        np.testing.assert_allclose(sa[hit, 0], se[hit, 0], rtol=1e-5)
        assert not np.isin(ia, gone).any()


@FACTORIES
def test_loading_a_corrupt_file_raises(make: Make, tmp_path: Path) -> None:
    x, _, _ = gallery_and_probes(100, 16, 1, seed=10)
    index = make(np.arange(100, dtype=np.int64), x)
    save_to(index, tmp_path / "index")
    data = (tmp_path / "index").read_bytes()
    (tmp_path / "index").write_bytes(data[: len(data) // 2])
    with pytest.raises((ValueError, RuntimeError)):
        load_from(index.kind, tmp_path / "index")


@pytest.mark.parametrize("empty_last", [False, True])
def test_the_fast_scan_file_layout_is_unchanged(tmp_path: Path, empty_last: bool) -> None:
    """The layout: magic, header length, JSON header, then each array at its 64-byte aligned
    offset past the header, nothing after the last array's bytes (an empty array adds
    nothing, as the old writer's seek did)."""
    arrays: dict[str, np.ndarray] = {
        "a": np.arange(10, dtype=np.int64),
        "b": np.ones((3, 5), np.float32),
    }
    if empty_last:
        arrays["c"] = np.empty(0, np.bool_)
    save_to_arrays(tmp_path / "f", arrays)
    data = (tmp_path / "f").read_bytes()
    size = int.from_bytes(data[len(_MAGIC) : len(_MAGIC) + 8], "little")
    header = json.loads(data[len(_MAGIC) + 8 : len(_MAGIC) + 8 + size])
    start = -(-(len(_MAGIC) + 8 + size) // 64) * 64
    assert data.startswith(_MAGIC)
    assert [e["offset"] for e in header["arrays"]] == [0, 128, 192][: len(arrays)]
    for entry, arr in zip(header["arrays"], arrays.values(), strict=True):
        at = start + entry["offset"]
        assert data[at : at + arr.nbytes] == arr.tobytes()
    assert len(data) == start + header["arrays"][1]["offset"] + arrays["b"].nbytes
    with open(tmp_path / "f", "rb") as f:
        _, back = _read_arrays(f)
    assert all(np.array_equal(back[k], v) for k, v in arrays.items())


def save_to_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        _write_arrays(f, {}, arrays)


def test_a_fast_scan_file_naming_python_objects_is_refused(tmp_path: Path) -> None:
    """A damaged plain snapshot must not make numpy build arrays of objects from raw bytes."""
    save_to_arrays(tmp_path / "f", {"a": np.arange(4, dtype=np.int64)})
    data = (tmp_path / "f").read_bytes().replace(b'"<i8"', b'"|O8"')
    (tmp_path / "f").write_bytes(data)
    with open(tmp_path / "f", "rb") as f, pytest.raises(ValueError, match="Python objects"):
        _read_arrays(f)


# Written by the seek-based _write_arrays of c63b068 (before the stream writer), params {"m": 4}.
SEEK_WRITER_FILE = bytes.fromhex(
    "4256464153545343414e310ad6000000000000007b22706172616d73223a207b226d223a20347d2c20226172"
    "72617973223a205b7b226e616d65223a202261222c20226474797065223a20223c6938222c20227368617065"
    "223a205b31305d2c20226f6666736574223a20307d2c207b226e616d65223a202262222c2022647479706522"
    "3a20223c6634222c20227368617065223a205b332c20355d2c20226f6666736574223a203132387d2c207b22"
    "6e616d65223a202263222c20226474797065223a20227c6231222c20227368617065223a205b305d2c20226f"
    "6666736574223a203139327d5d7d000000000000000000000000000000000000000000000000000000000000"
    "0100000000000000020000000000000003000000000000000400000000000000050000000000000006000000"
    "0000000007000000000000000800000000000000090000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000000000803f0000803f0000803f"
    "0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f0000803f"
    "0000803f"
)


def test_a_file_of_the_seek_based_writer_loads_and_is_written_alike(tmp_path: Path) -> None:
    arrays: dict[str, np.ndarray] = {
        "a": np.arange(10, dtype=np.int64),
        "b": np.ones((3, 5), np.float32),
        "c": np.empty(0, np.bool_),
    }
    with open(tmp_path / "f", "wb") as f:
        _write_arrays(f, {"m": 4}, arrays)
    assert (tmp_path / "f").read_bytes() == SEEK_WRITER_FILE
    (tmp_path / "old").write_bytes(SEEK_WRITER_FILE)
    with open(tmp_path / "old", "rb") as f:
        params, back = _read_arrays(f)
    assert params == {"m": 4}
    assert all(np.array_equal(back[k], v) for k, v in arrays.items())


def test_a_fast_scan_file_naming_a_huge_array_is_refused(tmp_path: Path) -> None:
    layout = [{"name": "a", "dtype": "<i8", "shape": [10**13], "offset": 0}]
    header = json.dumps({"params": {}, "arrays": layout}).encode()
    # a damaged plain snapshot: 80 TB named, 8 bytes there; never allocated
    (tmp_path / "f").write_bytes(_MAGIC + len(header).to_bytes(8, "little") + header + bytes(8))
    with open(tmp_path / "f", "rb") as f, pytest.raises(ValueError, match="too large"):
        _read_arrays(f)
