"""Indexing one ticker: fetch its history, validate, merge or repair, write; and record why
it failed when it did. The run's other steps are ``planning``, ``appending`` and ``summary``."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from ohlcv import calendar
from ohlcv.errors import BadOhlcvData, BreakerOpen, NoData, SourceBlocked, SourceUnavailable, TickerDeadline
from ohlcv.indexer.deadline import call_within
from ohlcv.keys import is_index, validate_ticker
from ohlcv.sources.base import Source
from ohlcv.status import Status, is_current
from ohlcv.store import OhlcvStore
from ohlcv.validation import against_cache

log = logging.getLogger(__name__)

#: a vendor answer ending more than this many sessions before ``as_of`` marks the ticker inactive
INACTIVE_LAG_SESSIONS = 5


@dataclass(frozen=True)
class TickerResult:
    """What indexing one ticker did."""

    ticker: str
    status: Status
    rows: int = 0
    new_rows: int = 0
    last_date: str | None = None
    reason: str = ""


def index_within(
    store: OhlcvStore,
    source: Source,
    code: str,
    as_of: dt.date,
    run_id: str,
    *,
    deadline: float,
    full_refresh: bool = False,
) -> TickerResult:
    """``index_ticker`` as one try of a run under the ticker deadline: the run's tries of
    ``code`` (in any process, the retry pass included) take ``deadline`` seconds in all.

    The vendor call gets what is left, in wall time, however the vendor behaves; a try that
    finds nothing left, or whose call is still unanswered when it runs out, raises
    ``TickerDeadline``, which ``record_failure`` marks as not worth asking again.
    """
    code = validate_ticker(code)
    waited = store.ticker_waited(run_id, code)
    if waited >= deadline:
        raise TickerDeadline(_past_deadline(code, deadline))
    started = time.monotonic()
    try:
        return index_ticker(
            store, source, code, as_of, full_refresh=full_refresh, within=deadline - waited, run_id=run_id
        )
    except TickerDeadline as exc:
        raise TickerDeadline(_past_deadline(code, deadline)) from exc
    finally:
        store.ticker_waited(run_id, code, time.monotonic() - started)


def _past_deadline(code: str, deadline: float) -> str:
    return (
        f"{code}: no answer from the vendor within the ticker deadline ({deadline:.0f} s over this run's tries, "
        "OHLCV_TICKER_DEADLINE); not asked again in this run"
    )


def index_ticker(
    store: OhlcvStore,
    source: Source,
    code: str,
    as_of: dt.date,
    *,
    full_refresh: bool = False,
    within: float | None = None,
    run_id: str = "",
) -> TickerResult:
    """Bring ``code`` up to date through ``as_of``: fetch, validate, merge or repair, write
    (``run_id``: the run its ledger entries name).

    ``NoData`` becomes a ``no_data`` result and the ticker is recorded as inactive; a vendor
    answer far behind ``as_of`` (delisted, suspended) is stored and recorded likewise, unless
    the cache holds something newer (a truncated download: ``SourceUnavailable``) or the code
    is an index (never delisted: ``SourceUnavailable`` after storing what came). A bad frame
    raises ``BadOhlcvData`` and leaves the cache as it was; vendor errors propagate so
    Airflow can retry. ``within``: the seconds the vendor call may take (``TickerDeadline``
    after them); None waits as long as the vendor's own timeouts let it.
    """
    code = validate_ticker(code)
    cached = store.state_of([code])[0][code]
    if is_current(cached, as_of) and not full_refresh:
        log.info("%s current: cached through %s, run is as of %s; no vendor call", code, cached, as_of)
        return TickerResult(code, Status.CURRENT, last_date=cached.isoformat())

    def fetch():
        if within is None:
            return source.history(code, None, as_of)
        return call_within(within, source.history, code, None, as_of, what=f"{code}: the vendor's history")

    try:
        fresh = against_cache(code, fetch, as_of, cached)
    except NoData as exc:  # a code the cache does not hold
        store.mark_inactive(code, as_of, f"no data: {exc}")
        log.warning("%s no data: %s", code, exc)
        return TickerResult(code, Status.NO_DATA, reason=str(exc))
    vendor_last = fresh.index[-1].date()
    outcome = store.write_series(code, fresh, source.name, run_id=run_id)
    behind = len(calendar.sessions(vendor_last, as_of)) - 1
    if behind > INACTIVE_LAG_SESSIONS and is_index(code):
        raise SourceUnavailable(
            f"{code}: the vendor's history ends on {vendor_last}, {behind} sessions before {as_of}; "
            "an index is never delisted, so a download failed"
        )
    if behind > INACTIVE_LAG_SESSIONS:
        reason = f"the vendor's last session is {vendor_last}, {behind} sessions before {as_of}: delisted or halted"
        store.mark_inactive(code, as_of, reason)
        log.warning("%s inactive: %s", code, reason)
        return TickerResult(
            code, Status.INACTIVE, outcome.rows, outcome.new_rows, outcome.last_date.isoformat(), reason
        )
    if outcome.unreadable:
        log.warning(
            "%s repaired: the cached value was %s; kept in %s for 30 days, replaced by %d rows from %s",
            code, outcome.unreadable, store.keys.unreadable(code), outcome.rows, source.name,
        )  # fmt: skip
    elif outcome.status == Status.REPAIRED:
        log.warning(
            "%s repaired: history changed from %s on (vendor/cached close %s); "
            "stored %d rows, deleted %d period keys",
            code, outcome.first_difference, f"{outcome.ratio:.6g}" if outcome.ratio else "n/a",
            outcome.rows, outcome.periods_deleted,
        )  # fmt: skip
    elif outcome.status == Status.WRITTEN:
        log.info(
            "%s written: %d new sessions from %s, %d rows through %s",
            code, outcome.new_rows, source.name, outcome.rows, outcome.last_date,
        )  # fmt: skip
    else:
        log.info("%s unchanged: the vendor has nothing after %s", code, outcome.last_date)
    return TickerResult(code, outcome.status, outcome.rows, outcome.new_rows, outcome.last_date.isoformat())


def record_failure(store: OhlcvStore, code: str, as_of: dt.date, exc: BaseException, run_id: str) -> bool:
    """Record why indexing ``code`` failed; return whether asking the vendor again in this run
    can help. Bad data, a refusal (a block answer, the open breaker) and a ticker past its
    deadline cannot; an outage, a timeout of one try or anything unforeseen can."""
    retry = not isinstance(exc, BadOhlcvData | SourceBlocked | BreakerOpen | TickerDeadline)
    reason = f"bad data: {exc}" if isinstance(exc, BadOhlcvData) else f"{type(exc).__name__}: {exc}"
    store.record_failure(code, as_of, reason, run_id, retry=retry)
    return retry
