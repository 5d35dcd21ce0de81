"""The steps of one indexer run, called alike by ``python -m ohlcv index`` (``runner``) and by
the Airflow tasks (``ohlcv.airflow.tasks``, which add XCom, mapping and retries): each does its
work and logs it once, in the same words whichever way the run goes."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from ohlcv.errors import ReplicasBehind
from ohlcv.indexer import appending, listings, planning, tables
from ohlcv.indexer.appending import SnapshotResult
from ohlcv.indexer.planning import Plan
from ohlcv.indexer.summary import watermark_codes
from ohlcv.settings import Settings
from ohlcv.sources.base import Source
from ohlcv.store import OhlcvStore, Watermark, sentinel
from ohlcv.store.base import text

log = logging.getLogger(__name__)

CUT_ATTEMPTS = 3  # publishes of one cut a run tries, in all, through failovers before it gives up


def plan_run(
    store: OhlcvStore,
    source: Source,
    as_of: dt.date,
    *,
    settings: Settings,
    market: str,
    tickers: Iterable[str],
    benchmark: Iterable[str],
    full_refresh: bool,
    run_id: str,
    now: dt.datetime | None = None,
) -> Plan:
    """The universe and what the run brings forward (``planning.prepare``)."""
    plan = planning.prepare(
        store, source, as_of, market=market, tickers=tickers, benchmark=benchmark, full_refresh=full_refresh,
        catchup_sessions=settings.catchup_sessions, now=now, run_id=run_id,
    )  # fmt: skip
    log.info(
        "as of %s: %d tickers in the universe (%s), %d already current, %d recently without data, %d to index, "
        "%d of them within %d sessions (brought forward from the market's tables)%s",
        as_of, len(plan.universe), source.name, plan.current, len(plan.inactive), len(plan.to_index),
        len(plan.catchup), settings.catchup_sessions, "; the first fill" if plan.first_fill else "",
    )  # fmt: skip
    return plan


def append_from_tables(
    store: OhlcvStore,
    source: Source,
    plan: Plan,
    run_id: str,
    *,
    settings: Settings,
    use: bool,
    full_refresh: bool,
    now: dt.datetime | None = None,
) -> SnapshotResult:
    """The catch-up from the market's tables (``appending.apply_snapshot``), and the history
    budget the tickers it hands on draw on (none on the first fill and a full refresh)."""
    budget = None if plan.first_fill or full_refresh else settings.history_budget
    result = appending.apply_snapshot(store, source, plan, run_id, use=use, now=now, budget=budget)
    listings.explain_delisted(store, source, dt.date.fromisoformat(plan.as_of))
    if result.to_fetch:  # the per-ticker fetches and the retries draw on it; else nothing is written
        store.set_history_budget(run_id, budget)
    log.info(
        "as of %s: %d tickers appended from the tables (the newest %s), %d rows settled, %d handed on to "
        "index_ticker, %d waiting for a table, %d deferred (history budget %s)",
        plan.as_of, len(result.appended), result.session or "none", result.settled, len(result.handed_on),
        len(result.waiting), len(result.deferred), "none" if budget is None else budget,
    )  # fmt: skip
    appending.log_handed_on(result)
    return result


def close_ledger(store: OhlcvStore, run_id: str) -> int:
    """Enter in the ledger every break the run found and no history fetch resolved (the ticker
    failed, was deferred or waits for a table); return how many."""
    results = store.run_results(run_id)
    closed = store.close_breaks(run_id, results, store.revision_id())
    if closed:
        log.info("%d continuity breaks entered in the ledger unresolved (failed, deferred or waiting)", closed)
    return closed


def publish_cut(
    store: OhlcvStore, source_name: str, market: str, universe: list[str], run_id: str = "", *, settings: Settings
) -> Watermark:
    """Publish the watermark, the newest session every active ticker of ``universe`` is cached
    through, and the revision with it (a new one when the cut moved or a history was rewritten).

    First the run's writes must be held by the replicas ``settings`` requires (under Sentinel
    one, by default): otherwise ``ReplicasBehind``, noted in the run's record, and the cut stays,
    since a failover could leave a published cut ahead of what the new primary holds. Then the
    cut itself must be on the primary once a replica holds it (``_keep_cut``): a failover right
    after the publish does not take the session back.
    """
    required = settings.replicas_required(sentinel.is_sentinel_client(store.client))
    if required:
        timeout = dt.timedelta(seconds=settings.replica_ack_timeout)
        held = sentinel.acknowledged(store.client, store.keys.replication_probe, required, timeout)
        if held < required:
            why = (
                f"the run's writes are held by {held} of the {required} replicas required (OHLCV_MIN_REPLICAS) "
                f"after {settings.replica_ack_timeout:g} s: the cut is not published, and stays at "
                f"{store.meta().last_update_at}"
            )
            store.note_unpublished(run_id, why)
            raise ReplicasBehind(why)
    codes = watermark_codes(store, source_name, market, universe)
    mark = store.publish_watermark(codes, run_id=run_id)
    if required:
        mark = _keep_cut(store, codes, mark, run_id, required, timeout)
    store.clear_unpublished(run_id)  # an earlier attempt of this run (an Airflow retry) may have noted one
    log.info(
        "published cut %s (%d tickers cached through it), before %s; revision %s%s", mark.cut, mark.count,
        mark.previous, mark.revision, " (new)" if mark.new_revision else "",
    )  # fmt: skip
    return mark


def _keep_cut(
    store: OhlcvStore, codes: list[str], mark: Watermark, run_id: str, required: int, timeout: dt.timedelta
) -> Watermark:
    """Make the cut just published survive a failover: wait until ``required`` replicas hold it,
    then read it back from the primary, which after a failover is another server. A publish
    the failover took back (the cut and the revision are not what it wrote; its data was held
    before it) is done again, up to ``CUT_ATTEMPTS`` publishes in all; a cut the replicas are
    slow to hold is only warned about. The run lock keeps any other run from publishing meanwhile."""
    for attempt in range(1, CUT_ATTEMPTS + 1):
        held = sentinel.acknowledged(store.client, store.keys.replication_probe, required, timeout)
        holds = _published(store)
        if mark.cut is None or holds == (mark.cut, mark.revision):
            if held < required:
                log.warning("the published cut %s is held by %d of %d replicas so far", mark.cut, held, required)
            return mark
        if attempt == CUT_ATTEMPTS:
            break
        log.warning(
            "the published cut %s (revision %s) was lost in a failover (the primary holds %s, revision %s): "
            "publishing it again", mark.cut, mark.revision, *holds,
        )  # fmt: skip
        mark = store.publish_watermark(codes, run_id=run_id)
    why = (
        f"the cut {mark.cut} was lost in a failover after each of {CUT_ATTEMPTS} publishes: the primary holds "
        f"{holds[0]}"
    )
    store.note_unpublished(run_id, why)
    raise ReplicasBehind(why)


def _published(store: OhlcvStore) -> tuple[dt.date | None, int | None]:
    """The cut and the revision the primary holds now."""
    cut, revision = store.client.mget([store.keys.last_update_at, store.keys.revision])
    return (dt.date.fromisoformat(text(cut)) if cut else None, int(revision) if revision else None)


def overdue_tables(store: OhlcvStore, run_id: str, now: dt.datetime, settings: Settings) -> list[str]:
    """The sessions whose market table is still missing past ``OHLCV_TABLE_DEADLINE``, each logged."""
    overdue = tables.overdue(store.run_tables(run_id), now, settings.deadline_time, settings.schedule_timezone)
    for day in overdue:
        log.error(
            "the market table of %s is not published by %s %s", day, settings.table_deadline, settings.schedule_timezone
        )
    return overdue
