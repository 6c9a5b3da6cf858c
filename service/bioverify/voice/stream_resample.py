"""Resampling a stream chunk by chunk with the same Kaiser-windowed FIR that
``scipy.signal.resample_poly`` uses, keeping the filter state between chunks so the output
equals resampling the whole signal at once (up to the filter's delay at the very end)."""

from __future__ import annotations

from math import gcd

import numpy as np
import numpy.typing as npt
from scipy.signal import firwin, lfilter

MAX_RATIO_TERM = 16
"""Largest reduced up/down factor accepted; keeps the filter short enough for live audio."""


class StreamingResampler:
    def __init__(self, from_rate: int, to_rate: int) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError("sample rates must be positive")
        g = gcd(from_rate, to_rate)
        self.up = to_rate // g
        self.down = from_rate // g
        if max(self.up, self.down) > MAX_RATIO_TERM:
            raise ValueError(f"cannot stream-resample {from_rate} Hz to {to_rate} Hz")
        max_rate = max(self.up, self.down)
        self._half = 10 * max_rate
        taps = (
            [1.0]
            if self.identity
            else firwin(2 * self._half + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * self.up
        )
        self._taps = np.asarray(taps, dtype=np.float64)
        self._state = np.zeros(self._taps.size - 1)
        self._position = 0  # upsampled samples filtered so far

    @property
    def identity(self) -> bool:
        return self.up == 1 and self.down == 1

    def process(self, chunk: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if self.identity:
            return np.asarray(chunk, dtype=np.float32)
        if chunk.size == 0:
            return np.zeros(0, dtype=np.float32)
        stuffed = np.zeros(chunk.size * self.up)
        stuffed[:: self.up] = chunk
        filtered, self._state = lfilter(self._taps, 1.0, stuffed, zi=self._state)
        # Output sample j sits at upsampled index half + j * down (the filter's group delay).
        start = max(self._half - self._position, 0)
        start += (-(self._position + start - self._half)) % self.down
        self._position += stuffed.size
        return np.asarray(filtered[start :: self.down], dtype=np.float32)

    def flush(self) -> npt.NDArray[np.float32]:
        """The tail still inside the filter (call once at the end of the stream)."""
        if self.identity:
            return np.zeros(0, dtype=np.float32)
        pad = -(-self._half // self.up) + 1
        return self.process(np.zeros(pad, dtype=np.float32))
