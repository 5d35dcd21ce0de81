"""The OHLCV cache's pages in Airflow's web UI (``ohlcv.airflow.plugin``): Airflow's plugin
manager imports the files at the top of this folder and registers the plugin classes it finds."""

from ohlcv.airflow.plugin import OhlcvCachePlugin

__all__ = ["OhlcvCachePlugin"]
