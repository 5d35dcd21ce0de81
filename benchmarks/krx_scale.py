"""ohlcv_indexer at KRX scale under the real scheduler.

Starts api-server, scheduler and dag-processor with LocalExecutor on a scratch PostgreSQL
database and the Airflow settings of docker-compose.yaml (tests/e2e/stack.py), points the DAG
at a synthetic universe of 2,900 tickers and a throwaway redis-server, then triggers:

1. a first run into an empty cache, as of the session before the last one (every ticker
   fetched and written),
2. the daily run, as of the last session: every ticker one session behind, moved forward
   by the market snapshot,
3. a repeat run with nothing to do.

Prints the wall time of each run, the DAG file's parse cost, the per-task figures of the
mapped `index_ticker` instances, the machine's CPU time per mapped task and, for
comparison, the same work done in one plain Python process. Asserts nothing.

    .venv/bin/python benchmarks/krx_scale.py [--tickers 2900] [--set NAME=VALUE ...] [--sqlite]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from ohlcv import calendar, codec, indexer  # noqa: E402
from ohlcv.keys import KeySpace  # noqa: E402
from ohlcv.redis_server import ThrowawayRedis  # noqa: E402
from ohlcv.sources.guard import GuardedSource  # noqa: E402
from ohlcv.sources.synthetic import SyntheticSource  # noqa: E402
from ohlcv.store import OhlcvStore  # noqa: E402
from tests.e2e.stack import (  # noqa: E402
    compose_pool_slots,
    compose_settings,
    running_stack,
    scratch_postgres,
)

SERVERS = ("api-server", "scheduler", "dag-processor")  # the order running_stack starts them in
PARSE_PROBE = """
import time, airflow.sdk
from airflow.dag_processing.dagbag import DagBag
if {preload}:
    import ohlcv.airflow.preload
began = time.perf_counter()
bag = DagBag(dag_folder={path!r})
assert not bag.import_errors, bag.import_errors
print(time.perf_counter() - began)
"""


def cpu_seconds() -> float:
    """Busy CPU time of the whole machine so far (all processes, all cores)."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + t.steal


def process_cpu(pid: int) -> float:
    """CPU seconds used so far by one process (all its threads)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def parse_cost(env: dict[str, str], *, preload: bool) -> float:
    """Seconds to parse dags/ohlcv_indexer.py in a process that has imported Airflow and, with
    ``preload``, ohlcv.airflow.preload (as a task process forked by the LocalExecutor has)."""
    probe = PARSE_PROBE.format(path=str(ROOT / "dags" / "ohlcv_indexer.py"), preload=preload)
    samples = []
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True)
        samples.append(float(done.stdout.strip().splitlines()[-1]))
    return min(samples)


def in_process_work(tickers: int, sample: int = 100) -> float:
    """Seconds per ticker for fetch + validate + write in one warm Python process."""
    with ThrowawayRedis() as server:
        store = OhlcvStore(server.client(), KeySpace())
        vendor = SyntheticSource(tickers)
        source = GuardedSource(vendor, store, run_id="bench")
        codes = vendor.list_universe("KRX")[:sample]
        as_of = dt.date(2026, 11, 20)
        indexer.index_ticker(store, source, codes[0], as_of)  # warm: calendar, schema
        began = time.perf_counter()
        for code in codes[1:]:
            indexer.index_ticker(store, source, code, as_of)
        return (time.perf_counter() - began) / (len(codes) - 1)


def seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_run(stack, label: str, limit: float, logical_date: str | None = None) -> dict:
    done_before = time.monotonic()
    cpu_before = cpu_seconds()
    servers = {name: process.pid for name, process in zip(SERVERS, stack.processes, strict=True)}
    server_cpu = {name: process_cpu(pid) for name, pid in servers.items()}
    triggered_at = dt.datetime.now(dt.UTC)
    run_id = stack.trigger(logical_date=logical_date)
    last_print = [0.0]

    def progress(_run):
        now = time.monotonic()
        if now - last_print[0] >= 60:
            last_print[0] = now
            import requests

            page = requests.get(
                f"{stack.dag}/dagRuns/{run_id}/taskInstances",
                params={"task_id": "index_ticker", "state": "success", "limit": 1},
                timeout=30,
            ).json()
            print(f"  {label}: {now - done_before:5.0f} s, index_ticker done: {page.get('total_entries', '?')}",
                  flush=True)  # fmt: skip

    # A light poll: every request to the api-server takes CPU from the run being measured.
    state = stack.wait_for_run(run_id, limit, progress, every=15)
    wall = (dt.datetime.fromisoformat(stack.run(run_id)["end_date"]) - triggered_at).total_seconds()
    cpu = cpu_seconds() - cpu_before
    server_cpu = {name: process_cpu(pid) - server_cpu[name] for name, pid in servers.items()}
    instances = stack.task_instances(run_id)
    return {
        "run_id": run_id, "state": state, "wall": wall, "cpu": cpu, "instances": instances, "server_cpu": server_cpu,
    }  # fmt: skip


def vendor_report(client, run_id: str) -> None:
    """The run's record in ohlcv:runs: what it did and the vendor calls it made."""
    for _, fields in client.xrevrange("ohlcv:runs", count=20):
        record = {name.decode(): value.decode() for name, value in fields.items()}
        if record["run_id"] == run_id:
            print(
                f"  run record: appended {record['appended']}, handed on {record['handed_on']}, written "
                f"{record['written']}, repaired {record['repaired']}, current {record['current']}; vendor calls "
                f"{record['vendor_calls']} (snapshot {record['snapshot_calls']}, history {record['history_calls']})"
            )
            return
    print(f"  no run record for {run_id}")


