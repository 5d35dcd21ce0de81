"""The series family: ``ticker:{code}``, its ``ticker:lastUpdateAt`` entry, its period keys and
their registry ``ohlcv:periods:{code}``, and ``ohlcv:unreadable:{code}``.

A series write is an optimistic transaction (WATCH on the series key, then MULTI/EXEC): the
series, its ``lastUpdateAt`` entry and, on a repair, the deletion of its period keys change
together, and two writers of one ticker (the indexer and a cache-aside miss) never lose each
other's rows; the later one merges again. No write moves a date backwards, so a late or older
writer (a backfill) cannot roll the cache back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import redis

from ohlcv import codec
from ohlcv.errors import BadOhlcvData, HistoryDisagrees, OhlcvError, SourceMismatch
from ohlcv.keys import KeySpace, validate_ticker
from ohlcv.merge import Merge, merge
from ohlcv.snapshot import Extension
from ohlcv.status import Status
from ohlcv.store.base import RUN_METRICS_TTL, StoreBase, ms, text

WRITE_ATTEMPTS = 10
#: how long a cached value that could not be read is kept, after the vendor's history replaced it
UNREADABLE_KEPT = int(dt.timedelta(days=30).total_seconds())
#: series written per transaction by ``extend_many``: large enough to save round trips, small
#: enough that a concurrent writer rarely forces a batch to start again
EXTEND_BATCH = 250

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


@dataclass(frozen=True)
class WriteOutcome:
    """What writing a vendor answer did to one ticker's series.

    :param status: ``written``, ``unchanged``, ``settled`` or ``repaired`` (see ``ohlcv.merge``)
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
    #: preliminary volumes the vendor's history replaced
    settled: int = 0
    #: why the value cached before could not be read ("" when it could); it was replaced
    unreadable: str = ""


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


