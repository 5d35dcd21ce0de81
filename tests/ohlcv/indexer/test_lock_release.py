"""The run lock and ``getOHLCV_isUpdating`` are released on every exit path: each step of a CLI
run, of the Airflow tasks that take and release the lock, and of ``migrate`` is killed with an
exception (an ordinary error, and a ``BaseException`` like a signal or Ctrl-C) in turn."""

from __future__ import annotations

import datetime as dt
import types

import pytest

from ohlcv.errors import ConfigurationError
from ohlcv.indexer import appending, planning, runner, steps
from ohlcv.migrate import migrator
from ohlcv.settings import Settings
from ohlcv.sources import SyntheticSource
from ohlcv.store import OhlcvStore

AS_OF = dt.date(2026, 11, 20)
AFTER = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)  # 21:00 KST: the session is final


class Killed(BaseException):
    """What a SIGTERM handler or Ctrl-C raises: not an ``Exception``."""


def _released(store: OhlcvStore) -> bool:
    return store.client.get("getOHLCV_isUpdating") == b"0" and not store.client.exists(store.keys.run_lock)


def _kill(monkeypatch, owner, name: str, error: BaseException) -> None:
    def killed(*args, **kwargs):
        raise error

    monkeypatch.setattr(owner, name, killed)


RUN_ONCE_STEPS = [
    ("store", "publish_sessions"),
    (planning, "prepare"),
    (appending, "apply_snapshot"),
    ("store", "set_history_budget"),
    (appending, "log_handed_on"),
    (runner, "_index"),
    (runner, "summarize"),
    (steps, "watermark_codes"),
    ("store", "publish_watermark"),
]


@pytest.mark.parametrize("error", [RuntimeError("killed"), Killed()], ids=["error", "signal"])
@pytest.mark.parametrize(("owner", "name"), RUN_ONCE_STEPS, ids=[name for _, name in RUN_ONCE_STEPS])
def test_run_once_releases_the_lock_whichever_step_dies(store, monkeypatch, owner, name, error):
    _kill(monkeypatch, store if owner == "store" else owner, name, error)
    with pytest.raises(type(error)):
        runner.run_once(store, SyntheticSource(3), AS_OF, settings=Settings(), run_id="cli-killed", now=AFTER)
    assert _released(store)


@pytest.mark.parametrize("error", [RuntimeError("killed"), Killed()], ids=["error", "signal"])
@pytest.mark.parametrize("step", ["migrate_ticker", "extend_run"])
def test_migrate_releases_the_lock_whichever_step_dies(store, monkeypatch, step, error):
    store.client.set("ticker:000100", b"damaged")
    migration = migrator.Migrator(store, as_of=AS_OF)
    monkeypatch.setattr(migrator, "LOCK_EXTEND_EVERY", -1)  # extend after every ticker
    _kill(monkeypatch, store if step == "extend_run" else migration, step, error)
    with pytest.raises(type(error)):
        migration.run()
    assert _released(store)


def _context(**extra):
    dag_run = types.SimpleNamespace(dag_id="ohlcv_indexer", run_id="scheduled__2026-11-20", run_after=AFTER)
    return {"dag_run": dag_run, "data_interval_end": AFTER, "run_id": dag_run.run_id, **extra}


@pytest.fixture
def airflow_store(store, redis_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OHLCV_REDIS", redis_server.url)
    monkeypatch.setenv("OHLCV_SOURCE", "synthetic:3")
    return store


@pytest.mark.parametrize("error", [RuntimeError("killed"), Killed()], ids=["error", "signal"])
@pytest.mark.parametrize("step", ["publish_sessions", "warn_if_stale"])
def test_start_run_releases_the_lock_it_took_when_it_dies(airflow_store, monkeypatch, step, error):
    from ohlcv.airflow import notify, tasks
    from ohlcv.store import OhlcvStore as Store

    _kill(monkeypatch, Store if step == "publish_sessions" else notify, step, error)
    with pytest.raises(type(error)):
        tasks.start_run(**_context())
    assert _released(airflow_store)


def test_a_bad_stale_sessions_variable_does_not_leave_the_lock_held(airflow_store, monkeypatch):
    from ohlcv.airflow import tasks

    airflow_store.publish(dt.date(2026, 10, 1), 3)  # far behind: the Variable is read
    monkeypatch.setenv("AIRFLOW_VAR_OHLCV_STALE_SESSIONS", "three")
    with pytest.raises(ConfigurationError, match="ohlcv_stale_sessions='three'"):
        tasks.start_run(**_context())
    assert _released(airflow_store)


@pytest.mark.parametrize("error", [RuntimeError("killed"), Killed()], ids=["error", "signal"])
def test_finish_run_releases_the_lock_even_when_reading_the_run_dies(airflow_store, monkeypatch, error):
    from ohlcv.airflow import runtime, tasks

    run = tasks.start_run(**_context())
    assert not _released(airflow_store)
    _kill(monkeypatch, runtime, "as_of", error)
    with pytest.raises(type(error)):
        tasks.finish_run(run, None, None, **_context())
    assert _released(airflow_store)


def test_start_run_refuses_a_session_that_is_not_final_yet_before_taking_the_lock(airflow_store):
    from airflow.sdk.exceptions import AirflowFailException

    from ohlcv.airflow import tasks

    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    dag_run = types.SimpleNamespace(dag_id="ohlcv_indexer", run_id="manual__ahead", run_after=ahead)
    with pytest.raises(AirflowFailException, match="the last final XKRX session"):
        tasks.start_run(dag_run=dag_run, data_interval_end=ahead, run_id=dag_run.run_id)
    assert airflow_store.client.keys("*") == []  # no lock, no flag, no session table
