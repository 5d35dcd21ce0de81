"""Task callables of the ``ohlcv_indexer`` DAG: one function per task id, in graph order.

start_run → list_universe → apply_snapshot → index_ticker (mapped; also mapped again as
retry_ticker) → summarize → wait_for_source → publish_cut → finish_run. Every value a task
uses from another arrives as an argument (an XComArg edge in ``dags/ohlcv_indexer.py``).

Each reads what Airflow gives it (params, the data interval, the connection, Variables) and
calls the plain functions of ``ohlcv``; what every task needs (store, vendor, lock) is in
``ohlcv.airflow.runtime``. Heavy imports stay inside the functions so that parsing the DAG
file costs almost nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from ohlcv.airflow import runtime

log = logging.getLogger(__name__)

#: the seconds the sensor's canary call may take before the vendor counts as still down
CANARY_WITHIN = 120.0


def start_run(**context: Any) -> dict[str, str]:
    """Take the run lock, set ``getOHLCV_isUpdating`` to 1 and fix the run's ``as_of`` session."""
    from airflow.sdk.exceptions import AirflowFailException

    from ohlcv.airflow.notify import warn_if_stale
    from ohlcv.calendar import check_as_of, last_complete_session, table
    from ohlcv.errors import InvalidDate
    from ohlcv.sources import from_spec

    settings = runtime.settings()  # the Variable ohlcv_source is looked up here, once per run
    source = settings.source
    from_spec(source)  # an unknown vendor fails the run here, not in every mapped task
    dag_run = context["dag_run"]
    moment = context.get("data_interval_end") or dag_run.run_after
    as_of = last_complete_session(moment)
    try:  # a run whose time lies ahead (a trigger with a later logical date) never indexes the future
        check_as_of(as_of, dt.datetime.now(dt.UTC))
    except InvalidDate as exc:
        raise AirflowFailException(str(exc)) from None
    store = runtime.open_store(settings)
    started = store.begin_run(token=f"{dag_run.dag_id}:{dag_run.run_id}")
    try:  # without this task's result finish_run cannot release the lock: a failure here does
        if started.found_dead_run:
            log.warning("an earlier run took the run lock and never released it: it died without cleanup")
        store.publish_sessions(table(as_of))
        log.info("run %s indexes through the XKRX session %s (trigger time %s)", dag_run.run_id, as_of, moment)
        return {
            "as_of": as_of.isoformat(),
            "moment": moment.isoformat(),
            "lock_token": started.token,
            "started_at": dt.datetime.now(dt.UTC).isoformat(),
            "source": source,
            "notifier_error": warn_if_stale(store, as_of, context),
        }
    except BaseException:
        store.release_run(started.token)
        raise


def list_universe(run: dict[str, str], **context: Any) -> dict[str, Any]:
    """Plan the run: the universe, the tickers not yet current, and those few enough sessions
    behind (``OHLCV_CATCHUP_SESSIONS``) to be brought forward from the market's tables.

    The listing is the ``as_of`` session's market table, asked from the vendor at most once
    per session; while it is not published, the newest kept table.
    """
    from ohlcv.indexer import steps, tables

    params = context["params"]
    settings, store = runtime.open_run(run, hold=False)
    source = runtime.run_source(store, settings, context["run_id"], tables=True)
    with tables.retrying_outages(runtime.tries_left(context)):
        plan = steps.plan_run(
            store, source, runtime.as_of(run), settings=settings, market=params["universe"], tickers=params["tickers"],
            benchmark=params["benchmark"], full_refresh=bool(params["full_refresh"]), run_id=context["run_id"],
        )  # fmt: skip
    return plan.to_xcom()


