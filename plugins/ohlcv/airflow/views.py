"""The FastAPI app behind the cache page, the run view and the ticker view (``ohlcv.airflow.plugin``).

Pages are static HTML and JavaScript served from ``static/`` (the charting library, TradingView's
Lightweight Charts, is vendored there: no CDN at run time). They fetch the JSON endpoints, which
read Redis through the package's own documents (``ohlcv.overview``), never write it. Every route,
the static files included, requires an authenticated Airflow user: the core API's own
``get_user`` dependency (a JWT in the ``Authorization`` header or Airflow's session cookie);
an anonymous request gets 401 (403 for a token that is not valid).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from ohlcv.errors import InvalidDate, InvalidTicker, NeverListed
from ohlcv.keys import to_date, validate_ticker

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
#: the DAG whose runs and task instances the views describe
DAG_ID = "ohlcv_indexer"
#: the mapped tasks whose map index is a ticker, and the task whose XCom lists their tickers
MAPPED = {"index_ticker": "apply_snapshot", "retry_ticker": "wait_for_source"}
HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


@functools.cache
def _store():
    """The cache's store, through the ``ohlcv_redis`` Connection (one per api-server process)."""
    from ohlcv.airflow.hook import OhlcvRedisHook
    from ohlcv.keys import KeySpace
    from ohlcv.settings import Settings

    settings = Settings.from_env()
    return OhlcvRedisHook().get_store(KeySpace(settings.key_prefix), revision_days=settings.revision_days)


def build_app() -> FastAPI:
    """The views' app: every route behind Airflow's authentication."""
    app = FastAPI(
        title="OHLCV cache", dependencies=[Depends(get_user)], docs_url=None, redoc_url=None, openapi_url=None
    )

    @app.get("/cache", response_class=HTMLResponse)
    def cache_page() -> FileResponse:
        return _page("cache.html")

    @app.get("/ticker", response_class=HTMLResponse)
    def ticker_page() -> FileResponse:
        return _page("ticker.html")

    @app.get("/run", response_class=HTMLResponse)
    def run_page() -> FileResponse:
        return _page("run.html")

    @app.get("/task")
    def task_page(dag_id: str, run_id: str, task_id: str, map_index: int = -1):
        """The ticker view of a mapped ``index_ticker`` / ``retry_ticker`` task instance."""
        code, why = _ticker_of(dag_id, run_id, task_id, map_index)
        if code is None:
            return HTMLResponse(_message(why), headers=HEADERS)
        return RedirectResponse(f"ticker?code={code}", status_code=303, headers=HEADERS)

    @app.get("/api/cache")
    def cache_json() -> dict[str, Any]:
        from ohlcv.overview import cache

        return cache.state(_store())

    @app.get("/api/ticker/{code}")
    def ticker_json(code: str, since: str | None = Query(default=None)) -> dict[str, Any]:
        from ohlcv.overview import ticker

        try:
            first = to_date(since) if since else None
            return ticker.document(_store(), code, first=first)
        except (InvalidTicker, InvalidDate) as exc:
            raise HTTPException(400, str(exc)) from None
        except NeverListed as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/api/run")
    def run_json(run_id: str) -> dict[str, Any]:
        from ohlcv.overview import run

        return run.document(_store(), run_id)

    @app.get("/static/{name:path}")
    def static(name: str) -> FileResponse:
        path = (STATIC / name).resolve()
        if not path.is_relative_to(STATIC.resolve()) or not path.is_file():
            raise HTTPException(404, f"no static file {name!r}")
        return FileResponse(path, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=3600"})

    return app


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html", headers=HEADERS)


def _ticker_of(dag_id: str, run_id: str, task_id: str, map_index: int) -> tuple[str | None, str]:
    """The ticker of a mapped task instance of the indexer: its rendered map index, else (a task
    that has not run yet) the list its upstream task handed it; or None and why not."""
    if dag_id != DAG_ID or task_id not in MAPPED or map_index < 0:
        return None, (
            f"This view shows the ticker of a mapped index_ticker or retry_ticker task of {DAG_ID}; "
            f"{dag_id}.{task_id} (map index {map_index}) is not one."
        )
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rendered = session.scalar(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id,
                TaskInstance.map_index == map_index,
            )
        )  # fmt: skip
        label = rendered.rendered_map_index if rendered is not None else None
        if not label:
            row = session.scalars(
                XComModel.get_many(run_id=run_id, task_ids=MAPPED[task_id], dag_ids=dag_id, key="return_value")
            ).first()
            tickers = XComModel.deserialize_value(row) if row is not None else None
            label = tickers[map_index] if isinstance(tickers, list) and map_index < len(tickers) else None
    try:
        return (validate_ticker(label), "") if label else (None, f"no ticker is known for map index {map_index}")
    except InvalidTicker:
        return None, f"map index {map_index} is labelled {label!r}, not a ticker"


def _message(text: str) -> str:
    from html import escape

    return (
        "<!doctype html><html><head><meta charset='utf-8'><link rel='stylesheet' href='static/ohlcv.css'>"
        f"<title>OHLCV cache</title></head><body><main><p class='note'>{escape(text)}</p>"
        "<p><a href='cache'>The cache page</a></p></main></body></html>"
    )
