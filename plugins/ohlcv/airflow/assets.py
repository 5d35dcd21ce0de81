"""The Airflow Asset the indexer updates, for DAGs that run when the cache moves forward."""

from __future__ import annotations

from airflow.sdk import Asset

#: updated whenever a run advances the published cut (``getOHLCV_lastUpdateAt``); the event's
#: ``extra`` holds ``cut`` (ISO date), ``count``, ``previous`` and ``revision`` (the id reads pin)
CACHE = Asset(name="ohlcv_cache", uri="x-ohlcv://ohlcv_redis/ticker")