def apply_snapshot(run: dict[str, str], plan: dict[str, Any], **context: Any) -> list[str]:
    """Append each missing session's row from its market table to every ticker it continues, in
    session order (batches of writes, no history fetched); return the tickers ``index_ticker``
    fetches the history of, each with its reason in this task's log."""
    from ohlcv.indexer import steps, tables
    from ohlcv.indexer.planning import Plan

    settings, store = runtime.open_run(run)
    run_id, params = context["run_id"], context["params"]
    source = runtime.run_source(store, settings, run_id, tables=True)
    with tables.retrying_outages(runtime.tries_left(context)):
        result = steps.append_from_tables(
            store, source, Plan(**plan), run_id, settings=settings, use=bool(params["snapshot"]),
            full_refresh=bool(params["full_refresh"]),
        )  # fmt: skip
    return result.to_fetch


def index_ticker(ticker: str, run: dict[str, str], **context: Any) -> None:
    """Fetch and write one ticker (mapped; the task instance is labelled with the code).

    The DAG maps it twice: as ``index_ticker`` over the handed-on tickers, and as
    ``retry_ticker`` over the failed ones once the vendor answers again.

    Bad data, and a ticker whose tries have used up ``OHLCV_TICKER_DEADLINE``, fail the task
    without retries (the old cache stays); vendor errors are retried by Airflow. Either way the
    reason is recorded for ``summarize``.
    """
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from ohlcv.errors import BadOhlcvData, HistoryBudgetSpent
    from ohlcv.indexer import per_ticker
    from ohlcv.status import WITHOUT_DATA, Status

    context["ticker"] = ticker
    run_id = context["run_id"]
    settings, store = runtime.open_run(run)
    if context["ti"].try_number > 1:
        store.count(run_id, retries=1)
    as_of = runtime.as_of(run)
    try:
        result = per_ticker.index_within(
            store, runtime.run_source(store, settings, run_id), ticker, as_of, run_id,
            deadline=settings.ticker_deadline_seconds, full_refresh=bool(context["params"]["full_refresh"]),
        )  # fmt: skip
    except HistoryBudgetSpent as exc:
        store.record_postponed(run_id, {ticker: str(Status.DEFERRED)}, {ticker: str(exc)})
        raise AirflowSkipException(str(exc)) from exc
    except BaseException as exc:  # AirflowTaskTimeout is a BaseException: a timed-out try records why too
        if per_ticker.record_failure(store, ticker, as_of, exc, run_id):
            raise
        why = "bad data from the vendor, cache left as it was: " if isinstance(exc, BadOhlcvData) else ""
        raise AirflowFailException(f"{ticker}: {why}{exc}") from exc
    store.record_result(run_id, ticker, result.status, result.new_rows)
    if result.status in WITHOUT_DATA:
        raise AirflowSkipException(f"{ticker}: {result.reason}")


def summarize(run: dict[str, str], plan: dict[str, Any], handed_on: list[str], **context: Any) -> dict[str, Any]:
    """Count what the snapshot step and the mapped tasks did and return the failed tickers.

    The results are read from Redis in one call (``ohlcv:run:{run_id}:results``), not as
    thousands of XComs one api-server request each.
    """
    from ohlcv.indexer import summary as tally

    _, store = runtime.open_run(run)
    universe, planned = (plan or {}).get("universe", []), (plan or {}).get("to_index", [])
    results = store.run_results(context["run_id"])
    summary = tally.summarize(store, list(universe), list(planned), results, runtime.as_of(run), context["run_id"])
    log.info(
        "as of %s: %d in universe, %d planned, %d appended from the tables, %d handed on, %d written, "
        "%d repaired, %d unchanged, %d without data, %d waiting for a table, %d deferred, %d failed, %d current",
        summary.as_of, summary.universe, summary.planned, summary.appended, len(handed_on or []), summary.written,
        summary.repaired, summary.unchanged, summary.no_data, summary.waiting, summary.deferred,
        len(summary.failed), summary.current,
    )  # fmt: skip
    for code in summary.failed:
        log.warning("failed: %s: %s", code, summary.reasons.get(code, "no reason recorded"))
    for name in (
        "planned",
        "appended",
        "written",
        "repaired",
        "unchanged",
        "no_data",
        "waiting",
        "deferred",
        "current",
    ):
        runtime.metric("gauge", f"first_pass.{name}", getattr(summary, name))
    runtime.metric("gauge", "first_pass.handed_on", len(handed_on or []))
    runtime.metric("gauge", "first_pass.failed", len(summary.failed))
    return {**summary.to_xcom(), "handed_on": len(handed_on or [])}


