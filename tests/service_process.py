"""`bioverify serve` in its own process, for tests that kill, restart or replicate it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import MODELS


class ServiceProcess:
    def __init__(self, workdir: Path, data_dir: Path, **settings: str) -> None:
        self.workdir = workdir
        self.data_dir = data_dir
        self.settings = settings
        self.port_file = workdir / "port"
        self.log_path = workdir / "service.log"
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port_file.read_text().strip()}"

    def start(self, timeout: float = 120.0) -> ServiceProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BIOVERIFY_")}
        env.update(
            ORT_DISABLE_TELEMETRY="1", BIOVERIFY_MODEL_DIR=str(MODELS), BIOVERIFY_LOG_LEVEL="INFO"
        )
        env.update({f"BIOVERIFY_{k.upper()}": v for k, v in self.settings.items()})
        self.port_file.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bioverify.cli",
                "serve",
                "--port",
                "0",
                "--data-dir",
                str(self.data_dir),
                "--port-file",
                str(self.port_file),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self.port_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("service did not start in time")
            time.sleep(0.1)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no drain, no snapshot, no cleanup (a crash)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.terminate()
        return self.proc.wait(timeout=30)
