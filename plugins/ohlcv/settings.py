"""``Settings``: every deployment setting of the package, read once from the environment.

The one place configuration is read. A process builds a ``Settings`` once (``python -m ohlcv``
in ``main``, a reader when it is constructed, an Airflow task in
``ohlcv.airflow.runtime.settings()``, which adds the Variables that override the environment)
and passes it to what needs it. A bad value raises ``ConfigurationError`` naming the
variable when the settings are built.

Imports nothing heavy: the DAG file builds one when the scheduler parses it.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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


def masked(url: str) -> str:
    """``url`` with its password replaced by ``***``, to be shown in a message or a log."""
    return _PASSWORD.sub(r"\1\2:***@", url, count=1)


def redis_url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL (None: nothing): the scheme, a space, the port, the db number.

    redis-py takes ``redis://host/abc`` as database 0 and ``redis://host/-1`` as a database
    Redis refuses later; both are refused here.
    """
    from urllib.parse import parse_qs, urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a URL ({exc})"
    outside_password = parts.scheme + (parts.hostname or "") + parts.path + parts.query
    if any(char.isspace() or not char.isprintable() for char in outside_password):
        return "a Redis URL holds no spaces or control characters outside its password"
    if parts.scheme not in _REDIS_SCHEMES:
        return f"the scheme must be one of {', '.join(f'{scheme}://' for scheme in _REDIS_SCHEMES)}"
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
}
