"""OHLCV cache: daily KRX price history kept in Redis for forward tests.

The core package imports no Airflow; ``ohlcv.airflow`` holds the Airflow-specific parts.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["OhlcvCache", "getOHLCV"]


def __getattr__(name: str):
    # Lazy, so that importing ohlcv.airflow while Airflow parses the DAG file loads no pandas.
    if name == "OhlcvCache":
        from ohlcv.reader.cache import OhlcvCache

        return OhlcvCache
    if name == "getOHLCV":
        from ohlcv.reader.compat import getOHLCV

        return getOHLCV
    raise AttributeError(f"module 'ohlcv' has no attribute {name!r}")