def wait_for_source(run: dict[str, Any], summary: dict[str, Any], **context: Any):
    """Done at once when nothing worth retrying failed; otherwise done when a canary fetch
    answers again. Keeps the run lock alive while it waits.

    Its XCom value is the list of tickers ``retry_ticker`` maps over: the failed ones except
    those with bad data, a block answer or past their deadline, which asking again cannot fix.
    The canary's call is bounded (``CANARY_WITHIN``): a vendor that does not answer it is
    still down.
    """
    from airflow.sdk import PokeReturnValue
    from airflow.sdk.exceptions import AirflowFailException

    from ohlcv.errors import BadOhlcvData, BreakerOpen, NoData, SourceBlocked, SourceUnavailable, TickerDeadline
    from ohlcv.indexer.deadline import call_within

    settings, store = runtime.open_run(run)
    failed = summary["retry"]
    hopeless = sorted(set(summary["failed"]) - set(failed))
    if hopeless:
        log.info("not retried (bad data, blocked or past the ticker deadline): %s", ", ".join(hopeless))
    if not failed:
        log.info("nothing to retry; no need to ask the vendor")
        return PokeReturnValue(is_done=True, xcom_value=[])
    as_of = dt.date.fromisoformat(summary["as_of"])
    canary = summary["canary"]
    vendor = runtime.run_source(store, settings, context["run_id"], budgeted=False)
    within = min(CANARY_WITHIN, settings.ticker_deadline_seconds)
    try:
        call_within(within, vendor.history, canary, as_of - dt.timedelta(days=14), as_of, what=f"canary {canary}")
    except (SourceBlocked, BreakerOpen) as exc:
        raise AirflowFailException(f"not retrying {len(failed)} tickers: {exc}") from exc
    except (SourceUnavailable, TickerDeadline) as exc:
        log.info("vendor still failing for canary %s: %s", canary, exc)
        return PokeReturnValue(is_done=False)
    except (NoData, BadOhlcvData):
        pass  # an answer, even an unhelpful one, means the vendor is reachable
    log.info("vendor answers again (canary %s); retrying %d tickers", canary, len(failed))
    return PokeReturnValue(is_done=True, xcom_value=failed)


def publish_cut(run: dict[str, str], plan: dict[str, Any] | None, **context: Any) -> dict[str, Any]:
    """Publish the watermark after every retry: ``getOHLCV_lastUpdateAt`` is the newest session
    through which every active ticker is cached, ``getOHLCV_lastUpdateCount`` how many tickers
    are cached through it, and the revision reads can pin. Updates the Asset ``ohlcv_cache``
    (the cut and the revision in its ``extra``) only when the cut advanced; otherwise this task
    is skipped and no event is sent. First enters in the ledger the breaks no fetch resolved."""
    from airflow.sdk.exceptions import AirflowSkipException

    from ohlcv.airflow.assets import CACHE
    from ohlcv.indexer import steps

    run = runtime.require_run(run)
    if not plan:
        raise AirflowSkipException("the run stopped before its universe was planned; the cut stays")
    settings, store = runtime.open_run(run)
    steps.close_ledger(store, context["run_id"])
    mark = steps.publish_cut(
        store, runtime.source_name(settings), context["params"]["universe"], plan["universe"], context["run_id"],
        settings=settings,
    )  # fmt: skip
    published = {
        "cut": mark.cut.isoformat() if mark.cut else None,
        "count": mark.count,
        "previous": mark.previous.isoformat() if mark.previous else None,
        "revision": mark.revision,
    }
    if not mark.advanced:
        raise AirflowSkipException(f"the published cut stays at {published['cut']}: no Asset event")
    context["outlet_events"][CACHE].extra = published
    return published


