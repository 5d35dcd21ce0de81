"""Redis under Sentinel: a primary, its replicas and the Sentinels that elect a new primary when
the old one is lost.

``redis+sentinel://[user:password@]host:port[,host:port...]/SERVICE/DB`` (``rediss+sentinel://``
for TLS, with the query parameters plain URLs take) names the Sentinels, the service they watch
and the database; ``sentinels=host:port,...`` in the query adds Sentinels (the form an Airflow
Connection URI can carry), ``sentinel_username`` / ``sentinel_password`` authenticate to the
Sentinels themselves. The URL's user and password are the data nodes'.

- Writers get the primary's client (redis-py's ``master_for``): every new connection asks the
  Sentinels where the primary is now, so a failover costs the commands that were in flight
  (redis-py retries a command that lost its connection), never a write to a demoted primary.
- Readers may read from a replica (``fit_replicas``, ``pinned_client``): one the Sentinels see
  alive and whose last acknowledgement of the stream the primary reports at most ``max_lag``
  seconds old, through a client pinned to that one server so that client tracking's two
  connections share it.
- ``acknowledged`` makes the writes of every process that came before it durable on replicas:
  one write and ``WAIT`` on one connection, whose offset covers everything earlier in the
  replication stream.

The URL is read in ``ohlcv.settings`` (``SentinelSpec``), like every setting.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.sentinel
from redis.backoff import ConstantBackoff, NoBackoff
from redis.retry import Retry

from ohlcv.errors import ConfigurationError
from ohlcv.settings import DEFAULT_FAILOVER_WAIT, SentinelSpec

#: seconds to connect to and to read from a data node: a primary whose host hangs or is lost
#: without a word (no TCP reset) costs a command this long before it goes to the next primary.
#: No command the package sends runs for long on the server; ``WAIT`` is sent in slices below it.
TIMEOUTS = {"socket_connect_timeout": 5, "socket_timeout": 10}
#: the longest one ``WAIT`` may block a connection (``acknowledged`` waits longer in slices)
WAIT_SLICE = dt.timedelta(seconds=5)
#: a Sentinel answers at once or is passed over for the next one: a hung Sentinel host costs a
#: lookup two seconds, not redis-py's default retries of a minute's read
SENTINEL_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 2}
#: seconds a read from a replica may take before the reader reads from the primary instead (a
#: frozen replica host; the largest MGET readers send takes well under a second)
REPLICA_READ_TIMEOUT = 10


T = TypeVar("T")
#: seconds between two attempts to reach the primary while it is being failed over
FAILOVER_POLL = 0.25
#: per thread: how deep in nested retries (a command's, then its connection's) and until when
_waiting = threading.local()


class FailoverRetry(Retry):
    """redis-py's retry of a command whose connection failed, bounded by time rather than by
    count: attempts every ``FAILOVER_POLL`` seconds until ``seconds`` after the first failure,
    so that a command sent while the Sentinels elect a new primary reaches it. One deadline
    covers the nested retries of a command and of its connection's connect."""

    def __init__(self, seconds: float) -> None:
        super().__init__(ConstantBackoff(FAILOVER_POLL), retries=-1)
        self.seconds = seconds

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FailoverRetry) and other.seconds == self.seconds

    __hash__ = Retry.__hash__

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        depth = getattr(_waiting, "depth", 0)
        _waiting.depth = depth + 1
        if depth == 0:
            _waiting.deadline = None
        failures = 0
        try:
            while True:
                try:
                    return do()
                except self._supported_errors as error:
                    if is_retryable and not is_retryable(error):
                        raise
                    failures += 1
                    fail(error, failures) if with_failure_count else fail(error)
                    if _waiting.deadline is None:
                        _waiting.deadline = time.monotonic() + self.seconds
                    if time.monotonic() >= _waiting.deadline:
                        raise
                    time.sleep(FAILOVER_POLL)
        finally:
            _waiting.depth = depth


class Sentinels(redis.sentinel.Sentinel):
    """redis-py's ``Sentinel`` that tells a service no Sentinel watches (a wrong name in the
    URL) and Sentinels that refuse the URL's ``sentinel_password`` (``ConfigurationError`` at
    once, both) from a primary being failed over (``MasterNotFoundError``, waited out)."""

    def discover_master(self, service_name: str) -> tuple[str, int]:
        try:
            return super().discover_master(service_name)
        except redis.sentinel.MasterNotFoundError:
            known, refused = [], []
            for node in self.sentinels:
                try:
                    known.append(service_name in node.sentinel_masters())
                except redis.exceptions.AuthenticationError as exc:
                    refused.append(exc)
                except redis.exceptions.RedisError:
                    continue
            if refused and not known:
                raise ConfigurationError(
                    f"the Sentinels refuse the password ({refused[0]}): set or correct sentinel_password= in the "
                    "URL (the Airflow connection's extra sentinel_password)"
                ) from None
            if known and not any(known):
                raise ConfigurationError(
                    f"no Sentinel watches a service named {service_name!r}: check the service in the URL "
                    "(redis+sentinel://host:port/SERVICE/DB)"
                ) from None
            raise


