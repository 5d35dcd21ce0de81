"""``GuardedSource``: how every vendor is called from the indexer and the reader.

Around any source it adds, in this order:

- the shared **breaker**: while ``ohlcv:breaker`` exists no call is made (``BreakerOpen``);
  a ``SourceBlocked`` answer opens it for ``BREAKER_TTL``, so no task of this or the next
  run asks a vendor that has blocked us (KRX and Naver blocks last about a day, and asking
  again makes them longer);
- a minimum **gap** between calls of one process, so a wide run does not look like an attack;
- **metrics**: calls (by kind: ``history``, ``snapshot``) and their seconds counted into the
  run's metrics hash, when given.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time

import pandas as pd

from ohlcv.errors import BreakerOpen, SourceBlocked
from ohlcv.snapshot import Snapshot
from ohlcv.sources.base import Source
from ohlcv.store import OhlcvStore

log = logging.getLogger(__name__)

BREAKER_TTL = dt.timedelta(hours=float(os.environ.get("OHLCV_BREAKER_HOURS", "12")))
MIN_GAP = dt.timedelta(seconds=float(os.environ.get("OHLCV_VENDOR_MIN_GAP_SECONDS", "0.2")))

_pace = threading.Lock()
_last_call = [0.0]


class GuardedSource:
    """A source behind the breaker, the per-process gap and the run's call counters."""

    def __init__(
        self,
        source: Source,
        store: OhlcvStore,
        *,
        run_id: str | None = None,
        min_gap: dt.timedelta = MIN_GAP,
        breaker_ttl: dt.timedelta = BREAKER_TTL,
    ) -> None:
        self.inner = source
        self.name = source.name
        self.store = store
        self.run_id = run_id
        self.min_gap = min_gap
        self.breaker_ttl = breaker_ttl

    def snapshot(self, session: dt.date) -> Snapshot:
        return self._call("snapshot", self.inner.snapshot, session)

    def history(self, code: str, start: dt.date | None, end: dt.date) -> pd.DataFrame:
        return self._call("history", self.inner.history, code, start, end)

    def _call(self, kind: str, function, *args):
        reason = self.store.breaker()
        if reason is not None:
            raise BreakerOpen(f"vendor breaker open: {reason}")
        self._wait_for_gap()
        started = time.monotonic()
        try:
            return function(*args)
        except SourceBlocked as exc:
            self.store.open_breaker(str(exc), self.breaker_ttl)
            log.error("vendor blocked us; breaker open for %s: %s", self.breaker_ttl, exc)
            raise
        finally:
            if self.run_id:
                self.store.count_vendor_call(self.run_id, kind, time.monotonic() - started)

    def _wait_for_gap(self) -> None:
        with _pace:
            wait = _last_call[0] + self.min_gap.total_seconds() - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            _last_call[0] = time.monotonic()
