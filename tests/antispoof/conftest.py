"""Fixtures of the voice anti-spoofing tests: the AASIST pack built once per session (the
ONNX export cannot be committed), the shipped manifest, the VAD."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from bioverify.antispoof.export_aasist import PACK_ID
from tests.antispoof.antispoof_assets import AASIST_DIR, require


@pytest.fixture(scope="session")
def shipped_manifest() -> dict[str, Any]:
    text = (resources.files("bioverify") / "packs" / "voice-antispoof.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@pytest.fixture(scope="session")
def built_pack(antispoof_packs: Path) -> Path:
    """The session's built anti-spoofing pack (``tests.conftest.antispoof_packs``)."""
    require(AASIST_DIR / "AASIST.pth")
    return antispoof_packs / PACK_ID


@pytest.fixture(scope="session")
def aasist_onnx(built_pack: Path, shipped_manifest: dict[str, Any]) -> Path:
    name: str = shipped_manifest["files"]["aasist"]["path"]
    return built_pack / name


@pytest.fixture(scope="session")
def detector(aasist_onnx: Path) -> Any:
    from bioverify.antispoof.aasist_onnx import AasistDetector

    return AasistDetector(aasist_onnx)


@pytest.fixture(scope="session")
def vad() -> Any:
    from bioverify.voice.vad_silero import SileroVad

    return SileroVad()
