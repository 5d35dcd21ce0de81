"""Which tickers a run must bring forward: the universe (the market table's listing, or named
tickers, plus the benchmark) split into those already current, those recently found without
data, and those to index, with the ones the market's daily tables can bring forward marked."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from ohlcv import calendar
from ohlcv.errors import BadOhlcvData, TableMissing
from ohlcv.keys import is_index, validate_ticker
from ohlcv.settings import DEFAULT_BENCHMARK, DEFAULT_CATCHUP_SESSIONS, MARKETS
from ohlcv.snapshot import Snapshot
from ohlcv.sources.base import Source
from ohlcv.status import INACTIVE_RECHECK, is_current
from ohlcv.store import OhlcvStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """Which tickers of the universe a run must bring forward.

    :param to_index: tickers not yet cached through ``as_of`` (all of them on a full refresh)
    :param current: how many tickers are already cached through ``as_of``
    :param inactive: tickers skipped because they were recently found without data
    :param catchup: the stock tickers of ``to_index`` cached through one of the
        ``OHLCV_CATCHUP_SESSIONS`` sessions before ``as_of``: the market's tables of the sessions
        since bring them forward
    :param last: the last cached session of each ticker of ``to_index`` (None: not cached)
    :param first_fill: no stock of the universe is cached yet: the run fetches every history,
        without a history budget
    :param damaged: tickers ``ticker:lastUpdateAt`` counted as current whose series is missing,
        unreadable or ends on another session, with the reason: they are indexed like the rest
    :param delisted: tickers no longer listed and cached through their last session: their
        history is complete, and the indexer leaves it as it is (a full refresh too)
    """

    as_of: str
    universe: list[str]
    to_index: list[str]
    current: int
    inactive: list[str] = field(default_factory=list)
    catchup: list[str] = field(default_factory=list)
    last: dict[str, str | None] = field(default_factory=dict)
    first_fill: bool = False
    damaged: dict[str, str] = field(default_factory=dict)
    delisted: list[str] = field(default_factory=list)

    def to_xcom(self) -> dict:
        return asdict(self)


def listing(store: OhlcvStore, source: Source, as_of: dt.date, now: dt.datetime, run_id: str) -> Snapshot:
    """The market table the universe is listed from: ``as_of``'s, asked from the vendor at most
    once per session (``ohlcv.indexer.tables``); while it is not published, the newest kept one."""
    from ohlcv.indexer import tables

    saved = store.saved_snapshot(source.name)
    if saved is not None and store.snapshot_asked(source.name) >= as_of:
        return saved
    try:
        table = tables.get(store, source, as_of, now, run_id)
        store.save_snapshot(table, asked=as_of)
        return table
    except TableMissing as exc:
        if saved is not None:
            log.warning("no table of %s yet (%s); listing from the %s table", as_of, exc, saved.session)
            return saved
    latest = source.snapshot(as_of)  # a first run while the day's table is missing: the latest there is
    store.save_snapshot(latest, asked=latest.session)
    log.info("%s listing from its latest table, of %s: %d codes", source.name, latest.session, len(latest.frame))
    return latest


def universe(
    store: OhlcvStore,
    source: Source,
    market: str,
    tickers: Iterable[str],
    benchmark: Iterable[str],
    as_of: dt.date,
    *,
    now: dt.datetime | None = None,
    run_id: str = "",
) -> list[str]:
    """The codes one run indexes: ``tickers`` if given, else ``market``'s listing, plus ``benchmark``.

    The listing is the market table's codes (``listing``). Every code is validated here, so a
    bad one stops the run before any task is mapped.
    """
    if market not in MARKETS:
        raise ValueError(f"unknown universe {market!r}; expected one of {list(MARKETS)}")
    chosen = [validate_ticker(code) for code in tickers]
    extra = [validate_ticker(code) for code in benchmark]
    if not chosen:
        try:
            chosen = listing(store, source, as_of, now or dt.datetime.now(dt.UTC), run_id).codes(market)
        except BadOhlcvData as exc:
            saved = store.saved_snapshot(source.name)
            if saved is None:
                raise
            log.warning("the vendor's table is unreadable (%s); listing from the %s table", exc, saved.session)
            chosen = saved.codes(market)
    return list(dict.fromkeys([*chosen, *extra]))


def plan(
    store: OhlcvStore,
    codes: list[str],
    as_of: dt.date,
    *,
    full_refresh: bool = False,
    catchup_sessions: int = DEFAULT_CATCHUP_SESSIONS,
    run_id: str = "",
) -> Plan:
    """Split the universe into tickers to bring forward and tickers already current, in one round trip.

    :param catchup_sessions: how many sessions behind a ticker may be for the tables to bring it forward
    :param run_id: the run whose record counts the damaged series found
    """
    last, inactive = store.state_of(codes)
    damaged = _damaged(store, {code: last[code] for code in codes if is_current(last[code], as_of)}, run_id)
    for code, damage in damaged.items():
        last[code] = damage.ends
    current = [code for code in codes if is_current(last[code], as_of)]
    marks = store.delisted(codes)
    finished = [
        code
        for code, mark in marks.items()
        if code not in current and last[code] is not None and last[code].isoformat() >= mark["last"]
    ]
    recently_inactive = [
        code
        for code, record in inactive.items()
        if code not in current and as_of - dt.date.fromisoformat(record["checked"]) < INACTIVE_RECHECK
    ]
    if full_refresh:
        to_index, catchup = [code for code in codes if code not in finished], []
    else:
        skip = set(current) | set(recently_inactive) | set(finished)
        to_index = [code for code in codes if code not in skip]
        reach = set(_recent_sessions(as_of, catchup_sessions))
        catchup = [code for code in to_index if last[code] in reach and not is_index(code)]
    first_fill = not any(last[code] for code in codes if not is_index(code))
    return Plan(
        as_of.isoformat(), list(codes), to_index, len(current), [] if full_refresh else recently_inactive,
        catchup, {code: last[code].isoformat() if last[code] else None for code in to_index}, first_fill,
        {code: f"{damage.kind}: {damage.reason}" for code, damage in damaged.items()}, finished,
    )  # fmt: skip


def _damaged(store: OhlcvStore, current: dict[str, dt.date], run_id: str) -> dict:
    """The series of ``current`` that are not what their ``lastUpdateAt`` says, with the entries
    corrected so the indexer sees them as they are (``OhlcvStore.check_series``)."""
    damaged = store.check_series(current)
    if damaged:
        store.correct_last_updates(current, damaged)
        if run_id:
            store.count(run_id, damaged=len(damaged))
    for code, damage in sorted(damaged.items()):
        log.warning("%s counted as current but %s: %s; indexing it again", code, damage.kind, damage.reason)
    return damaged


def _recent_sessions(as_of: dt.date, count: int) -> list[dt.date]:
    """The ``count`` XKRX sessions before ``as_of``."""
    days = calendar.sessions(as_of - dt.timedelta(days=count * 3 + 30), as_of)
    return [day.date() for day in days if day.date() < as_of][-count:]


def prepare(
    store: OhlcvStore,
    source: Source,
    as_of: dt.date,
    *,
    market: str = "KRX",
    tickers: Iterable[str] = (),
    benchmark: Iterable[str] = DEFAULT_BENCHMARK,
    full_refresh: bool = False,
    catchup_sessions: int = DEFAULT_CATCHUP_SESSIONS,
    now: dt.datetime | None = None,
    run_id: str = "",
) -> Plan:
    """The universe and the plan of one run (the listing asks for ``as_of``'s table once per session)."""
    codes = universe(store, source, market, tickers, benchmark, as_of, now=now, run_id=run_id)
    return plan(store, codes, as_of, full_refresh=full_refresh, catchup_sessions=catchup_sessions, run_id=run_id)
