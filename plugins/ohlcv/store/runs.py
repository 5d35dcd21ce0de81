"""The runs family: the run lock ``ohlcv:lock:run`` and the ``getOHLCV_*`` meta keys, the
published cut, the session table ``ohlcv:sessions``, and the bookkeeping of runs and tickers
(``ohlcv:failures``, ``ohlcv:inactive``, ``ohlcv:run:{run_id}:*``, the stream ``ohlcv:runs``).

The lock and the meta keys change only in Lua scripts, so ``getOHLCV_isUpdating`` never
disagrees with the lock a reader can see.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from dataclasses import dataclass

import redis

from ohlcv.calendar import SessionTable
from ohlcv.errors import OhlcvError
from ohlcv.keys import KeySpace, validate_ticker
from ohlcv.store.base import RUN_METRICS_TTL, RUNS_KEPT, StoreBase, ms, text

#: the fields of a run's metrics hash that are words, not counters
RUN_NOTES = frozenset({"unpublished"})
#: the run lock lives this long unless a task of the run extends it; a killed run blocks no longer
RUN_LOCK_TTL = dt.timedelta(minutes=30)

# KEYS: run lock, isUpdating. ARGV: token, ttl (ms).
# Returns {1, 1 if an earlier run died without cleanup else 0} or {0, lock ttl}.
# The same token takes the lock again (a retried start_run). The flag never expires, so old
# readers doing int(GET) always find 0 or 1; a 1 without a lock is a run that died.
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

# KEYS: run metrics. Counts one history call against the run's budget (the field
# history_budget; absent: no budget). Returns 0, counting nothing, once the budget is spent.
_SPEND_HISTORY_CALL = """
local budget = redis.call('HGET', KEYS[1], 'history_budget')
if not budget then return 1 end
if tonumber(redis.call('HGET', KEYS[1], 'history_spent') or '0') >= tonumber(budget) then return 0 end
redis.call('HINCRBY', KEYS[1], 'history_spent', 1)
return 1
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
    :param revision: the revision current after the publish (None: none was ever published)
    :param new_revision: this publish made a new revision
    """

    cut: dt.date | None
    count: int
    previous: dt.date | None
    revision: int | None = None
    new_revision: bool = False

    @property
    def advanced(self) -> bool:
        return self.cut is not None and (self.previous is None or self.cut > self.previous)


@dataclass(frozen=True)
class Meta:
    """The three ``getOHLCV_*`` meta keys as they are now."""

    is_updating: bool
    last_update_at: dt.date | None
    last_update_count: int | None


class RunStore(StoreBase):
    """The run lock, the meta keys and the record of runs; ``watermark`` reads the series
    family's ``state_of`` (both are parts of ``OhlcvStore``)."""

    def __init__(self, client: redis.Redis, keys: KeySpace) -> None:
        super().__init__(client, keys)
        self._extend_run = client.register_script(_EXTEND_RUN)
        self._begin_run = client.register_script(_BEGIN_RUN)
        self._release_run = client.register_script(_RELEASE_RUN)
        self._clear_dead_flag = client.register_script(_CLEAR_DEAD_FLAG)
        self._spend_history_call = client.register_script(_SPEND_HISTORY_CALL)

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
            args=[token, ms(ttl)],
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

    def publish_watermark(self, codes: list[str], *, run_id: str = "") -> Watermark:
        """Set ``getOHLCV_lastUpdateAt`` and ``getOHLCV_lastUpdateCount`` to the watermark of
        ``codes`` (see ``watermark``): never ahead of an active ticker, never behind what all
        of them hold; with them a revision (``RevisionStore.publish``, a part of ``OhlcvStore``).
        Left as they are while no active ticker is cached."""
        cut, count = self.watermark(codes)
        if cut is None:
            current = self.client.get(self.keys.revision)
            return Watermark(None, 0, self.meta().last_update_at, int(current) if current else None)
        published = self.publish(cut, count, run_id=run_id)
        return Watermark(cut, count, published.previous, published.revision, published.new)

    def extend_run(self, token: str, ttl: dt.timedelta = RUN_LOCK_TTL) -> bool:
        """Push the run lock's expiry (and the flag's) ``ttl`` into the future if ``token`` holds it."""
        keys = [self.keys.run_lock, self.keys.is_updating]
        return bool(self._extend_run(keys=keys, args=[token, ms(ttl)]))

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
        is_updating = text(updating) == "1"
        if is_updating and lock is None:
            is_updating = False
            # a read-only user, or a replica: a writer clears it
            with contextlib.suppress(redis.exceptions.NoPermissionError, redis.exceptions.ReadOnlyError):
                self._clear_dead_flag(keys=[self.keys.run_lock, self.keys.is_updating])
        return Meta(
            is_updating=is_updating,
            last_update_at=dt.date.fromisoformat(text(last)) if last else None,
            last_update_count=int(count) if count is not None else None,
        )

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

    def all_failures(self) -> dict[str, dict]:
        """Every ticker's latest failure record (``record_failure``), by code."""
        return {text(code): json.loads(value) for code, value in self.client.hgetall(self.keys.failures).items()}

    def all_inactive(self) -> dict[str, dict]:
        """Every inactive record (``mark_inactive``: no data, halted for long), by code."""
        return {text(code): json.loads(value) for code, value in self.client.hgetall(self.keys.inactive).items()}

    def failures(self, codes: list[str], *, run_id: str | None = None) -> dict[str, dict]:
        """The recorded failures of ``codes`` that have one (written by ``run_id`` if given)."""
        codes = [validate_ticker(code) for code in codes]
        if not codes:
            return {}
        values = self.client.hmget(self.keys.failures, codes)
        records = {code: json.loads(value) for code, value in zip(codes, values, strict=True) if value}
        return {code: record for code, record in records.items() if run_id is None or record["run_id"] == run_id}

    def count_vendor_call(self, run_id: str, kind: str, seconds: float) -> None:
        """Count one vendor call of ``kind`` (``history``, ``snapshot``) and its seconds."""
        key = self.keys.run_metrics(run_id)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, "vendor_calls", 1)
            pipe.hincrby(key, f"{kind}_calls", 1)
            pipe.hincrbyfloat(key, "vendor_seconds", seconds)
            pipe.expire(key, RUN_METRICS_TTL)
            pipe.execute()

    def set_history_budget(self, run_id: str, budget: int | None) -> None:
        """Allow the run ``budget`` history calls from now on (None: no limit), shared by every
        process of the run through its metrics hash."""
        key = self.keys.run_metrics(run_id)
        with self.client.pipeline(transaction=True) as pipe:
            if budget is None:
                pipe.hdel(key, "history_budget")
            else:
                pipe.hset(key, "history_budget", int(budget))
            pipe.expire(key, RUN_METRICS_TTL)
            pipe.execute()

    def spend_history_call(self, run_id: str) -> bool:
        """Count one history call against the run's budget; False (nothing counted) once it is spent."""
        return bool(self._spend_history_call(keys=[self.keys.run_metrics(run_id)]))

    def ticker_waited(self, run_id: str, code: str, seconds: float = 0.0) -> float:
        """Add ``seconds`` to what ``code``'s tries in the run have spent on the vendor and return
        the total (shared by every process of the run: the ticker deadline)."""
        key = self.keys.run_waited(run_id)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hincrbyfloat(key, validate_ticker(code), float(seconds))
            pipe.expire(key, RUN_METRICS_TTL)
            total, _ = pipe.execute()
        return float(total)

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

    def record_postponed(self, run_id: str, statuses: dict[str, str], reasons: dict[str, str]) -> None:
        """Record tickers a run leaves behind on purpose (``waiting``, ``deferred``) with why:
        their results and reasons in one round trip."""
        if not statuses:
            return
        results, behind = self.keys.run_results(run_id), self.keys.run_behind(run_id)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(results, mapping=statuses)
            pipe.hset(behind, mapping={code: reason[:500] for code, reason in reasons.items()})
            for key in (results, behind):
                pipe.expire(key, RUN_METRICS_TTL)
            pipe.execute()

    def record_handed_on(self, run_id: str, reasons: dict[str, str]) -> None:
        """Keep why the run's snapshot step handed each ticker on to a history fetch (the run view)."""
        if not reasons:
            return
        key = self.keys.run_handed_on(run_id)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping={code: reason[:500] for code, reason in reasons.items()})
            pipe.expire(key, RUN_METRICS_TTL)
            pipe.execute()

    def handed_on(self, run_id: str) -> dict[str, str]:
        """Ticker -> why the run handed it on to a history fetch (``record_handed_on``)."""
        found = self.client.hgetall(self.keys.run_handed_on(run_id))
        return {text(code): text(why) for code, why in found.items()}

    def postponed(self, run_id: str) -> dict[str, str]:
        """Ticker -> why the run left it behind on purpose (``record_postponed``)."""
        return {text(code): text(why) for code, why in self.client.hgetall(self.keys.run_behind(run_id)).items()}

    def note_table(self, run_id: str, session: dt.date, note: str) -> None:
        """Note what one run did with ``session``'s table (``applied ...``, ``missing: why``, ``refused: why``)."""
        key = self.keys.run_tables(run_id)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(key, session.isoformat(), note[:500])
            pipe.expire(key, RUN_METRICS_TTL)
            pipe.execute()

    def run_tables(self, run_id: str) -> dict[str, str]:
        """Session -> what the run did with its table (``note_table``)."""
        return {text(day): text(note) for day, note in self.client.hgetall(self.keys.run_tables(run_id)).items()}

    def run_results(self, run_id: str) -> dict[str, str]:
        """Ticker → status of every ticker a run's tasks finished (``record_result``)."""
        return {text(code): text(status) for code, status in self.client.hgetall(self.keys.run_results(run_id)).items()}

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The run's counters (its notes, such as ``unpublished``, left out)."""
        values = {text(name): text(value) for name, value in self.client.hgetall(self.keys.run_metrics(run_id)).items()}
        return {name: float(value) for name, value in values.items() if name not in RUN_NOTES}

    def note_unpublished(self, run_id: str, why: str) -> None:
        """Note that the run did not publish its cut, and why (``unpublished`` in its record)."""
        key = self.keys.run_metrics(run_id)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(key, "unpublished", why[:500])
            pipe.expire(key, RUN_METRICS_TTL)
            pipe.execute()

    def clear_unpublished(self, run_id: str) -> None:
        """Forget an ``unpublished`` note once the run has published its cut after all."""
        self.client.hdel(self.keys.run_metrics(run_id), "unpublished")

    def unpublished(self, run_id: str) -> str | None:
        """Why the run did not publish its cut (None: it did, or has not tried yet)."""
        return text(self.client.hget(self.keys.run_metrics(run_id), "unpublished"))

    def record_run(self, record: dict[str, str | int | float]) -> None:
        """Append a finished run's counts to ``ohlcv:runs`` (the newest ``RUNS_KEPT`` are kept)."""
        fields = {name: str(value) for name, value in record.items()}
        self.client.xadd(self.keys.runs, fields, maxlen=RUNS_KEPT, approximate=False)

    def recent_runs(self, count: int = 5) -> list[dict[str, str]]:
        """The newest finished runs, newest first, each with ``finished_at`` (ISO, UTC: when its
        record was written)."""
        entries = self.client.xrevrange(self.keys.runs, count=count)
        return [
            {
                **{text(name): text(value) for name, value in fields.items()},
                "finished_at": _stream_time(entry).isoformat(timespec="seconds"),
            }
            for entry, fields in entries
        ]


def _stream_time(entry_id: bytes | str) -> dt.datetime:
    """When a stream entry was added: its id's milliseconds."""
    return dt.datetime.fromtimestamp(int(text(entry_id).partition("-")[0]) / 1000, dt.UTC)
