"""Redis persistence: atomic merge writes, repair, period-key registry, the run lock, meta keys.

Every multi-key change is one MULTI/EXEC transaction or one Lua script, so it is atomic on
the server: a reader sees the old state or the new one, never a series whose date disagrees
with ``ticker:lastUpdateAt``, even when the writer dies half-way. A series write is an
optimistic transaction (WATCH on the series key): two writers of one ticker, e.g. the
indexer and a cache-aside miss, never lose each other's rows; the later one merges again.
No write moves a date backwards, so a late or older writer (a backfill) cannot roll the
cache back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import redis

from ohlcv import codec
from ohlcv.calendar import SessionTable
from ohlcv.errors import BadOhlcvData, ConfigurationError, HistoryDisagrees, OhlcvError, SourceMismatch
from ohlcv.keys import DateLike, KeySpace, validate_period, validate_ticker
from ohlcv.merge import Merge, merge
from ohlcv.settings import Settings
from ohlcv.snapshot import Extension, Snapshot
from ohlcv.status import Status

log = logging.getLogger(__name__)

#: the run lock lives this long unless a task of the run extends it; a killed run blocks no longer
RUN_LOCK_TTL = dt.timedelta(minutes=30)
WRITE_ATTEMPTS = 10
RUN_METRICS_TTL = int(dt.timedelta(days=2).total_seconds())
RUNS_KEPT = 200
#: how long a cached value that could not be read is kept, after the vendor's history replaced it
UNREADABLE_KEPT = int(dt.timedelta(days=30).total_seconds())
#: series written per transaction by ``extend_many``: large enough to save round trips, small
#: enough that a concurrent writer rarely forces a batch to start again
EXTEND_BATCH = 250

# KEYS: run lock, isUpdating. ARGV: token, ttl (ms).
# Returns {1, 1 if an earlier run died without cleanup else 0} or {0, lock ttl}.
# The same token takes the lock again (a retried start_run). The flag never expires, so old
# readers doing int(GET) always find 0 or 1; a 1 without a lock is a run that died.
# KEYS: series, period, registry. ARGV: sha1 of the series bytes the period was sliced from,
# the period's OHLCV_STR, ttl (ms). Stores the period only if the series is still those bytes,
# so a slice of a history repaired meanwhile is never kept. The registry forgets periods that
# have expired and lives as long as its longest-lived period, so it never outgrows them.
_KEEP_PERIOD = """
local current = redis.call('GET', KEYS[1])
if not current or redis.sha1hex(current) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
for _, member in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('EXISTS', member) == 0 then redis.call('SREM', KEYS[3], member) end
end
redis.call('SADD', KEYS[3], KEYS[2])
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[3], ARGV[3]) end
return 1
"""

_BEGIN_RUN = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {0, redis.call('PTTL', KEYS[1])}
end
local died = 0
if not holder and redis.call('GET', KEYS[2]) == '1' then died = 1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], '1')
return {1, died}
"""

# KEYS: run lock, isUpdating. ARGV: token, ttl (ms).
_EXTEND_RUN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[2], '1')
  return 1
end
return 0
"""

# KEYS: run lock, isUpdating. A 1 left by a run whose lock has expired (it died) becomes 0.
_CLEAR_DEAD_FLAG = """
if redis.call('GET', KEYS[2]) == '1' and redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[2], '0')
  return 1
