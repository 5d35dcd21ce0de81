"""Every DAG in dags/ imports cleanly and follows the project's rules."""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS = Path(__file__).resolve().parents[2] / "dags"


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


def test_schedule_replaces_the_jenkins_trigger(dagbag):
    dag = dagbag.dags["ohlcv_indexer"]
    assert dag.timetable.summary == "23 8-12 * * *"
    assert str(dag.timetable._timezone) in ("Europe/London", "Timezone('Europe/London')")
    assert dag.max_active_runs == 1
    assert dag.catchup is False


def test_params_and_their_defaults(dagbag):
    params = dagbag.dags["ohlcv_indexer"].params
    assert params["tickers"] == []
    assert params["universe"] == "KRX"
    assert params["benchmark"] == ["KS11"]
    assert params["full_refresh"] is False
    assert params["snapshot"] is True


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