class PrimaryConnection(redis.sentinel.SentinelManagedConnection):
    """A connection to the service's primary that, reconnecting, asks the Sentinels where the
    primary is now. redis-py's own reconnects from ``send_packed_command`` (a pipeline's retry)
    go back to the address the connection had, the lost primary, until the retries run out
    (redis/redis-py#3874)."""

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if self._sock:
            return
        if retry_socket_connect and self.connection_pool.is_master:  # not from connect_to: look it up
            self.connect()
            return
        super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)


class PrimarySSLConnection(PrimaryConnection, redis.connection.SSLConnection):
    """``PrimaryConnection`` over TLS."""


def sentinel_of(spec: SentinelSpec, failover_wait: float | None = None) -> redis.sentinel.Sentinel:
    """redis-py's ``Sentinel`` over the spec's Sentinels."""
    sentinel_kwargs: dict[str, Any] = {**SENTINEL_TIMEOUTS, "retry": Retry(NoBackoff(), 0)}
    if spec.sentinel_username:
        sentinel_kwargs["username"] = spec.sentinel_username
    if spec.sentinel_password:
        sentinel_kwargs["password"] = spec.sentinel_password
    if spec.ssl:
        sentinel_kwargs.update(ssl=True, **dict(spec.ssl_options))
    nodes = node_kwargs(spec, failover_wait)
    return Sentinels(list(spec.sentinels), sentinel_kwargs=sentinel_kwargs, **nodes)


def node_kwargs(spec: SentinelSpec, failover_wait: float | None = None) -> dict[str, Any]:
    """Keyword arguments of a client of a data node (the primary or a replica); with
    ``failover_wait``, its commands wait that long for a new primary (``FailoverRetry``)."""
    kwargs: dict[str, Any] = {"db": spec.db, "username": spec.username, "password": spec.password, **TIMEOUTS}
    if failover_wait:
        kwargs["retry"] = FailoverRetry(failover_wait)
    kwargs["connection_class"] = PrimarySSLConnection if spec.ssl else PrimaryConnection
    kwargs.update(dict(spec.ssl_options))
    return kwargs


def primary_client(spec: SentinelSpec, failover_wait: float = DEFAULT_FAILOVER_WAIT) -> redis.Redis:
    """A client of the service's primary, wherever the Sentinels say it is now; a command that
    loses it waits up to ``failover_wait`` seconds for the next one (``OHLCV_FAILOVER_WAIT``)."""
    return sentinel_of(spec, failover_wait).master_for(spec.service, **node_kwargs(spec, failover_wait))


def is_sentinel_client(client: redis.Redis) -> bool:
    return isinstance(client.connection_pool, redis.sentinel.SentinelConnectionPool)


@dataclass(frozen=True)
class Replica:
    """A replica as its primary reports it (``INFO replication``).

    :param lag: seconds since the replica last acknowledged the stream
    :param behind: bytes of the stream it has not acknowledged yet
    """

    address: str
    state: str
    offset: int
    lag: int
    behind: int


def replication(client: redis.Redis) -> tuple[str, list[Replica]]:
    """The server's role and, for a primary, its replicas (``INFO replication``)."""
    info = client.info("replication")
    offset = int(info.get("master_repl_offset", 0))
    replicas = []
    for name, value in info.items():
        if name.startswith("slave") and isinstance(value, dict):
            acked = int(value.get("offset", 0))
            address = f"{value['ip']}:{value['port']}"
            state, lag = str(value.get("state", "")), int(value.get("lag", 0))
            replicas.append(Replica(address, state, acked, lag, max(0, offset - acked)))
    return str(info.get("role", "")), replicas


def fit_replicas(primary: redis.Redis, max_lag: float) -> list[Replica]:
    """The replicas of ``primary``'s service fit to read from, best first: the Sentinels see them
    alive and the primary reports them online, at most ``max_lag`` seconds since their last
    acknowledgement of its stream."""
    pool = primary.connection_pool
    alive = {f"{host}:{port}" for host, port in pool.sentinel_manager.discover_replicas(pool.service_name)}
    _, replicas = replication(primary)
    fit = [
        replica
        for replica in replicas
        if replica.address in alive and replica.state == "online" and replica.lag <= max_lag
    ]
    return sorted(fit, key=lambda replica: (replica.lag, replica.behind, replica.address))


