"""A notifier for tests: ``AIRFLOW_VAR_OHLCV_NOTIFIER=tests.dags.probe:record``."""

CALLS: list[dict] = []


def record(**details) -> None:
    CALLS.append(details)
