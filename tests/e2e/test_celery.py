"""ohlcv_indexer on a real Celery cluster: api-server, scheduler and dag-processor with
CeleryExecutor, a scratch PostgreSQL database, a Redis broker, the cache Redis with AOF (as in
docker-compose.yaml) and two ``airflow celery worker`` processes started as the compose file
starts them, each as if on a machine of its own. One cluster serves every test here, in order:

1. a run of 55 tickers + KS11 triggered through the REST API, spread over both workers;
2. the same run again (``full_refresh``) while the cache Redis is restarted in the middle;
3. the same run again while a worker is killed in the middle.

What each fault did and how long the cluster took to recover is printed and written to
``artifacts/celery-faults.json``. Every process started here is stopped at the end.

Without PostgreSQL the module is skipped, unless ``OHLCV_REQUIRE_POSTGRES`` is set (as
``.ci/run`` does).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import psutil
import pytest

from ohlcv import codec
from ohlcv.keys import KeySpace
from ohlcv.redis_server import ThrowawayRedis
from ohlcv.sources import SyntheticSource
from tests.e2e.stack import (
    CELERY,
    ROOT,
    compose_settings,
    postgres_unavailable,
    running_stack,
    scratch_postgres,
    wait,
)

pytestmark = [pytest.mark.scheduler, pytest.mark.celery, pytest.mark.timeout(900)]

TICKERS = 55
CODES = [*SyntheticSource(TICKERS).list_universe("KRX"), "KS11"]
WORKERS = ["worker-1", "worker-2"]
#: each vendor call takes this long, so that a run lasts long enough to break something in it
LATENCY = 0.3
#: seconds the cache Redis stays down: longer than redis-py's own retries ride out
DOWN = 5
ARTIFACTS = Path(os.environ.get("OHLCV_TEST_ARTIFACTS", ROOT / "artifacts"))
#: How quickly the scheduler notices a dead worker's tasks. Production keeps Airflow's defaults
#: (300 s without a heartbeat, 600 s queued); docs/production.md gives the recovery times they mean.
FAST_RECOVERY = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "40",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
}
FAULTS: dict[str, dict] = {}


@pytest.fixture(scope="module")
def database():
    reason = postgres_unavailable()
    if reason:
        if os.environ.get("OHLCV_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required here (OHLCV_REQUIRE_POSTGRES): {reason}")
        pytest.skip(reason)
    with scratch_postgres() as url:
        yield url


@pytest.fixture(scope="module")
def cache():
    """The cache Redis, with append-only persistence as docker-compose.yaml runs it."""
    with ThrowawayRedis(extra_args=["--appendonly", "yes"]) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, database, cache):
    with ThrowawayRedis() as broker:
        home = tmp_path_factory.mktemp("airflow-celery-home")
        settings = {
            **compose_settings(),
            **FAST_RECOVERY,
            "OHLCV_RETRY_DELAY_SECONDS": "3",
        }
        with running_stack(
            home, cache.url, source=f"synthetic:{TICKERS}?latency={LATENCY}", database_url=database,
            settings=settings, broker_url=broker.url, workers=len(WORKERS),
        ) as stack:  # fmt: skip
            stack.wait_for_dag()
            yield stack
        leftovers = stack.alive()
        assert not leftovers, f"still running after the cluster stopped: {[p.cmdline() for p in leftovers]}"
    if FAULTS:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "celery-faults.json").write_text(json.dumps(FAULTS, indent=2) + "\n")


def _log(stack, name: str) -> str:
    return (stack.home / f"{name}.log").read_text()[-4000:]


def _series(client) -> dict[str, bytes]:
    return {code: client.get(f"ticker:{code}") for code in CODES}


def _assert_cache_consistent(client) -> None:
    """No series is torn, and every series ends on the day ``ticker:lastUpdateAt`` gives it."""
    last = {code.decode(): day.decode() for code, day in client.hgetall("ticker:lastUpdateAt").items()}
    assert set(last) == set(CODES)
    for code in CODES:
        frame = codec.decode(client.get(f"ticker:{code}"))  # a torn value would not decode
        assert frame.index.is_monotonic_increasing, code
        assert frame.index.is_unique, code
        assert frame.index[-1].date().isoformat() == last[code], code
    assert set(last.values()) == {client.get("getOHLCV_lastUpdateAt").decode()}


def _assert_released(client) -> None:
    assert client.exists("ohlcv:lock:run") == 0
    assert client.get("getOHLCV_isUpdating") == b"0"


def _trigger_and_break(stack, break_it, *, when: int = 12, conf: dict | None = None) -> tuple[str, float]:
    """Trigger a run, call ``break_it()`` once ``when`` index_ticker instances have succeeded;
    return the run id and the moment (monotonic) of the fault."""
    run_id = stack.trigger(conf)

    def far_enough():
        done = [ti for ti in stack.task_instances(run_id, "index_ticker") if ti["state"] == "success"]
        return len(done) >= when

    wait("the run to get going", far_enough, 300, every=0.5)
    return run_id, break_it()


def _recovery(stack, run_id: str, fault_at: dt.datetime) -> dict:
    """What the run's task instances did after the fault: retried ones, and when the last of them ended."""
    instances = stack.task_instances(run_id)
    retried = [ti for ti in instances if ti["try_number"] and ti["try_number"] > 1]
    ends = [dt.datetime.fromisoformat(ti["end_date"]) for ti in retried if ti["end_date"]]
    return {
        "retry_ticker": sorted(
            ti["rendered_map_index"] for ti in instances if ti["task_id"] == "retry_ticker" and ti["map_index"] >= 0
        ),
        "retried": sorted(f"{ti['task_id']}[{ti['rendered_map_index'] or ti['map_index']}]" for ti in retried),
        "retried_states": sorted({ti["state"] for ti in retried}),
        "last_retry_ended_s_after_fault": round((max(ends) - fault_at).total_seconds(), 1) if ends else None,
    }


