"""OHLCV cache: daily KRX price history kept in Redis for forward tests.

The core package imports no Airflow; ``ohlcv.airflow`` holds the Airflow-specific parts.
"""

from __future__ import annotations

__version__ = "0.1.0"
