"""The vendor family: the breaker ``ohlcv:breaker`` and its log ``ohlcv:breaker:log``, the
market snapshot ``ohlcv:snapshot:{source}``, the kept tables ``ohlcv:table:{source}:{session}``,
where two sources' tables disagree (``ohlcv:quality``, ``ohlcv:quality:checked``), and the rate
limit's windows under ``ohlcv:rate:``.

Opening the breaker and closing it are each one MULTI/EXEC; the log entry of a closing is
written after it. A snapshot is saved by one Lua script, so a later session is never replaced.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

import redis

from ohlcv.errors import BadOhlcvData
from ohlcv.keys import KeySpace
from ohlcv.snapshot import Snapshot
from ohlcv.store.base import RUNS_KEPT, StoreBase, ms, text

if TYPE_CHECKING:  # the vendors' dependencies load with the vendors, not with every reader
    from limits.storage import RedisStorage

#: how long a session's table is kept: every run of the session and any catch-up within
#: ``OHLCV_CATCHUP_SESSIONS`` reads it from Redis instead of asking the vendor again
TABLE_KEPT = dt.timedelta(days=40)
#: the disagreements between two sources' tables kept in ``ohlcv:quality`` (about)
QUALITY_KEPT = 50_000

# KEYS: table hash. ARGV: data, final ('1'/'0'), fetched (ISO), ttl (ms). A preliminary table
# never replaces a final one of the same session.
_SAVE_TABLE = """
if ARGV[2] == '0' and redis.call('HGET', KEYS[1], 'final') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'final', ARGV[2], 'fetched', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
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


class VendorStore(StoreBase):
    """What every process that calls a vendor shares through Redis."""

    def __init__(self, client: redis.Redis, keys: KeySpace) -> None:
        super().__init__(client, keys)
        self._save_snapshot = client.register_script(_SAVE_SNAPSHOT)
        self._save_table = client.register_script(_SAVE_TABLE)

    def breaker(self) -> str | None:
        """Why the vendor breaker is open, or None while it is closed."""
        return text(self.client.get(self.keys.breaker))

    def open_breaker(self, reason: str, ttl: dt.timedelta, by: str = "a block answer") -> None:
        """Open the vendor breaker for ``ttl`` (a later block answer restarts it); logged."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.breaker, reason[:500], px=ms(ttl))
            self._log_breaker(pipe, "open", reason, by, ttl)
            pipe.execute()

    def close_breaker(self, by: str) -> str | None:
        """Close the vendor breaker at once; return why it was open (None: it was closed). Logged."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.get(self.keys.breaker)
            pipe.delete(self.keys.breaker)
            reason = text(pipe.execute()[0])
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
        return [{text(name): text(value) for name, value in fields.items()} for _, fields in entries]

    def breaker_ttl(self) -> dt.timedelta | None:
        remaining = self.client.pttl(self.keys.breaker)
        return dt.timedelta(milliseconds=remaining) if remaining > 0 else None

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
        return dt.date.fromisoformat(text(asked)) if asked else dt.date.min

    def save_table(self, table: Snapshot) -> bool:
        """Keep the market's table of one session for ``TABLE_KEPT``; a preliminary table never
        replaces a final one. Returns whether it was kept."""
        args = [table.to_bytes(), "1" if table.final else "0", dt.datetime.now(dt.UTC).isoformat(), ms(TABLE_KEPT)]
        return bool(self._save_table(keys=[self.keys.table(table.source, table.session)], args=args))

    def saved_table(self, source: str, session: dt.date) -> Snapshot | None:
        """The table of ``session`` kept from ``source`` (None: none, or one that cannot be read)."""
        blob = self.client.hget(self.keys.table(source, session), "data")
        if blob is None:
            return None
        try:
            return Snapshot.from_bytes(blob)
        except BadOhlcvData:
            return None

    def drop_table(self, source: str, session: dt.date) -> None:
        """Forget a kept table (one refused as describing another session), so later runs ask again."""
        self.client.delete(self.keys.table(source, session))

    def record_disagreements(self, session: dt.date, first: str, second: str, rows: list[dict]) -> None:
        """Keep the codes whose values differ between ``first``'s and ``second``'s tables of
        ``session`` (``tables.disagreements``), one stream entry each, in one round trip."""
        if not rows:
            return
        with self.client.pipeline(transaction=False) as pipe:
            for row in rows:
                entry = {
                    "session": session.isoformat(), "code": row["code"], "first": first, "second": second,
                    "first_values": json.dumps(row["first"]), "second_values": json.dumps(row["second"]),
                }  # fmt: skip
                pipe.xadd(self.keys.quality, entry, maxlen=QUALITY_KEPT, approximate=True)
            pipe.execute()

    def disagreements(self, count: int = 100, session: dt.date | None = None) -> list[dict]:
        """The newest ``count`` recorded disagreements (of ``session`` only, if given), newest first."""
        rows = []
        for _, fields in self.client.xrevrange(self.keys.quality, count=count if session is None else 10 * count):
            row = {text(name): text(value) for name, value in fields.items()}
            if session is not None and row["session"] != session.isoformat():
                continue
            row["first_values"], row["second_values"] = (
                json.loads(row[name]) for name in ("first_values", "second_values")
            )
            rows.append(row)
            if len(rows) == count:
                break
        return rows

    def note_cross_check(self, session: dt.date, note: dict) -> None:
        """Note that ``session``'s table was compared with a second source's (or served by it)."""
        note = {**note, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        self.client.hset(self.keys.quality_checked, session.isoformat(), json.dumps(note))

    def cross_checked(self) -> dict[str, dict]:
        """Session -> its cross-check note (``note_cross_check``)."""
        values = self.client.hgetall(self.keys.quality_checked)
        return {text(day): json.loads(note) for day, note in values.items()}

    def rate_limit_storage(self) -> RedisStorage:
        """The ``limits`` library's storage of the vendors' moving windows, on this store's
        connection pool under ``ohlcv:rate:`` (shared by every process)."""
        from limits.storage import RedisStorage

        return RedisStorage("redis://", connection_pool=self.client.connection_pool, key_prefix=self.keys.rate_limit)
