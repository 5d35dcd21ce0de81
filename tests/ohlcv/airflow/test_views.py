"""The cache's pages in Airflow's api-server: mounted under /ohlcv by the plugin, every route
behind Airflow's own authentication, the JSON the package's documents, and the plugin cheap
to load in task processes."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest

from ohlcv import calendar
from ohlcv.indexer.runner import run_once
from ohlcv.overview import cache as overview
from ohlcv.settings import Settings
from ohlcv.sources import SyntheticSource
from ohlcv.store import OhlcvStore, client_from_url
from tests.conftest import ROOT

DAYS = [day.date() for day in calendar.sessions(dt.date(2026, 11, 2), dt.date(2026, 11, 4))]
ROUTES = [
    "/ohlcv/cache", "/ohlcv/ticker?code=000100", "/ohlcv/run?run_id=r",
    "/ohlcv/task?dag_id=ohlcv_indexer&run_id=r&task_id=index_ticker&map_index=0", "/ohlcv/api/cache",
    "/ohlcv/api/ticker/000100", "/ohlcv/api/run?run_id=r", "/ohlcv/static/cache.js",
    "/ohlcv/static/vendor/lightweight-charts.standalone.production.js",
]  # fmt: skip


@pytest.fixture(scope="module")
def api(airflow_db):
    """Airflow's api-server app (the core API, the UI and the plugins), and a token for its admin."""
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    app = create_app("core")
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    return TestClient(app), token


@pytest.fixture
def filled(store, redis_server, monkeypatch):
    from ohlcv.airflow import views

    monkeypatch.setenv("AIRFLOW_CONN_OHLCV_REDIS", redis_server.url)
    views._store.cache_clear()
    source = SyntheticSource(4, splits={"000200": (DAYS[2], 5)})
    for day in DAYS:
        evening = dt.datetime.combine(day, dt.time(10, 23), ZoneInfo("Europe/London"))
        run_once(store, source, day, run_id=f"run-{day}", settings=Settings(), now=evening)
    yield store
    views._store.cache_clear()


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_refuses_an_anonymous_or_forged_request(api, filled, route):
    client, _ = api
    assert client.get(route, follow_redirects=False).status_code == 401
    forged = client.get(route, headers={"Authorization": "Bearer not-a-token"}, follow_redirects=False)
    assert forged.status_code == 403


def test_an_authenticated_user_gets_the_pages_and_the_package_s_documents(api, filled, redis_server):
    client, token = api
    bearer = {"Authorization": f"Bearer {token}"}
    for route in ROUTES[:3]:
        page = client.get(route, headers=bearer)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "static/ohlcv.js" in page.text  # assets by relative path: no CDN, no absolute path
    served = client.get("/ohlcv/api/cache", headers=bearer).json()
    expected = overview.state(OhlcvStore(client_from_url(redis_server.url), filled.keys))  # as the connection names it
    assert served["redis"]["primary"] == f"127.0.0.1:{redis_server.port}"
    for doc in (served, expected):
        doc.pop("generated_at")
    assert served == expected
    split = client.get("/ohlcv/api/ticker/000200", headers=bearer).json()
    assert split["rows"] == len(filled.read_series("000200"))
    assert [action["action"] for action in split["actions"]] == ["repaired"]
    assert len(client.get("/ohlcv/api/ticker/000200?since=2026-11-3", headers=bearer).json()["candles"]["time"]) == 2
    run = client.get(f"/ohlcv/api/run?run_id=run-{DAYS[2]}", headers=bearer).json()
    assert {row["code"]: row["outcome"] for row in run["tickers"]}["000200"] == "repaired"
    assert client.get("/ohlcv/api/ticker/999990", headers=bearer).status_code == 404
    assert client.get("/ohlcv/api/ticker/00:*", headers=bearer).status_code == 400
    library = client.get("/ohlcv/static/vendor/lightweight-charts.standalone.production.js", headers=bearer)
    assert library.status_code == 200
    assert "Lightweight Charts" in library.text[:300]
    for escape in ("/ohlcv/static/../views.py", "/ohlcv/static/%2e%2e/views.py", "/ohlcv/static/nothing.js"):
        assert client.get(escape, headers=bearer).status_code == 404


def test_airflow_s_session_cookie_is_enough(api, filled):
    client, token = api
    answer = client.get("/ohlcv/api/cache", cookies={"_token": token})
    assert answer.status_code == 200
    assert answer.json()["cut"]["last_update_at"] == DAYS[2].isoformat()


def test_the_task_view_of_another_dag_s_task_says_what_it_shows(api, filled):
    client, token = api
    answer = client.get(
        "/ohlcv/task?dag_id=other&run_id=r&task_id=t&map_index=3", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200
    assert "mapped index_ticker or retry_ticker task of ohlcv_indexer" in answer.text


def test_the_plugin_registers_its_views_and_costs_task_processes_no_fastapi(airflow_db):
    probe = (
        "import sys; import ohlcv_cache_plugin as module; plugin = module.OhlcvCachePlugin; "
        "print(sorted(view['destination'] for view in plugin.external_views)); "
        "print(plugin.fastapi_apps[0]['url_prefix']); print('fastapi' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(ROOT / "plugins"), "PATH": "/usr/bin:/bin", "AIRFLOW_HOME": airflow_db},
    )  # fmt: skip
    assert done.stdout.split("\n")[:3] == ["['dag_run', 'nav', 'task_instance']", "/ohlcv", "False"]


def test_the_vendored_chart_library_is_the_pinned_release():
    """Lightweight Charts 5.2.1's standalone build as npm serves it; nothing else is loaded."""
    import hashlib

    from ohlcv.airflow.views import STATIC

    library = STATIC / "vendor" / "lightweight-charts.standalone.production.js"
    assert hashlib.sha256(library.read_bytes()).hexdigest() == (
        "e21cc5caa0226ef30bd8549c50b9ef926615f2a4ee6b4e486353477a55f598cf"
    )
    assert "Lightweight Charts™ v5.2.1" in library.read_text()[:200]
    assert "Apache License" in (STATIC / "vendor" / "LICENSE-lightweight-charts").read_text()[:200]
    pages = "".join(path.read_text() for path in STATIC.glob("*.html"))
    assert "http://" not in pages
    assert "https://" not in pages
