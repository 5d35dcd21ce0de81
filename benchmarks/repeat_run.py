"""A repeat run with nothing to do, over a KRX-sized synthetic universe.

Fills a throwaway redis-server with 2,900 synthetic tickers (plus KS11) that are current
through the run's session, then times the plan step alone and a whole
`airflow dags test ohlcv_indexer` run. Prints figures; asserts nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ohlcv.indexer import planning
from ohlcv.keys import KeySpace
from ohlcv.redis_server import ThrowawayRedis
from ohlcv.sources.synthetic import SyntheticSource
from ohlcv.store import OhlcvStore

ROOT = Path(__file__).resolve().parent.parent
TICKERS = int(os.environ.get("BENCH_TICKERS", "2900"))
TRIGGER = "2026-11-20T10:23:00+00:00"  # 19:23 in Seoul: the session of 2026-11-20 is final
AS_OF = dt.date(2026, 11, 20)


def fill(store: OhlcvStore, source: SyntheticSource) -> list[str]:
    codes = [*source.list_universe("KRX"), "KS11"]
    for code in codes:  # the last two months are enough: the plan reads dates, not prices
        store.write_series(code, source.history(code, AS_OF - dt.timedelta(days=60), AS_OF), source.name)
    store.save_snapshot(source.snapshot(AS_OF), asked=AS_OF)  # the session's listing
    store.publish(AS_OF, len(codes))
    return codes


def main() -> None:
    with ThrowawayRedis() as server:
        store = OhlcvStore(server.client(), KeySpace())
        source = SyntheticSource(TICKERS)
        started = time.perf_counter()
        codes = fill(store, source)
        print(f"filled {len(codes)} tickers in {time.perf_counter() - started:.1f} s")

        samples = []
        for _ in range(20):
            began = time.perf_counter()
            plan = planning.plan(store, codes, AS_OF)
            samples.append((time.perf_counter() - began) * 1000)
        print(
            f"plan step ({len(codes)} tickers, to index {len(plan.to_index)}): "
            f"p50 {statistics.median(samples):.1f} ms, max {max(samples):.1f} ms"
        )

        home = tempfile.mkdtemp(prefix="ohlcv-bench-airflow-")
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_OHLCV_REDIS": server.url,
            "OHLCV_SOURCE": f"synthetic:{TICKERS}",
        }
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        before = {key: store.client.dump(key) for key in store.client.keys("*")}
        began = time.perf_counter()
        done = subprocess.run(
            [airflow, "dags", "test", "ohlcv_indexer", TRIGGER], env=env, capture_output=True, text=True
        )
        elapsed = time.perf_counter() - began
        log = done.stdout + done.stderr
        state = "success" if "state=success" in log else "FAILED"
        mapped = log.count("[DAG TEST] starting task_id=index_ticker map_index=")
        print(
            f"repeat run `airflow dags test` ({len(codes)} tickers): {state} in {elapsed:.1f} s, "
            f"index_ticker instances run: {mapped}"
        )
        after = {key: store.client.dump(key) for key in store.client.keys("*")}
        changed = sorted(key.decode() for key in after if before.get(key) != after[key])
        print(f"keys changed by the repeat run: {changed or 'none'}")
        for line in log.splitlines():
            if "tickers in the universe" in line:
                print("  " + line.split("] ", 1)[-1].split(" [ohlcv")[0].strip())


if __name__ == "__main__":
    main()
