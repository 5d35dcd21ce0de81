"""Batch writes of the series family: many tickers' series extended or settled from one
market table in optimistic transactions of ``EXTEND_BATCH`` series, and ``ohlcv:preliminary``,
the sessions whose cached row still holds the evening's volume."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from ohlcv import codec
from ohlcv.keys import validate_ticker
from ohlcv.snapshot import Extension
from ohlcv.status import Status
from ohlcv.store.base import RUN_METRICS_TTL, WRITE_ATTEMPTS, optimistic, text
from ohlcv.store.revisions import RevisionStore

#: attempts of one optimistic transaction before a write gives up
#: series written per transaction by ``extend_many``: large enough to save round trips, small
#: enough that a concurrent writer rarely forces a batch to start again
EXTEND_BATCH = 250


class BatchStore(RevisionStore):
    """``extend_many`` and the preliminary-session marks."""

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
            that hold it are deleted in the same transaction, and the Volume an extension replaced
            there (``Extension.previous``) is kept for older revisions
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

        def attempt(pipe):
            outcomes = [extend(code, blob) for code, blob in zip(codes, pipe.mget(series), strict=True)]
            replaced = {outcome.code: outcome.previous for outcome in outcomes if outcome.previous is not None}
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
            stamp = self.stamp(pipe) if replaced else None
            pipe.multi()
            for outcome in accepted:
                pipe.set(self.keys.series(outcome.code), outcome.blob)
            days = {outcome.code: codec.last_date(outcome.blob).isoformat() for outcome in accepted}
            pipe.hset(self.keys.last_update_hash, mapping=days)
            pipe.hdel(self.keys.inactive, *names)
            if marks is not None:
                self._queue_marks(pipe, {code: marks(sessions_of(held[code])) for code in names})
            if stamp is not None:  # settled volumes: revisions before this write see the preliminary ones
                kept = {code: replaced[code] for code in names if code in replaced}
                self.queue_settled(pipe, periods_holding, kept, stamp)
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

        return optimistic(
            self.client,
            [*series, *registries, self.keys.revision],
            attempt,
            f"gave up after {WRITE_ATTEMPTS} concurrent writes to a batch of {len(codes)} series",
        )

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
            return {text(code): sessions_of(value) for code, value in found.items()}
        codes = [validate_ticker(code) for code in codes]
        if not codes:
            return {}
        values = self.client.hmget(self.keys.preliminary, codes)
        return {code: sessions_of(value) for code, value in zip(codes, values, strict=True) if value}

    def preliminary_rows(self) -> int:
        """How many cached rows hold a preliminary volume, over every ticker."""
        return sum(len(days) for days in self.preliminary().values())


def sessions_of(value: bytes | str | None) -> list[str]:
    """A ``ohlcv:preliminary`` entry as its list of ISO sessions (an unreadable one as none)."""
    if not value:
        return []
    try:
        days = json.loads(value)
    except ValueError:
        return []
    return sorted(day for day in days if isinstance(day, str)) if isinstance(days, list) else []
