"""Which tickers a run must bring forward: the universe (the market snapshot's listing, or
named tickers, plus the benchmark) split into those already current, those recently found
without data, and those to index, with the ones one session behind marked for the snapshot."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from ohlcv import calendar
from ohlcv.errors import BadOhlcvData
from ohlcv.indexer import INACTIVE_RECHECK
from ohlcv.keys import is_index, validate_ticker
from ohlcv.snapshot import Snapshot
from ohlcv.sources.base import MARKETS, Source
from ohlcv.status import is_current
from ohlcv.store import OhlcvStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """Which tickers of the universe a run must bring forward.

    :param to_index: tickers not yet cached through ``as_of`` (all of them on a full refresh)
    :param current: how many tickers are already cached through ``as_of``
    :param inactive: tickers skipped because they were recently found without data
    :param one_behind: the stock tickers of ``to_index`` cached through exactly the session
        before ``as_of``: the ones the market snapshot may extend
    :param last: the last cached session of each ticker of ``to_index`` (None: not cached)
    """

    as_of: str
    universe: list[str]
    to_index: list[str]
    current: int
    inactive: list[str] = field(default_factory=list)
    one_behind: list[str] = field(default_factory=list)
    last: dict[str, str | None] = field(default_factory=dict)

    def to_xcom(self) -> dict:
        return asdict(self)


def fetch_snapshot(store: OhlcvStore, source: Source, as_of: dt.date) -> Snapshot:
    """The vendor's market snapshot for ``as_of`` (or its latest), kept in Redis for the rest of
    the run and the session's later runs."""
    snapshot = source.snapshot(as_of)
    store.save_snapshot(snapshot, asked=as_of)
    log.info("%s snapshot of %s: %d codes (asked for %s)", source.name, snapshot.session, len(snapshot.frame), as_of)
    return snapshot


def universe(
    store: OhlcvStore, source: Source, market: str, tickers: Iterable[str], benchmark: Iterable[str], as_of: dt.date
) -> list[str]:
    """The codes one run indexes: ``tickers`` if given, else ``market``'s listing, plus ``benchmark``.

    The listing is the market snapshot's codes; the snapshot is asked from the vendor at most
    once per session and kept in Redis. Every code is validated here, so a bad one stops the
    run before any task is mapped.
    """
    if market not in MARKETS:
        raise ValueError(f"unknown universe {market!r}; expected one of {list(MARKETS)}")
    chosen = [validate_ticker(code) for code in tickers]
    extra = [validate_ticker(code) for code in benchmark]
    if not chosen:
        saved = store.saved_snapshot(source.name)
        if saved is None or store.snapshot_asked(source.name) < as_of:
            try:
                saved = fetch_snapshot(store, source, as_of)
            except BadOhlcvData as exc:
                if saved is None:
                    raise
                log.warning(
                    "the vendor's snapshot is unreadable (%s); listing from the %s snapshot", exc, saved.session
                )
        chosen = saved.codes(market)
    return list(dict.fromkeys([*chosen, *extra]))


def plan(store: OhlcvStore, codes: list[str], as_of: dt.date, *, full_refresh: bool = False) -> Plan:
    """Split the universe into tickers to bring forward and tickers already current, in one round trip."""
    last, inactive = store.state_of(codes)
    current = [code for code in codes if is_current(last[code], as_of)]
    recently_inactive = [
        code
        for code, record in inactive.items()
        if code not in current and as_of - dt.date.fromisoformat(record["checked"]) < INACTIVE_RECHECK
    ]
    if full_refresh:
        to_index, one_behind = list(codes), []
    else:
        skip = set(current) | set(recently_inactive)
        to_index = [code for code in codes if code not in skip]
        previous = calendar.previous_session(as_of)
        one_behind = [code for code in to_index if last[code] == previous and not is_index(code)]
    return Plan(
        as_of.isoformat(), list(codes), to_index, len(current), [] if full_refresh else recently_inactive,
        one_behind, {code: last[code].isoformat() if last[code] else None for code in to_index},
    )  # fmt: skip


def prepare(
    store: OhlcvStore,
    source: Source,
    as_of: dt.date,
    *,
    market: str = "KRX",
    tickers: Iterable[str] = (),
    benchmark: Iterable[str] = ("KS11",),
    full_refresh: bool = False,
    snapshot: bool = True,
) -> Plan:
    """The universe and the plan of one run; the market snapshot is asked for too when a
    ticker is one session behind and no run has asked for this session's yet."""
    codes = universe(store, source, market, tickers, benchmark, as_of)
    planned = plan(store, codes, as_of, full_refresh=full_refresh)
    if planned.one_behind and snapshot and store.snapshot_asked(source.name) < as_of:
        try:
            fetch_snapshot(store, source, as_of)
        except BadOhlcvData as exc:  # an unreadable table costs the history calls, not the run
            log.warning("the vendor's market snapshot cannot be used: %s", exc)
    return planned
