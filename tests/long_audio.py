"""Long and high-rate audio for the memory tests, and the traced memory peak of a call."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import soundfile as sf

T = TypeVar("T")


def long_flac(
    seconds: float, rate: int, channels: int, fill: Callable[[int, int], np.ndarray] | None = None
) -> bytes:
    """A FLAC file written block by block (so the test itself stays small); ``fill(start, n)``
    gives frames ``start`` to ``start + n`` (silence without it)."""
    buffer = io.BytesIO()
    total = round(seconds * rate)
    with sf.SoundFile(buffer, "w", rate, channels, "PCM_16", format="FLAC") as out:
        for start in range(0, total, 1 << 16):
            n = min(1 << 16, total - start)
            out.write(fill(start, n) if fill else np.zeros((n, channels), np.float32))
    return buffer.getvalue()


def peak_bytes_of(call: Callable[[], T]) -> tuple[T, int]:
    """``call()`` and the peak of the memory traced in this process while it ran (numpy
    arrays included)."""
    tracemalloc.start()
    try:
        result = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak
