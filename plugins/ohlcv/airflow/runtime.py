"""What every task of an ``ohlcv_indexer`` run takes from Airflow: its settings, the Redis
store, the run's vendor, the run lock, the run's ``as_of`` and Airflow's metrics.

Heavy imports stay inside the functions so that parsing the DAG file costs almost nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ohlcv.settings import Settings

log = logging.getLogger(__name__)


def settings(run: dict[str, Any] | None = None) -> Settings:
    """This task's settings, built once per task: the environment (``Settings.from_env``) with
    the Variables that override it.

    The vendor is the one ``start_run`` fixed in ``run`` for the whole run, so a run never
    mixes vendors and its thousands of mapped tasks do not each look the Variable up; without
    one (``start_run`` itself), the Variable ``ohlcv_source``, else ``OHLCV_SOURCE``.
    """
    from ohlcv.settings import Settings

    built = Settings.from_env()
    source = (run or {}).get("source")
    if not source:
        from airflow.sdk import Variable

        source = Variable.get("ohlcv_source", default=None)
    return dataclasses.replace(built, source=source) if source else built


def run_source(store, settings: Settings, run_id: str, *, budgeted: bool = True, tables: bool = False):
    """The run's vendor behind the breaker, the shared rate limit, the run's history budget
    (unless ``budgeted`` is false: the sensor's canary) and the run's counters; with ``tables``
    (the tasks that read the market's tables), the KRX Open API as the second table source when
    a key is configured (``openapi_key``)."""
    from ohlcv.sources import from_spec, second_tables
    from ohlcv.sources.guard import GuardedSource

    second = second_tables(openapi_key(settings)) if tables else None
    return GuardedSource(
        from_spec(settings.source), store, run_id=run_id, settings=settings, budgeted=budgeted, second=second
    )


def openapi_key(settings: Settings) -> str | None:
    """The KRX Open API key: the password of the Connection ``ohlcv_krx_openapi``, else
    ``OHLCV_KRX_OPENAPI_KEY``; None when neither is set. Airflow masks it in task logs."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from ohlcv.sources.krx_openapi import CONNECTION_ID

    try:
        connection = BaseHook.get_connection(CONNECTION_ID)
    except AirflowNotFoundException:
        return settings.krx_openapi_key
    return connection.password or settings.krx_openapi_key


def source_name(settings: Settings) -> str:
    from ohlcv.sources import from_spec

    return from_spec(settings.source).name


def open_store(settings: Settings):
    from ohlcv.airflow.hook import OhlcvRedisHook
    from ohlcv.keys import KeySpace

    hook = OhlcvRedisHook(failover_wait=settings.failover_wait)
    return hook.get_store(KeySpace(settings.key_prefix), revision_days=settings.revision_days)


def as_of(run: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(run["as_of"])


def metric(kind: str, name: str, value: float) -> None:
    """Emit through Airflow's metrics (StatsD/OpenTelemetry when enabled); never fail a task."""
    try:
        from airflow.sdk.observability.stats import Stats

        getattr(Stats, kind)(f"ohlcv.{name}", value)
    except Exception:
        log.debug("metric ohlcv.%s not emitted", name, exc_info=True)


def open_run(run: dict[str, Any] | None, *, hold: bool = True):
    """Every task's start after ``start_run``: the run's settings and its store, and (``hold``)
    the run lock kept alive. Fails without retries when ``start_run`` did not finish."""
    run = require_run(run)
    built = settings(run)
    store = open_store(built)
    if hold:
        hold_lock(store, run)
    return built, store


def hold_lock(store, run: dict[str, Any]) -> None:
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


def require_run(run: dict[str, Any] | None) -> dict[str, Any]:
    """``start_run``'s result; without it (it failed, e.g. another run holds the lock) there is
    nothing to summarize or release, and retrying cannot help."""
    from airflow.sdk.exceptions import AirflowFailException

    if not run:
        raise AirflowFailException("start_run did not finish (see its log: another run may hold the lock)")
    return run


def record_run(store, run, run_id, as_of, summary, still_failing, current, overdue=()) -> dict[str, Any]:
    """Store the run's counts in ``ohlcv:runs`` and emit them as metrics."""
    from ohlcv.indexer.summary import record_run

    started = dt.datetime.fromisoformat(run["started_at"]) if run.get("started_at") else None
    record = record_run(store, run_id, as_of, summary, still_failing, current, started, overdue=list(overdue))
    for name, value in record.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            metric("gauge", f"run.{name}", value)
    return record


def tries_left(context: dict) -> bool:
    """Whether Airflow tries this task again if this try fails (False outside a task instance)."""
    ti, task = context.get("ti"), context.get("task")
    if ti is None:
        return False
    return ti.try_number <= getattr(ti, "max_tries", task.retries if task is not None else 0)