end
return 0
"""

# KEYS: snapshot hash. ARGV: session (ISO), the snapshot's bytes, the session it was asked for.
# Never replaces a later session; remembers the latest session a run asked the vendor for.
_SAVE_SNAPSHOT = """
local asked = redis.call('HGET', KEYS[1], 'asked')
if (not asked) or asked < ARGV[3] then redis.call('HSET', KEYS[1], 'asked', ARGV[3]) end
local current = redis.call('HGET', KEYS[1], 'session')
if current and current > ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'session', ARGV[1], 'data', ARGV[2])
return 1
"""

# KEYS: lastUpdateAt, lastUpdateCount. ARGV: cut (ISO), count. Returns the cut it replaced.
_PUBLISH = """
local previous = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return previous
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
    """What writing a vendor answer did to one ticker's series.

    :param status: ``written``, ``unchanged`` or ``repaired`` (see ``ohlcv.merge``)
    :param last_date: the last session cached for the ticker afterwards
    :param rows: rows cached afterwards
    :param new_rows: sessions added after the previously cached last session
    :param periods_deleted: period keys removed because the history was repaired
    """

    ticker: str
    status: Status
    last_date: dt.date
    rows: int
    new_rows: int = 0
    first_difference: dt.date | None = None
    ratio: float | None = None
    periods_deleted: int = 0
    #: why the value cached before could not be read ("" when it could); it was replaced
    unreadable: str = ""


@dataclass(frozen=True)
class RunStart:
    """A taken run lock.

    :param found_dead_run: an earlier run took the lock and never released it (killed
        without cleanup; its lock and flag expired)
    """

    token: str
    found_dead_run: bool


@dataclass(frozen=True)
class Watermark:
    """The published cut after a run.

    :param cut: the newest session through which every active ticker is cached (None: none is)
    :param count: how many tickers are cached through ``cut``
    :param previous: the cut published before
    """

    cut: dt.date | None
    count: int
    previous: dt.date | None

    @property
    def advanced(self) -> bool:
        return self.cut is not None and (self.previous is None or self.cut > self.previous)


@dataclass(frozen=True)
class Meta:
    """The three ``getOHLCV_*`` meta keys as they are now."""

    is_updating: bool
    last_update_at: dt.date | None
    last_update_count: int | None


def readable(blob: bytes | None) -> tuple[pd.DataFrame | None, str]:
    """The cached series, or None and what the value is when it cannot be read as OHLCV_STR
    (the old job's pandas JSON, or anything else)."""
    if blob is None:
        return None, ""
    try:
        return codec.decode(blob), ""
    except BadOhlcvData as exc:
        kind = "the old job's pandas JSON" if blob.lstrip()[:1] == b"{" else "not OHLCV_STR"
        return None, f"{kind} ({exc})"


def refuse_to_replace(code: str, blob: bytes | None, unreadable: str, source: str) -> None:
    """What a writer without ``repair`` may not touch: a value it cannot read, or a series
    another vendor wrote."""
    if unreadable:
        raise HistoryDisagrees(
            f"{code}: the cached value is {unreadable}; the indexer replaces it (or `python -m ohlcv migrate`)",
            None, None,
        )  # fmt: skip
    recorded = codec.source_of(blob) if blob is not None else ""
    if recorded and recorded != source:
        raise SourceMismatch(
            f"{code} is cached from the vendor {recorded!r}, and this reader's vendor is {source!r}: "
            f"it writes nothing (set OHLCV_SOURCE={recorded} to read this cache)"
        )


def client_from_url(url: str | None = None) -> redis.Redis:
    """A Redis client for ``url`` (``redis://`` or ``rediss://``, password and db in the URL).

    Without a URL, ``OHLCV_REDIS_URL`` is used, then ``redis://127.0.0.1:6379/0``.
    """
    url = url or Settings.from_env().redis_url
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=10, socket_timeout=60)
    except ValueError as exc:
        raise ConfigurationError(f"cannot use Redis URL: {exc}") from None


