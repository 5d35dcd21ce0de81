"""``Migrator``: the changes of ``python -m ohlcv migrate``, one transaction per ticker, under
the run lock (see ``ohlcv.migrate``)."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from ohlcv import calendar
from ohlcv.errors import BadOhlcvData
from ohlcv.keys import code_as_written, validate_ticker
from ohlcv.migrate.legacy import Value, check_source, is_ohlcv_str, read_value
from ohlcv.migrate.report import Action, MigrationReport, TickerMigration
from ohlcv.store import UNREADABLE_KEPT, WRITE_ATTEMPTS, OhlcvStore, RunLocked
from ohlcv.store.base import optimistic

log = logging.getLogger(__name__)

#: the old job used FinanceDataReader; the label written into each converted value's header
DEFAULT_SOURCE = "fdr"
#: how long a history that lost a conflict is kept under ``ohlcv:superseded:{code}``
SUPERSEDED_KEPT = UNREADABLE_KEPT
#: the run lock is extended after this many seconds of work
LOCK_EXTEND_EVERY = 60.0
_SEOUL = ZoneInfo("Asia/Seoul")


def default_as_of() -> dt.date:
    """The latest day a migrated row may carry: today in Korea. The old job ran after the close
    (17:00-21:00 KST), so its last row may be today's session; validation still rejects any
    row that is not an XKRX session."""
    return dt.datetime.now(_SEOUL).date()


class Migrator:
    """Migrates the old job's values through one ``OhlcvStore`` (its key prefix applies).

    :param source: the ``source`` label written into converted values
    :param as_of: no row may be later (default: today in Korea)
    """

    def __init__(
        self, store: OhlcvStore, *, source: str = DEFAULT_SOURCE, as_of: dt.date | None = None, dry_run: bool = False
    ) -> None:
        self.store, self.keys, self.client = store, store.keys, store.client
        self.source = check_source(source)
        self.as_of = as_of or default_as_of()
        self.dry_run = dry_run
        calendar.xkrx(self.as_of)  # build the calendar before taking the lock

    def run(self, tickers: Iterable[str] = (), *, bar=None) -> MigrationReport:
        """Migrate every ticker found (only ``tickers`` if given), under the run lock unless ``dry_run``.

        :param bar: ``bar(codes, total, what)`` wraps the tickers, for a progress bar (the CLI's)
        """
        wanted = {validate_ticker(code) for code in tickers}
        found, skipped = self._scan(wanted)
        codes = sorted(found)
        shown = codes if bar is None else bar(codes, len(codes), "tickers")
        if self.dry_run:
            return MigrationReport(skipped + [self.migrate_ticker(code, found[code]) for code in shown], True)
        token = f"migrate__{uuid.uuid4().hex}"
        self.store.begin_run(token)
        results, extended = list(skipped), time.monotonic()
        try:
            for code in shown:
                results.append(self.migrate_ticker(code, found[code]))
                if time.monotonic() - extended > LOCK_EXTEND_EVERY:
                    if not self.store.extend_run(token):
                        raise RunLocked("the run lock expired while migrating; run python -m ohlcv migrate again")
                    extended = time.monotonic()
        finally:
            self.store.release_run(token)
        return MigrationReport(results, False)

    def _scan(self, wanted: set[str]) -> tuple[dict[str, list[bytes]], list[TickerMigration]]:
        """Every ticker with a value or entry under the old or new names, with its period keys
        (SCAN and HSCAN, never KEYS)."""
        found: dict[str, list[bytes]] = {}
        skipped = []
        hashes = {self.keys.last_update_hash, self.keys.legacy_last_update_hash}
        for raw in self.client.scan_iter(match=self.keys.ticker_pattern, count=1000):
            key = raw.decode()
            if key in hashes:
                continue
            code, period = self.keys.code_in(key)
            if code is None:
                if not wanted:
                    skipped.append(TickerMigration(key, Action.SKIPPED, "not a key this package knows; left as it is"))
                continue
            if wanted and code not in wanted:
                continue
            periods = found.setdefault(code, [])
            if period:
                periods.append(raw)
        for raw, _ in self.client.hscan_iter(self.keys.legacy_last_update_hash, count=1000):
            code = code_as_written(raw.decode())
            if code is not None and (not wanted or code in wanted):
                found.setdefault(code, [])  # an entry alone is something to migrate
        for code in wanted:
            found.setdefault(code, [])  # asked for by name: say what is there, even if nothing
        return dict(found), sorted(skipped, key=lambda result: result.ticker)

    def migrate_ticker(self, code: str, periods: Iterable[bytes | str] = ()) -> TickerMigration:
        """Migrate one ticker in one transaction, examined again if a watched key changes.

        :param periods: its period keys (``ticker:{code}:{start}:{end}``) to look at
        """
        code = validate_ticker(code)
        periods = list(periods)
        series_key, legacy_key = self.keys.series(code), self.keys.legacy_series(code)
        watched = [series_key, legacy_key, self.keys.legacy_last_update_hash, *periods]

        def attempt(pipe):
            result, writes = self._plan(pipe, code, periods)
            if self.dry_run or not writes:
                pipe.unwatch()
                return result
            pipe.multi()
            for write in writes:
                write(pipe)
            pipe.execute()
            log.info("%s", result.line())
            return result

        return optimistic(
            self.client, [*watched], attempt, f"{code}: gave up after {WRITE_ATTEMPTS} concurrent writes to its keys"
        )

    def _plan(self, pipe, code: str, periods: list[bytes | str]) -> tuple[TickerMigration, list]:
        """The outcome for ``code`` and the writes that make it, from what is on the server now."""
        keys = self.keys
        series_key, legacy_key, legacy_hash = keys.series(code), keys.legacy_series(code), keys.legacy_last_update_hash
        stale = [key for key in periods if not is_ohlcv_str(pipe.get(key))]
        entry = pipe.hget(legacy_hash, code)
        try:
            current = read_value(series_key, pipe.get(series_key), self.source, self.as_of)
        except BadOhlcvData as exc:
            return TickerMigration(code, Action.INVALID, f"{series_key}: {exc}; left as it is"), []
        try:
            legacy = read_value(legacy_key, pipe.get(legacy_key), self.source, self.as_of)
        except BadOhlcvData as exc:
            kept = f" ({series_key} left as it is)" if current else ""
            return TickerMigration(code, Action.INVALID, f"{legacy_key}: {exc}; left as it is{kept}"), []
        writes = [lambda p: p.delete(*stale)] if stale else []
        if entry is not None:
            writes.append(lambda p: p.hdel(legacy_hash, code))
        removed = f"; its {legacy_hash} entry ({entry.decode()}) removed" if entry is not None else ""

        def keep(value: Value) -> None:
            writes.append(lambda p: p.set(series_key, value.blob))
            writes.append(lambda p: p.hset(keys.last_update_hash, code, value.last.isoformat()))

        if current is None and legacy is None:
            if entry is None and not stale:
                return TickerMigration(code, Action.CURRENT, f"nothing under {series_key} or {legacy_key}"), []
            detail = f"no whole history under {series_key} or {legacy_key}{removed}"
            return TickerMigration(code, Action.DROPPED, detail, len(stale)), writes
        if legacy is None:
            if current.kind == "OHLCV_STR":
                return TickerMigration(code, Action.CURRENT, f"{current.describe()}{removed}", len(stale)), writes
            keep(current)
            detail = f"{current.describe()} stored as OHLCV_STR (source {self.source!r}){removed}"
            return TickerMigration(code, Action.CONVERTED, detail, len(stale)), writes
        writes.append(lambda p: p.delete(legacy_key))
        if current is None:
            keep(legacy)
            how = f"converted (source {self.source!r})" if legacy.kind == "pandas JSON" else "moved as it is"
            detail = f"{legacy.describe()} -> {series_key}, {how}{removed}"
            return TickerMigration(code, Action.RENAMED, detail, len(stale)), writes
        winner, loser = (legacy, current) if legacy.last > current.last else (current, legacy)
        if winner is legacy or winner.kind != "OHLCV_STR":
            keep(winner)
        aside = keys.superseded(code)
        writes.append(lambda p: p.set(aside, loser.original, ex=SUPERSEDED_KEPT))
        why = "its last session is later" if winner.last > loser.last else "same last session; the new name wins"
        detail = (
            f"kept {winner.describe()} as {series_key} ({why}); "
            f"{loser.describe()} moved to {aside} for {SUPERSEDED_KEPT // 86_400} days{removed}"
        )
        return TickerMigration(code, Action.CONFLICT, detail, len(stale)), writes
