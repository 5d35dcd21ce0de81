"""``GuardedSource``: how every vendor is called from the indexer and the reader.

Around any source it adds, in this order:

- the shared **breaker**: while ``ohlcv:breaker`` exists no call is made (``BreakerOpen``);
  a ``SourceBlocked`` answer opens it for ``Settings.breaker_ttl`` (``OHLCV_BREAKER_HOURS``),
  so no task of this or the next run asks a vendor that has blocked us (KRX and Naver blocks
  last about a day, and asking again makes them longer);
- a **rate limit** per vendor, shared through Redis by every process that calls it (each
  indexer task is a process of its own, and so is each reader): a moving window kept by the
  ``limits`` library under ``ohlcv:rate:``; a call waits for its turn;
- the run's **history budget** (``OHLCV_HISTORY_BUDGET``, set per run by its snapshot step in
  the run's metrics hash): a history call beyond it raises ``HistoryBudgetSpent`` without
  asking the vendor, in whichever process it is made;
- **metrics**: calls (by kind: ``history``, ``snapshot`` for tables) and their seconds counted
  into the run's metrics hash, when given.

A **second table source** (``second``, the KRX Open API when a key is configured) is kept
behind a guard of its own, with its own rate limit; ``ohlcv.indexer.tables`` asks it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import pandas as pd
from limits.strategies import MovingWindowRateLimiter

from ohlcv.errors import BreakerOpen, HistoryBudgetSpent, SourceBlocked
from ohlcv.settings import Settings
from ohlcv.snapshot import Snapshot
from ohlcv.sources.base import Source
from ohlcv.store import OhlcvStore
from ohlcv.universe import Delisting

log = logging.getLogger(__name__)


class GuardedSource:
    """A source behind the breaker, the shared rate limit and the run's call counters."""

    def __init__(
        self,
        source: Source,
        store: OhlcvStore,
        *,
        settings: Settings,
        run_id: str | None = None,
        budgeted: bool = True,
        second: Source | None = None,
    ) -> None:
        """:param settings: the vendor's rate limit (``Settings.rate_for`` its name) and how long a
            block answer opens the breaker (``Settings.breaker_ttl``)
        :param budgeted: whether history calls count against the run's history budget (the
            sensor's canary does not)
        :param second: a second source of the market's tables (its calls rate-limited by its own
            name's limit)
        """
        self.inner = source
        self.name = source.name
        self.store = store
        self.run_id = run_id
        self.rate = settings.rate_for(source.name)
        self.breaker_ttl = settings.breaker_ttl
        self.budgeted = budgeted
        self.second = None if second is None else GuardedSource(second, store, settings=settings, run_id=run_id)
        self._limiter: MovingWindowRateLimiter | None = None

    def snapshot(self, session: dt.date) -> Snapshot:
        return self._call("snapshot", self.inner.snapshot, session)

    def table(self, session: dt.date) -> Snapshot:
        return self._call("snapshot", self.inner.table, session)

    def settles(self, session: dt.date, now: dt.datetime) -> bool:
        return self.inner.settles(session, now)

    def delistings(self) -> list[Delisting]:
        """The vendor's delisting listing; ``NotImplementedError`` for a vendor without one."""
        listing = getattr(self.inner, "delistings", None)
        if listing is None:
            raise NotImplementedError(f"the vendor {self.name!r} has no delisting listing")
        return self._call("listing", listing)

    def history(self, code: str, start: dt.date | None, end: dt.date) -> pd.DataFrame:
        if self.run_id and self.budgeted and not self.store.spend_history_call(self.run_id):
            raise HistoryBudgetSpent(f"{code}: this run has made its history calls; deferred to the next run")
        return self._call("history", self.inner.history, code, start, end)

    def _call(self, kind: str, function, *args):
        reason = self.store.breaker()
        if reason is not None:
            raise BreakerOpen(f"vendor breaker open: {reason}")
        self._wait_for_turn()
        started = time.monotonic()
        try:
            return function(*args)
        except SourceBlocked as exc:
            self.store.open_breaker(str(exc), self.breaker_ttl, by=f"a block answer to a {kind} call")
            log.error("vendor blocked us; breaker open for %s: %s", self.breaker_ttl, exc)
            raise
        finally:
            if self.run_id:
                self.store.count_vendor_call(self.run_id, kind, time.monotonic() - started)

    def _wait_for_turn(self) -> None:
        """Block until the shared moving window has room for one more call."""
        if self.rate is None:
            return
        if self._limiter is None:
            self._limiter = MovingWindowRateLimiter(self.store.rate_limit_storage())
        while not self._limiter.hit(self.rate, self.name):
            reset = self._limiter.get_window_stats(self.rate, self.name).reset_time
            time.sleep(min(max(reset - time.time(), 0.01), 1.0))