def _ms(duration: dt.timedelta) -> int:
    return int(duration.total_seconds() * 1000)


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class OhlcvStore:
    """Reads and writes the cache's keys through one Redis client."""

    def __init__(self, client: redis.Redis, keys: KeySpace | None = None) -> None:
        self.client = client
        self.keys = keys if keys is not None else Settings.from_env().keys
        self._extend_run = client.register_script(_EXTEND_RUN)
        self._save_snapshot = client.register_script(_SAVE_SNAPSHOT)
        self._begin_run = client.register_script(_BEGIN_RUN)
        self._publish = client.register_script(_PUBLISH)
        self._release_run = client.register_script(_RELEASE_RUN)
        self._clear_dead_flag = client.register_script(_CLEAR_DEAD_FLAG)
        self._keep_period = client.register_script(_KEEP_PERIOD)

    def write_series(self, code: str, fresh: pd.DataFrame, source: str, *, repair: bool = True) -> WriteOutcome:
        """Merge a validated vendor answer into the cache atomically (see ``ohlcv.merge``).

        The series, its ``ticker:lastUpdateAt`` entry and, on a repair, the deletion of its
        period keys happen in one MULTI/EXEC. The transaction watches the series key; if
        another writer changes it first, the answer is merged again with what it wrote.

        :param repair: whether the answer may replace a cached history it disagrees with.
            Without, ``HistoryDisagrees`` is raised instead, and a cached series from another
            vendor raises ``SourceMismatch`` (a reader adds and appends, never replaces).
        """
        code = validate_ticker(code)
        if fresh.empty:
            raise ValueError(f"refusing to store an empty series for {code}")
        series_key, registry = self.keys.series(code), self.keys.periods(code)
        for _ in range(WRITE_ATTEMPTS):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    # the registry too: a reader registering a period key meanwhile forces a retry
                    pipe.watch(series_key, registry)
                    blob = pipe.get(series_key)
                    cached, unreadable = readable(blob)
                    if not repair:
                        refuse_to_replace(code, blob, unreadable, source)
                    result = merge(cached, fresh)
                    if not repair and result.status == Status.REPAIRED:
                        pipe.unwatch()
                        ratio = f" (vendor/cached close {result.ratio:.6g})" if result.ratio else ""
                        raise HistoryDisagrees(
                            f"{code}: the vendor's history differs from the cache from {result.first_difference} on"
                            f"{ratio}",
                            result.first_difference,
                            result.ratio,
                        )
                    if unreadable:  # nothing to merge with: the vendor's history replaces it
                        result = Merge(fresh, Status.REPAIRED, len(fresh))
                    last = result.frame.index[-1].date()
                    if result.status == Status.UNCHANGED:
                        pipe.unwatch()
                        return WriteOutcome(code, Status.UNCHANGED, last, len(result.frame))
                    periods = list(pipe.smembers(registry)) if result.status == Status.REPAIRED else []
                    pipe.multi()
                    if unreadable:
                        pipe.set(self.keys.unreadable(code), blob, ex=UNREADABLE_KEPT)
                    pipe.set(series_key, codec.encode(result.frame, source))
                    pipe.hset(self.keys.last_update_hash, code, last.isoformat())
                    pipe.hdel(self.keys.inactive, code)
                    if result.status == Status.REPAIRED:
                        pipe.delete(registry, *periods)
                    pipe.execute()
                except redis.WatchError:
                    continue
            return WriteOutcome(
                code, result.status, last, len(result.frame), result.new_rows,
                result.first_difference, result.ratio, len(periods), unreadable,
            )  # fmt: skip
        raise OhlcvError(f"{code}: gave up after {WRITE_ATTEMPTS} concurrent writes to {series_key}")

    def write_period(
        self, code: str, start: DateLike, end: DateLike, frame: pd.DataFrame, source: str, ttl: dt.timedelta
    ) -> str:
        """Store one period of ``code`` with a TTL and register it so a repair can delete it."""
        first, last = validate_period(start, end)
        key = self.keys.period(code, first, last)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(key, codec.encode(frame, source), px=int(ttl.total_seconds() * 1000))
            pipe.sadd(self.keys.periods(code), key)
            pipe.execute()
        return key

    def keep_period(
        self,
        code: str,
        first: dt.date,
        last: dt.date,
        series: bytes,
        window: pd.DataFrame,
        ttl: dt.timedelta,
        *,
        client: redis.client.Pipeline | None = None,
    ) -> bool:
        """Store ``window``, a slice of the series bytes ``series``, as the period key of
        ``first``..``last`` with a TTL, and register it so a repair deletes it.

        Nothing is stored when the series is no longer those bytes (a repair came between).
        With ``client`` (a pipeline) the write is queued there and True is returned.
        """
        keys = [self.keys.series(code), self.keys.period(code, first, last), self.keys.periods(code)]
        args = [hashlib.sha1(series).hexdigest(), codec.encode(window, codec.source_of(series)), _ms(ttl)]
        return bool(self._keep_period(keys=keys, args=args, client=client))

    def read_series(self, code: str) -> pd.DataFrame | None:
        """The cached history of ``code``, or None when it is not cached."""
        blob = self.client.get(self.keys.series(code))
        return None if blob is None else codec.decode(blob)

    def last_updates(self, codes: list[str]) -> dict[str, dt.date | None]:
        """The last cached session of each of ``codes``, in one round trip (see ``state_of``)."""
        return self.state_of(codes)[0]

    def begin_run(self, token: str | None = None, ttl: dt.timedelta = RUN_LOCK_TTL) -> RunStart:
        """Take the run lock and set ``getOHLCV_isUpdating`` to 1.

        The lock holds ``token`` (e.g. the Airflow run id; random by default) with an expiry,
        so a run killed without cleanup cannot hold it for longer than ``ttl``. The same token
        takes it again. Raises ``RunLocked`` while another token holds it. The flag itself
        never expires: it is always ``0`` or ``1``; a ``1`` whose lock has expired is cleared
        by the next run or by ``meta``.
        """
        token = token or uuid.uuid4().hex
        acquired, detail = self._begin_run(
            keys=[self.keys.run_lock, self.keys.is_updating],
            args=[token, int(ttl.total_seconds() * 1000)],
        )
        if not acquired:
            raise RunLocked(
                f"another indexer run holds {self.keys.run_lock} (expires in {max(int(detail), 0) / 1000:.0f} s)"
            )
        return RunStart(token=token, found_dead_run=int(detail) == 1)

    def watermark(self, codes: list[str]) -> tuple[dt.date | None, int]:
        """The newest session through which every active ticker of ``codes`` is cached, and how
        many of ``codes`` are cached through it (one round trip).

        Active: cached, and not recorded in ``ohlcv:inactive`` (no data, delisted, halted).
        None while no active ticker is cached.
        """
        last, inactive = self.state_of(codes)
        active = [day for code, day in last.items() if day is not None and code not in inactive]
        if not active:
            return None, 0
        cut = min(active)
        return cut, sum(1 for day in last.values() if day is not None and day >= cut)

    def publish_watermark(self, codes: list[str]) -> Watermark:
        """Set ``getOHLCV_lastUpdateAt`` and ``getOHLCV_lastUpdateCount`` to the watermark of
        ``codes`` (see ``watermark``): never ahead of an active ticker, never behind what all
        of them hold. Left as they are while no active ticker is cached."""
        cut, count = self.watermark(codes)
        if cut is None:
            return Watermark(None, 0, self.meta().last_update_at)
        return Watermark(cut, count, self.publish(cut, count))

    def publish(self, cut: dt.date, count: int) -> dt.date | None:
        """Set both meta keys together; return the cut they held before."""
        previous = self._publish(
            keys=[self.keys.last_update_at, self.keys.last_update_count], args=[cut.isoformat(), int(count)]
        )
        return dt.date.fromisoformat(_text(previous)) if previous else None

    def extend_run(self, token: str, ttl: dt.timedelta = RUN_LOCK_TTL) -> bool:
        """Push the run lock's expiry (and the flag's) ``ttl`` into the future if ``token`` holds it."""
        keys = [self.keys.run_lock, self.keys.is_updating]
        return bool(self._extend_run(keys=keys, args=[token, int(ttl.total_seconds() * 1000)]))

    def release_run(self, token: str) -> bool:
        """Release the run lock and reset ``getOHLCV_isUpdating`` if ``token`` still holds it."""
        return bool(self._release_run(keys=[self.keys.run_lock, self.keys.is_updating], args=[token]))

    def publish_sessions(self, table: SessionTable) -> None:
        """Keep ``table`` in ``ohlcv:sessions`` for readers (see ``ohlcv.calendar``)."""
        self.client.set(self.keys.sessions, table.encode())

    def published_sessions(self) -> bytes | None:
        """The session table the indexer published, as stored (None: none yet)."""
        return self.client.get(self.keys.sessions)

    def meta(self) -> Meta:
        """The ``getOHLCV_*`` meta keys. A ``1`` left by a run that died (its lock has expired)
        reads as not updating, and is set back to ``0`` when this client may write."""
        updating, last, count, lock = self.client.mget(
            [self.keys.is_updating, self.keys.last_update_at, self.keys.last_update_count, self.keys.run_lock]
        )
        is_updating = _text(updating) == "1"
        if is_updating and lock is None:
            is_updating = False
            with contextlib.suppress(redis.exceptions.NoPermissionError):  # a read-only user: a writer clears it
                self._clear_dead_flag(keys=[self.keys.run_lock, self.keys.is_updating])
        return Meta(
            is_updating=is_updating,
            last_update_at=dt.date.fromisoformat(_text(last)) if last else None,
            last_update_count=int(count) if count is not None else None,
        )

    def state_of(self, codes: list[str]) -> tuple[dict[str, dt.date | None], dict[str, dict]]:
        """The last cached session and inactive record of each of ``codes``, in one round trip.

        A code whose ``lastUpdateAt`` entry exists but whose series key does not (deleted,
        evicted) counts as not cached.
        """
        codes = [validate_ticker(code) for code in codes]
        if not codes:
            return {}, {}
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hmget(self.keys.last_update_hash, codes)
            pipe.hmget(self.keys.inactive, codes)
            for code in codes:
                pipe.exists(self.keys.series(code))
            updates, inactive, *present = pipe.execute()
        last = {
            code: dt.date.fromisoformat(_text(day)) if day and exists else None
            for code, day, exists in zip(codes, updates, present, strict=True)
        }
        records = {code: json.loads(record) for code, record in zip(codes, inactive, strict=True) if record}
        return last, records

    def mark_inactive(self, code: str, checked: dt.date, reason: str) -> None:
        """Record that ``code`` had no new data as of ``checked``, and why."""
        record = {"checked": checked.isoformat(), "reason": reason}
        self.client.hset(self.keys.inactive, validate_ticker(code), json.dumps(record))

    def record_failure(self, code: str, as_of: dt.date, reason: str, run_id: str = "", *, retry: bool = True) -> None:
        """Keep the latest failure of ``code`` (cleared by ``record_result``).

        :param retry: whether asking the vendor again later in the run can help (not for bad
            data or a block answer)
        """
        record = {"as_of": as_of.isoformat(), "reason": reason[:500], "run_id": run_id, "retry": retry}
        self.client.hset(self.keys.failures, validate_ticker(code), json.dumps(record))

    def failures(self, codes: list[str], *, run_id: str | None = None) -> dict[str, dict]:
        """The recorded failures of ``codes`` that have one (written by ``run_id`` if given)."""
        codes = [validate_ticker(code) for code in codes]
        if not codes:
            return {}
        values = self.client.hmget(self.keys.failures, codes)
        records = {code: json.loads(value) for code, value in zip(codes, values, strict=True) if value}
        return {code: record for code, record in records.items() if run_id is None or record["run_id"] == run_id}

    def saved_snapshot(self, source: str) -> Snapshot | None:
        """The newest market snapshot fetched from ``source`` (None: none saved yet)."""
        blob = self.client.hget(self.keys.snapshot(source), "data")
        return None if blob is None else Snapshot.from_bytes(blob)

    def save_snapshot(self, snapshot: Snapshot, asked: dt.date) -> bool:
        """Keep ``snapshot``, asked from the vendor for the session ``asked``, for the runs of
        its session, unless one of a later session is kept."""
        key = self.keys.snapshot(snapshot.source)
        args = [snapshot.session.isoformat(), snapshot.to_bytes(), asked.isoformat()]
        return bool(self._save_snapshot(keys=[key], args=args))

    def snapshot_asked(self, source: str) -> dt.date:
        """The latest session a run asked ``source`` for its snapshot (``date.min``: never)."""
        asked = self.client.hget(self.keys.snapshot(source), "asked")
        return dt.date.fromisoformat(_text(asked)) if asked else dt.date.min

    def extend_many(
        self,
        codes: list[str],
        extend: Callable[[str, bytes | None], Extension],
        *,
        run_id: str,
        status: Status,
        batch: int = EXTEND_BATCH,
    ) -> list[Extension]:
        """Replace many series at once, ``batch`` tickers per optimistic transaction.

        Each batch WATCHes its series keys, reads them in one MGET, lets ``extend`` build each
        new value from the bytes on the server, and writes every accepted value together with
        its ``ticker:lastUpdateAt`` entry and the run's result in one MULTI/EXEC. A concurrent
        write to any key of the batch makes the batch start again from the new bytes. Returns
        one ``Extension`` per code: the accepted ones with their value, the others with why.
        """
        codes = [validate_ticker(code) for code in codes]
        done: list[Extension] = []
        for start in range(0, len(codes), batch):
            done += self._extend_batch(codes[start : start + batch], extend, run_id, status)
        return done

    def _extend_batch(self, codes, extend, run_id: str, status: Status) -> list[Extension]:
        series = [self.keys.series(code) for code in codes]
        results, metrics = self.keys.run_results(run_id), self.keys.run_metrics(run_id)
        for _ in range(WRITE_ATTEMPTS):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(*series)
                    outcomes = [extend(code, blob) for code, blob in zip(codes, pipe.mget(series), strict=True)]
                    accepted = [outcome for outcome in outcomes if outcome.blob is not None]
                    if not accepted:
                        pipe.unwatch()
                        return outcomes
                    pipe.multi()
                    for outcome in accepted:
                        pipe.set(self.keys.series(outcome.code), outcome.blob)
                    names = [outcome.code for outcome in accepted]
                    days = {outcome.code: codec.last_date(outcome.blob).isoformat() for outcome in accepted}
                    pipe.hset(self.keys.last_update_hash, mapping=days)
                    pipe.hdel(self.keys.inactive, *names)
                    pipe.hdel(self.keys.failures, *names)
                    pipe.hset(results, mapping=dict.fromkeys(names, str(status)))
                    pipe.expire(results, RUN_METRICS_TTL)
                    pipe.hincrby(metrics, "rows_written", len(names))
                    pipe.expire(metrics, RUN_METRICS_TTL)
                    pipe.execute()
                    return outcomes
                except redis.WatchError:
                    continue
        raise OhlcvError(f"gave up after {WRITE_ATTEMPTS} concurrent writes to a batch of {len(codes)} series")

    def breaker(self) -> str | None:
        """Why the vendor breaker is open, or None while it is closed."""
        return _text(self.client.get(self.keys.breaker))

    def open_breaker(self, reason: str, ttl: dt.timedelta, by: str = "a block answer") -> None:
        """Open the vendor breaker for ``ttl`` (a later block answer restarts it); logged."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.breaker, reason[:500], px=int(ttl.total_seconds() * 1000))
            self._log_breaker(pipe, "open", reason, by, ttl)
            pipe.execute()

    def close_breaker(self, by: str) -> str | None:
        """Close the vendor breaker at once; return why it was open (None: it was closed). Logged."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.get(self.keys.breaker)
            pipe.delete(self.keys.breaker)
            reason = _text(pipe.execute()[0])
        if reason is not None:
            self._log_breaker(self.client, "close", reason, by)
        return reason

    def _log_breaker(self, client, action: str, reason: str, by: str, ttl: dt.timedelta | None = None) -> None:
        entry = {"action": action, "reason": reason[:500], "by": by, "at": dt.datetime.now(dt.UTC).isoformat()}
        if ttl is not None:
            entry["hours"] = f"{ttl.total_seconds() / 3600:g}"
        client.xadd(self.keys.breaker_log, entry, maxlen=RUNS_KEPT, approximate=False)

    def breaker_log(self, count: int = 5) -> list[dict[str, str]]:
        """The newest changes of the breaker, newest first."""
        entries = self.client.xrevrange(self.keys.breaker_log, count=count)
        return [{_text(name): _text(value) for name, value in fields.items()} for _, fields in entries]

    def breaker_ttl(self) -> dt.timedelta | None:
        remaining = self.client.pttl(self.keys.breaker)
        return dt.timedelta(milliseconds=remaining) if remaining > 0 else None

    def count_vendor_call(self, run_id: str, kind: str, seconds: float) -> None:
        """Count one vendor call of ``kind`` (``history``, ``snapshot``) and its seconds."""
        key = self.keys.run_metrics(run_id)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, "vendor_calls", 1)
            pipe.hincrby(key, f"{kind}_calls", 1)
            pipe.hincrbyfloat(key, "vendor_seconds", seconds)
            pipe.expire(key, RUN_METRICS_TTL)
            pipe.execute()

    def count(self, run_id: str, **counters: int) -> None:
        """Add to the run's counters (``rows_written=...``, ``retries=...``)."""
        key = self.keys.run_metrics(run_id)
        with self.client.pipeline(transaction=False) as pipe:
            for name, value in counters.items():
                pipe.hincrby(key, name, int(value))
            pipe.expire(key, RUN_METRICS_TTL)
            pipe.execute()

    def record_result(self, run_id: str, code: str, status: str, rows_written: int = 0) -> None:
        """Record what one ticker's task did in a run (the last answer per ticker counts), add
        its rows to the run's counters and clear its failure record: one round trip."""
        code = validate_ticker(code)
        results, metrics = self.keys.run_results(run_id), self.keys.run_metrics(run_id)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hdel(self.keys.failures, code)
            pipe.hset(results, code, status)
            pipe.expire(results, RUN_METRICS_TTL)
            pipe.hincrby(metrics, "rows_written", int(rows_written))
            pipe.expire(metrics, RUN_METRICS_TTL)
            pipe.execute()

    def run_results(self, run_id: str) -> dict[str, str]:
        """Ticker → status of every ticker a run's tasks finished (``record_result``)."""
        return {
            _text(code): _text(status) for code, status in self.client.hgetall(self.keys.run_results(run_id)).items()
        }

    def run_metrics(self, run_id: str) -> dict[str, float]:
        values = self.client.hgetall(self.keys.run_metrics(run_id))
        return {_text(name): float(value) for name, value in values.items()}

    def record_run(self, record: dict[str, str | int | float]) -> None:
        """Append a finished run's counts to ``ohlcv:runs`` (the newest ``RUNS_KEPT`` are kept)."""
        fields = {name: str(value) for name, value in record.items()}
        self.client.xadd(self.keys.runs, fields, maxlen=RUNS_KEPT, approximate=False)

    def recent_runs(self, count: int = 5) -> list[dict[str, str]]:
        """The newest finished runs, newest first."""
        entries = self.client.xrevrange(self.keys.runs, count=count)
        return [{_text(name): _text(value) for name, value in fields.items()} for _, fields in entries]
