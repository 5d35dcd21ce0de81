"""What every family of keys shares: the Redis client, the key names, and the URL it comes from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.client import Pipeline

from ohlcv.errors import ConfigurationError, OhlcvError
from ohlcv.keys import KeySpace
from ohlcv.settings import DEFAULT_FAILOVER_WAIT, is_sentinel_url, masked, parse_sentinel_url, redis_url_problem
from ohlcv.store import sentinel

#: the expiry of a run's metrics and results hashes
RUN_METRICS_TTL = int(dt.timedelta(days=2).total_seconds())
#: entries kept in each stream (``ohlcv:runs``, ``ohlcv:breaker:log``)
RUNS_KEPT = 200


def client_from_url(url: str, *, failover_wait: float = DEFAULT_FAILOVER_WAIT) -> redis.Redis:
    """A Redis client for ``url`` (``redis://``, ``rediss://`` or ``unix://``, password and db in
    the URL; ``Settings.redis_url`` is ``OHLCV_REDIS_URL``); for a Sentinel URL
    (``redis+sentinel://``), a client of the primary wherever the Sentinels say it is, whose
    commands wait up to ``failover_wait`` seconds for a new one (``OHLCV_FAILOVER_WAIT``)."""
    problem = redis_url_problem(url)
    if problem:
        raise ConfigurationError(f"cannot use Redis URL {masked(url)!r}: {problem}")
    if is_sentinel_url(url):
        return sentinel.primary_client(parse_sentinel_url(url), failover_wait)
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=10, socket_timeout=60)
    except ValueError as exc:
        raise ConfigurationError(f"cannot use Redis URL: {exc}") from None


#: how often a transaction is tried again when another client changed a key it watches
WRITE_ATTEMPTS = 10
T = TypeVar("T")


def optimistic(client: redis.Redis, watched: list[str], attempt: Callable[[Pipeline], T], gave_up: str) -> T:
    """``attempt(pipe)`` as an optimistic transaction: it reads the keys ``watched`` (WATCH),
    queues its writes after ``pipe.multi()`` and executes them; when another client changed a
    watched key meanwhile it runs again on what is there now, up to ``WRITE_ATTEMPTS`` times
    (then ``OhlcvError(gave_up)``). What it returns is returned."""
    for _ in range(WRITE_ATTEMPTS):
        with client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(*watched)
                return attempt(pipe)
            except redis.WatchError:
                continue
    raise OhlcvError(gave_up)


def ms(duration: dt.timedelta) -> int:
    return int(duration.total_seconds() * 1000)


def text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class StoreBase:
    """The client and key names each family's methods use; each family registers its own
    Lua scripts in ``__init__`` and passes the arguments on (``OhlcvStore`` combines them)."""

    def __init__(self, client: redis.Redis, keys: KeySpace) -> None:
        self.client = client
        self.keys = keys
