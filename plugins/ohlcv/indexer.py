"""The batch indexer's steps as plain functions; the DAG's tasks only call these."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from ohlcv import calendar
from ohlcv.errors import BadOhlcvData, BreakerOpen, NoData, SourceBlocked, SourceUnavailable
from ohlcv.keys import is_index, validate_ticker
from ohlcv.snapshot import Snapshot, extender
from ohlcv.sources.base import MARKETS, Source
from ohlcv.status import Status, is_current
from ohlcv.store import OhlcvStore
from ohlcv.validation import validate, validate_snapshot

log = logging.getLogger(__name__)

#: a ticker recorded as inactive (no data, delisted, suspended) is asked again after this long
INACTIVE_RECHECK = dt.timedelta(days=7)
#: a vendor answer ending more than this many sessions before ``as_of`` marks the ticker inactive
INACTIVE_LAG_SESSIONS = 5
#: handed-on tickers named one per log line; the rest are counted
LOGGED_PER_REASON = 50


@dataclass(frozen=True)
class TickerResult:
    """What indexing one ticker did."""

    ticker: str
    status: Status
    rows: int = 0
    new_rows: int = 0
    last_date: str | None = None
    reason: str = ""


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


@dataclass(frozen=True)
class SnapshotResult:
    """What the market snapshot did for a run's tickers.

    :param session: the session of the snapshot that was applied (None: none was)
    :param appended: tickers moved forward by their snapshot row
    :param handed_on: every other ticker of the plan's ``to_index``, with why its history is fetched
    """

    session: str | None
    appended: list[str]
    handed_on: dict[str, str]

    @property
    def to_fetch(self) -> list[str]:
        return list(self.handed_on)


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


def _why_fetched(plan: Plan, code: str) -> str:
    """Why a ticker the snapshot cannot be asked about needs its history."""
    last = plan.last.get(code)
    if last is None:
        return "not cached yet (a new listing, or the first fill): history fetched"
    if is_index(code):
        return "an index symbol (not in the market snapshot): history fetched"
    return f"cached through {last}, more than one session behind: history fetched"


def apply_snapshot(
    store: OhlcvStore, snapshot: Snapshot | None, plan: Plan, run_id: str, *, use: bool = True
) -> SnapshotResult:
    """Append the snapshot's row to every ticker of the plan it continues; hand on the rest.

    A row is appended when the ticker is cached through exactly the session before the
    snapshot's, the snapshot is of the run's ``as_of``, and its base price equals the cached
    last Close (see ``ohlcv.snapshot``). Rows are validated as one table first: a bad row
    hands on only its ticker, with the reason; a snapshot of the wrong session is not used
    at all. Writes go in batches, each one transaction with the tickers' ``lastUpdateAt``
    entries and results (``OhlcvStore.extend_many``).
    """
    as_of = dt.date.fromisoformat(plan.as_of)
    candidates = set(plan.one_behind)
    handed_on = {code: _why_fetched(plan, code) for code in plan.to_index if code not in candidates}
    if not candidates:
        return SnapshotResult(None, [], handed_on)
    unusable = _unusable(snapshot, as_of, use)
    if unusable:
        return SnapshotResult(None, [], {**handed_on, **dict.fromkeys(plan.one_behind, unusable)})
    good, bad = validate_snapshot(snapshot.frame)
    eligible = []
    for code in plan.one_behind:
        if code in bad:
            handed_on[code] = f"bad snapshot row: {bad[code]}: history fetched"
        elif code not in good.index:
            handed_on[code] = f"not in the snapshot of {snapshot.session}: history fetched"
        else:
            eligible.append(code)
    extend = extender(good, snapshot.session, calendar.previous_session(snapshot.session), snapshot.source)
    appended = []
    for outcome in store.extend_many(eligible, extend, run_id=run_id, status=Status.APPENDED):
        if outcome.blob is None:
            handed_on[outcome.code] = outcome.reason
        else:
            appended.append(outcome.code)
    return SnapshotResult(
        snapshot.session.isoformat(), appended, {code: handed_on[code] for code in plan.to_index if code in handed_on}
    )


def _unusable(snapshot: Snapshot | None, as_of: dt.date, use: bool) -> str:
    """Why no row of ``snapshot`` may be appended in a run as of ``as_of`` ("" when they may)."""
    if not use:
        return "the snapshot is turned off for this run: history fetched"
    if snapshot is None:
        return "no market snapshot could be read: history fetched"
    if not calendar.is_session(snapshot.session):
        return f"the snapshot says it is of {snapshot.session}, not an XKRX session: history fetched"
    if snapshot.session != as_of:
        return f"the vendor's latest snapshot is of {snapshot.session}, not {as_of}: history fetched"
    return ""


def log_handed_on(result: SnapshotResult) -> None:
    """One line per handed-on ticker with its reason; the common reasons as one line each."""
    by_reason: dict[str, list[str]] = {}
    for code, reason in result.handed_on.items():
        by_reason.setdefault(reason, []).append(code)
    for reason, codes in by_reason.items():
        if len(codes) == 1:
            log.info("%s: %s", codes[0], reason)
            continue
        shown = ", ".join(codes[:LOGGED_PER_REASON])
        more = f" and {len(codes) - LOGGED_PER_REASON} more" if len(codes) > LOGGED_PER_REASON else ""
        log.info("%d tickers %s: %s%s", len(codes), reason.removesuffix(": history fetched"), shown, more)


def index_ticker(
    store: OhlcvStore, source: Source, code: str, as_of: dt.date, *, full_refresh: bool = False
) -> TickerResult:
    """Bring ``code`` up to date through ``as_of``: fetch, validate, merge or repair, write.

    ``NoData`` becomes a ``no_data`` result and the ticker is recorded as inactive; a vendor
    answer far behind ``as_of`` (delisted, suspended) is stored and recorded likewise, unless
    the cache holds something newer (a truncated download: ``SourceUnavailable``) or the code
    is an index (never delisted: ``SourceUnavailable`` after storing what came). A bad frame
    raises ``BadOhlcvData`` and leaves the cache as it was; vendor errors propagate so
    Airflow can retry.
    """
    code = validate_ticker(code)
    cached = store.state_of([code])[0][code]
    if is_current(cached, as_of) and not full_refresh:
        log.info("%s current: cached through %s, run is as of %s; no vendor call", code, cached, as_of)
        return TickerResult(code, Status.CURRENT, last_date=cached.isoformat())
    try:
        raw = source.history(code, None, as_of)
    except NoData as exc:
        if cached is not None:
            # A ticker with history does not vanish from the vendor: treat it as an outage.
            raise SourceUnavailable(
                f"{code}: the vendor returned nothing, but the cache holds it through {cached}"
            ) from exc
        store.mark_inactive(code, as_of, f"no data: {exc}")
        log.warning("%s no data: %s", code, exc)
        return TickerResult(code, Status.NO_DATA, reason=str(exc))
    fresh = validate(raw, as_of)
    vendor_last = fresh.index[-1].date()
    if cached is not None and vendor_last < cached:
        raise SourceUnavailable(
            f"{code}: the vendor's answer ends on {vendor_last}, before the cached {cached}: a truncated download"
        )
    outcome = store.write_series(code, fresh, source.name)
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
    can help. Bad data and a refusal (a block answer, the open breaker) cannot; an outage,
    a timeout or anything unforeseen can."""
    retry = not isinstance(exc, BadOhlcvData | SourceBlocked | BreakerOpen)
    reason = f"bad data: {exc}" if isinstance(exc, BadOhlcvData) else f"{type(exc).__name__}: {exc}"
    store.record_failure(code, as_of, reason, run_id, retry=retry)
    return retry
