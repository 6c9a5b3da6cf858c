"""Shared test fixtures: paths to ../shared, and a real bioverify server on a loopback port."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pytest

if TYPE_CHECKING:
    from bioverify.client import BioverifyClient

os.environ["ORT_DISABLE_TELEMETRY"] = "1"

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIOVERIFY_SHARED_DIR", REPO.parent / "shared"))
MODELS = SHARED / "models"
DATA = SHARED / "data"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"../shared not found at {SHARED}; set BIOVERIFY_SHARED_DIR")
    return SHARED


@pytest.fixture(scope="session")
def models_dir(shared_dir: Path) -> Path:
    return shared_dir / "models"


@pytest.fixture(scope="session")
def data_dir(shared_dir: Path) -> Path:
    return shared_dir / "data"


def mode(path: Path) -> int:
    """A file's permission bits (e.g. 0o600)."""
    return stat.S_IMODE(path.stat().st_mode)


def files_holding(root: Path, vector: npt.NDArray[np.float32]) -> list[Path]:
    """Every file under ``root`` (recursively) whose raw bytes hold ``vector`` as float32."""
    return files_containing(root, np.asarray(vector, np.float32).tobytes())


def files_containing(root: Path, needle: bytes) -> list[Path]:
    """Every file under ``root`` (recursively) whose raw bytes hold ``needle``."""
    found = []
    for path in root.rglob("*"):
        with contextlib.suppress(FileNotFoundError):  # a follower may remove it meanwhile
            if path.is_file() and needle in path.read_bytes():
                found.append(path)
    return sorted(found)


def lfw(name: str, n: int) -> Path:
    return DATA / "face_verification" / "lfw" / name / f"{name}_{n:04d}.jpg"


def tokens_file(folder: Path, *tokens: str) -> Path:
    """``folder/tokens``: an AUTH_TOKENS_FILE accepting ``tokens`` (on every tenant)."""
    from bioverify.server.auth import token_digest

    path = folder / "tokens"
    path.write_text("".join(f"{token_digest(token)}\n" for token in tokens))
    return path


def never_sent(stop: threading.Event) -> Iterator[bytes]:
    """A request stream that sends nothing until ``stop``: a call whose message never comes."""
    stop.wait()
    return
    yield b""


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture(scope="session")
def antispoof_packs(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    """A packs folder with the voice anti-spoofing pack built the way ``bioverify-admin models
    build voice-antispoof`` does (strict load, AASIST ONNX export, parity check), once per
    session (about 10 s); copy it into a service's data directory as ``packs``."""
    from bioverify.antispoof.export_aasist import build_pack

    packs = tmp_path_factory.mktemp("packs")
    build_pack(models_dir, packs)
    return packs


def data_dir_with_packs(data: Path, packs: Path) -> Path:
    """``data`` as a service data directory holding a copy of the built ``packs``."""
    shutil.copytree(packs, data / "packs")
    return data


@pytest.fixture(scope="session")
def face_server(
    tmp_path_factory: pytest.TempPathFactory, models_dir: Path, antispoof_packs: Path
) -> Iterator[str]:
    """A real service on a loopback port for the session: default face and voice packs, face
    liveness, and the voice anti-spoofing pack (``antispoof_packs``); SQLite store."""
    from bioverify.server.app import build
    from bioverify.settings import Settings

    data = data_dir_with_packs(tmp_path_factory.mktemp("bioverify-data"), antispoof_packs)
    settings = Settings(
        host="127.0.0.1",
        port=0,
        data_dir=data,
        model_dir=models_dir,
        max_message_bytes=8 * 1024 * 1024,
        max_image_bytes=6 * 1024 * 1024,
        max_image_pixels=30_000_000,
        max_images_per_enrollment=8,
        log_level="WARNING",
    )
    app = build(settings)
    app.start()
    yield f"127.0.0.1:{app.port}"
    app.stop(grace=1.0)


@contextlib.contextmanager
def running_service(data_dir: Path, models_dir: Path, **overrides: Any) -> Iterator[str]:
    """A real service in this process with these settings on a loopback port (face and voice
    liveness off unless ``overrides`` say otherwise); yields its target, stopped on exit."""
    from bioverify.server.app import build
    from bioverify.settings import Settings

    settings = {
        "face_liveness_pack": "none",
        "voice_antispoof_pack": "none",
        "log_level": "WARNING",
        **overrides,
    }
    app = build(
        Settings(host="127.0.0.1", port=0, data_dir=data_dir, model_dir=models_dir, **settings)
    )
    app.start()
    try:
        yield f"127.0.0.1:{app.port}"
    finally:
        app.stop(grace=1.0)


@contextlib.contextmanager
def custom_service(data_dir: Path, models_dir: Path, **overrides: Any) -> Iterator[BioverifyClient]:
    """``running_service`` and a serving client of it."""
    from bioverify.client import BioverifyClient

    with (
        running_service(data_dir, models_dir, **overrides) as target,
        BioverifyClient(target, timeout=60, retries=0) as client,
    ):
        client.wait_until_serving(timeout=60)
        yield client
