"""Paths and helpers of the voice anti-spoofing tests (clips of ../shared/data)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SHARED = Path(
    os.environ.get("BIOVERIFY_SHARED_DIR", Path(__file__).resolve().parents[2].parent / "shared")
)
MODELS = SHARED / "models"
DATA = SHARED / "data"
AASIST_DIR = MODELS / "aasist"
LABELS = DATA / "voice_spoof_labels.tsv"


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared test asset missing: {path} (set BIOVERIFY_SHARED_DIR)")
    return path


def read_clip(rel: str) -> np.ndarray:
    wave, rate = sf.read(require(DATA / rel), dtype="float32")
    assert rate == 16000
    return np.ascontiguousarray(wave, dtype=np.float32)


def spoof_rows() -> list[dict[str, str]]:
    with require(LABELS).open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))