def report(label: str, result: dict, slots: int) -> None:
    instances = result["instances"]
    mapped = [ti for ti in instances if ti["task_id"] == "index_ticker"]
    print(
        f"{label}: {result['state']} in {result['wall']:.1f} s wall (trigger to the run's end_date), "
        f"machine CPU {result['cpu']:.0f} s"
    )
    servers = ", ".join(f"{name} {cpu:.0f} s" for name, cpu in result["server_cpu"].items())
    print(f"  CPU of the main processes: {servers}; the rest (tasks, workers, PostgreSQL, Redis) "
          f"{result['cpu'] - sum(result['server_cpu'].values()):.0f} s")  # fmt: skip
    for ti in sorted((ti for ti in instances if ti["map_index"] == -1), key=lambda ti: ti["start_date"] or ""):
        print(f"  {ti['task_id']:<16} {ti['state'] or '-':<10} {ti['duration'] or 0:7.2f} s")
    if not mapped or not all(ti["start_date"] for ti in mapped):
        print(f"  index_ticker: {len(mapped)} instance(s), none ran (nothing to index)")
        return
    states: dict[str, int] = {}
    for ti in mapped:
        states[ti["state"]] = states.get(ti["state"], 0) + 1
    durations = [ti["duration"] for ti in mapped if ti["duration"] is not None]
    waits = [w for ti in mapped if (w := seconds(ti["queued_when"], ti["start_date"])) is not None]
    starts = [ti["start_date"] for ti in mapped if ti["start_date"]]
    ends = [ti["end_date"] for ti in mapped if ti["end_date"]]
    span = seconds(min(starts), max(ends))
    print(f"  index_ticker: {len(mapped)} instances {states}")
    print(
        f"  index_ticker duration (Airflow's start→end): p50 {statistics.median(durations):.2f} s, "
        f"p95 {pct(durations, 0.95):.2f} s; queued→start p50 {statistics.median(waits):.2f} s"
    )
    print(
        f"  mapped phase: {span:.0f} s for {len(mapped)} instances = {len(mapped) / span:.2f} tasks/s; "
        f"{span * slots / len(mapped):.2f} slot-seconds per task with {slots} pool slots"
    )
    print(f"  machine CPU per mapped task over the whole run: {result['cpu'] / len(mapped):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickers", type=int, default=2900)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="extra environment")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of a scratch PostgreSQL database")
    parser.add_argument("--pool-slots", type=int, default=None)
    parser.add_argument("--limit", type=float, default=3600, help="seconds to wait for each run")
    args = parser.parse_args()

    settings = compose_settings()
    settings.update(item.split("=", 1) for item in args.set)
    slots = args.pool_slots or compose_pool_slots()
    print(f"{args.tickers} synthetic tickers + KS11, LocalExecutor, pool ohlcv_vendor {slots} slots, settings:")
    for name, value in sorted(settings.items()):
        print(f"  {name}={value}")
    work = in_process_work(args.tickers)
    print(f"in-process work per ticker (fetch, validate, write; warm process): {work * 1000:.0f} ms")

    home = Path(tempfile.mkdtemp(prefix="ohlcv-krx-scale-"))
    with (
        ThrowawayRedis() as server,
        contextlib.nullcontext(None) if args.sqlite else scratch_postgres() as database,
        running_stack(
            home, server.url, source=f"synthetic:{args.tickers}", database_url=database, settings=settings,
            pool_slots=slots,
        ) as stack,
    ):  # fmt: skip
        print(
            f"DAG file parse: {parse_cost(stack.env, preload=False) * 1000:.0f} ms in a new Airflow process, "
            f"{parse_cost(stack.env, preload=True) * 1000:.0f} ms in a task process (preloaded)"
        )
        began = time.monotonic()
        stack.wait_for_dag()
        print(f"stack up and DAG parsed in {time.monotonic() - began:.0f} s (logs in {home})")
        today = calendar.last_complete_session(dt.datetime.now(dt.UTC))
        yesterday = calendar.previous_session(today)
        # 10:00 UTC is 19:00 KST: each day's session is final by then
        first = timed_run(stack, "first run", args.limit, f"{yesterday.isoformat()}T10:00:00Z")
        report(f"first run (empty cache, as of {yesterday})", first, slots)
        client = server.client()
        vendor_report(client, first["run_id"])
        print(
            f"  cache: {client.hlen('ticker:lastUpdateAt')} tickers in ticker:lastUpdateAt, "
            f"getOHLCV_lastUpdateAt={client.get('getOHLCV_lastUpdateAt')}, "
            f"getOHLCV_lastUpdateCount={client.get('getOHLCV_lastUpdateCount')}"
        )
        sample = client.get("ticker:005930") or client.get(f"ticker:{SyntheticSource(3).list_universe('KRX')[0]}")
        print(f"  a sample series decodes to {len(codec.decode(sample))} rows")
        daily = timed_run(stack, "daily run", args.limit, f"{today.isoformat()}T10:00:00Z")
        report(f"daily run (every ticker one session behind, as of {today})", daily, slots)
        vendor_report(client, daily["run_id"])
        repeat = timed_run(stack, "repeat run", args.limit, f"{today.isoformat()}T11:00:00Z")
        report("repeat run (nothing to do)", repeat, slots)
        vendor_report(client, repeat["run_id"])


if __name__ == "__main__":
    main()
