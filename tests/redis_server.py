"""A real ``redis-server`` process for tests: free loopback port, optional AOF durability."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis


class _ExitedAtStart(RuntimeError):
    pass


def redis_server_binary() -> str:
    """Path of redis-server; skips the calling test cleanly when it is not installed."""
    path = shutil.which("redis-server")
    if path is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server); CI installs it")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server on 127.0.0.1. ``durable`` turns on AOF with ``appendfsync always``
    in ``workdir``, so a restart on the same port and dir finds every acknowledged write.
    ``config``: a redis.conf to start from (the options here override its bind, port, dir and
    persistence); ``password``: ``requirepass``, which the start-up PING then uses."""

    def __init__(
        self,
        workdir: Path,
        *,
        durable: bool = False,
        port: int | None = None,
        config: Path | None = None,
        password: str | None = None,
    ) -> None:
        self.binary = redis_server_binary()
        self.workdir = workdir
        self.durable = durable
        self.config = config
        self.password = password
        self.port = port or free_port()
        self._may_move = port is None  # a free port may be taken by someone else before bind
        self._proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> RedisServer:
        for _ in range(3):
            try:
                return self._start(timeout)
            except _ExitedAtStart:
                if not self._may_move:
                    raise
                self.port = free_port()
        raise RuntimeError("redis-server could not bind a free port")

    def _start(self, timeout: float) -> RedisServer:
        args = [
            self.binary,
            *([str(self.config)] if self.config is not None else []),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.workdir / "redis.log"),
        ]  # fmt: skip
        if self.durable:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        if self.password is not None:
            args += ["--requirepass", self.password]
        self._proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        with redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_timeout=0.5
        ) as client:
            while True:
                if self._proc.poll() is not None:
                    log = self.workdir / "redis.log"
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    self._proc = None
                    raise _ExitedAtStart(f"redis-server exited at start:\n{tail}")
                try:
                    if client.ping():
                        self._may_move = False
                        return self
                except (redis.ConnectionError, redis.TimeoutError):
                    # Refused, or still loading the AOF (BusyLoadingError is a ConnectionError).
                    pass
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"redis-server did not answer PING on port {self.port}")
                time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL, like a crash: nothing is flushed beyond what was already fsynced."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=10)
            self._proc = None

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it takes too long."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None

    def restart(self) -> RedisServer:
        self.stop()
        return self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
