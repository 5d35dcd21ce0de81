"""What a run's tickers came to: one rule for which are current, without data, failed or
still failing, the first pass's counts, the tickers the published cut speaks for, and the
run record."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from ohlcv.status import POSTPONED, SERVED, WITHOUT_DATA, Status, is_current
from ohlcv.store import OhlcvStore

#: failure reasons a summary carries (the rest are counted)
REASONS_KEPT = 50


@dataclass(frozen=True)
class Standing:
    """Where a run's tickers stand as of its session, decided by ``standing`` alone.

    :param current: tickers of the universe cached through ``as_of`` or later
    :param without_data: planned tickers found without data in this run (a ``no_data`` or
        ``inactive`` result, or an inactive record checked as of ``as_of``)
    :param failed: planned tickers without a result in this run and not found without data:
        their task failed or never ran
    :param still_failing: planned tickers neither current, nor found without data, nor left
        behind on purpose
    :param postponed: planned tickers left behind on purpose: waiting for a market table not
        published yet, or deferred beyond the run's history budget (they lag, but have not failed)
    """

    as_of: str
    current: list[str]
    without_data: list[str]
    failed: list[str]
    still_failing: list[str]
    postponed: list[str] = field(default_factory=list)


def standing(
    store: OhlcvStore, universe: list[str], planned: list[str], results: Mapping[str, str], as_of: dt.date
) -> Standing:
    """Classify a run's tickers in one round trip.

    :param universe: every ticker of the run (``current`` is counted over these)
    :param planned: the tickers the run had to bring forward
    :param results: code → status, as ``store.run_results`` gives them
    """
    codes = list(dict.fromkeys([*universe, *planned]))
    last, inactive = store.state_of(codes)
    current = {code for code in codes if is_current(last[code], as_of)}
    without_data = [
        code
        for code in planned
        if results.get(code) in WITHOUT_DATA or inactive.get(code, {}).get("checked") == as_of.isoformat()
    ]
    postponed = [code for code in planned if code not in current and results.get(code) in POSTPONED]
    gone = set(without_data) | set(postponed)
    return Standing(
        as_of=as_of.isoformat(),
        current=[code for code in universe if code in current],
        without_data=without_data,
        failed=[code for code in planned if code not in results and code not in gone],
        still_failing=[code for code in planned if code not in current and code not in gone],
        postponed=postponed,
    )


@dataclass(frozen=True)
class RunSummary:
    """Counts for one pass over the planned tickers."""

    as_of: str
    universe: int
    planned: int
    written: int
    appended: int
    repaired: int
    unchanged: int
    no_data: int
    current: int
    waiting: int = 0
    deferred: int = 0
    settled: int = 0
    #: ledger entries so far: breaks resolved by a history fetch, and repairs
    actions: int = 0
    failed: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    #: the failed tickers worth asking again in this run (not bad data, not blocked)
    retry: list[str] = field(default_factory=list)
    #: a ticker whose history the vendor served in this pass, asked again to see whether it is back
    canary: str | None = None

    def to_xcom(self) -> dict:
        return asdict(self)


def summarize(
    store: OhlcvStore,
    universe_codes: list[str],
    planned: list[str],
    results: Mapping[str, str],
    as_of: dt.date,
    run_id: str,
) -> RunSummary:
    """Count what the snapshot step and the mapped tasks did (``results``: code → status, as
    ``store.run_results`` gives them); a planned ticker without a result failed.

    Only failure records this run wrote give reasons and decide retries: an older record
    says nothing about this run.
    """
    statuses = [Status(value) for value in results.values()]
    state = standing(store, universe_codes, planned, results, as_of)
    records = store.failures(state.failed, run_id=run_id)
    reasons = {code: records[code]["reason"] for code in state.failed[:REASONS_KEPT] if code in records}
    retry = [code for code in state.failed if records.get(code, {}).get("retry", True)]
    return RunSummary(
        as_of=as_of.isoformat(),
        universe=len(universe_codes),
        planned=len(planned),
        written=statuses.count(Status.WRITTEN),
        appended=statuses.count(Status.APPENDED),
        repaired=statuses.count(Status.REPAIRED),
        unchanged=statuses.count(Status.UNCHANGED),
        no_data=sum(statuses.count(status) for status in WITHOUT_DATA)
        + sum(1 for code in state.without_data if code not in results),
        current=len(state.current),
        waiting=statuses.count(Status.WAITING),
        deferred=statuses.count(Status.DEFERRED),
        settled=statuses.count(Status.SETTLED),
        actions=int(store.run_metrics(run_id).get("actions", 0)),
        failed=state.failed,
        reasons=reasons,
        retry=retry,
        canary=_canary(planned, results, universe_codes, state.current, state.failed) or next(iter(retry), None),
    )


def _canary(
    planned: list[str], results: Mapping[str, str], universe_codes: list[str], current: list[str], failed: list[str]
) -> str | None:
    """A ticker to ask the vendor for to see whether it answers again: one whose history it
    served in this pass, else one cached through ``as_of``, else one of the universe that did
    not fail; None when every ticker failed (the caller then asks a failed one worth retrying,
    never one past its deadline: the vendor may hang on that one)."""
    served = [code for code in planned if results.get(code) in SERVED]
    if served:
        return served[0]
    if current:
        return current[0]
    failing = set(failed)
    return next((code for code in universe_codes if code not in failing), None)


def watermark_codes(store: OhlcvStore, source_name: str, market: str, run_universe: list[str]) -> list[str]:
    """The tickers the published cut speaks for: the market's listing (from the saved snapshot)
    and the run's own universe, so a run over a few named tickers cannot publish a cut the
    rest of the market has not reached; never a delisted code (its history has ended)."""
    saved = store.saved_snapshot(source_name)
    listed = saved.codes(market) if saved is not None else []
    codes = list(dict.fromkeys([*listed, *run_universe]))
    delisted = store.delisted(codes)
    return [code for code in codes if code not in delisted]


def record_run(
    store: OhlcvStore,
    run_id: str,
    as_of: dt.date,
    summary: Mapping | None,
    still_failing: list[str],
    current: int,
    started: dt.datetime | None,
    *,
    overdue: list[str] = (),
) -> dict[str, str | int | float]:
    """Append one finished run's counts to ``ohlcv:runs`` and return them.

    :param summary: the first pass's ``RunSummary.to_xcom()`` plus ``handed_on`` (None: the
        run stopped before it was summarized)
    :param still_failing: the tickers still not current after the retries
    :param overdue: sessions whose market table is missing past the deadline (the run failed)
    """
    duration = (dt.datetime.now(dt.UTC) - started).total_seconds() if started else 0.0
    counters = store.run_metrics(run_id)
    tables = store.run_tables(run_id)
    meta = store.meta()
    summary = summary or {}
    unpublished = store.unpublished(run_id) or ""
    record = {
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "state": "failed" if still_failing or overdue or unpublished or not summary else "success",
        "planned": summary.get("planned", 0),
        "appended": summary.get("appended", 0),
        "handed_on": summary.get("handed_on", 0),
        "written": summary.get("written", 0),
        "repaired": summary.get("repaired", 0),
        "unchanged": summary.get("unchanged", 0),
        "skipped_no_data": summary.get("no_data", 0),
        "waiting": summary.get("waiting", 0),
        "deferred": summary.get("deferred", 0),
        "failed_first_pass": len(summary.get("failed", [])),
        "failed": len(still_failing),
        "retries": int(counters.get("retries", 0)),
        "vendor_calls": int(counters.get("vendor_calls", 0)),
        "snapshot_calls": int(counters.get("snapshot_calls", 0)),
        "history_calls": int(counters.get("history_calls", 0)),
        "vendor_seconds": round(counters.get("vendor_seconds", 0.0), 3),
        "rows_written": int(counters.get("rows_written", 0)),
        "settled": int(counters.get("rows_settled", 0)),
        "damaged": int(counters.get("damaged", 0)),
        "actions": int(counters.get("actions", 0)),
        "preliminary": store.preliminary_rows(),
        "table_missing": " ".join(sorted(day for day, note in tables.items() if note.startswith("missing"))),
        "table_refused": " ".join(sorted(day for day, note in tables.items() if note.startswith("refused"))),
        "table_second": " ".join(sorted(day for day, note in tables.items() if "second: from" in note)),
        "current": current,
        "published": meta.last_update_at.isoformat() if meta.last_update_at else "",
        "published_count": meta.last_update_count or 0,
        "duration_seconds": round(duration, 1),
        "unpublished": unpublished,
    }
    store.record_run(record)
    return record
