"""The vector-index port: int64 ids in, (scores, ids) out, inner product on unit vectors."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from bioverify.fileio import ByteSink

Ids = npt.NDArray[np.int64]
Vectors = npt.NDArray[np.float32]
Scores = npt.NDArray[np.float32]

MISSING_ID = -1
"""Id returned in result slots that have no neighbour (fewer than k vectors indexed)."""


class VectorIndex(Protocol):
    """A mutable id → vector index searched by inner product (cosine on unit vectors).

    Not thread-safe for writes: callers serialise ``add``/``remove`` against searches.
    """

    kind: str
    """Registry name, written into snapshots so ``load`` picks the right adapter."""

    @property
    def dim(self) -> int: ...

    def add(self, ids: Ids, vectors: Vectors) -> None:
        """Add vectors under ids that are not in the index yet."""
        ...

    def remove(self, ids: Ids) -> int:
        """Remove ids (unknown ids are ignored); returns how many were removed."""
        ...

    def search(self, queries: Vectors, k: int) -> tuple[Scores, Ids]:
        """Best ``k`` per query: (n, k) scores descending and (n, k) ids, -1 where missing."""
        ...

    def export(self) -> tuple[Ids, Vectors]:
        """Every (id, vector) held, in no particular order; used to rebuild as another kind."""
        ...

    def needs_rebuild(self) -> bool:
        """True when the index would serve better rebuilt from ``export()`` (e.g. tombstones)."""
        ...

    def __len__(self) -> int: ...

    def save(self, out: ByteSink) -> None:
        """Write as one file; each adapter's ``load(source)`` classmethod reads it back."""
        ...


def as_ids(ids: npt.ArrayLike) -> Ids:
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).ravel())


def as_vectors(vectors: npt.ArrayLike, dim: int) -> Vectors:
    """A C-contiguous float32 (n, dim) array; raises ValueError on a wrong shape."""
    out = np.ascontiguousarray(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
    if out.ndim != 2 or out.shape[1] != dim:
        raise ValueError(f"expected vectors of dimension {dim}, got shape {out.shape}")
    return out
