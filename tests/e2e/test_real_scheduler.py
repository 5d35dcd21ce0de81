"""ohlcv_indexer under the real scheduler: api-server, scheduler and dag-processor with
LocalExecutor on SQLite and the Airflow settings of docker-compose.yaml, a run triggered
through the REST API, checked in Redis, through the REST API and in the web UI rendered by
headless Chromium. Every process started here is stopped at the end."""

from __future__ import annotations

import ast
import datetime as dt
import html
import os
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest
import requests

from ohlcv import codec
from ohlcv.keys import KeySpace
from ohlcv.sources import SyntheticSource
from tests.e2e.stack import ROOT, compose_settings, running_stack, wait

pytestmark = [pytest.mark.scheduler, pytest.mark.timeout(900)]

CODES = [*SyntheticSource(3).list_universe("KRX"), "KS11"]
EXAMPLE = "ohlcv_forward_test_example"
#: where the browser check leaves its screenshot (kept by CI as a test artifact)
ARTIFACTS = Path(os.environ.get("OHLCV_TEST_ARTIFACTS", ROOT / "artifacts"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1600,1000",
    # time for the single-page app to fetch and render before the DOM or screenshot is taken
    "--virtual-time-budget=20000",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server):
    with running_stack(
        tmp_path_factory.mktemp("airflow-scheduler-home"), redis_server.url, source="synthetic:3",
        settings=compose_settings(),
    ) as stack:  # fmt: skip
        yield stack


@pytest.fixture(scope="module")
def finished_run(stack, redis_server):
    """One run triggered through the REST API into an empty cache, waited for; its run id."""
    redis_server.flush()
    stack.wait_for_dag()
    unpaused = requests.patch(f"{stack.api}/dags/{EXAMPLE}", json={"is_paused": False}, timeout=30)
    unpaused.raise_for_status()  # the forward-test example waits for the indexer's Asset event
    run_id = stack.trigger()
    assert stack.wait_for_run(run_id, 600) == "success", (stack.home / "scheduler.log").read_text()[-3000:]
    return run_id


def test_a_run_triggered_through_the_rest_api_fills_redis_and_labels_tasks_with_tickers(
    stack, finished_run, redis_server
):
    client = redis_server.client()
    assert client.get("getOHLCV_isUpdating") == b"0"
    assert client.exists("ohlcv:lock:run") == 0
    last = client.get("getOHLCV_lastUpdateAt")
    assert {code.decode(): day for code, day in client.hgetall("ticker:lastUpdateAt").items()} == {
        code: last for code in CODES
    }
    for code in CODES:
        assert codec.decode(client.get(f"ticker:{code}")).index[-1].date().isoformat() == last.decode()

    instances = stack.task_instances(finished_run, "index_ticker")
    assert {ti["rendered_map_index"] for ti in instances} == set(CODES)
    # the per-ticker tasks report through Redis, not XCom
    assert stack.xcom_keys(finished_run, "index_ticker") == set()
    results = client.hgetall(KeySpace().run_results(finished_run))
    assert results == {code.encode(): b"written" for code in CODES}


def test_the_forward_test_dag_runs_after_the_indexer_and_reads_the_cut_it_was_given(stack, finished_run, redis_server):
    published = redis_server.client().get("getOHLCV_lastUpdateAt").decode()
    (announced,) = stack.task_instances(finished_run, "publish_cut")
    assert announced["state"] == "success"  # the cut advanced (into an empty cache): an event was sent

    def downstream_run():
        runs = requests.get(f"{stack.api}/dags/{EXAMPLE}/dagRuns", timeout=30).json()["dag_runs"]
        return next((run for run in runs if run["state"] in ("success", "failed")), None)

    run = wait("the forward-test DAG to run on the Asset event", downstream_run, 300, every=3)
    assert run["state"] == "success"
    assert run["run_type"] == "asset_triggered"
    assert dt.datetime.fromisoformat(run["start_date"]) >= dt.datetime.fromisoformat(announced["end_date"])
    url = f"{stack.api}/dags/{EXAMPLE}/dagRuns/{run['dag_run_id']}/taskInstances/read_at_cut/xcomEntries/return_value"
    read = requests.get(url, params={"deserialize": True}, timeout=30).json()["value"]
    read = read if isinstance(read, dict) else ast.literal_eval(read)
    assert read["cut"] == published  # the cut in the event's extra
    assert read["read"]["KS11"]["last"] == published  # and the read ended there
    assert read["revision"] == int(redis_server.client().get("ohlcv:revision"))  # pinned to the run's revision


def _chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("OHLCV_REQUIRE_BROWSER"):
        pytest.fail("Chromium is required here (OHLCV_REQUIRE_BROWSER): apt-get install chromium")
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)")


def _render(url: str, *, profile: Path, screenshot: Path | None = None) -> str:
    """The page at ``url`` after its scripts ran, as Chromium's DOM; optionally a screenshot."""
    chromium = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    if screenshot:
        subprocess.run([*chromium, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=120)
    dom = subprocess.run([*chromium, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120)
    return dom.stdout


def _visible_text(dom: str) -> str:
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def test_the_grid_shows_each_mapped_task_under_its_ticker_in_chromium(stack, finished_run, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "ohlcv_indexer-grid-index_ticker.png"
    screenshot.unlink(missing_ok=True)
    run = urllib.parse.quote(finished_run, safe="")
    url = f"{stack.ui}/dags/ohlcv_indexer/runs/{run}/tasks/index_ticker/mapped"

    dom = _render(url, profile=tmp_path / "chromium", screenshot=screenshot)

    text = _visible_text(dom)
    # the grid with the DAG's tasks, and the mapped instances listed by ticker
    for task_id in ("start_run", "index_ticker", "summarize", "finish_run"):
        assert task_id in text
    cells = {html.unescape(cell).strip() for cell in re.findall(r">([^<>]{1,40})<", dom)}
    assert set(CODES) <= cells, f"ticker labels missing from the page: {sorted(set(CODES) - cells)}"
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = (
        int.from_bytes(screenshot.read_bytes()[16:20], "big"),
        int.from_bytes(screenshot.read_bytes()[20:24], "big"),
    )
    assert (width, height) == (1600, 1000)
