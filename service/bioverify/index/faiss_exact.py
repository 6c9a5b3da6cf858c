"""Exact inner-product search: ``IndexIDMap2(IndexFlatIP)``.

FAISS holds the vectors and ids (``remove_ids``, ``reconstruct`` and serialization), but the
scoring is one numpy matrix product over a zero-copy view of FAISS's storage: for one query
against 100k 128-d vectors on this machine FAISS's flat search took ~15 ms and the view ~2 ms
(see ``bench/index_bench.py``). Views are taken per call and never kept across a mutation.
"""

from __future__ import annotations

from typing import Any, Self

import faiss
import numpy as np

from bioverify.fileio import ByteSink, ByteSource
from bioverify.index._results import pad_results, top_k
from bioverify.index.ports import Ids, Scores, Vectors, as_ids, as_vectors

_FAISS_IO: Any = faiss  # its type stubs lack the Python-callback readers and writers

_QUERY_BLOCK = 32
"""Queries scored per matrix product (bounds the (block, n) score matrix)."""


class ExactIndex:
    """Brute-force inner product over every stored vector; results are exact."""

    kind = "exact"

    def __init__(self, dim: int) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        self._dim = dim
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: Ids, vectors: Vectors) -> None:
        ids = as_ids(ids)
        vectors = as_vectors(vectors, self._dim)
        if ids.shape[0] != vectors.shape[0]:
            raise ValueError("ids and vectors differ in length")
        if ids.size:
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: Ids) -> int:
        ids = as_ids(ids)
        if ids.size == 0 or len(self) == 0:
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

    def search(self, queries: Vectors, k: int) -> tuple[Scores, Ids]:
        queries = as_vectors(queries, self._dim)
        if k <= 0:
            raise ValueError("k must be positive")
        xb, id_map = self._views()
        blocks_s: list[Scores] = []
        blocks_i: list[Ids] = []
        for start in range(0, queries.shape[0], _QUERY_BLOCK):
            block = queries[start : start + _QUERY_BLOCK]
            scores, pos = top_k(block @ xb.T, k)
            blocks_s.append(scores)
            blocks_i.append(id_map[pos].astype(np.int64, copy=False))
        if not blocks_s:
            return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
        return pad_results(np.concatenate(blocks_s), np.concatenate(blocks_i), k)

    def export(self) -> tuple[Ids, Vectors]:
        xb, id_map = self._views()
        return id_map.copy(), xb.copy()

    def save(self, out: ByteSink) -> None:
        faiss.write_index(self._index, _FAISS_IO.PyCallbackIOWriter(out.write))

    @classmethod
    def load(cls, source: ByteSource) -> Self:
        index = faiss.read_index(_FAISS_IO.PyCallbackIOReader(source.read))
        if not isinstance(index, faiss.IndexIDMap2):
            raise ValueError("the file does not hold an IndexIDMap2")
        self = cls(int(index.d))
        self._index = index
        return self

    def needs_rebuild(self) -> bool:
        return False

    def _views(self) -> tuple[Vectors, Ids]:
        """Zero-copy (n, dim) vectors and (n,) ids of FAISS's storage, valid until a mutation."""
        n = len(self)
        if n == 0:
            return np.empty((0, self._dim), np.float32), np.empty(0, np.int64)
        flat: Any = faiss.downcast_index(self._index.index)
        xb = faiss.rev_swig_ptr(flat.get_xb(), n * self._dim).reshape(n, self._dim)
        id_map = faiss.rev_swig_ptr(self._index.id_map.data(), n)
        return xb, id_map
