"""``Settings``: every deployment setting of the package, read once from the environment.

The one place configuration is read. A process builds a ``Settings`` once (``python -m ohlcv``
in ``main``, a reader when it is constructed, an Airflow task in
``ohlcv.airflow.runtime.settings()``, which adds the Variables that override the environment)
and passes it to what needs it. A bad value raises ``ConfigurationError`` naming the
variable when the settings are built.

Imports nothing heavy: the DAG file builds one when the scheduler parses it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from ohlcv.errors import ConfigurationError, InvalidKeyPrefix

if TYPE_CHECKING:
    import limits

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: the universes a run may index: the whole market or one of its boards
MARKETS: tuple[str, ...] = ("KRX", "KOSPI", "KOSDAQ", "KONEX")
#: the original job's ``benchmark`` setting: the index symbols indexed with every universe
DEFAULT_BENCHMARK: tuple[str, ...] = ("KS11",)
DEFAULT_SOURCE = "fdr"
#: the Jenkins trigger the DAG replaces, ``H H(8-12)/1 * * *`` with TZ=Europe/London, and the
#: night run at 18:23 London (03:23 KST in winter, 02:23 KST in summer) that settles the day's
#: volumes from the final table published at about 01:15 KST
DEFAULT_SCHEDULE = "23 8-12,18 * * *"
DEFAULT_SCHEDULE_TIMEZONE = "Europe/London"
#: megabytes of values a reader keeps in the process
DEFAULT_CLIENT_CACHE_MB = 256
#: each vendor's rate limit when ``OHLCV_VENDOR_RATE`` does not set one: KRX and Naver block
#: addresses that ask too fast; the offline vendors need none
VENDOR_RATES: Mapping[str, str | None] = {"fdr": "5/second", "synthetic": None, "csv": None}
#: the KRX Open API's own limit: KRX allows a key 10,000 calls a day
DEFAULT_KRX_OPENAPI_RATE = "10000/day"
#: a ticker this many sessions behind is still brought forward from the daily tables
DEFAULT_CATCHUP_SESSIONS = 15
MAX_CATCHUP_SESSIONS = 60
#: history calls a run may make outside the first fill and full_refresh: a missed day or a
#: late table never turns into a download of the whole market (KRX blocks addresses for that)
DEFAULT_HISTORY_BUDGET = 300
#: the day's last evening run of the default schedule: a table still missing then turns a run red
DEFAULT_TABLE_DEADLINE = "12:23"
#: the seconds one ticker may wait for the vendor in a run, across its tries and the retry pass
DEFAULT_TICKER_DEADLINE = 600.0
#: how long the values a repair replaces are kept for reads pinned to older revisions, and how
#: long a revision can be read (a few MB a day: 0-7 repairs)
DEFAULT_REVISION_DAYS = 400
#: where readers read: the primary, or a replica (under Sentinel)
READ_FROM: tuple[str, ...] = ("primary", "replica")
#: seconds since a replica last acknowledged the primary's stream beyond which readers skip it
DEFAULT_REPLICA_MAX_LAG = 5.0
#: seconds a run waits for replicas to hold its writes before it publishes the cut
DEFAULT_REPLICA_ACK_TIMEOUT = 10.0
#: seconds a command waits for a new primary under Sentinel: above the Sentinels'
#: down-after-milliseconds plus the election (the compose ``ha`` profile's: 5 s + about 2 s)
DEFAULT_FAILOVER_WAIT = 30.0
MAX_REVISION_DAYS = 3650
_DEADLINE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
#: what a key prefix may hold: it is put in front of every key (``ohlcv.keys.KeySpace``)
KEY_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.-]*(:[A-Za-z0-9_.-]+)*:?")


@dataclass(frozen=True)
class Settings:
    """The deployment settings; ``from_env`` reads them, the defaults suit production.

    :param redis_url: ``OHLCV_REDIS_URL``, the cache Redis outside Airflow
    :param source: ``OHLCV_SOURCE`` (inside Airflow the Variable ``ohlcv_source`` wins), a vendor spec
    :param key_prefix: ``OHLCV_KEY_PREFIX``, put in front of every key
    :param vendor_rate: ``OHLCV_VENDOR_RATE`` (``5/second``, ``none``); None: each vendor's own
    :param client_cache_mb: ``OHLCV_CLIENT_CACHE``, megabytes a reader keeps in the process (0: off)
    :param breaker_hours: ``OHLCV_BREAKER_HOURS``, how long a block answer opens the breaker
    :param schedule: ``OHLCV_SCHEDULE``, the indexer's cron expression; None (``none``): triggered runs only
    :param schedule_timezone: ``OHLCV_SCHEDULE_TIMEZONE``
    :param retry_delay_seconds: ``OHLCV_RETRY_DELAY_SECONDS``, first retry delay of the indexer's tasks
    :param source_poke_seconds: ``OHLCV_SOURCE_POKE_SECONDS``, the vendor sensor's first poke interval
    :param source_wait_seconds: ``OHLCV_SOURCE_WAIT_SECONDS``, how long the sensor waits in all
    :param catchup_sessions: ``OHLCV_CATCHUP_SESSIONS``, how many sessions behind a ticker may be
        and still be brought forward from the market's daily tables instead of its history
    :param history_budget: ``OHLCV_HISTORY_BUDGET``, the most history calls a run makes outside the
        first fill and ``full_refresh``; the tickers beyond it are deferred to the next run
    :param table_deadline: ``OHLCV_TABLE_DEADLINE``, ``HH:MM`` in ``schedule_timezone``: a session's
        table still missing at this time of its day turns the run red (the day's last evening run)
    :param ticker_deadline_seconds: ``OHLCV_TICKER_DEADLINE``, the seconds one ticker's tries may
        spend waiting for the vendor in a run, across its tries and the retry pass; a ticker whose
        vendor has not answered by then fails with ``TickerDeadline`` and is not asked again
    :param krx_openapi_key: ``OHLCV_KRX_OPENAPI_KEY``, the KRX Open API key (inside Airflow the
        Connection ``ohlcv_krx_openapi`` gives it); None: the Open API is not used. Never shown
    :param krx_openapi_rate: ``OHLCV_KRX_OPENAPI_RATE``, the Open API's own rate limit
    :param revision_days: ``OHLCV_REVISION_DAYS``, how long a published revision can be read: the
        values later writes replace are kept that long
    :param read_from: ``OHLCV_READ_FROM``, ``primary`` or ``replica``: where readers read under
        Sentinel (writes always go to the primary)
    :param replica_max_lag: ``OHLCV_REPLICA_MAX_LAG``, seconds since a replica's last acknowledgement
        of the primary's stream beyond which readers do not use it
    :param min_replicas: ``OHLCV_MIN_REPLICAS``, replicas that must hold a run's writes before it
        publishes the cut; None (``auto``): 1 under Sentinel, 0 for a single Redis
    :param replica_ack_timeout: ``OHLCV_REPLICA_ACK_TIMEOUT``, how long a run waits for them
    :param failover_wait: ``OHLCV_FAILOVER_WAIT``, how long a command waits for a new primary
        under Sentinel before it fails
    """

    redis_url: str = DEFAULT_REDIS_URL
    source: str = DEFAULT_SOURCE
    key_prefix: str = ""
    vendor_rate: str | None = None
    client_cache_mb: int = DEFAULT_CLIENT_CACHE_MB
    breaker_hours: float = 12.0
    schedule: str | None = DEFAULT_SCHEDULE
    schedule_timezone: str = DEFAULT_SCHEDULE_TIMEZONE
    retry_delay_seconds: float = 60.0
    source_poke_seconds: float = 60.0
    source_wait_seconds: float = 3600.0
    catchup_sessions: int = DEFAULT_CATCHUP_SESSIONS
    history_budget: int = DEFAULT_HISTORY_BUDGET
    table_deadline: str = DEFAULT_TABLE_DEADLINE
    ticker_deadline_seconds: float = DEFAULT_TICKER_DEADLINE
    krx_openapi_key: str | None = field(default=None, repr=False)
    krx_openapi_rate: str = DEFAULT_KRX_OPENAPI_RATE
    revision_days: int = DEFAULT_REVISION_DAYS
    read_from: str = "primary"
    replica_max_lag: float = DEFAULT_REPLICA_MAX_LAG
    min_replicas: int | None = None
    replica_ack_timeout: float = DEFAULT_REPLICA_ACK_TIMEOUT
    failover_wait: float = DEFAULT_FAILOVER_WAIT

    @property
    def sentinel(self) -> SentinelSpec | None:
        """The Sentinel deployment ``redis_url`` names (None: a single Redis)."""
        return parse_sentinel_url(self.redis_url) if is_sentinel_url(self.redis_url) else None

    def replicas_required(self, under_sentinel: bool) -> int:
        """The replicas that must hold a run's writes before it publishes its cut: ``min_replicas``,
        else 1 under Sentinel and 0 for a single Redis."""
        if self.min_replicas is not None:
            return self.min_replicas
        return 1 if under_sentinel else 0

    def __post_init__(self) -> None:
        problem = redis_url_problem(self.redis_url)
        if problem:
            raise ConfigurationError(f"OHLCV_REDIS_URL={masked(self.redis_url)!r}: {problem}")
        if not SOURCE_PATTERN.fullmatch(self.source.strip()):
            raise ConfigurationError(
                f"OHLCV_SOURCE={self.source!r} is not a vendor: "
                "expected 'fdr', 'synthetic', 'synthetic:N' or 'csv:<dir>'"
            )
        if not KEY_PREFIX_PATTERN.fullmatch(self.key_prefix):
            raise InvalidKeyPrefix(
                f"OHLCV_KEY_PREFIX={self.key_prefix!r} is not a key prefix: use letters, digits, '_', '.', '-' and ':'"
            )
        if self.client_cache_mb < 0:
            raise ConfigurationError(
                f"OHLCV_CLIENT_CACHE={self.client_cache_mb!r}: give the megabytes to keep in the process, or 0 (off)"
            )
        if self.vendor_rate is not None:
            _parse_rate(self.vendor_rate)
        _parse_rate(self.krx_openapi_rate, "OHLCV_KRX_OPENAPI_RATE")
        if not 1 <= self.catchup_sessions <= MAX_CATCHUP_SESSIONS:
            raise ConfigurationError(
                f"OHLCV_CATCHUP_SESSIONS={self.catchup_sessions!r}: give a number of sessions from 1 to "
                f"{MAX_CATCHUP_SESSIONS}"
            )
        if not 1 <= self.revision_days <= MAX_REVISION_DAYS:
            raise ConfigurationError(
                f"OHLCV_REVISION_DAYS={self.revision_days!r}: give the days a revision stays readable, from 1 to "
                f"{MAX_REVISION_DAYS}"
            )
        if self.read_from not in READ_FROM:
            raise ConfigurationError(f"OHLCV_READ_FROM={self.read_from!r}: give one of {', '.join(READ_FROM)}")
        if self.min_replicas is not None and self.min_replicas < 0:
            raise ConfigurationError(f"OHLCV_MIN_REPLICAS={self.min_replicas!r}: give a number of replicas, 0 or more")
        for name, value in (("OHLCV_REPLICA_MAX_LAG", self.replica_max_lag),
                            ("OHLCV_REPLICA_ACK_TIMEOUT", self.replica_ack_timeout),
                            ("OHLCV_FAILOVER_WAIT", self.failover_wait)):  # fmt: skip
            if not 0 < value < math.inf:
                raise ConfigurationError(f"{name}={value!r}: give a number of seconds above 0")
        if self.history_budget < 0:
            raise ConfigurationError(f"OHLCV_HISTORY_BUDGET={self.history_budget!r}: give a number of calls, 0 or more")
        if not 0 < self.breaker_hours < math.inf:
            raise ConfigurationError(
                f"OHLCV_BREAKER_HOURS={self.breaker_hours!r}: give the hours a block answer opens the breaker, above 0"
            )
        if not 0 < self.ticker_deadline_seconds < math.inf:
            raise ConfigurationError(
                f"OHLCV_TICKER_DEADLINE={self.ticker_deadline_seconds!r}: give a number of seconds above 0, e.g. 600"
            )
        if not 0 < self.source_poke_seconds < math.inf:
            raise ConfigurationError(
                f"OHLCV_SOURCE_POKE_SECONDS={self.source_poke_seconds!r}: give the seconds between the sensor's "
                "pokes, above 0"
            )
        if self.schedule is not None:
            _check_schedule(self.schedule)
        _check_timezone(self.schedule_timezone)
        if not _DEADLINE.fullmatch(self.table_deadline):
            raise ConfigurationError(
                f"OHLCV_TABLE_DEADLINE={self.table_deadline!r}: give a time of day as HH:MM, e.g. 12:23"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """The settings in ``environ``; an unset or empty variable keeps its default."""

        def text(name: str) -> str:
            return environ.get(name, "").strip()

        schedule = text("OHLCV_SCHEDULE") or DEFAULT_SCHEDULE
        return cls(
            redis_url=text("OHLCV_REDIS_URL") or DEFAULT_REDIS_URL,
            source=text("OHLCV_SOURCE") or DEFAULT_SOURCE,
            key_prefix=environ.get("OHLCV_KEY_PREFIX", ""),
            vendor_rate=text("OHLCV_VENDOR_RATE") or None,
            client_cache_mb=_megabytes(text("OHLCV_CLIENT_CACHE")),
            breaker_hours=_number(environ, "OHLCV_BREAKER_HOURS", 12.0),
            schedule=None if schedule == "none" else schedule,
            schedule_timezone=text("OHLCV_SCHEDULE_TIMEZONE") or DEFAULT_SCHEDULE_TIMEZONE,
            retry_delay_seconds=_number(environ, "OHLCV_RETRY_DELAY_SECONDS", 60.0),
            source_poke_seconds=_number(environ, "OHLCV_SOURCE_POKE_SECONDS", 60.0),
            source_wait_seconds=_number(environ, "OHLCV_SOURCE_WAIT_SECONDS", 3600.0),
            catchup_sessions=_count(environ, "OHLCV_CATCHUP_SESSIONS", DEFAULT_CATCHUP_SESSIONS),
            history_budget=_count(environ, "OHLCV_HISTORY_BUDGET", DEFAULT_HISTORY_BUDGET),
            table_deadline=text("OHLCV_TABLE_DEADLINE") or DEFAULT_TABLE_DEADLINE,
            ticker_deadline_seconds=_number(environ, "OHLCV_TICKER_DEADLINE", DEFAULT_TICKER_DEADLINE),
            krx_openapi_key=text("OHLCV_KRX_OPENAPI_KEY") or None,
            krx_openapi_rate=text("OHLCV_KRX_OPENAPI_RATE") or DEFAULT_KRX_OPENAPI_RATE,
            revision_days=_count(environ, "OHLCV_REVISION_DAYS", DEFAULT_REVISION_DAYS),
            read_from=text("OHLCV_READ_FROM") or "primary",
            replica_max_lag=_number(environ, "OHLCV_REPLICA_MAX_LAG", DEFAULT_REPLICA_MAX_LAG),
            min_replicas=None
            if text("OHLCV_MIN_REPLICAS") in ("", "auto")
            else _count(environ, "OHLCV_MIN_REPLICAS", 0),
            replica_ack_timeout=_number(environ, "OHLCV_REPLICA_ACK_TIMEOUT", DEFAULT_REPLICA_ACK_TIMEOUT),
            failover_wait=_number(environ, "OHLCV_FAILOVER_WAIT", DEFAULT_FAILOVER_WAIT),
        )

    @property
    def breaker_ttl(self) -> dt.timedelta:
        return dt.timedelta(hours=self.breaker_hours)

    @property
    def deadline_time(self) -> dt.time:
        """``table_deadline`` as a time of day (in ``schedule_timezone``)."""
        hours, minutes = self.table_deadline.split(":")
        return dt.time(int(hours), int(minutes))

    @property
    def retry_delay(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.retry_delay_seconds)

    def rate_for(self, source: str) -> limits.RateLimitItem | None:
        """The rate limit of the vendor named ``source``: ``vendor_rate``, else its entry in
        ``VENDOR_RATES``; None for no limit."""
        if source == "krx_openapi":
            return _parse_rate(self.krx_openapi_rate, "OHLCV_KRX_OPENAPI_RATE")
        return _parse_rate(self.vendor_rate or VENDOR_RATES.get(source))


#: the vendor specs ``ohlcv.sources.from_spec`` builds (the synthetic switches are checked there)
SOURCE_PATTERN = re.compile(r"fdr|synthetic(:[0-9]+)?(\?\S+)?|csv:\S.*")
_REDIS_SCHEMES = ("redis", "rediss", "unix")
#: the user information of a URL, with or without a scheme: ``user:password@`` up to the host
_PASSWORD = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?/*)([^/@:]*):[^/]*@")
_MAX_DB = 2**31 - 1
_SENTINEL_PASSWORD = re.compile(r"([?&]sentinel_password=)[^&#]*")


SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
#: the TLS query parameters a ``rediss+sentinel://`` URL takes, as plain ``rediss://`` URLs do
SENTINEL_SSL_OPTIONS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_keyfile", "ssl_certfile", "ssl_check_hostname")
#: the query parameters a Sentinel URL takes
SENTINEL_QUERY = ("sentinels", "db", "sentinel_username", "sentinel_password", *SENTINEL_SSL_OPTIONS)


@dataclass(frozen=True)
class SentinelSpec:
    """What a Sentinel URL names (``parse_sentinel_url``): ``redis+sentinel://[user:password@]
    host:port[,host:port...]/SERVICE/DB`` (``rediss+sentinel://`` with TLS), ``sentinels=`` in the
    query for more Sentinels, ``sentinel_username`` / ``sentinel_password`` for the Sentinels'
    own ACL; the user and password are the data nodes'. Clients: ``ohlcv.store.sentinel``."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = dataclasses.field(default=None, repr=False)
    ssl: bool = False
    ssl_options: tuple[tuple[str, Any], ...] = ()


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0] in SENTINEL_SCHEMES


def parse_sentinel_url(url: str) -> SentinelSpec:
    """The Sentinels, service and database of a Sentinel URL; ``ConfigurationError`` naming what
    is wrong (never showing the password)."""
    scheme, _, rest = url.partition("://")
    if scheme not in SENTINEL_SCHEMES:
        raise ConfigurationError(f"a Sentinel URL starts with {' or '.join(f'{name}://' for name in SENTINEL_SCHEMES)}")
    netloc, _, tail = rest.partition("/")
    path, _, query_text = tail.partition("?")
    credentials, at, hosts_text = netloc.rpartition("@")
    if not at:
        credentials, hosts_text = "", netloc
    username, _, password = credentials.partition(":")
    try:
        query = {name: values[-1] for name, values in parse_qs(query_text, strict_parsing=bool(query_text)).items()}
    except ValueError:
        raise ConfigurationError("the query is not name=value pairs") from None
    unknown = sorted(set(query) - set(SENTINEL_QUERY))
    if unknown:
        takes = ", ".join(SENTINEL_QUERY)
        raise ConfigurationError(f"unknown query parameter {unknown[0]!r}: a Sentinel URL takes {takes}")
    return sentinel_spec(
        scheme, hosts_text.split(","), path, unquote(username) or None, unquote(password) or None, query
    )


def sentinel_spec(
    scheme: str, hosts: list[str], path: str, username: str | None, password: str | None, options: Mapping[str, Any]
) -> SentinelSpec:
    """A ``SentinelSpec`` from a Sentinel URL's parts, or an Airflow connection's: ``hosts`` as
    ``host[:port]`` (more in ``options["sentinels"]``, comma-separated), ``path`` as
    ``SERVICE[/DB]`` (else ``options["db"]``), ``options`` the query or the extra."""
    if scheme not in SENTINEL_SCHEMES:
        raise ConfigurationError(f"a Sentinel URL starts with {' or '.join(f'{name}://' for name in SENTINEL_SCHEMES)}")
    more = str(options.get("sentinels") or "").split(",")
    found = [item.strip() for item in [*hosts, *more] if item.strip()]
    if not found:
        raise ConfigurationError("name at least one Sentinel, e.g. redis+sentinel://sentinel-1:26379/mymaster/0")
    sentinels = tuple(_sentinel_address(item) for item in found)
    parts = [part for part in path.split("/") if part]
    if not parts:
        raise ConfigurationError("name the Sentinel service (the primary's name), e.g. .../mymaster/0")
    if len(parts) > 2:
        raise ConfigurationError(f"the path is /SERVICE/DB, got /{path}")
    service = unquote(parts[0])
    if not service.isprintable() or " " in service:
        raise ConfigurationError(f"the service name {service!r} holds a space or a control character")
    db_text = parts[1] if len(parts) == 2 else str(options.get("db") or "0")
    if not (db_text.isascii() and db_text.isdigit()) or int(db_text) > _MAX_DB:
        raise ConfigurationError(f"the database must be a whole number, 0 or more, got {db_text!r}")
    ssl = []
    given = [name for name in SENTINEL_SSL_OPTIONS if name in options]
    if given and scheme != "rediss+sentinel":
        raise ConfigurationError(f"{given[0]} is a TLS option: use rediss+sentinel:// for TLS")
    for name in SENTINEL_SSL_OPTIONS:
        if name in options:
            value = options[name]
            if name == "ssl_check_hostname":
                value = value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes", "on")
            ssl.append((name, value))
    return SentinelSpec(
        sentinels, service, int(db_text), username, password,
        options.get("sentinel_username") or None, options.get("sentinel_password") or None,
        scheme == "rediss+sentinel", tuple(ssl),
    )  # fmt: skip


def _sentinel_address(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon:
        host, port = text, "26379"
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"a Sentinel is host:port with a port from 1 to 65535, got {text!r}")
    return host, int(port)


def sentinel_url_problem(url: str) -> str | None:
    """What is wrong with a Sentinel URL (None: nothing)."""
    try:
        parse_sentinel_url(url)
    except ConfigurationError as exc:
        return str(exc)
    return None


def masked(url: str) -> str:
    """``url`` with its password (and a Sentinel URL's ``sentinel_password``) replaced by
    ``***``, to be shown in a message or a log."""
    return _SENTINEL_PASSWORD.sub(r"\1***", _PASSWORD.sub(r"\1\2:***@", url, count=1))


def redis_url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL (None: nothing): the scheme, a space, the port, the db number.

    redis-py takes ``redis://host/abc`` as database 0 and ``redis://host/-1`` as a database
    Redis refuses later; both are refused here. A Sentinel URL (``SentinelSpec``) is checked
    as one.
    """
    from urllib.parse import urlsplit

    if is_sentinel_url(url):
        return sentinel_url_problem(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a URL ({exc})"
    outside_password = parts.scheme + (parts.hostname or "") + parts.path + parts.query
    if any(char.isspace() or not char.isprintable() for char in outside_password):
        return "a Redis URL holds no spaces or control characters outside its password"
    if parts.scheme not in _REDIS_SCHEMES:
        schemes = (*_REDIS_SCHEMES, *SENTINEL_SCHEMES)
        return f"the scheme must be one of {', '.join(f'{scheme}://' for scheme in schemes)}"
    if parts.scheme == "unix":
        return None if parts.path else "a unix:// URL names the socket's path, e.g. unix:///run/redis.sock"
    if not parts.hostname:
        return "name the host, e.g. redis://127.0.0.1:6379/0"
    if port == 0:
        return "the port must be from 1 to 65535"
    try:
        query = parse_qs(parts.query, strict_parsing=bool(parts.query))
    except ValueError:
        return "the query is not name=value pairs"
    db = parts.path.strip("/") or (query.get("db") or ["0"])[0]
    if not (db.isascii() and db.isdigit() and int(db) <= _MAX_DB):
        return f"the database must be a whole number, 0 or more, got {db!r}"
    return None


def _check_schedule(schedule: str) -> None:
    if schedule == DEFAULT_SCHEDULE:
        return
    try:
        from croniter import croniter
    except ImportError:  # a reader without Airflow never schedules
        return
    if not croniter.is_valid(schedule):
        raise ConfigurationError(
            f"OHLCV_SCHEDULE={schedule!r} is not a cron expression such as {DEFAULT_SCHEDULE!r} (or 'none')"
        )


def _check_timezone(name: str) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"OHLCV_SCHEDULE_TIMEZONE={name!r} is not a time zone such as {DEFAULT_SCHEDULE_TIMEZONE!r}"
        ) from None


def _parse_rate(text: str | None, name: str = "OHLCV_VENDOR_RATE") -> limits.RateLimitItem | None:
    if not text or text.lower() == "none":
        return None
    import limits  # only a configured rate needs the parser, so parsing the DAG file does not

    try:
        rate = limits.parse(text)
    except ValueError:
        raise ConfigurationError(f"{name}={text!r} is not a rate such as 5/second or 300/minute") from None
    if rate.amount < 1:
        raise ConfigurationError(f"{name}={text!r}: a rate allows at least 1 call (or 'none' for no limit)")
    return rate


def _count(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigurationError(f"{name}={text!r}: give a whole number") from None
    return value


def _megabytes(text: str) -> int:
    if not text:
        return DEFAULT_CLIENT_CACHE_MB
    if text.lower() in {"off", "false", "no"}:
        return 0
    try:
        size = int(text)
    except ValueError:
        size = -1
    if size < 0:
        raise ConfigurationError(f"OHLCV_CLIENT_CACHE={text!r}: give the megabytes to keep in the process, or 0 (off)")
    return size


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < math.inf:  # also rejects nan
        raise ConfigurationError(f"{name}={text!r}: give a number of {_UNITS[name]}, 0 or more (not infinite)")
    return value


_UNITS = {
    "OHLCV_BREAKER_HOURS": "hours",
    "OHLCV_RETRY_DELAY_SECONDS": "seconds",
    "OHLCV_SOURCE_POKE_SECONDS": "seconds",
    "OHLCV_SOURCE_WAIT_SECONDS": "seconds",
    "OHLCV_TICKER_DEADLINE": "seconds",
    "OHLCV_REPLICA_MAX_LAG": "seconds",
    "OHLCV_REPLICA_ACK_TIMEOUT": "seconds",
    "OHLCV_FAILOVER_WAIT": "seconds",
}
