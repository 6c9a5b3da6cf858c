"""Top-k selection and result padding shared by the index adapters (pure numpy)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bioverify.index.ports import MISSING_ID, Ids, Scores

Positions = npt.NDArray[np.intp]


def top_k(scores: Scores, k: int) -> tuple[Scores, Positions]:
    """Values and column positions of the ``k`` best scores of each row, best first."""
    rows, n = scores.shape
    kk = min(k, n)
    if kk == 0:
        return np.empty((rows, 0), np.float32), np.empty((rows, 0), np.intp)
    if kk < n:
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    else:
        part = np.broadcast_to(np.arange(n, dtype=np.intp), (rows, n)).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return (
        np.take_along_axis(vals, order, axis=1).astype(np.float32, copy=False),
        np.take_along_axis(part, order, axis=1),
    )


def pad_results(scores: Scores, ids: Ids, k: int) -> tuple[Scores, Ids]:
    """Pad (n, j) results with j < k to (n, k) with -inf scores and -1 ids."""
    n, j = ids.shape
    if j >= k:
        return scores, ids
    out_s = np.full((n, k), -np.inf, dtype=np.float32)
    out_i = np.full((n, k), MISSING_ID, dtype=np.int64)
    out_s[:, :j] = scores
    out_i[:, :j] = ids
    return out_s, out_i
