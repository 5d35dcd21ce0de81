"""One indexer run in one process, without Airflow: the DAG's steps in the same order.

Cron, Jenkins during a cutover (``python -m ohlcv index``), the tests and the benchmarks run
the indexer through this: the same run lock, plan, market snapshot, per-ticker fetches,
validation and writes, the published cut and the run record in ``ohlcv:runs``. Each
handed-on ticker is fetched once, and once more after the first pass if it failed with an
error worth retrying; a ticker that still fails is recorded with its reason
(``ohlcv:failures``) and the run's state is ``failed``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import redis

from ohlcv import calendar
from ohlcv.errors import HistoryBudgetSpent, OhlcvError, ReplicasBehind
from ohlcv.indexer import per_ticker, steps
from ohlcv.indexer.summary import RunSummary, record_run, standing, summarize
from ohlcv.settings import DEFAULT_BENCHMARK, Settings
from ohlcv.sources import second_tables
from ohlcv.sources.base import Source
from ohlcv.sources.guard import GuardedSource
from ohlcv.status import Status
from ohlcv.store import OhlcvStore
from ohlcv.store.runs import RUN_LOCK_TTL

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """What one run did.

    :param summary: the first pass, before the failed tickers were asked again
    :param still_failing: the tickers not current through ``as_of`` after the retry
    :param record: the run's entry in ``ohlcv:runs``
    :param overdue: sessions whose market table is still missing past ``OHLCV_TABLE_DEADLINE``
    """

    summary: RunSummary
    still_failing: list[str]
    record: dict
    overdue: list[str] = field(default_factory=list)


def run_once(
    store: OhlcvStore,
    source: Source,
    as_of: dt.date,
    *,
    run_id: str,
    market: str = "KRX",
    tickers: Iterable[str] = (),
    benchmark: Iterable[str] = DEFAULT_BENCHMARK,
    full_refresh: bool = False,
    snapshot: bool = True,
    settings: Settings,
    now: dt.datetime | None = None,
    bar: Callable[[list[str], int, str], Iterable[str]] | None = None,
) -> RunOutcome:
    """Index the universe through ``as_of`` under the run lock and publish the meta keys.

    :param run_id: names the run in the lock, the results and the metrics hashes
    :param settings: the vendor's rate limit and breaker, the catch-up reach, the history budget
        and the table deadline
    :param now: the run's moment: which tables are final and whether a missing one is overdue;
        ``as_of`` may not be later than its last final session (``InvalidDate``)
    :param bar: ``bar(codes, total, what)`` wraps the history fetches and the retries, for a
        progress bar (the CLI's, on a terminal)
    """
    now = now or dt.datetime.now(dt.UTC)
    calendar.check_as_of(as_of, now)  # before the lock is taken or a key written
    if isinstance(source, GuardedSource):
        guarded = source
    else:
        guarded = GuardedSource(
            source, store, run_id=run_id, settings=settings, second=second_tables(settings.krx_openapi_key)
        )
    started = store.begin_run(token=run_id)
    if started.found_dead_run:
        log.warning("an earlier run took the run lock and never released it: it died without cleanup")
    began = dt.datetime.now(dt.UTC)
    finished = False
    try:
        store.publish_sessions(calendar.table(as_of))
        plan = steps.plan_run(
            store, guarded, as_of, settings=settings, market=market, tickers=tickers, benchmark=benchmark,
            full_refresh=full_refresh, now=now, run_id=run_id,
        )  # fmt: skip
        result = steps.append_from_tables(
            store, guarded, plan, run_id, settings=settings, use=snapshot, full_refresh=full_refresh, now=now
        )
        for code in _shown(bar, result.to_fetch, "history fetches"):
            _index(store, guarded, code, as_of, run_id, full_refresh, settings.ticker_deadline_seconds)
        first = summarize(store, plan.universe, plan.to_index, store.run_results(run_id), as_of, run_id)
        for code in _shown(bar, first.retry, "retries"):
            store.count(run_id, retries=1)
            _index(store, guarded, code, as_of, run_id, full_refresh, settings.ticker_deadline_seconds)
        steps.close_ledger(store, run_id)
        try:
            steps.publish_cut(store, guarded.name, market, plan.universe, run_id, settings=settings)
        except ReplicasBehind as exc:  # noted in the run's record, which says failed
            log.error("%s", exc)
        finished = True
    finally:
        try:  # a step that died leaves its breaks unentered: enter them now (none left on success)
            steps.close_ledger(store, run_id)
        except Exception:
            log.warning("the run's unresolved breaks could not be entered in the ledger", exc_info=True)
        try:
            store.release_run(run_id)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            log.error(
                "the run lock could not be released (%s): it expires within %s, and the same run id takes it "
                "again at once (an Airflow retry)", exc, RUN_LOCK_TTL,
            )  # fmt: skip
            if finished:  # else the run's own error goes on, which says more
                raise
    state = standing(store, plan.universe, first.failed, store.run_results(run_id), as_of)
    overdue = steps.overdue_tables(store, run_id, now, settings)
    record = record_run(
        store, run_id, as_of, {**first.to_xcom(), "handed_on": len(result.to_fetch)}, state.still_failing,
        len(state.current), began, overdue=overdue,
    )  # fmt: skip
    log.info("as of %s: run record %s", as_of, record)
    return RunOutcome(first, state.still_failing, record, overdue)


def _shown(bar, codes: list[str], what: str) -> Iterable[str]:
    return codes if bar is None else bar(codes, len(codes), what)


def _index(
    store: OhlcvStore, source: Source, code: str, as_of: dt.date, run_id: str, full_refresh: bool, deadline: float
) -> None:
    try:
        result = per_ticker.index_within(
            store, source, code, as_of, run_id, deadline=deadline, full_refresh=full_refresh
        )
    except HistoryBudgetSpent as exc:
        store.record_postponed(run_id, {code: str(Status.DEFERRED)}, {code: str(exc)})
        log.info("%s deferred: %s", code, exc)
        return
    except OhlcvError as exc:
        per_ticker.record_failure(store, code, as_of, exc, run_id)
        log.error("%s failed: %s: %s", code, type(exc).__name__, exc)
        return
    store.record_result(run_id, code, result.status, result.new_rows)
