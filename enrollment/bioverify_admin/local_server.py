"""Start a throwaway bioverify service on a free loopback port, with the same settings
(environment) as ``bioverify serve`` but its own temporary data directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bioverify.fileio import write_private_text
from bioverify.server.auth import tokens_file_line


class ServerStartError(Exception):
    pass


@contextmanager
def local_server(
    extra_env: dict[str, str] | None = None,
    startup_timeout: float = 180.0,
    packs_from: Path | None = None,
    token: str | None = None,
) -> Iterator[str]:
    """``packs_from``: a packs folder (built or imported packs, e.g. ``DATA_DIR/packs``) copied
    into the throwaway data directory so the service finds them. ``token``: the only API
    token the service takes (its digest in a tokens file of the private temporary folder), so
    that other local users cannot use the service (and the samples it holds) while it runs."""
    with tempfile.TemporaryDirectory(prefix="bioverify-eval-") as tmp:
        data_dir = Path(tmp) / "data"
        if packs_from is not None and packs_from.is_dir():
            shutil.copytree(packs_from, data_dir / "packs", symlinks=True)
        port_file = Path(tmp) / "port"
        log_path = Path(tmp) / "server.log"
        env = {**os.environ, **(extra_env or {}), "BIOVERIFY_DATA_DIR": str(data_dir)}
        env["BIOVERIFY_HOST"] = "127.0.0.1"
        env["BIOVERIFY_PORT"] = "0"
        if token is not None:
            tokens = Path(tmp) / "tokens"
            write_private_text(tokens, tokens_file_line(token) + "\n")
            env["BIOVERIFY_AUTH_TOKENS_FILE"] = str(tokens)
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bioverify.cli", "serve", "--port-file", str(port_file)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + startup_timeout
                while not port_file.exists():
                    if proc.poll() is not None:
                        tail = log_path.read_text(errors="replace")[-2000:]
                        raise ServerStartError(f"the service exited during startup:\n{tail}")
                    if time.monotonic() > deadline:
                        raise ServerStartError("the service did not start in time")
                    time.sleep(0.1)
                yield f"127.0.0.1:{port_file.read_text().strip()}"
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
