"""``OhlcvRedisHook``: the provider's ``RedisHook`` with connection URIs read correctly.

The provider's hook reads ``db`` and ``ssl`` only from the connection's extra and treats the
string ``"false"`` as true. Here ``redis://:pw@host:6379/2`` selects db 2, ``rediss://``
turns TLS on, and ``ssl`` in the extra is parsed as a real boolean.

Under Redis Sentinel the connection's type is ``redis+sentinel`` (``rediss+sentinel`` for TLS):
its host and port are one Sentinel, ``sentinels`` in the extra the others (``host:port,...``),
its schema ``SERVICE/DB``, its login and password the data nodes', and ``sentinel_password``
(``sentinel_username``) in the extra the Sentinels' own. As a URI::

    AIRFLOW_CONN_OHLCV_REDIS='redis+sentinel://:PASSWORD@sentinel-1:26379/ohlcv%2F0?sentinels=sentinel-2%3A26379%2Csentinel-3%3A26379'

The client then follows the primary through failovers (``ohlcv.store.sentinel``).
"""

from __future__ import annotations

from typing import Any

import redis
from airflow.providers.redis.hooks.redis import RedisHook

from ohlcv.errors import ConfigurationError
from ohlcv.keys import KeySpace
from ohlcv.settings import DEFAULT_FAILOVER_WAIT, DEFAULT_REVISION_DAYS, SENTINEL_SCHEMES, SentinelSpec, sentinel_spec
from ohlcv.store import OhlcvStore, sentinel

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}
_SSL_OPTIONS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_keyfile", "ssl_certfile", "ssl_check_hostname")


def parse_bool(value: Any, name: str) -> bool:
    """A boolean from a connection extra (``true``, ``"false"``, ``1``, ...); reject anything else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(f"connection extra {name!r} must be true or false, got {value!r}")


def parse_db(extra: dict[str, Any], schema: str | None) -> int:
    """The database number: ``db`` in the extra, else the URI path (``/2``), else 0."""
    raw = extra.get("db")
    if raw in (None, ""):
        raw = (schema or "").strip("/") or 0
    try:
        db = int(raw)
    except (TypeError, ValueError):
        raise ConfigurationError(f"Redis db must be a whole number, got {raw!r}") from None
    if db < 0:
        raise ConfigurationError(f"Redis db must not be negative, got {db}")
    return db


class OhlcvRedisHook(RedisHook):
    """Redis hook for the OHLCV cache (connection ``ohlcv_redis``, given e.g. as
    ``AIRFLOW_CONN_OHLCV_REDIS=redis://:password@cache-redis:6379/0``)."""

    conn_name_attr = "redis_conn_id"
    default_conn_name = "ohlcv_redis"
    conn_type = "redis"
    hook_name = "OHLCV Redis"

    def __init__(
        self, redis_conn_id: str = default_conn_name, *, failover_wait: float = DEFAULT_FAILOVER_WAIT, **kwargs: Any
    ) -> None:
        super().__init__(redis_conn_id=redis_conn_id, **kwargs)
        self.failover_wait = failover_wait

    def sentinel_spec(self) -> SentinelSpec | None:
        """What a ``redis+sentinel`` connection names (None: the connection is a single Redis)."""
        conn = self.get_connection(self.redis_conn_id)
        if conn.conn_type not in SENTINEL_SCHEMES:
            return None
        if not conn.host:
            raise ConfigurationError(f"connection {self.redis_conn_id!r} names no Sentinel (its host)")
        extra = conn.extra_dejson
        try:  # "ssl": true in the extra turns TLS on, as for a single Redis
            tls = conn.conn_type == "rediss+sentinel" or parse_bool(extra.get("ssl", False), "ssl")
            return sentinel_spec(
                "rediss+sentinel" if tls else "redis+sentinel", [f"{conn.host}:{conn.port or 26379}"],
                conn.schema or "", conn.login or None, conn.password or None, extra,
            )  # fmt: skip
        except ConfigurationError as exc:
            raise ConfigurationError(f"connection {self.redis_conn_id!r}: {exc}") from None

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis``, read from the Airflow connection."""
        conn = self.get_connection(self.redis_conn_id)
        if conn.conn_type not in ("redis", "rediss"):
            raise ConfigurationError(
                f"connection {self.redis_conn_id!r} has type {conn.conn_type!r}; expected redis, rediss, "
                "redis+sentinel or rediss+sentinel"
            )
        if not conn.host:
            raise ConfigurationError(f"connection {self.redis_conn_id!r} has no host")
        extra = conn.extra_dejson
        use_ssl = conn.conn_type == "rediss" or parse_bool(extra.get("ssl", False), "ssl")
        kwargs: dict[str, Any] = {
            "host": conn.host,
            "port": int(conn.port or 6379),
            "username": conn.login or None,
            "password": conn.password or None,
            "db": parse_db(extra, conn.schema),
            "socket_connect_timeout": 10,
            "socket_timeout": 60,
            "ssl": use_ssl,
        }
        if use_ssl:
            for name in _SSL_OPTIONS:
                if name in extra:
                    value = extra[name]
                    kwargs[name] = parse_bool(value, name) if name == "ssl_check_hostname" else value
        return kwargs

    def get_conn(self) -> redis.Redis:
        """The Redis client, built once per hook."""
        if self.redis is None and (spec := self.sentinel_spec()) is not None:
            self.log.info(
                "Connecting to the primary of %r db %s via %d Sentinels (TLS %s) via connection %r",
                spec.service, spec.db, len(spec.sentinels), "on" if spec.ssl else "off", self.redis_conn_id,
            )  # fmt: skip
            self.redis = sentinel.primary_client(spec, self.failover_wait)
        if self.redis is None:
            kwargs = self.client_kwargs()
            self.log.info(
                "Connecting to Redis %s:%s db %s (TLS %s) via connection %r",
                kwargs["host"],
                kwargs["port"],
                kwargs["db"],
                "on" if kwargs["ssl"] else "off",
                self.redis_conn_id,
            )
            self.redis = redis.Redis(**kwargs)
        return self.redis

    def get_store(self, keys: KeySpace, *, revision_days: int = DEFAULT_REVISION_DAYS) -> OhlcvStore:
        """An ``OhlcvStore`` on this connection, with the key names of ``keys`` (``revision_days``:
        ``OHLCV_REVISION_DAYS``)."""
        return OhlcvStore(self.get_conn(), keys, revision_days=revision_days)
