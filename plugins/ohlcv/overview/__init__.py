"""What operators and researchers look at besides prices: the cache's state (``cache``), one
ticker's history, ledger and standing (``ticker``), and what one indexer run did (``run``).
Read-only toward Redis, through ``ohlcv.store``; the Airflow views (``ohlcv.airflow.views``)
and ``python -m ohlcv status --json`` show these documents as they are."""
