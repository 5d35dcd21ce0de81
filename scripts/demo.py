"""``make demo``: run the indexer DAG once on the synthetic source and show what is in Redis.

Uses ``OHLCV_REDIS_URL`` when it is set, otherwise a throwaway ``redis-server`` that is
stopped afterwards. Airflow state lives in ``.airflow/`` (SQLite), the DAG log in
``.airflow/demo-dags-test.log``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))

from ohlcv import cli  # noqa: E402
from ohlcv.redis_server import ThrowawayRedis  # noqa: E402

TICKERS = 50


def airflow_env(redis_url: str) -> dict[str, str]:
    home = Path(os.environ.get("AIRFLOW_HOME", ROOT / ".airflow"))
    home.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW_CONN_OHLCV_REDIS=redis_url,
        OHLCV_SOURCE=os.environ.get("OHLCV_SOURCE", f"synthetic:{TICKERS}"),
    )
    return env


def run_dag(redis_url: str) -> int:
    env = airflow_env(redis_url)
    airflow = str(Path(sys.executable).parent / "airflow")
    log_path = Path(env["AIRFLOW_HOME"]) / "demo-dags-test.log"
    print(f"source: {env['OHLCV_SOURCE']} (SYNTHETIC prices, not market data)")
    print("preparing the Airflow database ...", flush=True)
    subprocess.run(
        [airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    print(f"running `airflow dags test ohlcv_indexer` (log: {log_path}) ...", flush=True)
    started = time.monotonic()
    with log_path.open("w") as log:
        done = subprocess.run([airflow, "dags", "test", "ohlcv_indexer"], env=env, stdout=log, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    for line in text.splitlines():
        if "[ohlcv.airflow.tasks]" in line and (" planned, " in line or "failed: " in line):
            print("  " + line.split("] ", 1)[-1].split(" [ohlcv")[0].strip())
    state = "success" if "state=success" in text and done.returncode == 0 else "FAILED"
    print(f"DAG run {state} in {elapsed:.1f} s")
    return 0 if state == "success" else 1


def main() -> int:
    url = os.environ.get("OHLCV_REDIS_URL")
    server = None
    if not url:
        server = ThrowawayRedis().start()
        url = server.url
        print(f"throwaway redis-server on port {server.port} (stopped at the end)")
    try:
        status = run_dag(url)
        print("\n$ python -m ohlcv status")
        cli.main(["--redis-url", url, "status"])
        print("\n$ python -m ohlcv get KS11 --rows 6")
        cli.main(["--redis-url", url, "get", "KS11", "--rows", "6"])
        return status
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
