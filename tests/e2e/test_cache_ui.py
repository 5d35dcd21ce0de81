"""The cache's pages in Airflow's web UI, in headless Chromium driven by Playwright: an operator
logs in, opens the cache page from the nav, checks its counts against Redis, filters the table,
opens a ticker's chart and the views attached to a DAG run and a mapped task instance. The stack
knows one user and no anonymous admin: the plugin's endpoints refuse a request without a login.
Screenshots are kept as test artifacts (``OHLCV_TEST_ARTIFACTS``)."""

from __future__ import annotations

import os
import shutil
import urllib.parse
from pathlib import Path

import pytest
import requests

from ohlcv.keys import KeySpace
from ohlcv.overview import cache as overview
from ohlcv.sources import SyntheticSource
from ohlcv.store import OhlcvStore
from tests.e2e.stack import ROOT, compose_settings, running_stack

pytestmark = [pytest.mark.scheduler, pytest.mark.timeout(900)]

USER, PASSWORD = "operator", "a-test-password-only"
FAILING = "000300"
SOURCE = f"synthetic:4?fail={FAILING}"
ARTIFACTS = Path(os.environ.get("OHLCV_TEST_ARTIFACTS", ROOT / "artifacts"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
#: a short stretch of the ticker chart whose candles are counted
FROM, TO = "2026-10-01", "2026-10-30"


def _chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("OHLCV_REQUIRE_BROWSER"):
        pytest.fail("Chromium is required here (OHLCV_REQUIRE_BROWSER): apt-get install chromium")
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server):
    # the failing ticker's retries a second apart, not minutes (read when the DAG file is parsed)
    settings = {**compose_settings(), "OHLCV_RETRY_DELAY_SECONDS": "1", "OHLCV_SOURCE_POKE_SECONDS": "1"}
    with running_stack(
        tmp_path_factory.mktemp("airflow-ui-home"), redis_server.url, source=SOURCE, settings=settings,
        users={USER: PASSWORD},
    ) as stack:  # fmt: skip
        yield stack


@pytest.fixture(scope="module")
def finished_run(stack, redis_server):
    """One run into an empty cache, in which one ticker keeps failing: the run ends red."""
    redis_server.flush()
    stack.wait_for_dag()
    run_id = stack.trigger()
    assert stack.wait_for_run(run_id, 600) == "failed", (stack.home / "scheduler.log").read_text()[-3000:]
    return run_id


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page(browser, stack, finished_run):
    """A page logged in through Airflow's own login form."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(f"{stack.ui}/")
    page.wait_for_url("**/auth/login**", timeout=60_000)
    page.fill("input[name=username]", USER)
    page.fill("input[type=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)
    yield page
    page.close()


def _shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=False)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def test_the_plugin_refuses_anonymous_requests(stack, finished_run):
    for path in ("ohlcv/api/cache", "ohlcv/cache", "ohlcv/static/cache.js", "ohlcv/api/ticker/000100"):
        assert requests.get(f"{stack.ui}/{path}", timeout=30, allow_redirects=False).status_code == 401, path
    assert stack.http.get(f"{stack.ui}/ohlcv/api/cache", timeout=30).status_code == 200


def test_the_cache_page_shows_what_redis_holds_and_filters_its_table(page, stack, redis_server):
    page.goto(f"{stack.ui}/plugin/ohlcv-cache")
    frame = page.frame_locator("iframe[title='OHLCV cache']")
    frame.locator("body[data-loaded=true]").wait_for(timeout=60_000)
    expected = overview.state(OhlcvStore(redis_server.client(), KeySpace()), damage=False)
    assert frame.locator("#cut").inner_text() == expected["cut"]["last_update_at"]
    totals = frame.locator("#markets tr[data-market=all]")
    for state, count in expected["tickers"]["by_state"].items():
        assert totals.locator(f"[data-state={state}]").inner_text() == f"{count:,}", state
    assert expected["tickers"]["by_state"]["failing"] == 1
    assert "Needs attention" in frame.locator("#attention-box").inner_text()
    assert frame.locator("#redis").inner_text() == f"127.0.0.1:{redis_server.port}"  # where the cache lives
    assert frame.locator("#runs-chart canvas").count() > 0
    _shot(page, "ohlcv-cache-page.png")
    frame.locator("#filter").fill(FAILING)
    assert frame.locator("#shown").get_attribute("data-count") == "1"
    row = frame.locator(f"#not-current tr[data-code='{FAILING}']")
    assert row.locator(".state").inner_text() == "failing"
    frame.locator("#filter").fill("")
    frame.locator("#state-filter").select_option("failing")
    assert frame.locator("#not-current tbody tr").count() == 1


def test_a_ticker_chart_draws_its_candles(page, stack, redis_server):
    code = "000100"
    page.goto(f"{stack.ui}/ohlcv/ticker?code={code}&from={FROM}&to={TO}")
    page.locator("body[data-loaded=true]").wait_for(timeout=60_000)
    history = OhlcvStore(redis_server.client(), KeySpace()).read_series(code)
    sessions = len(history.loc[FROM:TO])
    assert sessions > 15
    assert page.locator("#candles").get_attribute("data-candles") == str(sessions)
    assert page.locator("#last-update").inner_text() == history.index[-1].date().isoformat()
    assert page.locator("#source").inner_text() == "synthetic"
    # the candles are on a canvas: count the pixels that are neither background nor grid
    drawn = page.evaluate(
        """() => {
            const canvases = [...document.querySelectorAll('#chart canvas')];
            const biggest = canvases.sort((a, b) => b.width * b.height - a.width * a.height)[0];
            const data = biggest.getContext('2d').getImageData(0, 0, biggest.width, biggest.height).data;
            let colored = 0;
            for (let i = 0; i < data.length; i += 4) {
                const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
                if (a > 0 && (Math.abs(r - b) > 60)) colored += 1;  // the red and blue candle bodies
            }
            return colored;
        }"""
    )
    assert drawn > 500
    _shot(page, "ohlcv-ticker-chart.png")
    page.locator("#whole").click()
    assert page.locator("#candles").get_attribute("data-candles") == str(len(history))


def test_the_views_on_a_run_and_on_a_mapped_task_instance(page, stack, finished_run):
    run = urllib.parse.quote(finished_run, safe="")
    (first,) = [ti for ti in stack.task_instances(finished_run, "index_ticker") if ti["map_index"] == 0]
    page.goto(f"{stack.ui}/dags/ohlcv_indexer/runs/{run}/tasks/index_ticker/mapped/0/plugin/ohlcv-ticker")
    frame = page.frame_locator("iframe[title='OHLCV ticker']")
    frame.locator("body[data-loaded=true]").wait_for(timeout=60_000)
    assert frame.locator("#title").inner_text().startswith(first["rendered_map_index"])
    _shot(page, "ohlcv-task-instance-ticker.png")
    page.goto(f"{stack.ui}/dags/ohlcv_indexer/runs/{run}/plugin/ohlcv-run")
    frame = page.frame_locator("iframe[title='OHLCV run']")
    frame.locator("body[data-loaded=true]").wait_for(timeout=60_000)
    failed = frame.locator(f"#tickers tr[data-code='{FAILING}']")
    assert failed.locator("td").nth(1).inner_text() == "failed"
    assert frame.locator("#tickers tbody tr").count() == len(SyntheticSource(4).list_universe("KRX")) + 1
    _shot(page, "ohlcv-run-view.png")
