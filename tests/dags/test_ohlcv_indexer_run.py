"""Whole runs of ohlcv_indexer with dag.test(), asserting the Redis keys they leave."""

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from airflow.dag_processing.dagbag import DagBag

from ohlcv import codec
from ohlcv.sources import SyntheticSource

DAGS = Path(__file__).resolve().parents[2] / "dags"
LONDON = "Europe/London"
pytestmark = pytest.mark.dagrun


@pytest.fixture
def run_dag(airflow_db, redis_server, redis_client, monkeypatch):
    """Run the DAG once in-process against the session's Redis; return the finished DagRun."""
    monkeypatch.setenv("AIRFLOW_CONN_OHLCV_REDIS", redis_server.url)

    def run(source: str, run_after: dt.datetime, conf: dict | None = None, retries: int | None = None):
        monkeypatch.setenv("OHLCV_SOURCE", source)
        dag = DagBag(dag_folder=str(DAGS)).dags["ohlcv_indexer"]
        if retries is not None:  # retry delays would only slow the test down
            for task in dag.tasks:
                task.retries = retries
        return dag.test(run_after=run_after, logical_date=run_after, run_conf=conf)

    return run


def keys(client) -> set[str]:
    return {key.decode() for key in client.keys("*")}


def test_a_run_writes_the_original_key_layout(run_dag, redis_client):
    # Friday 20 November 2026, 08:23 in London = 17:23 in Seoul: that day's session is complete.
    dag_run = run_dag("synthetic:8", pd.Timestamp("2026-11-20 08:23", tz=LONDON).to_pydatetime())
    assert dag_run.state == "success"

    source = SyntheticSource(8)
    codes = [*source.list_universe("KRX"), "KS11"]
    assert keys(redis_client) == {
        *(f"ticker:{code}" for code in codes),
        "ticker:lastUpdateAt",
        "getOHLCV_isUpdating",
        "getOHLCV_lastUpdateAt",
        "getOHLCV_lastUpdateCount",
    }
    last_updates = {key.decode(): value.decode() for key, value in redis_client.hgetall("ticker:lastUpdateAt").items()}
    assert set(last_updates) == set(codes)
    for code in codes:
        cached = codec.decode(redis_client.get(f"ticker:{code}"))
        pd.testing.assert_frame_equal(cached, source.history(code, None, dt.date(2026, 11, 20)))
        assert last_updates[code] == cached.index[-1].date().isoformat() == "2026-11-20"
        assert codec.source_of(redis_client.get(f"ticker:{code}")) == "synthetic"
    assert redis_client.get("getOHLCV_isUpdating") == b"0"
    assert redis_client.get("getOHLCV_lastUpdateAt") == b"2026-11-20"
    assert redis_client.get("getOHLCV_lastUpdateCount") == b"9"


def test_a_run_on_sunday_indexes_through_friday(run_dag, redis_client):
    dag_run = run_dag(
        "synthetic:3", pd.Timestamp("2026-11-22 09:23", tz=LONDON).to_pydatetime(), conf={"tickers": ["000100"]}
    )
    assert dag_run.state == "success"
    assert redis_client.hgetall("ticker:lastUpdateAt") == {b"000100": b"2026-11-20", b"KS11": b"2026-11-20"}
    assert redis_client.get("getOHLCV_lastUpdateAt") == b"2026-11-20"


def test_a_ticker_that_keeps_failing_turns_the_run_red_and_frees_the_lock(run_dag, redis_client, tmp_path):
    good = "Date,Open,High,Low,Close,Volume\n2026-11-19,100,110,95,105,1000\n2026-11-20,105,108,101,102,900\n"
    (tmp_path / "000100.csv").write_text(good)
    (tmp_path / "000200.csv").write_text(good)
    (tmp_path / "000300.csv").write_text("Date,Open,High,Low,Close,Volume\n2026-11-20,abc,1,1,1,1\n")
    dag_run = run_dag(
        f"csv:{tmp_path}",
        pd.Timestamp("2026-11-20 10:23", tz=LONDON).to_pydatetime(),
        conf={"benchmark": []},
        retries=0,
    )
    assert dag_run.state == "failed"
    states = {(ti.task_id, ti.map_index): ti.state for ti in dag_run.get_task_instances()}
    assert states[("finish_run", -1)] == "failed"
    assert states[("summarize", -1)] == "success"
    assert set(redis_client.hkeys("ticker:lastUpdateAt")) == {b"000100", b"000200"}
    assert redis_client.exists("ticker:000300") == 0
    assert redis_client.get("getOHLCV_isUpdating") == b"0"
    assert redis_client.exists("ohlcv:lock:run") == 0
    assert redis_client.get("getOHLCV_lastUpdateCount") == b"2"