def test_each_worker_has_the_preload_loaded_before_it_forks_its_pool(cluster):
    for name in WORKERS:
        worker = psutil.Process(cluster.processes[name].pid)  # Celery's main process
        # beside the pool it runs Airflow's log server and bundle cleanup, started before the preload
        pool = [child for child in worker.children() if "ForkPoolWorker" in " ".join(child.cmdline())]
        assert len(pool) == int(compose_settings()["AIRFLOW__CELERY__WORKER_CONCURRENCY"]), name
        for process in [worker, *pool]:
            maps = Path(f"/proc/{process.pid}/maps").read_text()
            assert "pandas/_libs" in maps, f"{name}: pandas is not loaded in {process.cmdline()}"


@pytest.fixture(scope="module")
def first_run(cluster, cache):
    cache.flush()
    run_id = cluster.trigger()
    assert cluster.wait_for_run(run_id, 600) == "success", _log(cluster, "scheduler")
    return run_id


def test_a_run_through_the_rest_api_is_spread_over_both_workers_and_fills_redis(cluster, first_run, cache):
    assert cluster.executor == CELERY
    instances = cluster.task_instances(first_run, "index_ticker")
    assert {ti["rendered_map_index"] for ti in instances} == set(CODES)
    assert {ti["state"] for ti in instances} == {"success"}
    by_worker = {name: sum(ti["hostname"] == name for ti in instances) for name in WORKERS}
    assert all(by_worker.values()), f"index_ticker instances by worker: {by_worker}"

    client = cache.client()
    _assert_cache_consistent(client)
    _assert_released(client)
    assert client.hgetall(KeySpace().run_results(first_run)) == {code.encode(): b"written" for code in CODES}


def test_a_restart_of_the_cache_redis_mid_run_tears_no_series(cluster, first_run, cache):
    client = cache.client()
    before = {code: codec.decode(value) for code, value in _series(client).items()}

    def restart():
        at = dt.datetime.now(dt.UTC)
        began = time.monotonic()
        cache.restart(down_seconds=DOWN)
        FAULTS["cache_redis_restart"] = {"redis_down_s": round(time.monotonic() - began, 1)}
        return at

    run_id, fault_at = _trigger_and_break(cluster, restart, conf={"full_refresh": True})
    state = cluster.wait_for_run(run_id, 600)
    run = cluster.run(run_id)
    FAULTS["cache_redis_restart"].update(
        state=state,
        run_s_after_fault=round((dt.datetime.fromisoformat(run["end_date"]) - fault_at).total_seconds(), 1),
        **_recovery(cluster, run_id, fault_at),
    )
    print("cache Redis restarted mid-run:", FAULTS["cache_redis_restart"])

    assert state == "success", FAULTS["cache_redis_restart"]
    _assert_cache_consistent(client)
    _assert_released(client)
    for code, frame in before.items():  # the same history as before, whoever wrote it when
        after = codec.decode(client.get(f"ticker:{code}"))
        assert after.loc[: frame.index[-1]].equals(frame), code


def test_a_worker_killed_mid_run_has_its_tasks_retried_on_the_other(cluster, first_run, cache):
    client = cache.client()
    victim, survivor = WORKERS

    def kill():
        def victim_busy():
            running = cluster.task_instances(run_id_box[0], "index_ticker")
            return any(ti["state"] == "running" and ti["hostname"] == victim for ti in running)

        wait(f"{victim} to be running a task", victim_busy, 120, every=0.2)
        at = dt.datetime.now(dt.UTC)
        cluster.kill(victim)
        return at

    run_id_box: list[str] = []
    run_id = cluster.trigger({"full_refresh": True})
    run_id_box.append(run_id)
    wait("the run to get going", lambda: cluster.task_instances(run_id, "index_ticker"), 300, every=0.5)
    fault_at = kill()
    state = cluster.wait_for_run(run_id, 600)
    run = cluster.run(run_id)
    record = {
        "state": state,
        "run_s_after_fault": round((dt.datetime.fromisoformat(run["end_date"]) - fault_at).total_seconds(), 1),
        **_recovery(cluster, run_id, fault_at),
    }
    instances = cluster.task_instances(run_id)
    record["retried_on"] = sorted({ti["hostname"] for ti in instances if ti["try_number"] > 1})
    FAULTS["worker_killed"] = record
    print("worker killed mid-run:", record)

    # the run ended by itself, with the lock released; its retried tasks ran on the survivor
    assert state in ("success", "failed"), record
    _assert_released(client)
    retried = [ti for ti in instances if ti["try_number"] > 1]
    assert retried, record
    assert {ti["hostname"] for ti in retried if ti["state"] == "success"} <= {survivor}, record
    if state == "success":
        _assert_cache_consistent(client)
    else:
        assert client.xrevrange("ohlcv:runs", count=1)[0][1][b"state"] == b"failed", record