def finish_run(
    run: dict[str, str], plan: dict[str, Any] | None, summary: dict[str, Any] | None, **context: Any
) -> dict[str, Any]:
    """Release the lock, record the run's metrics, and fail the run (notifying people) if
    tickers still fail.

    Runs whatever failed before it (``plan`` and ``summary`` are None when their tasks did
    not finish), and releases the lock first. What still fails is read from Redis (not
    current through ``as_of`` and not found without data in this run), so a task that died
    without reporting counts as failed.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from ohlcv.airflow.notify import RUN_FAILED, TABLE_MISSING, NotifierFailed, notify
    from ohlcv.indexer import steps, tables
    from ohlcv.indexer.summary import standing

    run = runtime.require_run(run)
    settings, store = runtime.open_run(run, hold=False)
    problem, still_failing, current = "", [], 0
    try:
        as_of, run_id = runtime.as_of(run), context["run_id"]
        universe = plan["universe"] if plan else None
        if universe is None:
            problem = "the run stopped before its universe was planned; see list_universe"
        else:
            candidates = summary["failed"] if summary else plan["to_index"]
            state = standing(store, list(universe), list(candidates), store.run_results(run_id), as_of)
            still_failing, current = state.still_failing, len(state.current)
    finally:
        released = store.release_run(run["lock_token"])
        log.info("run lock %s; getOHLCV_isUpdating reset", "released" if released else "was no longer ours")
    if universe is not None:
        steps.close_ledger(store, run_id)  # when publish_cut did not run
    records = store.failures(still_failing[:20], run_id=run_id)
    reasons = {code: record["reason"] for code, record in records.items()}
    moment = dt.datetime.fromisoformat(run["moment"]) if run.get("moment") else dt.datetime.now(dt.UTC)
    overdue = tables.overdue(store.run_tables(run_id), moment, settings.deadline_time, settings.schedule_timezone)
    record = runtime.record_run(
        store, run, run_id, as_of, summary if universe is not None else None, still_failing, current, overdue
    )
    if overdue:
        notes = store.run_tables(run_id)
        late = ", ".join(overdue)
        unusable = "not usable" if all(notes[day].startswith("refused") for day in overdue) else "not published"
        message = f"KRX table for {late} {unusable} by {settings.table_deadline} {settings.schedule_timezone}"
        log.error("%s; the tickers that need it wait for a later run", message)
        try:
            notify(TABLE_MISSING, message, context, run_id=run_id, as_of=as_of.isoformat(), sessions=overdue)
        except NotifierFailed as exc:
            message = f"{message}; and nobody was told: {exc}"
        if not (problem or still_failing):
            raise AirflowFailException(message)
    unpublished = store.unpublished(run_id)
    if unpublished and not problem:
        problem = unpublished
    if problem or still_failing:
        message = problem or (
            f"{len(still_failing)} tickers still failing after the retry: "
            + "; ".join(
                f"{code} ({reasons.get(code, 'no reason recorded in this run')})" for code in still_failing[:10]
            )
        )
        for code in still_failing[:20]:
            log.error("still failing: %s: %s", code, reasons.get(code, "no reason recorded in this run"))
        try:
            notify(RUN_FAILED, message, context, run_id=run_id, as_of=as_of.isoformat(), failed=still_failing[:50])
        except NotifierFailed as exc:
            message = f"{message}; and nobody was told: {exc}"
        raise AirflowFailException(message)
    if run.get("notifier_error"):
        raise AirflowFailException(f"the run indexed everything, but a notification failed: {run['notifier_error']}")
    log.info("as of %s: %d tickers current; run record %s", as_of, current, record)
    return {"as_of": as_of.isoformat(), "current": current, "published": record["published"]}
