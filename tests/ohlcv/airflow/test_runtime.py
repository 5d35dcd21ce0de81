"""``ohlcv.airflow.runtime.settings``: the environment, with the Variables that override it."""

from ohlcv.airflow import runtime


def test_the_variable_ohlcv_source_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("OHLCV_SOURCE", "synthetic:3")
    monkeypatch.setenv("OHLCV_KEY_PREFIX", "staging:")
    assert runtime.settings().source == "synthetic:3"
    monkeypatch.setenv("AIRFLOW_VAR_OHLCV_SOURCE", "synthetic:7")
    settings = runtime.settings()
    assert settings.source == "synthetic:7"
    assert settings.key_prefix == "staging:"  # everything else is the environment's


def test_a_run_keeps_the_vendor_start_run_fixed_without_asking_the_variable(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_OHLCV_SOURCE", "synthetic:7")
    assert runtime.settings({"source": "csv:/data"}).source == "csv:/data"


def test_the_open_api_key_comes_from_its_connection_else_the_environment(monkeypatch, store):
    from ohlcv.settings import Settings

    assert runtime.openapi_key(Settings()) is None
    assert runtime.openapi_key(Settings(krx_openapi_key="FROM-ENV")) == "FROM-ENV"
    monkeypatch.setenv("AIRFLOW_CONN_OHLCV_KRX_OPENAPI", '{"conn_type": "generic", "password": "FROM-CONNECTION"}')
    assert runtime.openapi_key(Settings(krx_openapi_key="FROM-ENV")) == "FROM-CONNECTION"
    monkeypatch.setenv("OHLCV_SOURCE", "synthetic:3")
    tables = runtime.run_source(store, runtime.settings(), "run-1", tables=True)
    assert tables.second is not None
    assert tables.second.name == "krx_openapi"
    assert runtime.run_source(store, runtime.settings(), "run-1").second is None  # the mapped tasks never look
