"""Task callables of the ``ohlcv_indexer`` DAG.

Each reads what Airflow gives it (params, the data interval, the connection, Variables) and
calls the plain functions in ``ohlcv.indexer``. Heavy imports stay inside the functions so
that parsing the DAG file costs almost nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

log = logging.getLogger(__name__)


#: sessions without a published run after which the cache counts as stale (Variable ohlcv_stale_sessions)
STALE_SESSIONS = 3


def _source_spec() -> str:
    """The configured vendor: the Variable ``ohlcv_source``, else ``OHLCV_SOURCE``."""
    from airflow.sdk import Variable

    from ohlcv.sources import spec_from_env

    return Variable.get("ohlcv_source", default=None) or spec_from_env()


def _source(store, run: dict[str, Any], run_id: str):
    """The run's vendor behind the breaker, the shared rate limit and the run's counters.

    ``start_run`` fixes the vendor for the whole run, so a run never mixes vendors and its
    thousands of mapped tasks do not each look the Variable up.
    """
    from ohlcv.sources import from_spec
    from ohlcv.sources.guard import GuardedSource

    return GuardedSource(from_spec(run.get("source") or _source_spec()), store, run_id=run_id)


def _metric(kind: str, name: str, value: float) -> None:
    """Emit through Airflow's metrics (StatsD/OpenTelemetry when enabled); never fail a task."""
    try:
        from airflow.sdk.observability.stats import Stats

        getattr(Stats, kind)(f"ohlcv.{name}", value)
    except Exception:
        log.debug("metric ohlcv.%s not emitted", name, exc_info=True)


def _store():
    from ohlcv.airflow.hook import OhlcvRedisHook

    return OhlcvRedisHook().get_store()


def _source_name(run: dict[str, Any]) -> str:
    from ohlcv.sources import from_spec

    return from_spec(run.get("source") or _source_spec()).name


