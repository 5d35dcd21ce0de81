"""ohlcv_indexer under the real scheduler: api-server, scheduler and dag-processor with
LocalExecutor on SQLite, a run triggered through the REST API, checked in Redis and through
the REST API. Every process started here is stopped at the end."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ohlcv import codec
from ohlcv.sources import SyntheticSource

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
pytestmark = [pytest.mark.scheduler, pytest.mark.timeout(900)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(what: str, check, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            result = check()
        except requests.RequestException:
            result = None
        if result:
            return result
        time.sleep(1)
    raise TimeoutError(f"gave up waiting for {what} after {seconds:.0f} s")


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, redis_server):
    home = tmp_path_factory.mktemp("airflow-scheduler-home")
    port = _free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API_AUTH__JWT_SECRET="a-secret-for-this-test-only",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        # only the run this test triggers: no scheduled run competes for the run lock
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
        AIRFLOW_CONN_OHLCV_REDIS=redis_server.url,
        OHLCV_SOURCE="synthetic:3",
        OHLCV_VENDOR_MIN_GAP_SECONDS="0",
    )
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    pool = [AIRFLOW, "pools", "set", "ohlcv_vendor", "4", "vendor calls of ohlcv_indexer"]
    subprocess.run(pool, env=env, check=True, capture_output=True)
    processes = []
    for name, args in (("api-server", ["api-server", "--port", str(port)]), ("scheduler", ["scheduler"]),
                       ("dag-processor", ["dag-processor"])):  # fmt: skip
        log = (home / f"{name}.log").open("w")
        processes.append(
            subprocess.Popen([AIRFLOW, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )
    try:
        yield f"http://127.0.0.1:{port}/api/v2"
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_a_run_triggered_through_the_rest_api_fills_redis_and_labels_tasks_with_tickers(airflow, redis_client):
    dag = f"{airflow}/dags/ohlcv_indexer"
    _wait("the DAG to be parsed", lambda: requests.get(dag, timeout=5).status_code == 200, 180)
    triggered = requests.post(f"{dag}/dagRuns", json={"logical_date": None, "conf": {}}, timeout=10)
    assert triggered.status_code == 200, triggered.text
    run_id = triggered.json()["dag_run_id"]
    assert requests.patch(dag, json={"is_paused": False}, timeout=10).status_code == 200

    def finished():
        state = requests.get(f"{dag}/dagRuns/{run_id}", timeout=5).json()["state"]
        return state if state in ("success", "failed") else None

    assert _wait("the run to finish", finished, 600) == "success"

    codes = [*SyntheticSource(3).list_universe("KRX"), "KS11"]
    assert redis_client.get("getOHLCV_isUpdating") == b"0"
    assert redis_client.exists("ohlcv:lock:run") == 0
    last = redis_client.get("getOHLCV_lastUpdateAt")
    assert {code.decode(): day for code, day in redis_client.hgetall("ticker:lastUpdateAt").items()} == {
        code: last for code in codes
    }
    for code in codes:
        assert codec.decode(redis_client.get(f"ticker:{code}")).index[-1].date().isoformat() == last.decode()

    instances = requests.get(f"{dag}/dagRuns/{run_id}/taskInstances", params={"limit": 100}, timeout=10).json()
    labels = {ti["rendered_map_index"] for ti in instances["task_instances"] if ti["task_id"] == "index_ticker"}
    assert labels == set(codes)
