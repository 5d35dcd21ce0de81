"""Every DAG in dags/ imports cleanly and follows the project's rules."""

import datetime as dt
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS = Path(__file__).resolve().parents[2] / "dags"
LONDON = "Europe/London"


@pytest.fixture(scope="module")
def dagbag():
    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == {"ohlcv_indexer", "ohlcv_forward_test_example"}


@pytest.mark.parametrize("dag_id", ["ohlcv_indexer", "ohlcv_forward_test_example"])
def test_tags_docs_and_retries(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert "ohlcv" in dag.tags
    assert dag.doc_md.lstrip().startswith("### ")  # the title the UI shows
    for task in dag.tasks:
        assert task.retries >= 2, task.task_id


def test_the_example_forward_test_runs_when_the_indexer_advances_the_cut(dagbag):
    indexer, example = dagbag.dags["ohlcv_indexer"], dagbag.dags["ohlcv_forward_test_example"]
    updates = {outlet.name for task in indexer.tasks for outlet in task.outlets}
    assert updates == {"ohlcv_cache"}
    assert indexer.get_task("publish_cut").outlets[0].name == "ohlcv_cache"  # the only task that announces it
    assert [asset.name for asset in example.timetable.asset_condition.objects] == ["ohlcv_cache"]


def test_shape_follows_the_design(dagbag):
    dag = dagbag.dags["ohlcv_indexer"]
    order = [
        "start_run", "list_universe", "apply_snapshot", "index_ticker", "summarize", "wait_for_source", "retry_ticker",
        "publish_cut", "finish_run",
    ]  # fmt: skip
    assert sorted(dag.task_ids) == sorted(order)
    for upstream, downstream in itertools.pairwise(order):
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)
    assert dag.get_task("summarize").trigger_rule == "all_done"
    assert dag.get_task("publish_cut").trigger_rule == "all_done"
    assert dag.get_task("finish_run").trigger_rule == "all_done"
    assert [task.task_id for task in dag.leaves] == ["finish_run"]  # the task whose state is the run's


def test_mapped_tasks_are_labelled_with_the_ticker(dagbag):
    dag = dagbag.dags["ohlcv_indexer"]
    for task_id in ("index_ticker", "retry_ticker"):
        task = dag.get_task(task_id)
        assert (
            task.partial_kwargs.get("map_index_template") == "{{ ticker }}" or task.map_index_template == "{{ ticker }}"
        )


def fire_times(dag, first_day: str, count: int) -> list[str]:
    """The first ``count`` scheduled run times from ``first_day`` on, in London time."""
    from airflow.timetables.base import DataInterval, TimeRestriction

    restriction = TimeRestriction(earliest=pendulum.parse(first_day, tz=LONDON), latest=None, catchup=True)
    times, last = [], None
    for _ in range(count):
        info = dag.timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        times.append(info.run_after.in_timezone(LONDON).strftime("%a %H:%M"))
        last = DataInterval.exact(info.run_after)
    return times


@pytest.mark.parametrize("first_day", ["2026-11-20", "2026-07-03"])  # GMT and BST
def test_runs_start_hourly_at_23_past_from_8_to_12_london_time_like_the_jenkins_job_plus_a_night_run(dagbag, first_day):
    dag = dagbag.dags["ohlcv_indexer"]
    assert fire_times(dag, first_day, 7) == [
        "Fri 08:23",
        "Fri 09:23",
        "Fri 10:23",
        "Fri 11:23",
        "Fri 12:23",
        "Fri 18:23",  # 03:23 KST in winter, 02:23 KST in summer: the session's final table is out
        "Sat 08:23",
    ]
    assert dag.max_active_runs == 1  # a run never overlaps the next one's lock
    assert dag.catchup is False