def _as_of(run: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(run["as_of"])


def _hold_lock(store, run: dict[str, Any]) -> None:
    """Keep the run lock alive; take it again if it expired meanwhile, fail if another run has it."""
    from airflow.sdk.exceptions import AirflowFailException

    from ohlcv.store import RunLocked

    if store.extend_run(run["lock_token"]):
        return
    log.warning("the run lock had expired; taking it again")
    try:
        store.begin_run(token=run["lock_token"])
    except RunLocked as exc:
        raise AirflowFailException(f"this run lost its lock to another run: {exc}") from exc


def _require_run(run: dict[str, Any] | None) -> dict[str, Any]:
    """``start_run``'s result; without it (it failed, e.g. another run holds the lock) there is
    nothing to summarize or release, and retrying cannot help."""
    from airflow.sdk.exceptions import AirflowFailException

    if not run:
        raise AirflowFailException("start_run did not finish (see its log: another run may hold the lock)")
    return run


def start_run(**context: Any) -> dict[str, str]:
    """Take the run lock, set ``getOHLCV_isUpdating`` to 1 and fix the run's ``as_of`` session."""
    from ohlcv.calendar import last_complete_session
    from ohlcv.sources import from_spec

    source = _source_spec()
    from_spec(source)  # an unknown vendor fails the run here, not in every mapped task
    dag_run = context["dag_run"]
    moment = context.get("data_interval_end") or dag_run.run_after
    as_of = last_complete_session(moment)
    store = _store()
    started = store.begin_run(token=f"{dag_run.dag_id}:{dag_run.run_id}")
    if started.found_dead_run:
        log.warning("an earlier run took the run lock and never released it: it died without cleanup")
    log.info("run %s indexes through the XKRX session %s (trigger time %s)", dag_run.run_id, as_of, moment)
    return {
        "as_of": as_of.isoformat(),
        "lock_token": started.token,
        "started_at": dt.datetime.now(dt.UTC).isoformat(),
        "source": source,
        "notifier_error": _warn_if_stale(store, as_of, context),
    }


def _warn_if_stale(store, as_of: dt.date, context: dict[str, Any]) -> str:
    """Tell people when the published cut is more than ``ohlcv_stale_sessions`` behind; return
    why notifying failed ("" when it did not), for ``finish_run`` to end the run red with."""
    from airflow.sdk import Variable

    from ohlcv import calendar
    from ohlcv.airflow.notify import CACHE_STALE, NotifierFailed, notify

    published = store.meta().last_update_at
    if published is None or published >= as_of:
        return ""
    behind = len(calendar.sessions(published, as_of)) - 1
    allowed = int(Variable.get("ohlcv_stale_sessions", default=STALE_SESSIONS))
    if behind <= allowed:
        return ""
    try:
        notify(
            CACHE_STALE,
            f"the cache is {behind} sessions behind: the published cut is {published}, this run is as of {as_of}",
            context, published=published.isoformat(), as_of=as_of.isoformat(), sessions_behind=behind,
        )  # fmt: skip
    except NotifierFailed as exc:
        log.error("%s; the run goes on and ends red", exc)
        return str(exc)
    return ""


def list_universe(run: dict[str, str], **context: Any) -> dict[str, Any]:
    """Plan the run: the universe, the tickers not yet current, and those one session behind.

    Asks the vendor for the market snapshot at most once per session (it is also the
    listing), and only when a listing is needed or a ticker is one session behind.
    """
    from ohlcv import indexer

    params = context["params"]
    store = _store()
    source = _source(store, run, context["run_id"])
    as_of = _as_of(run)
    plan = indexer.prepare(
        store, source, as_of, market=params["universe"], tickers=params["tickers"], benchmark=params["benchmark"],
        full_refresh=bool(params["full_refresh"]), snapshot=bool(params["snapshot"]),
    )  # fmt: skip
    log.info(
        "as of %s: %d tickers in the universe (%s), %d already current, %d recently without data, %d to index, "
        "%d of them one session behind",
        as_of, len(plan.universe), source.name, plan.current, len(plan.inactive), len(plan.to_index),
        len(plan.one_behind),
    )  # fmt: skip
    return plan.to_xcom()


def apply_snapshot(run: dict[str, str], plan: dict[str, Any], **context: Any) -> list[str]:
    """Append the market snapshot's row to every ticker it continues (one batch of writes, no
    history fetched); return the tickers ``index_ticker`` fetches the history of, each with
    its reason in this task's log."""
    from ohlcv import indexer

    store = _store()
    _hold_lock(store, run)
    planned = indexer.Plan(**plan)
    snapshot = store.saved_snapshot(_source_name(run)) if planned.one_behind else None
    result = indexer.apply_snapshot(
        store, snapshot, planned, context["run_id"], use=bool(context["params"]["snapshot"])
    )
    log.info(
        "as of %s: %d tickers appended from the %s snapshot, %d handed on to index_ticker",
        planned.as_of, len(result.appended), result.session or "(unused)", len(result.handed_on),
    )  # fmt: skip
    indexer.log_handed_on(result)
    return result.to_fetch


def index_ticker(ticker: str, run: dict[str, str], **context: Any) -> None:
    """Fetch and write one ticker (mapped; the task instance is labelled with the code).

    Bad data fails the task without retries (the old cache stays); vendor errors are retried
    by Airflow. Either way the reason is recorded for ``summarize``.
    """
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from ohlcv import indexer
    from ohlcv.errors import BadOhlcvData
    from ohlcv.status import WITHOUT_DATA

    context["ticker"] = ticker
    run_id = context["run_id"]
    store = _store()
    _hold_lock(store, run)
    if context["ti"].try_number > 1:
        store.count(run_id, retries=1)
    as_of = _as_of(run)
    try:
        result = indexer.index_ticker(
            store, _source(store, run, run_id), ticker, as_of, full_refresh=bool(context["params"]["full_refresh"])
        )
    except BaseException as exc:  # AirflowTaskTimeout is a BaseException: a timed-out try records why too
        if indexer.record_failure(store, ticker, as_of, exc, run_id):
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
    from ohlcv import summary as tally

    run = _require_run(run)
    store = _store()
    _hold_lock(store, run)
    universe, planned = (plan or {}).get("universe", []), (plan or {}).get("to_index", [])
    results = store.run_results(context["run_id"])
    summary = tally.summarize(store, list(universe), list(planned), results, _as_of(run), context["run_id"])
    log.info(
        "as of %s: %d in universe, %d planned, %d appended from the snapshot, %d handed on, %d written, "
        "%d repaired, %d unchanged, %d without data, %d failed, %d current",
        summary.as_of, summary.universe, summary.planned, summary.appended, len(handed_on or []), summary.written,
        summary.repaired, summary.unchanged, summary.no_data, len(summary.failed), summary.current,
    )  # fmt: skip
    for code in summary.failed:
        log.warning("failed: %s: %s", code, summary.reasons.get(code, "no reason recorded"))
    for name in ("planned", "appended", "written", "repaired", "unchanged", "no_data", "current"):
        _metric("gauge", f"first_pass.{name}", getattr(summary, name))
    _metric("gauge", "first_pass.handed_on", len(handed_on or []))
    _metric("gauge", "first_pass.failed", len(summary.failed))
    return {**summary.to_xcom(), "handed_on": len(handed_on or [])}


def wait_for_source(run: dict[str, Any], summary: dict[str, Any], **context: Any):
    """Done at once when nothing worth retrying failed; otherwise done when a canary fetch
    answers again. Keeps the run lock alive while it waits.

    Its XCom value is the list of tickers ``retry_ticker`` maps over: the failed ones except
    those with bad data or a block answer, which asking again cannot fix.
    """
    from airflow.sdk import PokeReturnValue
    from airflow.sdk.exceptions import AirflowFailException

    from ohlcv.errors import BadOhlcvData, BreakerOpen, NoData, SourceBlocked, SourceUnavailable

    store = _store()
    _hold_lock(store, _require_run(run))
    failed = summary["retry"]
    hopeless = sorted(set(summary["failed"]) - set(failed))
    if hopeless:
        log.info("not retried (bad data or blocked): %s", ", ".join(hopeless))
    if not failed:
        log.info("nothing to retry; no need to ask the vendor")
        return PokeReturnValue(is_done=True, xcom_value=[])
    as_of = dt.date.fromisoformat(summary["as_of"])
    canary = summary["canary"]
    try:
        _source(store, run, context["run_id"]).history(canary, as_of - dt.timedelta(days=14), as_of)
    except (SourceBlocked, BreakerOpen) as exc:
        raise AirflowFailException(f"not retrying {len(failed)} tickers: {exc}") from exc
    except SourceUnavailable as exc:
        log.info("vendor still failing for canary %s: %s", canary, exc)
        return PokeReturnValue(is_done=False)
    except (NoData, BadOhlcvData):
        pass  # an answer, even an unhelpful one, means the vendor is reachable
    log.info("vendor answers again (canary %s); retrying %d tickers", canary, len(failed))
    return PokeReturnValue(is_done=True, xcom_value=failed)


def retry_ticker(ticker: str, run: dict[str, str], **context: Any) -> None:
    """Index one ticker that failed in ``index_ticker`` (mapped over the failed tickers only)."""
    index_ticker(ticker, run, **context)


def publish_cut(run: dict[str, str], plan: dict[str, Any] | None, **context: Any) -> dict[str, Any]:
    """Publish the watermark after every retry: ``getOHLCV_lastUpdateAt`` is the newest session
    through which every active ticker is cached, ``getOHLCV_lastUpdateCount`` how many tickers
    are cached through it. Updates the Asset ``ohlcv_cache`` (the cut in its ``extra``) only
    when the cut advanced; otherwise this task is skipped and no event is sent."""
    from airflow.sdk.exceptions import AirflowSkipException

    from ohlcv.airflow.assets import CACHE
    from ohlcv.summary import watermark_codes

    run = _require_run(run)
    if not plan:
        raise AirflowSkipException("the run stopped before its universe was planned; the cut stays")
    store = _store()
    _hold_lock(store, run)
    codes = watermark_codes(store, _source_name(run), context["params"]["universe"], plan["universe"])
    mark = store.publish_watermark(codes)
    published = {
        "cut": mark.cut.isoformat() if mark.cut else None,
        "count": mark.count,
        "previous": mark.previous.isoformat() if mark.previous else None,
    }
    log.info("published cut %s (%d tickers cached through it), before %s", *published.values())
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

    from ohlcv.airflow.notify import RUN_FAILED, NotifierFailed, notify
    from ohlcv.summary import standing

    run = _require_run(run)
    store = _store()
    as_of = _as_of(run)
    run_id = context["run_id"]
    problem, still_failing, current = "", [], 0
    universe = plan["universe"] if plan else None
    try:
        if universe is None:
            problem = "the run stopped before its universe was planned; see list_universe"
        else:
            candidates = summary["failed"] if summary else plan["to_index"]
            state = standing(store, list(universe), list(candidates), store.run_results(run_id), as_of)
            still_failing, current = state.still_failing, len(state.current)
    finally:
        released = store.release_run(run["lock_token"])
        log.info("run lock %s; getOHLCV_isUpdating reset", "released" if released else "was no longer ours")
    records = store.failures(still_failing[:20], run_id=run_id)
    reasons = {code: record["reason"] for code, record in records.items()}
    record = _record_run(store, run, run_id, as_of, summary if universe is not None else None, still_failing, current)
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


def _record_run(store, run, run_id, as_of, summary, still_failing, current) -> dict[str, Any]:
    """Store the run's counts in ``ohlcv:runs`` and emit them as metrics."""
    from ohlcv.summary import record_run

    started = dt.datetime.fromisoformat(run["started_at"]) if run.get("started_at") else None
    record = record_run(store, run_id, as_of, summary, still_failing, current, started)
    for name, value in record.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            _metric("gauge", f"run.{name}", value)
    return record
