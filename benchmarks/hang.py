"""A vendor that accepts the connection for one ticker and never answers, under the real scheduler.

Starts api-server, scheduler and dag-processor (LocalExecutor, the Airflow settings of
docker-compose.yaml, tests/e2e/stack.py) on a throwaway redis-server, with the synthetic
vendor's ``hang`` switch: asking for ``--hang`` connects to a local server that accepts and
never sends a byte, and waits for the answer without any timeout. Triggers one
``full_refresh`` run of ``--tickers`` tickers + KS11 and prints how long it took to end, its
state, the tries of every per-ticker task of the hanging ticker, its failure reason and what
happened to the others. Asserts nothing.

    .venv/bin/python benchmarks/hang.py [--tickers 20] [--hang 000100] [--set OHLCV_TICKER_DEADLINE=600]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from ohlcv import calendar  # noqa: E402
from ohlcv.keys import KeySpace  # noqa: E402
from ohlcv.redis_server import ThrowawayRedis  # noqa: E402
from ohlcv.store import OhlcvStore  # noqa: E402
from tests.e2e.stack import compose_settings, running_stack  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickers", type=int, default=20)
    parser.add_argument("--hang", default="000100", help="the ticker the vendor never answers for")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="extra environment")
    parser.add_argument("--limit", type=float, default=3600, help="seconds to wait for the run")
    args = parser.parse_args()
    settings = compose_settings()
    settings.update(item.split("=", 1) for item in args.set)
    print(f"{args.tickers} synthetic tickers + KS11, the vendor never answers for {args.hang}; settings:")
    for name, value in sorted(settings.items()):
        print(f"  {name}={value}")
    source = f"synthetic:{args.tickers}?hang={args.hang}"
    home = Path(tempfile.mkdtemp(prefix="ohlcv-hang-"))
    with ThrowawayRedis() as server, running_stack(home, server.url, source=source, settings=settings) as stack:
        stack.wait_for_dag()
        as_of = calendar.last_complete_session(dt.datetime.now(dt.UTC))
        triggered = time.monotonic()
        run_id = stack.trigger({"full_refresh": True}, logical_date=f"{as_of.isoformat()}T10:00:00Z")

        def progress(_run):
            print(f"  {time.monotonic() - triggered:5.0f} s", flush=True)

        state = stack.wait_for_run(run_id, args.limit, progress, every=30)
        run = stack.run(run_id)
        took = (dt.datetime.fromisoformat(run["end_date"]) - dt.datetime.fromisoformat(run["start_date"])).seconds
        print(f"\nrun {run_id}: {state} after {took:.0f} s (start to end of the DAG run)")
        for instance in stack.task_instances(run_id):
            if instance.get("rendered_map_index") == args.hang or instance["task_id"] == "wait_for_source":
                print(f"  {instance['task_id']}[{instance.get('rendered_map_index')}]: {instance['state']}, "
                      f"try {instance['try_number']}, {instance.get('duration') or 0:.0f} s")  # fmt: skip
        store = OhlcvStore(server.client(), KeySpace())
        print(f"  {args.hang}: {store.failures([args.hang]).get(args.hang, {}).get('reason')}")
        record = store.recent_runs(1)[0] if store.recent_runs(1) else {}
        print(f"  run record: written {record.get('written')}, failed {record.get('failed')}, "
              f"current {record.get('current')}, duration {record.get('duration_seconds')} s")  # fmt: skip


if __name__ == "__main__":
    main()
