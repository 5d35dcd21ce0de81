"""Shared fixtures: a private redis-server for the session and an Airflow home for DAG tests.

Airflow reads its configuration when it is first imported, so the environment is set
here, before any test module imports it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="ohlcv-airflow-home-")
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ.update(
    AIRFLOW_HOME=_AIRFLOW_HOME,
    AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
    AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__UNIT_TEST_MODE="True",
)
# Never let a test reach a Redis it did not start, or use a key prefix from the caller's shell.
for name in ("OHLCV_REDIS_URL", "OHLCV_KEY_PREFIX", "OHLCV_SOURCE", "OHLCV_VENDOR_RATE", "AIRFLOW_CONN_OHLCV_REDIS"):
    os.environ.pop(name, None)

from ohlcv.keys import KeySpace  # noqa: E402
from ohlcv.redis_server import ThrowawayRedis  # noqa: E402
from ohlcv.store import OhlcvStore  # noqa: E402


@pytest.fixture(scope="session")
def redis_server():
    """A redis-server started for this test session on a free port; stopped at the end."""
    with ThrowawayRedis() as server:
        yield server


@pytest.fixture
def redis_client(redis_server):
    """A client of the session's own server, emptied before each test (never another server)."""
    redis_server.flush()
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _fresh_failure_switches():
    """Each test's ``synthetic:...?down=N`` vendor counts its calls from zero."""
    from ohlcv.sources import testing

    testing.forget_shared()


@pytest.fixture
def store(redis_client) -> OhlcvStore:
    return OhlcvStore(redis_client, KeySpace())


@pytest.fixture(scope="session")
def airflow_db():
    """An Airflow metadata database (SQLite in a temporary AIRFLOW_HOME) for DAG runs."""
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True, env=dict(os.environ))
    pool = [airflow, "pools", "set", "ohlcv_vendor", "4", "vendor calls of ohlcv_indexer"]
    subprocess.run(pool, check=True, capture_output=True, env=dict(os.environ))
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def sentinel_group():
    """A Sentinel deployment (a primary, two replicas, three Sentinels) for this test session,
    for tests that do not kill or freeze its servers (those start their own)."""
    from ohlcv.redis_server import ThrowawaySentinels

    with ThrowawaySentinels(password="group-secret-1") as group:
        yield group


@pytest.fixture
def sentinel_primary(sentinel_group):
    """A client of the session's Sentinel primary, emptied before the test (and the replicas with it)."""
    import redis

    primary = sentinel_group.node(sentinel_group.wait_settled())
    primary.flush()
    client = redis.Redis(port=primary.port, password=sentinel_group.password)
    client.wait(2, 5000)
    yield client
    client.close()
