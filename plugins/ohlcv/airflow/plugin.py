"""The cache in Airflow's web UI: an ``AirflowPlugin`` with a FastAPI app (``ohlcv.airflow.views``)
mounted by the api-server under ``/ohlcv``, and its pages as external views: the cache page in
the nav, a run's view on each DAG run, a ticker's chart on each task instance.

Every task process loads the plugins too (for macros), so this module stays light: the app is
built, and FastAPI and the views imported, at the first request the api-server hands it.
``plugins/ohlcv_cache_plugin.py`` puts the class where the plugin manager looks.
"""

from __future__ import annotations

from typing import ClassVar

from airflow.sdk.plugins_manager import AirflowPlugin

#: where the api-server mounts the app; the views' hrefs are relative to the UI's base URL
URL_PREFIX = "/ohlcv"


class LazyApp:
    """An ASGI app that builds the views' FastAPI app on its first request."""

    def __init__(self) -> None:
        self._app = None

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            from ohlcv.airflow.views import build_app

            self._app = build_app()
        await self._app(scope, receive, send)

    def __repr__(self) -> str:
        return "ohlcv.airflow.views:build_app"


class OhlcvCachePlugin(AirflowPlugin):
    """The OHLCV cache page, run view and ticker view."""

    name = "ohlcv_cache"
    fastapi_apps: ClassVar[list[dict]] = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "OHLCV cache"}]
    external_views: ClassVar[list[dict]] = [
        {"name": "OHLCV cache", "href": "ohlcv/cache", "destination": "nav", "category": "browse",
         "url_route": "ohlcv-cache"},
        {"name": "OHLCV run", "href": "ohlcv/run?dag_id={DAG_ID}&run_id={RUN_ID}", "destination": "dag_run",
         "url_route": "ohlcv-run"},
        {"name": "OHLCV ticker",
         "href": "ohlcv/task?dag_id={DAG_ID}&run_id={RUN_ID}&task_id={TASK_ID}&map_index={MAP_INDEX}",
         "destination": "task_instance", "url_route": "ohlcv-ticker"},
    ]  # fmt: skip