def test_a_run_without_conf_plans_the_krx_listing_plus_the_kospi_index(
    dagbag, airflow_db, redis_server, redis_client, monkeypatch
):
    from ohlcv.airflow import tasks

    monkeypatch.setenv("AIRFLOW_CONN_OHLCV_REDIS", redis_server.url)
    params = dagbag.dags["ohlcv_indexer"].params.validate()
    run = {"as_of": "2026-11-20", "lock_token": "run-a", "source": "synthetic:3"}
    plan = tasks.list_universe(run, params=params, run_id="run-a")
    assert plan["universe"] == ["000100", "000200", "000300", "KS11"]
    assert plan["to_index"] == plan["universe"]  # nothing cached yet


def test_parsing_the_dag_file_imports_no_data_libraries_and_needs_no_redis():
    """The scheduler parses the file often: no pandas, vendor or calendar import, no I/O."""
    probe = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "print(sorted(m for m in ('pandas', 'FinanceDataReader', 'exchange_calendars', 'redis') if m in sys.modules))"
    )
    env = {**os.environ, "AIRFLOW_CONN_OHLCV_REDIS": "redis://127.0.0.1:1/0"}  # nothing listens on port 1
    done = subprocess.run(
        [sys.executable, "-c", probe, str(DAGS / "ohlcv_indexer.py")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_vendor_calls_run_in_the_vendor_pool(dagbag):
    dag = dagbag.dags["ohlcv_indexer"]
    for task_id in ("index_ticker", "wait_for_source", "retry_ticker"):
        task = dag.get_task(task_id)
        pool = task.partial_kwargs.get("pool") if hasattr(task, "partial_kwargs") else None
        assert (pool or task.pool) == "ohlcv_vendor", task_id
    assert dag.get_task("summarize").pool == "default_pool"


def test_a_returned_dict_is_one_xcom_not_one_per_key(dagbag):
    # With multiple_outputs (inferred from a dict return annotation) every key becomes an
    # XCom of its own: seven api-server calls per ticker instead of one.
    dag = dagbag.dags["ohlcv_indexer"]
    assert {task.task_id: task.multiple_outputs for task in dag.tasks} == dict.fromkeys(dag.task_ids, False)


def test_the_per_ticker_tasks_push_no_xcom(dagbag):
    # thousands of them: their results go to Redis (ohlcv:run:{run_id}:results) instead
    dag = dagbag.dags["ohlcv_indexer"]
    for task_id in ("index_ticker", "retry_ticker"):
        assert dag.get_task(task_id).partial_kwargs["do_xcom_push"] is False, task_id


def test_a_per_ticker_try_outlives_the_ticker_deadline_by_a_minute(dagbag):
    # Airflow's timeout would kill the try (and retry it) before TickerDeadline could end it
    dag = dagbag.dags["ohlcv_indexer"]
    for task_id in ("index_ticker", "retry_ticker"):
        timeout = dag.get_task(task_id).partial_kwargs["execution_timeout"]
        assert timeout == dt.timedelta(seconds=600 + 60), task_id
    assert dag.get_task("list_universe").execution_timeout == dt.timedelta(minutes=10)


def test_the_schedule_is_deployment_configuration():
    """OHLCV_SCHEDULE replaces the cron expression; ``none`` leaves triggered and backfill runs only."""
    probe = (
        "import sys, runpy; dag = runpy.run_path(sys.argv[1])['ohlcv_indexer']();"
        "print(type(dag.timetable).__name__, getattr(dag.timetable, '_expression', '-'),"
        " getattr(dag.timetable, '_timezone', '-'))"
    )
    for value, expected in (
        ("none", "NullTimetable - -"),
        ("30 19 * * 1-5", "CronTriggerTimetable 30 19 * * 1-5 Asia/Seoul"),
    ):
        env = {**os.environ, "OHLCV_SCHEDULE": value, "OHLCV_SCHEDULE_TIMEZONE": "Asia/Seoul"}
        done = subprocess.run(
            [sys.executable, "-c", probe, str(DAGS / "ohlcv_indexer.py")], capture_output=True, text=True, env=env
        )
        assert done.stdout.strip().splitlines()[-1] == expected, done.stderr[-2000:]
