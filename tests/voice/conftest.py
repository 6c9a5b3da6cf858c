"""Shared fixtures of the voice tests: real models and real speech from ../shared."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from bioverify.voice.audio_decode import AudioLimits
from bioverify.voice.encoder_onnx import OnnxSpeakerEncoder, campplus_spec
from bioverify.voice.pipeline import VoicePipeline
from bioverify.voice.quality import VoiceQualityThresholds
from bioverify.voice.vad_silero import SileroVad

SHARED = Path(
    os.environ.get("BIOVERIFY_SHARED_DIR", Path(__file__).resolve().parents[2].parent / "shared")
)
DATA = SHARED / "data"
CAMPPLUS = SHARED / "models" / "campplus_3dspeaker" / "campplus_cn_en_common.onnx"

# A LibriSpeech utterance of about 7 s (16 kHz, 16-bit FLAC) and a second one by the same
# speaker; a TIMIT utterance by someone else.
SPEECH_CLIP = "speaker/audio/libri_2033/2033-164914-0009.flac"
SAME_SPEAKER_CLIP = "speaker/audio/libri_2033/2033-164914-0001.flac"
OTHER_SPEAKER_CLIP = "speaker/audio/timit_dr3-falk0/sx96.flac"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared test asset missing: {path} (set BIOVERIFY_SHARED_DIR)")
    return path


def read_clip(rel: str) -> tuple[np.ndarray, int]:
    """(float32 mono samples, rate) of a clip under shared/data."""
    wave, rate = sf.read(_require(DATA / rel), dtype="float32")
    return np.ascontiguousarray(wave, dtype=np.float32), int(rate)


def encode(wave: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    """``wave`` written as a container file in memory."""
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="session")
def speech() -> tuple[np.ndarray, int]:
    return read_clip(SPEECH_CLIP)


@pytest.fixture(scope="session")
def clip() -> Callable[[str], tuple[np.ndarray, int]]:
    """Loader of clips under shared/data."""
    return read_clip


@pytest.fixture(scope="session")
def container() -> Callable[..., bytes]:
    """``container(wave, rate, fmt, subtype=None)``: the wave as a file's bytes."""
    return encode


@pytest.fixture(scope="session")
def limits() -> AudioLimits:
    return AudioLimits(max_bytes=20_000_000, max_duration_s=60.0)


@pytest.fixture(scope="session")
def vad() -> SileroVad:
    return SileroVad()


@pytest.fixture(scope="session")
def encoder() -> OnnxSpeakerEncoder:
    return OnnxSpeakerEncoder(campplus_spec(_require(CAMPPLUS)))


@pytest.fixture(scope="session")
def thresholds() -> VoiceQualityThresholds:
    return VoiceQualityThresholds(min_net_speech_s=1.0, max_clipping_fraction=0.01, min_snr_db=10.0)


@pytest.fixture(scope="session")
def pipeline(
    vad: SileroVad,
    encoder: OnnxSpeakerEncoder,
    limits: AudioLimits,
    thresholds: VoiceQualityThresholds,
) -> VoicePipeline:
    return VoicePipeline(vad, encoder, limits, thresholds)


@pytest.fixture(scope="session")
def trials() -> list[tuple[str, str, int]]:
    with _require(DATA / "speaker_trials.tsv").open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [(r["enroll_path"], r["test_path"], int(r["target"])) for r in rows]
