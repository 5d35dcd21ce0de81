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
from collections.abc import Iterable
from dataclasses import dataclass

from ohlcv import appending, calendar, indexer, planning
from ohlcv.errors import OhlcvError
from ohlcv.settings import Settings
from ohlcv.sources.base import Source
from ohlcv.sources.guard import GuardedSource
from ohlcv.store import OhlcvStore
from ohlcv.summary import RunSummary, record_run, standing, summarize, watermark_codes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """What one run did.

    :param summary: the first pass, before the failed tickers were asked again
    :param still_failing: the tickers not current through ``as_of`` after the retry
    :param record: the run's entry in ``ohlcv:runs``
    """

    summary: RunSummary
    still_failing: list[str]
    record: dict


def run_once(
    store: OhlcvStore,
    source: Source,
    as_of: dt.date,
    *,
    run_id: str,
    market: str = "KRX",
    tickers: Iterable[str] = (),
    benchmark: Iterable[str] = ("KS11",),
    full_refresh: bool = False,
    snapshot: bool = True,
    settings: Settings | None = None,
) -> RunOutcome:
    """Index the universe through ``as_of`` under the run lock and publish the meta keys.

    :param run_id: names the run in the lock, the results and the metrics hashes
    :param settings: the vendor's rate limit and breaker duration (default: ``Settings.from_env()``)
    """
    if isinstance(source, GuardedSource):
        guarded = source
    else:
        guarded = GuardedSource(source, store, run_id=run_id, settings=settings or Settings.from_env())
    started = store.begin_run(token=run_id)
    if started.found_dead_run:
        log.warning("an earlier run took the run lock and never released it: it died without cleanup")
    store.publish_sessions(calendar.table(as_of))
    began = dt.datetime.now(dt.UTC)
    try:
        plan = planning.prepare(
            store, guarded, as_of, market=market, tickers=tickers, benchmark=benchmark,
            full_refresh=full_refresh, snapshot=snapshot,
        )  # fmt: skip
        saved = store.saved_snapshot(guarded.name) if plan.one_behind else None
        result = appending.apply_snapshot(store, saved, plan, run_id, use=snapshot)
        log.info(
            "as of %s: %d appended from the snapshot, %d handed on", as_of, len(result.appended), len(result.to_fetch)
        )
        appending.log_handed_on(result)
        for code in result.to_fetch:
            _index(store, guarded, code, as_of, run_id, full_refresh)
        first = summarize(store, plan.universe, plan.to_index, store.run_results(run_id), as_of, run_id)
        for code in first.retry:
            store.count(run_id, retries=1)
            _index(store, guarded, code, as_of, run_id, full_refresh)
        mark = store.publish_watermark(watermark_codes(store, guarded.name, market, plan.universe))
        log.info("published cut %s (%d tickers cached through it), before %s", mark.cut, mark.count, mark.previous)
    finally:
        store.release_run(run_id)
    state = standing(store, plan.universe, first.failed, store.run_results(run_id), as_of)
    record = record_run(
        store, run_id, as_of, {**first.to_xcom(), "handed_on": len(result.to_fetch)}, state.still_failing,
        len(state.current), began,
    )  # fmt: skip
    log.info("as of %s: run record %s", as_of, record)
    return RunOutcome(first, state.still_failing, record)


def _index(store: OhlcvStore, source: Source, code: str, as_of: dt.date, run_id: str, full_refresh: bool) -> None:
    try:
        result = indexer.index_ticker(store, source, code, as_of, full_refresh=full_refresh)
    except OhlcvError as exc:
        indexer.record_failure(store, code, as_of, exc, run_id)
        log.error("%s failed: %s: %s", code, type(exc).__name__, exc)
        return
    store.record_result(run_id, code, result.status, result.new_rows)
