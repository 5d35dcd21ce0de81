"""The batch indexer's steps as plain functions; the DAG's tasks only call these."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from ohlcv.errors import NoData
from ohlcv.keys import validate_ticker
from ohlcv.sources.base import MARKETS, Source
from ohlcv.store import OhlcvStore

log = logging.getLogger(__name__)

WRITTEN = "written"
FRESH = "fresh"
NO_DATA = "no_data"


@dataclass(frozen=True)
class TickerResult:
    """What indexing one ticker did. Travels through XCom as a dict (``asdict``)."""

    ticker: str
    status: str
    rows: int = 0
    last_date: str | None = None
    reason: str = ""

    def to_xcom(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RunSummary:
    """Counts for one pass over the planned tickers."""

    as_of: str
    planned: int
    written: int
    fresh: int
    no_data: int
    current: int
    failed: list[str] = field(default_factory=list)
    #: a ticker the vendor served in this pass, asked again to see whether the vendor is back
    canary: str | None = None

    def to_xcom(self) -> dict:
        return asdict(self)


def universe(source: Source, market: str, tickers: Iterable[str], benchmark: Iterable[str]) -> list[str]:
    """The codes one run indexes: ``tickers`` if given, else ``market``'s listing, plus ``benchmark``.

    Every code is validated here, so a bad one stops the run before any task is mapped.
    """
    if market not in MARKETS:
        raise ValueError(f"unknown universe {market!r}; expected one of {list(MARKETS)}")
    chosen = [validate_ticker(code) for code in tickers]
    if not chosen:
        chosen = source.list_universe(market)
    extra = [validate_ticker(code) for code in benchmark]
    return list(dict.fromkeys([*chosen, *extra]))


def index_ticker(
    store: OhlcvStore, source: Source, code: str, as_of: dt.date, *, full_refresh: bool = False
) -> TickerResult:
    """Bring ``code`` up to date through ``as_of``: skip the vendor if it already is, else fetch and write.

    ``NoData`` becomes a ``no_data`` result; every other error propagates so Airflow can retry.
    """
    code = validate_ticker(code)
    cached = store.last_updates([code])[code]
    if cached is not None and cached >= as_of and not full_refresh:
        log.info("%s fresh: cached through %s, run is as of %s; no vendor call", code, cached, as_of)
        return TickerResult(code, FRESH, last_date=cached.isoformat())
    try:
        frame = source.history(code, None, as_of)
    except NoData as exc:
        log.warning("%s no data: %s", code, exc)
        return TickerResult(code, NO_DATA, reason=str(exc))
    frame = frame.loc[: str(as_of)]
    outcome = store.write_series(code, frame, source.name)
    if not outcome.written:
        log.info("%s fresh: cache already holds %s, later than this run's %s", code, outcome.last_date, as_of)
        return TickerResult(code, FRESH, last_date=outcome.last_date.isoformat())
    log.info(
        "%s written: %d rows from %s, %s to %s",
        code,
        outcome.rows,
        source.name,
        frame.index[0].date(),
        outcome.last_date,
    )
    return TickerResult(code, WRITTEN, rows=outcome.rows, last_date=outcome.last_date.isoformat())


def summarize(store: OhlcvStore, planned: list[str], results: Iterable[dict], as_of: dt.date) -> RunSummary:
    """Count what the mapped tasks did; a planned ticker without a result failed."""
    by_ticker = {result["ticker"]: result for result in results if result}
    statuses = [result["status"] for result in by_ticker.values()]
    failed = [code for code in planned if code not in by_ticker]
    served = [code for code in planned if by_ticker.get(code, {}).get("status") in (WRITTEN, FRESH)]
    return RunSummary(
        as_of=as_of.isoformat(),
        planned=len(planned),
        written=statuses.count(WRITTEN),
        fresh=statuses.count(FRESH),
        no_data=statuses.count(NO_DATA),
        current=count_current(store, planned, as_of),
        failed=failed,
        canary=served[0] if served else (planned[0] if planned else None),
    )


def count_current(store: OhlcvStore, codes: list[str], as_of: dt.date) -> int:
    """How many of ``codes`` are cached through ``as_of`` or later (one round trip)."""
    return sum(1 for day in store.last_updates(codes).values() if day is not None and day >= as_of)
