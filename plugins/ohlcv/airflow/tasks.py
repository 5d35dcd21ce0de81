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


def _source():
    from airflow.sdk import Variable

    from ohlcv.sources import from_spec, spec_from_env

    spec = Variable.get("ohlcv_source", default=None) or spec_from_env()
    return from_spec(spec)


def _store():
    from ohlcv.airflow.hook import OhlcvRedisHook

    return OhlcvRedisHook().get_store()


def _as_of(run: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(run["as_of"])


def start_run(**context: Any) -> dict[str, str]:
    """Take the run lock, set ``getOHLCV_isUpdating`` to 1 and fix the run's ``as_of`` session."""
    from ohlcv.calendar import last_complete_session

    dag_run = context["dag_run"]
    moment = context.get("data_interval_end") or dag_run.run_after
    as_of = last_complete_session(moment)
    started = _store().begin_run()
    if started.found_stale_flag:
        log.warning("getOHLCV_isUpdating was 1 with no run holding the lock: an earlier run died without cleanup")
    log.info("run %s indexes through the XKRX session %s (trigger time %s)", dag_run.run_id, as_of, moment)
    return {"as_of": as_of.isoformat(), "lock_token": started.token}


def list_universe(run: dict[str, str], **context: Any) -> list[str]:
    """The tickers this run indexes: the ``tickers`` param or the ``universe`` listing, plus ``benchmark``."""
    from ohlcv import indexer

    params = context["params"]
    source = _source()
    codes = indexer.universe(source, params["universe"], params["tickers"], params["benchmark"])
    log.info("%d tickers to index from %s as of %s", len(codes), source.name, run["as_of"])
    return codes


def index_ticker(ticker: str, run: dict[str, str], **context: Any) -> dict[str, Any]:
    """Fetch and write one ticker (mapped; the task instance is labelled with the code)."""
    from ohlcv import indexer

    context["ticker"] = ticker
    result = indexer.index_ticker(
        _store(), _source(), ticker, _as_of(run), full_refresh=bool(context["params"]["full_refresh"])
    )
    return result.to_xcom()


def summarize(run: dict[str, str], universe: list[str], results: Any, **context: Any) -> dict[str, Any]:
    """Count what the mapped tasks did, publish the meta keys and return the failed tickers."""
    from ohlcv import indexer

    store = _store()
    summary = indexer.summarize(store, list(universe), list(results), _as_of(run))
    store.publish_run(_as_of(run), summary.current)
    log.info(
        "as of %s: %d planned, %d written, %d fresh, %d without data, %d failed, %d current",
        summary.as_of,
        summary.planned,
        summary.written,
        summary.fresh,
        summary.no_data,
        len(summary.failed),
        summary.current,
    )
    if summary.failed:
        log.warning("failed tickers: %s", ", ".join(summary.failed))
    return summary.to_xcom()


def wait_for_source(summary: dict[str, Any], **context: Any):
    """Done at once when nothing failed; otherwise done when a canary fetch answers again.

    Its XCom value is the list of tickers ``retry_ticker`` maps over.
    """
    from airflow.sdk import PokeReturnValue

    from ohlcv.errors import BadOhlcvData, NoData, SourceUnavailable

    failed = summary["failed"]
    if not failed:
        log.info("nothing failed; no need to ask the vendor")
        return PokeReturnValue(is_done=True, xcom_value=[])
    as_of = dt.date.fromisoformat(summary["as_of"])
    canary = summary["canary"]
    try:
        _source().history(canary, as_of - dt.timedelta(days=14), as_of)
    except SourceUnavailable as exc:
        log.info("vendor still failing for canary %s: %s", canary, exc)
        return PokeReturnValue(is_done=False)
    except (NoData, BadOhlcvData):
        pass  # an answer, even an unhelpful one, means the vendor is reachable
    log.info("vendor answers again (canary %s); retrying %d tickers", canary, len(failed))
    return PokeReturnValue(is_done=True, xcom_value=failed)


def retry_ticker(ticker: str, run: dict[str, str], **context: Any) -> dict[str, Any]:
    """Index one ticker that failed in ``index_ticker`` (mapped over the failed tickers only)."""
    return index_ticker(ticker, run, **context)


def finish_run(
    run: dict[str, str], universe: list[str], summary: dict[str, Any], retried: Any, **context: Any
) -> dict[str, Any]:
    """Publish the final meta keys and release the lock; fail the run if tickers still fail."""
    from airflow.sdk.exceptions import AirflowFailException

    from ohlcv import indexer

    store = _store()
    as_of = _as_of(run)
    recovered = {result["ticker"] for result in (retried or []) if result}
    still_failing = [code for code in summary["failed"] if code not in recovered]
    try:
        current = indexer.count_current(store, list(universe), as_of)
        store.publish_run(as_of, current)
    finally:
        released = store.release_run(run["lock_token"])
        log.info("run lock %s; getOHLCV_isUpdating reset", "released" if released else "was no longer ours")
    if still_failing:
        raise AirflowFailException(
            f"{len(still_failing)} tickers still failing after the retry: {', '.join(still_failing[:50])}"
        )
    return {"as_of": as_of.isoformat(), "current": current, "recovered": sorted(recovered)}
