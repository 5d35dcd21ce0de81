"""The batch indexer's steps as plain functions; the DAG's tasks only call these."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from ohlcv import calendar
from ohlcv.errors import NoData, SourceUnavailable
from ohlcv.keys import validate_ticker
from ohlcv.merge import APPENDED, NEW, REPAIRED
from ohlcv.sources.base import MARKETS, Source
from ohlcv.store import OhlcvStore
from ohlcv.validation import validate

log = logging.getLogger(__name__)

WRITTEN = "written"
REPAIRED_STATUS = "repaired"
FRESH = "fresh"
NO_DATA = "no_data"
INACTIVE = "inactive"

#: a ticker recorded as inactive (no data, delisted, suspended) is asked again after this long
INACTIVE_RECHECK = dt.timedelta(days=7)
#: a vendor answer ending more than this many sessions before ``as_of`` marks the ticker inactive
INACTIVE_LAG_SESSIONS = 5


@dataclass(frozen=True)
class TickerResult:
    """What indexing one ticker did."""

    ticker: str
    status: str
    rows: int = 0
    new_rows: int = 0
    last_date: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Plan:
    """Which tickers of the universe a run must fetch.

    :param to_index: tickers not yet cached through ``as_of`` (all of them on a full refresh)
    :param current: tickers already cached through ``as_of``
    :param inactive: tickers skipped because they were recently found without data
    """

    as_of: str
    universe: list[str]
    to_index: list[str]
    current: int
    inactive: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunSummary:
    """Counts for one pass over the planned tickers."""

    as_of: str
    universe: int
    planned: int
    written: int
    repaired: int
    fresh: int
    no_data: int
    current: int
    failed: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    #: the failed tickers worth asking again in this run (not bad data, not blocked)
    retry: list[str] = field(default_factory=list)
    #: a ticker the vendor served in this pass, asked again to see whether the vendor is back
    canary: str | None = None

    def to_xcom(self) -> dict:
        return asdict(self)


def universe(
    store: OhlcvStore, source: Source, market: str, tickers: Iterable[str], benchmark: Iterable[str], as_of: dt.date
) -> list[str]:
    """The codes one run indexes: ``tickers`` if given, else ``market``'s listing, plus ``benchmark``.

    The listing is asked from the vendor at most once per session and kept in Redis. Every
    code is validated here, so a bad one stops the run before any task is mapped.
    """
    if market not in MARKETS:
        raise ValueError(f"unknown universe {market!r}; expected one of {list(MARKETS)}")
    chosen = [validate_ticker(code) for code in tickers]
    extra = [validate_ticker(code) for code in benchmark]
    if not chosen:
        saved = store.cached_universe(source.name, market)
        if saved is not None and saved[0] >= as_of:
            chosen = saved[1]
        else:
            chosen = source.list_universe(market)
            store.save_universe(source.name, market, as_of, chosen)
    return list(dict.fromkeys([*chosen, *extra]))


def plan(store: OhlcvStore, codes: list[str], as_of: dt.date, *, full_refresh: bool = False) -> Plan:
    """Split the universe into tickers to fetch and tickers already current, in one round trip."""
    last, inactive = store.state_of(codes)
    current = [code for code in codes if last[code] is not None and last[code] >= as_of]
    recently_inactive = [
        code
        for code, record in inactive.items()
        if code not in current and as_of - dt.date.fromisoformat(record["checked"]) < INACTIVE_RECHECK
    ]
    if full_refresh:
        to_index = list(codes)
    else:
        skip = set(current) | set(recently_inactive)
        to_index = [code for code in codes if code not in skip]
    return Plan(as_of.isoformat(), list(codes), to_index, len(current), [] if full_refresh else recently_inactive)


def index_ticker(
    store: OhlcvStore, source: Source, code: str, as_of: dt.date, *, full_refresh: bool = False
) -> TickerResult:
    """Bring ``code`` up to date through ``as_of``: fetch, validate, merge or repair, write.

    ``NoData`` becomes a ``no_data`` result and the ticker is recorded as inactive; a vendor
    answer far behind ``as_of`` (delisted, suspended) is stored and recorded likewise. A bad
    frame raises ``BadOhlcvData`` and leaves the cache as it was; vendor errors propagate so
    Airflow can retry.
    """
    code = validate_ticker(code)
    cached = store.state_of([code])[0][code]
    if cached is not None and cached >= as_of and not full_refresh:
        log.info("%s fresh: cached through %s, run is as of %s; no vendor call", code, cached, as_of)
        return TickerResult(code, FRESH, last_date=cached.isoformat())
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
        return TickerResult(code, NO_DATA, reason=str(exc))
    fresh = validate(raw, as_of)
    outcome = store.write_series(code, fresh, source.name)
    vendor_last = fresh.index[-1].date()
    behind = len(calendar.sessions(vendor_last, as_of)) - 1
    if behind > INACTIVE_LAG_SESSIONS:
        reason = f"the vendor's last session is {vendor_last}, {behind} sessions before {as_of}: delisted or halted"
        store.mark_inactive(code, as_of, reason)
        log.warning("%s inactive: %s", code, reason)
        return TickerResult(code, INACTIVE, outcome.rows, outcome.new_rows, outcome.last_date.isoformat(), reason)
    if outcome.status == REPAIRED:
        log.warning(
            "%s repaired: history changed from %s on (vendor/cached close %s); "
            "stored %d rows, deleted %d period keys",
            code, outcome.first_difference, f"{outcome.ratio:.6g}" if outcome.ratio else "n/a",
            outcome.rows, outcome.periods_deleted,
        )  # fmt: skip
        return TickerResult(code, REPAIRED_STATUS, outcome.rows, outcome.new_rows, outcome.last_date.isoformat())
    if outcome.status in (NEW, APPENDED):
        log.info(
            "%s written: %d new sessions from %s, %d rows through %s",
            code, outcome.new_rows, source.name, outcome.rows, outcome.last_date,
        )  # fmt: skip
        return TickerResult(code, WRITTEN, outcome.rows, outcome.new_rows, outcome.last_date.isoformat())
    log.info("%s unchanged: the vendor has nothing after %s", code, outcome.last_date)
    return TickerResult(code, FRESH, outcome.rows, 0, outcome.last_date.isoformat())


def summarize(
    store: OhlcvStore, universe_codes: list[str], planned: list[str], results: Mapping[str, str], as_of: dt.date
) -> RunSummary:
    """Count what the mapped tasks did (``results``: code → status, as ``store.run_results``
    gives them); a planned ticker without a result failed."""
    statuses = list(results.values())
    missing = [code for code in planned if code not in results]
    # a ticker found without data is skipped by its task (no result) and recorded inactive
    _, inactive = store.state_of(missing)
    skipped = [code for code in missing if inactive.get(code, {}).get("checked") == as_of.isoformat()]
    failed = [code for code in missing if code not in skipped]
    answered = (WRITTEN, REPAIRED_STATUS, FRESH)
    served = [code for code in planned if results.get(code) in answered]
    records = store.failures(failed)
    reasons = {code: records[code]["reason"] for code in failed[:50] if code in records}
    retry = [code for code in failed if records.get(code, {}).get("retry", True)]
    return RunSummary(
        as_of=as_of.isoformat(),
        universe=len(universe_codes),
        planned=len(planned),
        written=statuses.count(WRITTEN),
        repaired=statuses.count(REPAIRED_STATUS),
        fresh=statuses.count(FRESH),
        no_data=statuses.count(NO_DATA) + statuses.count(INACTIVE) + len(skipped),
        current=count_current(store, universe_codes, as_of),
        failed=failed,
        reasons=reasons,
        retry=retry,
        canary=served[0] if served else (universe_codes[0] if universe_codes else None),
    )


def count_current(store: OhlcvStore, codes: list[str], as_of: dt.date) -> int:
    """How many of ``codes`` are cached through ``as_of`` or later (one round trip)."""
    return sum(1 for day in store.last_updates(codes).values() if day is not None and day >= as_of)
