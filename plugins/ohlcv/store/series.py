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
from dataclasses import dataclass

import pandas as pd
import redis

from ohlcv import codec
from ohlcv.errors import BadOhlcvData, HistoryDisagrees, SourceMismatch
from ohlcv.keys import KeySpace, validate_ticker
from ohlcv.merge import Merge, merge
from ohlcv.status import Status
from ohlcv.store.base import WRITE_ATTEMPTS, ms, optimistic, text
from ohlcv.store.batches import BatchStore, sessions_of
from ohlcv.store.ledger import LedgerStore, digest, for_write
from ohlcv.store.revisions import Stamp

#: how long a cached value that could not be read is kept, after the vendor's history replaced it
UNREADABLE_KEPT = int(dt.timedelta(days=30).total_seconds())

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


# KEYS: lastUpdateAt. ARGV: code, the entry the check saw, the series' real last date ("": none).
# Corrects the entry only if no writer changed it since the check.
_CORRECT_LAST_UPDATE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1
"""


@dataclass(frozen=True)
class Damage:
    """A series a reader cannot use as ``ticker:lastUpdateAt`` describes it.

    :param kind: ``missing`` (no value), ``unreadable`` (not a whole OHLCV_STR value) or
        ``mismatched`` (its last session is not the entry's)
    :param ends: the series' real last session (``mismatched`` only)
    """

    kind: str
    reason: str
    ends: dt.date | None = None


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


def settled_volumes(cached: pd.DataFrame | None, written: pd.DataFrame, held: list[str]) -> dict[dt.date, float]:
    """The preliminary Volume of each held session (``ohlcv:preliminary``) whose row ``written``
    settles: the cached Volume it replaces."""
    if cached is None:
        return {}
    found = {}
    for day in held:
        at = pd.Timestamp(day)
        if at in cached.index and at in written.index and cached.at[at, "Volume"] != written.at[at, "Volume"]:
            found[at.date()] = cached.at[at, "Volume"]
    return found


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


class SeriesStore(BatchStore, LedgerStore):
    """Reads and writes of the cached histories and their period keys."""

    def __init__(self, client: redis.Redis, keys: KeySpace) -> None:
        super().__init__(client, keys)
        self._keep_period = client.register_script(_KEEP_PERIOD)
        self._correct_last_update = client.register_script(_CORRECT_LAST_UPDATE)

    def write_series(
        self, code: str, fresh: pd.DataFrame, source: str, *, repair: bool = True, run_id: str = ""
    ) -> WriteOutcome:
        """Merge a validated vendor answer into the cache atomically (see ``ohlcv.merge``).

        The series, its ``ticker:lastUpdateAt`` entry, on a repair the deletion of its period
        keys, and the ledger entry of a repair (or of a break the run's snapshot step noted)
        happen in one MULTI/EXEC. The transaction watches the series key; if another writer
        changes it first, the answer is merged again with what it wrote.

        :param repair: whether the answer may replace a cached history it disagrees with.
            Without, ``HistoryDisagrees`` is raised instead, and a cached series from another
            vendor raises ``SourceMismatch`` (a reader adds and appends, never replaces).
        :param run_id: the indexer run writing (its ledger entries name it); empty for a reader
        """
        code = validate_ticker(code)
        if fresh.empty:
            raise ValueError(f"refusing to store an empty series for {code}")
        series_key, registry = self.keys.series(code), self.keys.periods(code)

        def attempt(pipe):
            blob = pipe.get(series_key)
            cached, unreadable = readable(blob)
            if not repair:
                refuse_to_replace(code, blob, unreadable, source)
            held = sessions_of(pipe.hget(self.keys.preliminary, code))
            result = merge(cached, fresh, pd.DatetimeIndex(held))
            if not repair and result.status == Status.REPAIRED:
                pipe.unwatch()
                ratio = f" (vendor/cached close {result.ratio:.6g})" if result.ratio else ""
                raise HistoryDisagrees(
                    f"{code}: the vendor's history differs from the cache from {result.first_difference} on{ratio}",
                    result.first_difference,
                    result.ratio,
                )
            if unreadable:  # nothing to merge with: the vendor's history replaces it
                result = Merge(fresh, Status.REPAIRED, len(fresh))
            last = result.frame.index[-1].date()
            noted = self.pending_break(pipe, run_id, code)
            if result.status == Status.UNCHANGED:
                if noted is None:
                    pipe.unwatch()
                    return WriteOutcome(code, Status.UNCHANGED, last, len(result.frame))
                values = for_write(result, cached, blob, blob, noted, self.stamp(pipe).after, run_id)
                pipe.multi()
                self.queue_action(pipe, code, values, run_id)
                pipe.execute()
                return WriteOutcome(code, Status.UNCHANGED, last, len(result.frame))
            # a repair, a settled volume or rows before the first change what a period key may hold
            prepended = cached is not None and result.frame.index[0] < cached.index[0]
            rewrites = result.status == Status.REPAIRED or result.settled > 0 or prepended
            periods = list(pipe.smembers(registry)) if rewrites else []
            # what older revisions saw and this write changes: the history itself or rows before
            # its first (the value is kept whole), or preliminary volumes (kept one by one)
            supersedes = blob is not None and (result.status == Status.REPAIRED or prepended)
            volumes = {} if supersedes else settled_volumes(cached, result.frame, held)
            ledger = noted is not None or result.status == Status.REPAIRED
            stamp = self.stamp(pipe, code) if supersedes or volumes or ledger else Stamp(0, 0, 0)
            encoded = codec.encode(result.frame, source)
            pipe.multi()
            if unreadable:
                pipe.set(self.keys.unreadable(code), blob, ex=UNREADABLE_KEPT)
            if supersedes:
                self.queue_superseded(pipe, code, blob, digest(blob), stamp)
            for session, volume in volumes.items():
                self.queue_settled(pipe, session, {code: volume}, stamp)
            pipe.set(series_key, encoded)
            if ledger:
                values = for_write(result, cached, blob, encoded, noted, stamp.after, run_id, unreadable)
                self.queue_action(pipe, code, values, run_id)
            pipe.hset(self.keys.last_update_hash, code, last.isoformat())
            pipe.hdel(self.keys.inactive, code)
            if rewrites:
                pipe.delete(registry, *periods)
            if held:  # the vendor's history holds the final volumes of what it covers
                self._queue_marks(pipe, {code: [day for day in held if day > fresh.index[-1].date().isoformat()]})
            pipe.execute()
            return WriteOutcome(
                code, result.status, last, len(result.frame), result.new_rows,
                result.first_difference, result.ratio, len(periods), result.settled, unreadable,
            )  # fmt: skip

        # the registry too: a reader registering a period key meanwhile forces a retry
        return optimistic(
            self.client,
            # and the run's noted breaks: its end entering one meanwhile forces a retry, not two entries
            [series_key, registry, self.keys.revision, self.keys.versions(code)]
            + ([self.keys.run_breaks(run_id)] if run_id else []),
            attempt,
            f"{code}: gave up after {WRITE_ATTEMPTS} concurrent writes to {series_key}",
        )

    def keep_period(
        self,
        code: str,
        first: dt.date,
        last: dt.date,
        series: bytes,
        window: bytes,
        ttl: dt.timedelta,
        *,
        client: redis.client.Pipeline | None = None,
    ) -> bool:
        """Store ``window``, the OHLCV_STR value of a slice of the series bytes ``series``, as the
        period key of ``first``..``last`` with a TTL, and register it so a repair deletes it.

        Nothing is stored when the series is no longer those bytes (a repair came between).
        With ``client`` (a pipeline) the write is queued there and True is returned.
        """
        keys = [self.keys.series(code), self.keys.period(code, first, last), self.keys.periods(code)]
        args = [hashlib.sha1(series).hexdigest(), window, ms(ttl)]
        return bool(self._keep_period(keys=keys, args=args, client=client))

    def last_updates(self) -> dict[str, dt.date]:
        """Every ``ticker:lastUpdateAt`` entry that holds a date, by code."""
        found = {}
        for code, day in self.client.hgetall(self.keys.last_update_hash).items():
            try:
                found[text(code)] = dt.date.fromisoformat(text(day))
            except ValueError:
                continue
        return found

    def read_series(self, code: str) -> pd.DataFrame | None:
        """The cached history of ``code``, or None when it is not cached."""
        blob = self.client.get(self.keys.series(code))
        return None if blob is None else codec.decode(blob)

    def check_series(self, entries: dict[str, dt.date]) -> dict[str, Damage]:
        """The series of ``entries`` (code: its ``lastUpdateAt``) that are missing, unreadable or
        end on another session, without decoding them: one pipelined pass reads each value's
        length and first bytes, a second the four bytes of its last date. Only a value laid out
        otherwise than ``codec.encode`` writes, or whose length disagrees, is read whole."""
        codes = list(entries)
        with self.client.pipeline(transaction=False) as pipe:
            for code in codes:
                pipe.strlen(self.keys.series(code))
                pipe.getrange(self.keys.series(code), 0, codec.PROBE_BYTES - 1)
            answers = pipe.execute()
        damage: dict[str, Damage] = {}
        located: dict[str, int] = {}
        for code, length, prefix in zip(codes, answers[::2], answers[1::2], strict=True):
            if not length:
                damage[code] = Damage("missing", f"{self.keys.series(code)} does not exist")
                continue
            try:
                found = codec.layout(prefix)
            except BadOhlcvData as exc:
                damage[code] = Damage("unreadable", str(exc))
                continue
            if found is None or found.length != length:
                ends, reason = self._decoded_end(code)
                if ends is None and found is not None:
                    reason = f"{reason} ({length} bytes where its header describes {found.length}: truncated)"
                if ends is None:
                    damage[code] = Damage("unreadable", reason)
                elif ends != entries[code]:
                    damage[code] = self._mismatch(code, ends, entries[code])
            else:
                located[code] = found.last_day_at
        with self.client.pipeline(transaction=False) as pipe:
            for code, offset in located.items():
                pipe.getrange(self.keys.series(code), offset, offset + 3)
            days = pipe.execute()
        for (code, _), raw in zip(located.items(), days, strict=True):
            try:
                ends = codec.day_at(raw)
            except BadOhlcvData as exc:
                damage[code] = Damage("unreadable", str(exc))
                continue
            if ends != entries[code]:
                damage[code] = self._mismatch(code, ends, entries[code])
        return damage

    def _decoded_end(self, code: str) -> tuple[dt.date | None, str]:
        blob = self.client.get(self.keys.series(code))
        if blob is None:
            return None, f"{self.keys.series(code)} was deleted while it was checked"
        try:
            return codec.last_date(blob), ""
        except BadOhlcvData as exc:
            return None, str(exc)

    def _mismatch(self, code: str, ends: dt.date, entry: dt.date) -> Damage:
        return Damage(
            "mismatched", f"{self.keys.series(code)} ends on {ends}, {self.keys.last_update_hash} says {entry}", ends
        )

    def correct_last_updates(self, entries: dict[str, dt.date], damage: dict[str, Damage]) -> None:
        """Make each damaged code's ``lastUpdateAt`` entry say what its series holds: the real last
        session of a mismatched one, no entry for a missing or unreadable one (the next write
        replaces it, keeping an unreadable value in ``ohlcv:unreadable:{code}``). An entry a
        writer changed since the check stays."""
        with self.client.pipeline(transaction=False) as pipe:
            for code, found in damage.items():
                ends = found.ends.isoformat() if found.ends else ""
                self._correct_last_update(
                    keys=[self.keys.last_update_hash], args=[code, entries[code].isoformat(), ends], client=pipe
                )
            pipe.execute()

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