def pinned_client(primary: redis.Redis, address: str) -> redis.Redis:
    """A client of the one server at ``address`` (a replica), with the credentials, database
    and TLS of ``primary``'s clients."""
    pool = primary.connection_pool
    host, _, port = address.rpartition(":")
    options = {name: value for name, value in pool.connection_kwargs.items() if name != "connection_pool"}
    kind = (
        redis.connection.SSLConnection
        if issubclass(pool.connection_class, redis.connection.SSLConnection)
        else redis.connection.Connection
    )
    # a replica that fails hands reads to the primary at once, rather than be tried again
    options.update(host=host, port=int(port), socket_timeout=REPLICA_READ_TIMEOUT, retry=Retry(NoBackoff(), 0))
    pinned = redis.ConnectionPool(connection_class=kind, **options)
    return redis.Redis(connection_pool=pinned)


def checking_client(primary: redis.Redis) -> redis.Redis:
    """A client of ``primary``'s service that fails within a second and never retries: to ask
    the primary about its replicas without holding up reads while it is lost."""
    pool = primary.connection_pool
    quick = {"socket_connect_timeout": 1, "socket_timeout": 1, "retry": Retry(NoBackoff(), 0)}
    return pool.sentinel_manager.master_for(pool.service_name, **quick)


def address_of(client: redis.Redis) -> str:
    """``host:port`` of a client pinned to one server."""
    options = client.connection_pool.connection_kwargs
    return f"{options.get('host')}:{options.get('port')}"


def acknowledged(client: redis.Redis, probe: str, replicas: int, timeout: dt.timedelta) -> int:
    """Wait until ``replicas`` replicas hold every write made so far, by any process, or
    ``timeout`` passes; how many do. One write and ``WAIT`` on one connection (a pipeline): the
    offset ``WAIT`` waits for is that write's, after every earlier write in the stream. A wait
    longer than ``WAIT_SLICE`` is sent as several, so no read outlasts the socket's timeout."""
    deadline = time.monotonic() + timeout.total_seconds()
    while True:
        remaining = dt.timedelta(seconds=max(0.0, deadline - time.monotonic()))
        with client.pipeline(transaction=False) as pipe:
            pipe.set(probe, dt.datetime.now(dt.UTC).isoformat(), ex=3600)
            pipe.execute_command("WAIT", int(replicas), max(1, int(min(remaining, WAIT_SLICE).total_seconds() * 1000)))
            _, count = pipe.execute()
        if int(count) >= replicas or time.monotonic() >= deadline:
            return int(count)


def topology(client: redis.Redis) -> dict[str, Any]:
    """Where the cache lives, as a JSON-ready document: ``mode`` (``single`` or ``sentinel``),
    the primary's address, its replicas with their state, seconds since their last
    acknowledgement (``lag_seconds``) and bytes of the stream not yet acknowledged
    (``behind_bytes``); under Sentinel also the service and what each Sentinel says."""
    pool = client.connection_pool
    under_sentinel = is_sentinel_client(client)
    doc: dict[str, Any] = {"mode": "sentinel" if under_sentinel else "single"}
    if under_sentinel:
        doc["service"] = pool.service_name
        doc["sentinels"] = [_sentinel_view(node, pool.service_name) for node in pool.sentinel_manager.sentinels]
        named = [view["primary"] for view in doc["sentinels"] if view.get("primary")]
        doc["primary"] = max(set(named), key=named.count) if named else None
    else:
        options = pool.connection_kwargs
        doc["primary"] = options.get("path") or f"{options.get('host')}:{options.get('port')}"
    try:
        role, replicas = replication(client)
    except redis.exceptions.RedisError as exc:
        doc.update(role=None, replicas=[], error=f"{type(exc).__name__}: {exc}")
        return doc
    doc["role"] = role
    doc["replicas"] = [
        {"address": item.address, "state": item.state, "lag_seconds": item.lag, "behind_bytes": item.behind}
        for item in replicas
    ]
    return doc


def _sentinel_view(node: redis.Redis, service: str) -> dict[str, Any]:
    options = node.connection_pool.connection_kwargs
    view: dict[str, Any] = {"address": f"{options.get('host')}:{options.get('port')}"}
    try:
        state = node.sentinel_master(service)
    except redis.exceptions.RedisError as exc:
        return {**view, "reachable": False, "error": f"{type(exc).__name__}: {exc}"}
    return {
        **view,
        "reachable": True,
        "primary": f"{state.get('ip')}:{state.get('port')}",
        "primary_down": bool(state.get("is_sdown") or state.get("is_odown")),
        "other_sentinels": int(state.get("num-other-sentinels", 0)),
        "quorum": int(state.get("quorum", 0)),
    }