class SeriesStore(StoreBase):
    """Reads and writes of the cached histories and their period keys."""

    def __init__(self, client: redis.Redis, keys: KeySpace | None = None) -> None:
        super().__init__(client, keys)
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
                    held = _sessions(pipe.hget(self.keys.preliminary, code))
                    result = merge(cached, fresh, pd.DatetimeIndex(held))
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
                    # a repair or a settled volume changes rows a period key may hold
                    rewrites = result.status == Status.REPAIRED or result.settled > 0
                    periods = list(pipe.smembers(registry)) if rewrites else []
                    pipe.multi()
                    if unreadable:
                        pipe.set(self.keys.unreadable(code), blob, ex=UNREADABLE_KEPT)
                    pipe.set(series_key, codec.encode(result.frame, source))
                    pipe.hset(self.keys.last_update_hash, code, last.isoformat())
                    pipe.hdel(self.keys.inactive, code)
                    if rewrites:
                        pipe.delete(registry, *periods)
                    if held:  # the vendor's history holds the final volumes of what it covers
                        self._queue_marks(
                            pipe, {code: [day for day in held if day > fresh.index[-1].date().isoformat()]}
                        )
                    pipe.execute()
                except redis.WatchError:
                    continue
            return WriteOutcome(
                code, result.status, last, len(result.frame), result.new_rows,
                result.first_difference, result.ratio, len(periods), result.settled, unreadable,
            )  # fmt: skip
        raise OhlcvError(f"{code}: gave up after {WRITE_ATTEMPTS} concurrent writes to {series_key}")

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
        args = [hashlib.sha1(series).hexdigest(), codec.encode(window, codec.source_of(series)), ms(ttl)]
        return bool(self._keep_period(keys=keys, args=args, client=client))

    def read_series(self, code: str) -> pd.DataFrame | None:
        """The cached history of ``code``, or None when it is not cached."""
        blob = self.client.get(self.keys.series(code))
        return None if blob is None else codec.decode(blob)

    def last_updates(self, codes: list[str]) -> dict[str, dt.date | None]:
        """The last cached session of each of ``codes``, in one round trip (see ``state_of``)."""
        return self.state_of(codes)[0]

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
            code: dt.date.fromisoformat(text(day)) if day and exists else None
            for code, day, exists in zip(codes, updates, present, strict=True)
        }
        records = {code: json.loads(record) for code, record in zip(codes, inactive, strict=True) if record}
        return last, records

    def extend_many(
        self,
        codes: list[str],
        extend: Callable[[str, bytes | None], Extension],
        *,
        run_id: str,
        status: Status | None,
        batch: int = EXTEND_BATCH,
        marks: Callable[[list[str]], list[str]] | None = None,
        periods_holding: dt.date | None = None,
        counter: str = "rows_written",
        guard: Callable[[list[Extension]], None] | None = None,
    ) -> list[Extension]:
        """Replace many series at once, ``batch`` tickers per optimistic transaction.

        Each batch WATCHes its series keys, reads them in one MGET, lets ``extend`` build each
        new value from the bytes on the server, and writes every accepted value together with
        its ``ticker:lastUpdateAt`` entry and the run's result in one MULTI/EXEC. A concurrent
        write to any key of the batch makes the batch start again from the new bytes. Returns
        one ``Extension`` per code: the accepted ones with their value, the others with why.

        :param status: the result recorded for each accepted ticker in the run (None: none)
        :param marks: the new list of preliminary sessions of an accepted ticker, from its list
            before (``ohlcv:preliminary``); None leaves the lists as they are
        :param periods_holding: the session whose rows change: the accepted tickers' period keys
            that hold it are deleted in the same transaction
        :param counter: the run's counter the accepted tickers are added to
        :param guard: called with each batch's outcomes before anything of it is written; what it
            raises stops the call (the batches before stay written)
        """
        codes = [validate_ticker(code) for code in codes]
        done: list[Extension] = []
        for start in range(0, len(codes), batch):
            chunk = codes[start : start + batch]
            done += self._extend_batch(chunk, extend, run_id, status, marks, periods_holding, counter, guard)
        return done

    def _extend_batch(self, codes, extend, run_id, status, marks, periods_holding, counter, guard) -> list[Extension]:
        series = [self.keys.series(code) for code in codes]
        registries = [self.keys.periods(code) for code in codes] if periods_holding else []
        results, metrics = self.keys.run_results(run_id), self.keys.run_metrics(run_id)
        for _ in range(WRITE_ATTEMPTS):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(*series, *registries)
                    outcomes = [extend(code, blob) for code, blob in zip(codes, pipe.mget(series), strict=True)]
                    if guard is not None:
                        try:
                            guard(outcomes)
                        except BaseException:
                            pipe.unwatch()
                            raise
                    accepted = [outcome for outcome in outcomes if outcome.blob is not None]
                    if not accepted:
                        pipe.unwatch()
                        return outcomes
                    names = [outcome.code for outcome in accepted]
                    held = dict(zip(names, pipe.hmget(self.keys.preliminary, names), strict=True)) if marks else {}
                    stale = self._periods_holding(pipe, names, periods_holding) if periods_holding else []
                    pipe.multi()
                    for outcome in accepted:
                        pipe.set(self.keys.series(outcome.code), outcome.blob)
                    days = {outcome.code: codec.last_date(outcome.blob).isoformat() for outcome in accepted}
                    pipe.hset(self.keys.last_update_hash, mapping=days)
                    pipe.hdel(self.keys.inactive, *names)
                    if marks is not None:
                        self._queue_marks(pipe, {code: marks(_sessions(held[code])) for code in names})
                    if stale:
                        pipe.delete(*(key for key, _ in stale))
                        for key, registry in stale:
                            pipe.srem(registry, key)
                    if status is not None:
                        pipe.hdel(self.keys.failures, *names)
                        pipe.hset(results, mapping=dict.fromkeys(names, str(status)))
                        pipe.expire(results, RUN_METRICS_TTL)
                    pipe.hincrby(metrics, counter, len(names))
                    pipe.expire(metrics, RUN_METRICS_TTL)
                    pipe.execute()
                    return outcomes
                except redis.WatchError:
                    continue
        raise OhlcvError(f"gave up after {WRITE_ATTEMPTS} concurrent writes to a batch of {len(codes)} series")

    def _periods_holding(self, pipe, codes: list[str], day: dt.date) -> list[tuple[str, str]]:
        """(period key, registry) of every registered period of ``codes`` whose range holds ``day``."""
        found = []
        for code in codes:
            registry = self.keys.periods(code)
            for member in pipe.smembers(registry):
                key = text(member)
                parts = key.rsplit(":", 2)
                if len(parts) == 3 and parts[1] <= day.isoformat() <= parts[2]:
                    found.append((key, registry))
        return found

    def _queue_marks(self, pipe, lists: dict[str, list[str]]) -> None:
        """Set or clear each code's list of preliminary sessions in ``ohlcv:preliminary``."""
        kept = {code: json.dumps(days) for code, days in lists.items() if days}
        cleared = [code for code, days in lists.items() if not days]
        if kept:
            pipe.hset(self.keys.preliminary, mapping=kept)
        if cleared:
            pipe.hdel(self.keys.preliminary, *cleared)

    def preliminary(self, codes: list[str] | None = None) -> dict[str, list[str]]:
        """Code -> the sessions whose cached row holds a preliminary volume (every code with one
        when ``codes`` is None)."""
        if codes is None:
            found = self.client.hgetall(self.keys.preliminary)
            return {text(code): _sessions(value) for code, value in found.items()}
        codes = [validate_ticker(code) for code in codes]
        if not codes:
            return {}
        values = self.client.hmget(self.keys.preliminary, codes)
        return {code: _sessions(value) for code, value in zip(codes, values, strict=True) if value}

    def preliminary_rows(self) -> int:
        """How many cached rows hold a preliminary volume, over every ticker."""
        return sum(len(days) for days in self.preliminary().values())


def _sessions(value: bytes | str | None) -> list[str]:
    """A ``ohlcv:preliminary`` entry as its list of ISO sessions (an unreadable one as none)."""
    if not value:
        return []
    try:
        days = json.loads(value)
    except ValueError:
        return []
    return sorted(day for day in days if isinstance(day, str)) if isinstance(days, list) else []
