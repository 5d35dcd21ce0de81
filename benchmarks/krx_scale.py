"""ohlcv_indexer at KRX scale under the real scheduler, with LocalExecutor and with Celery.

For each executor, starts api-server, scheduler and dag-processor on a scratch PostgreSQL
database with the Airflow settings of docker-compose.yaml (tests/e2e/stack.py), with Celery
also a throwaway Redis broker and two ``airflow celery worker`` processes as the compose file
starts them, points the DAG at a synthetic universe of 2,900 tickers and a throwaway
redis-server, then runs the phases in ``PHASES``:

1. a first run into an empty cache, as of the third session before the last one (every
   ticker fetched and written),
2. the daily run, as of the next session: every ticker one session behind, moved forward by
   that session's market table,
3. a missed day: no run as of the session before the last, then a run as of the last one,
   every ticker two sessions behind and caught up from the two tables,
4. a repeat run with nothing to do.

(``benchmarks/vendor_gaps.py`` measures the missed day and a late table in one process.)

Prints the wall time of each run, the DAG file's parse cost, the per-task figures of the
mapped `index_ticker` instances, the CPU time per mapped task (of the processes the stack
started, and of the whole machine) and, for comparison, the same work done in one plain
Python process; at the end one table of every phase under every executor. Asserts nothing.

    .venv/bin/python benchmarks/krx_scale.py [--tickers 2900] [--executor local celery] [--set NAME=VALUE ...]
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

from ohlcv import calendar  # noqa: E402
from ohlcv.indexer import per_ticker  # noqa: E402
from ohlcv.keys import KeySpace  # noqa: E402
from ohlcv.redis_server import ThrowawayRedis  # noqa: E402
from ohlcv.settings import Settings  # noqa: E402
from ohlcv.sources.guard import GuardedSource  # noqa: E402
from ohlcv.sources.synthetic import SyntheticSource  # noqa: E402
from ohlcv.store import OhlcvStore  # noqa: E402
from tests.e2e.stack import (  # noqa: E402
    Stack,
    compose_pool_slots,
    compose_settings,
    running_stack,
    scratch_postgres,
    session_members,
)

#: what each executor's stack runs, in order: a label, the run's conf, the session it runs as of
#: (``last``: the last final session; ``third``, ``second``: the third and second before it) and
#: its trigger time in UTC on that day (after 09:15 UTC, 18:15 KST, the day's session is final)
PHASES: list[tuple[str, dict, str, str]] = [
    ("first run (empty cache)", {}, "third", "10:00"),
    ("daily run (one session behind)", {}, "second", "10:00"),
    ("missed day (two sessions behind)", {}, "last", "10:00"),
    ("repeat run (nothing to do)", {}, "last", "11:00"),
]
EXECUTORS = ("local", "celery")
#: Celery workers started on this machine, as docker-compose.yaml starts them
WORKERS = 2
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


def session_cpu(leader: int) -> float:
    """CPU seconds used so far by a session the stack started: its live processes and every
    process they have reaped (a finished task process counts in its supervisor's children)."""
    total = 0.0
    for process in session_members(leader):
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def services_cpu(redis: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of the services a run uses besides Airflow: the whole local PostgreSQL
    server (other databases on it included) and each named redis-server process."""
    postgres = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "postgres":
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                postgres += times.user + times.system + times.children_user + times.children_system
    figures = {"PostgreSQL": postgres}
    for name, pid in redis.items():
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            figures[name] = times.user + times.system
    return figures


def stack_cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of each process the stack started (with everything it started)."""
    return {name: session_cpu(process.pid) for name, process in stack.processes.items()}


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
        source = GuardedSource(vendor, store, settings=Settings.from_env(), run_id="bench")
        codes = vendor.list_universe("KRX")[:sample]
        as_of = dt.date(2026, 11, 20)
        per_ticker.index_ticker(store, source, codes[0], as_of)  # warm: calendar, schema
        began = time.perf_counter()
        for code in codes[1:]:
            per_ticker.index_ticker(store, source, code, as_of)
        return (time.perf_counter() - began) / (len(codes) - 1)


def seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_run(
    stack, label: str, limit: float, conf: dict | None = None, redis: dict[str, int] | None = None,
    logical_date: str | None = None,
) -> dict:  # fmt: skip
    done_before = time.monotonic()
    cpu_before = cpu_seconds()
    server_cpu = stack_cpu(stack)
    service_cpu = services_cpu(redis or {})
    triggered_at = dt.datetime.now(dt.UTC)
    run_id = stack.trigger(conf, logical_date=logical_date)
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
    server_cpu = {name: cpu - server_cpu.get(name, 0.0) for name, cpu in stack_cpu(stack).items()}
    service_cpu = {name: cpu - service_cpu.get(name, 0.0) for name, cpu in services_cpu(redis or {}).items()}
    instances = stack.task_instances(run_id)
    return {
        "run_id": run_id, "state": state, "wall": wall, "cpu": cpu, "instances": instances, "server_cpu": server_cpu,
        "service_cpu": service_cpu,
    }  # fmt: skip


def run_record(client, run_id: str) -> dict[str, str]:
    """The run's entry in ohlcv:runs (what it did, its vendor calls), or {}."""
    for _, fields in client.xrevrange("ohlcv:runs", count=20):
        record = {name.decode(): value.decode() for name, value in fields.items()}
        if record["run_id"] == run_id:
            return record
    return {}


def report(label: str, result: dict, slots: int) -> dict:
    """Print one run's figures; return the ones the closing table compares."""
    instances = result["instances"]
    mapped = [ti for ti in instances if ti["task_id"] == "index_ticker"]
    stack = sum(result["server_cpu"].values())
    figures = {"state": result["state"], "wall": result["wall"], "tasks": len(mapped), "rate": None,
               "cpu_stack": stack, "cpu_services": stack + sum(result["service_cpu"].values()),
               "cpu_machine": result["cpu"]}  # fmt: skip
    print(
        f"{label}: {result['state']} in {result['wall']:.1f} s wall (trigger to the run's end_date), "
        f"machine CPU {result['cpu']:.0f} s"
    )
    servers = ", ".join(f"{name} {cpu:.1f} s" for name, cpu in result["server_cpu"].items())
    print(f"  CPU of the processes the stack started, each with everything it started (task processes "
          f"in the scheduler's or a worker's): {servers}; together {stack:.1f} s; the rest of the machine "
          f"(PostgreSQL, Redis, other users) {result['cpu'] - stack:.0f} s")  # fmt: skip
    services = ", ".join(f"{name} {cpu:.1f} s" for name, cpu in result["service_cpu"].items())
    print(f"  of which services: {services}")
    for ti in sorted((ti for ti in instances if ti["map_index"] == -1), key=lambda ti: ti["start_date"] or ""):
        print(f"  {ti['task_id']:<16} {ti['state'] or '-':<10} {ti['duration'] or 0:7.2f} s")
    if not mapped or not all(ti["start_date"] for ti in mapped):
        print(f"  index_ticker: {len(mapped)} instance(s), none ran (nothing to index)")
        return figures
    hosts: dict[str, int] = {}
    for ti in mapped:
        hosts[ti["hostname"] or "-"] = hosts.get(ti["hostname"] or "-", 0) + 1
    states: dict[str, int] = {}
    for ti in mapped:
        states[ti["state"]] = states.get(ti["state"], 0) + 1
    durations = [ti["duration"] for ti in mapped if ti["duration"] is not None]
    waits = [w for ti in mapped if (w := seconds(ti["queued_when"], ti["start_date"])) is not None]
    starts = [ti["start_date"] for ti in mapped if ti["start_date"]]
    ends = [ti["end_date"] for ti in mapped if ti["end_date"]]
    span = seconds(min(starts), max(ends))
    print(f"  index_ticker: {len(mapped)} instances {states}, by host {hosts}")
    print(
        f"  index_ticker duration (Airflow's start→end): p50 {statistics.median(durations):.2f} s, "
        f"p95 {pct(durations, 0.95):.2f} s; queued→start p50 {statistics.median(waits):.2f} s"
    )
    print(
        f"  mapped phase: {span:.0f} s for {len(mapped)} instances = {len(mapped) / span:.2f} tasks/s; "
        f"{span * slots / len(mapped):.2f} slot-seconds per task with {slots} pool slots"
    )
    print(
        f"  CPU per mapped task over the whole run: {stack / len(mapped):.2f} s in the stack's processes, "
        f"{result['cpu'] / len(mapped):.2f} s on the whole machine"
    )
    figures["rate"] = len(mapped) / span
    return figures


def run_phases(executor: str, args, settings: dict[str, str], slots: int, server: ThrowawayRedis) -> dict[str, dict]:
    """Start a stack with ``executor`` on an empty cache, run every phase; the figures by phase."""
    home = Path(tempfile.mkdtemp(prefix=f"ohlcv-krx-scale-{executor}-"))
    figures = {}
    with (
        ThrowawayRedis() if executor == "celery" else contextlib.nullcontext(None) as broker,
        contextlib.nullcontext(None) if args.sqlite else scratch_postgres() as database,
        running_stack(
            home, server.url, source=f"synthetic:{args.tickers}", database_url=database, settings=settings,
            pool_slots=slots, broker_url=broker.url if broker else None, workers=WORKERS,
        ) as stack,
    ):  # fmt: skip
        print(
            f"DAG file parse: {parse_cost(stack.env, preload=False) * 1000:.0f} ms in a new Airflow process, "
            f"{parse_cost(stack.env, preload=True) * 1000:.0f} ms in a task process (preloaded)"
        )
        began = time.monotonic()
        stack.wait_for_dag()
        print(f"stack up and DAG parsed in {time.monotonic() - began:.0f} s (logs in {home})")
        client = server.client()
        last = calendar.last_complete_session(dt.datetime.now(dt.UTC))
        second = calendar.previous_session(calendar.previous_session(last))
        sessions = {"last": last, "second": second, "third": calendar.previous_session(second)}
        for label, conf, session, at in PHASES:
            redis = {"cache Redis": server.process.pid, **({"broker Redis": broker.process.pid} if broker else {})}
            result = timed_run(stack, label, args.limit, conf, redis, f"{sessions[session].isoformat()}T{at}:00Z")
            figures[label] = report(f"{executor}: {label} (as of {sessions[session]})", result, slots)
            record = run_record(client, result["run_id"])
            figures[label]["vendor_calls"] = record.get("vendor_calls", "-")
            print(
                f"  run record: appended {record.get('appended')}, handed on {record.get('handed_on')}, written "
                f"{record.get('written')}, repaired {record.get('repaired')}, current {record.get('current')}; "
                f"vendor calls {record.get('vendor_calls')} (snapshot {record.get('snapshot_calls')}, "
                f"history {record.get('history_calls')})"
            )
            print(
                f"  cache: {client.hlen('ticker:lastUpdateAt')} tickers in ticker:lastUpdateAt, "
                f"getOHLCV_lastUpdateAt={client.get('getOHLCV_lastUpdateAt')}, "
                f"getOHLCV_lastUpdateCount={client.get('getOHLCV_lastUpdateCount')}"
            )
    return figures


def per_task(cpu: float, figures: dict) -> str:
    return f"{cpu / figures['tasks']:.2f}" if figures["tasks"] and figures["rate"] else "-"


def compare(figures: dict[str, dict[str, dict]]) -> None:
    """One table: every phase under every executor, and Celery's CPU per task against LocalExecutor's."""
    print(f"\n{'phase':<30} {'executor':<9} {'state':<9} {'wall s':>7} {'tasks':>6} {'tasks/s':>8} "
          f"{'CPU/task stack':>15} {'+PG, Redis':>11} {'machine':>8} {'vendor calls':>13}")  # fmt: skip
    for label, *_ in PHASES:
        for executor, phases in figures.items():
            f = phases[label]
            rate = f"{f['rate']:.2f}" if f["rate"] else "-"
            print(f"{label[:30]:<30} {executor:<9} {f['state']:<9} {f['wall']:7.1f} {f['tasks']:6d} {rate:>8} "
                  f"{per_task(f['cpu_stack'], f):>15} {per_task(f['cpu_services'], f):>11} "
                  f"{per_task(f['cpu_machine'], f):>8} {f['vendor_calls']:>13}")  # fmt: skip
    if {"local", "celery"} <= set(figures):
        label = PHASES[0][0]
        local, celery = figures["local"][label], figures["celery"][label]
        if local["rate"] and celery["rate"]:
            ratio = (celery["cpu_stack"] / celery["tasks"]) / (local["cpu_stack"] / local["tasks"])
            with_services = (celery["cpu_services"] / celery["tasks"]) / (local["cpu_services"] / local["tasks"])
            print(f"{label}: Celery's CPU per task is {ratio:.2f}x LocalExecutor's (stack processes), "
                  f"{with_services:.2f}x with PostgreSQL and Redis; "
                  f"throughput {celery['rate'] / local['rate']:.2f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickers", type=int, default=2900)
    parser.add_argument("--executor", nargs="+", choices=EXECUTORS, default=list(EXECUTORS))
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="extra environment")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of a scratch PostgreSQL database")
    parser.add_argument("--pool-slots", type=int, default=None)
    parser.add_argument("--limit", type=float, default=3600, help="seconds to wait for each run")
    args = parser.parse_args()
    if args.sqlite and "celery" in args.executor:
        parser.error("Airflow refuses SQLite with CeleryExecutor")

    settings = compose_settings()
    settings.update(item.split("=", 1) for item in args.set)
    slots = args.pool_slots or compose_pool_slots()
    print(f"{args.tickers} synthetic tickers + KS11, pool ohlcv_vendor {slots} slots, "
          f"{WORKERS} Celery workers, settings:")  # fmt: skip
    for name, value in sorted(settings.items()):
        print(f"  {name}={value}")
    work = in_process_work(args.tickers)
    print(f"in-process work per ticker (fetch, validate, write; warm process): {work * 1000:.0f} ms")

    figures = {}
    for executor in args.executor:
        print(f"\n== {executor} ==")
        with ThrowawayRedis() as server:  # an empty cache for each executor
            figures[executor] = run_phases(executor, args, settings, slots, server)
    compare(figures)


if __name__ == "__main__":
    main()
