"""Redis persistence: one ticker's series and its ``lastUpdateAt`` entry, the run lock, meta keys.

Every multi-key change runs as one Lua script, so it is atomic on the server: a reader sees
the old state or the new one, never a series whose date disagrees with ``ticker:lastUpdateAt``,
even when the writer dies half-way. Scripts also refuse to move any date backwards, so a late
or older writer (a backfill) cannot roll the cache back.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass

import pandas as pd
import redis

from ohlcv import codec
from ohlcv.errors import ConfigurationError, OhlcvError
from ohlcv.keys import KeySpace, validate_ticker

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
RUN_LOCK_TTL = dt.timedelta(hours=6)

# KEYS: series, lastUpdateAt hash. ARGV: code, last date (ISO), OHLCV_STR.
# ISO dates compare correctly as strings.
_WRITE_SERIES = """
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current and current > ARGV[2] then
  return {0, current}
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {1, ARGV[2]}
"""

# KEYS: run lock, isUpdating. ARGV: token, ttl (ms). Returns {1, previous isUpdating} or {0, lock ttl}.
_BEGIN_RUN = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local previous = redis.call('GET', KEYS[2])
  redis.call('SET', KEYS[2], '1')
  return {1, previous or '0'}
end
return {0, redis.call('PTTL', KEYS[1])}
"""

# KEYS: lastUpdateAt, lastUpdateCount. ARGV: as_of (ISO), count.
_PUBLISH_RUN = """
local current = redis.call('GET', KEYS[1])
if (not current) or current <= ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

# KEYS: run lock, isUpdating. ARGV: token.
_RELEASE_RUN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], '0')
  return 1
end
return 0
"""


class RunLocked(OhlcvError):
    """Another indexer run holds the run lock."""


@dataclass(frozen=True)
class WriteOutcome:
    """What happened to one ticker's series in Redis."""

    ticker: str
    written: bool
    last_date: dt.date
    rows: int


@dataclass(frozen=True)
class RunStart:
    """A taken run lock.

    :param found_stale_flag: ``getOHLCV_isUpdating`` was already 1 with no lock held, i.e.
        an earlier run died without cleaning up.
    """

    token: str
    found_stale_flag: bool


@dataclass(frozen=True)
class Meta:
    """The three ``getOHLCV_*`` meta keys as they are now."""

    is_updating: bool
    last_update_at: dt.date | None
    last_update_count: int | None


def client_from_url(url: str | None = None) -> redis.Redis:
    """A Redis client for ``url`` (``redis://`` or ``rediss://``, password and db in the URL).

    Without a URL, ``OHLCV_REDIS_URL`` is used, then ``redis://127.0.0.1:6379/0``.
    """
    url = url or os.environ.get("OHLCV_REDIS_URL") or DEFAULT_REDIS_URL
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=10, socket_timeout=60)
    except ValueError as exc:
        raise ConfigurationError(f"cannot use Redis URL: {exc}") from None


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class OhlcvStore:
    """Reads and writes the cache's keys through one Redis client."""

    def __init__(self, client: redis.Redis, keys: KeySpace | None = None) -> None:
        self.client = client
        self.keys = keys if keys is not None else KeySpace.from_env()
        self._write_series = client.register_script(_WRITE_SERIES)
        self._begin_run = client.register_script(_BEGIN_RUN)
        self._publish_run = client.register_script(_PUBLISH_RUN)
        self._release_run = client.register_script(_RELEASE_RUN)

    def write_series(self, code: str, frame: pd.DataFrame, source: str) -> WriteOutcome:
        """Store the whole history of ``code`` and its ``lastUpdateAt`` entry atomically.

        Nothing is written when the cache already holds a later session for ``code``.
        """
        code = validate_ticker(code)
        if frame.empty:
            raise ValueError(f"refusing to store an empty series for {code}")
        last = frame.index[-1].date()
        written, current = self._write_series(
            keys=[self.keys.series(code), self.keys.last_update_hash],
            args=[code, last.isoformat(), codec.encode(frame, source)],
        )
        return WriteOutcome(code, bool(written), dt.date.fromisoformat(_text(current)), len(frame))

    def read_series(self, code: str) -> pd.DataFrame | None:
        """The cached history of ``code``, or None when it is not cached."""
        blob = self.client.get(self.keys.series(code))
        return None if blob is None else codec.decode(blob)

    def last_updates(self, codes: list[str]) -> dict[str, dt.date | None]:
        """``ticker:lastUpdateAt`` for each code, in one round trip."""
        codes = [validate_ticker(code) for code in codes]
        if not codes:
            return {}
        values = self.client.hmget(self.keys.last_update_hash, codes)
        return {
            code: dt.date.fromisoformat(_text(value)) if value is not None else None
            for code, value in zip(codes, values, strict=True)
        }

    def begin_run(self, ttl: dt.timedelta = RUN_LOCK_TTL) -> RunStart:
        """Take the run lock and set ``getOHLCV_isUpdating`` to 1.

        The lock is a random token with an expiry, so a run killed without cleanup cannot
        hold it forever. Raises ``RunLocked`` while another run holds it.
        """
        token = uuid.uuid4().hex
        acquired, detail = self._begin_run(
            keys=[self.keys.run_lock, self.keys.is_updating],
            args=[token, int(ttl.total_seconds() * 1000)],
        )
        if not acquired:
            raise RunLocked(
                f"another indexer run holds {self.keys.run_lock} (expires in {max(int(detail), 0) / 1000:.0f} s)"
            )
        return RunStart(token=token, found_stale_flag=_text(detail) == "1")

    def publish_run(self, as_of: dt.date, count: int) -> bool:
        """Set ``getOHLCV_lastUpdateAt`` to ``as_of`` and ``getOHLCV_lastUpdateCount`` to ``count``.

        Both stay as they are when they already name a later session (a backfill of an older
        date), so they never move backwards. Returns whether they were set.
        """
        moved = self._publish_run(
            keys=[self.keys.last_update_at, self.keys.last_update_count],
            args=[as_of.isoformat(), int(count)],
        )
        return bool(moved)

    def release_run(self, token: str) -> bool:
        """Release the run lock and reset ``getOHLCV_isUpdating`` if ``token`` still holds it."""
        return bool(self._release_run(keys=[self.keys.run_lock, self.keys.is_updating], args=[token]))

    def meta(self) -> Meta:
        """The ``getOHLCV_*`` meta keys."""
        updating, last, count = self.client.mget(
            [self.keys.is_updating, self.keys.last_update_at, self.keys.last_update_count]
        )
        return Meta(
            is_updating=_text(updating) == "1",
            last_update_at=dt.date.fromisoformat(_text(last)) if last else None,
            last_update_count=int(count) if count is not None else None,
        )
