"""Losing the cache Redis's host under Sentinel: what writers, readers and a run feel.

Throwaway Sentinel deployments on loopback (a primary, two replicas, three Sentinels, started
from ``redis-server``) hold 300 synthetic tickers. The primary is killed with SIGKILL (a host
gone, not a clean shutdown), or stopped with SIGSTOP (a host that hangs or is lost without a
TCP reset), while a writer, a reader of the primary and a reader of a replica each loop, and
killed once in the middle of an indexer run. Prints figures and ratios; asserts
nothing. Run with Sentinels' ``down-after-milliseconds`` of 1 s (the tests') and 5 s (the
compose ``ha`` profile's).

- the failover: kill to a new primary named by the Sentinels;
- per client: errors seen, the longest wait of one call, and the longest time without an
  answer;
- a run of 300 tickers' histories with the primary killed a third of the way: its duration
  against the same run without a failover, its state, and what the new primary holds;
- what publishing only acknowledged writes costs: ``WAIT`` after a KRX-scale day's writes;
- a new process's first read through the Sentinel URL, from the primary and from a replica,
  against the plain URL.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import threading
import time

import redis
from research import in_new_processes  # benchmarks/research.py, beside this script

from ohlcv import OhlcvCache, codec
from ohlcv.indexer.runner import run_once
from ohlcv.keys import KeySpace
from ohlcv.redis_server import ThrowawaySentinels
from ohlcv.settings import Settings
from ohlcv.sources import from_spec
from ohlcv.sources.synthetic import SyntheticSource
from ohlcv.store import OhlcvStore, client_from_url, sentinel

TICKERS = 300
AS_OF = dt.date(2026, 11, 20)
BEFORE = dt.date(2026, 11, 19)


class Loop:
    """Calls ``call`` until stopped, noting when each call began, how long it took and whether it failed."""

    def __init__(self, name: str, call) -> None:
        self.name, self.call = name, call
        self.calls: list[tuple[float, float, str | None]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                self.call()
                failed = None
            except Exception as exc:
                failed = type(exc).__name__
            self.calls.append((began, time.monotonic() - began, failed))
            time.sleep(0.01)

    def report(self) -> str:
        errors = [failed for _, _, failed in self.calls if failed]
        longest = max(took for _, took, _ in self.calls)
        answered = sorted(began + took for began, took, failed in self.calls if not failed)
        gap = max(later - earlier for earlier, later in itertools.pairwise(answered))
        kinds = ", ".join(sorted(set(errors))) or "-"
        return (
            f"  {self.name:<22} errors {len(errors):3d} ({kinds})  longest call {longest:5.2f} s  "
            f"longest time without an answer {gap:5.2f} s"
        )


def fill(url: str) -> OhlcvStore:
    store = OhlcvStore(client_from_url(url), KeySpace())
    run_once(store, SyntheticSource(TICKERS), AS_OF, settings=Settings(redis_url=url), run_id="fill")
    return store


def clients_through_a_failover(down_after_ms: int, *, hang: bool = False) -> None:
    """Kill the primary (SIGKILL: clients' connections are reset at once) or, with ``hang``,
    stop it (SIGSTOP: a host lost without a word, whose connections only time out)."""
    source = SyntheticSource(TICKERS)
    codes = source.list_universe("KRX")[:100]
    with ThrowawaySentinels(replicas=2, down_after_ms=down_after_ms) as group:
        url = group.url
        store = fill(url)
        frame = source.history(codes[0], None, AS_OF)
        readers = {
            where: OhlcvCache.from_url(settings=Settings(redis_url=url, read_from=where, client_cache_mb=0))
            for where in ("primary", "replica")
        }
        loops = [
            Loop("writer (write_series)", lambda: store.write_series(codes[0], frame, source.name)),
            Loop("reader of the primary", lambda: readers["primary"].get_many(codes, "2026-06-01", AS_OF)),
            Loop("reader of a replica", lambda: readers["replica"].get_many(codes, "2026-06-01", AS_OF)),
        ]
        for loop in loops:
            loop.thread.start()
        time.sleep(1.0)
        old, killed = group.primary_port(), time.monotonic()
        lost = group.node(old)
        if hang:
            os.kill(lost.process.pid, signal.SIGSTOP)
        else:
            group.kill_primary()  # SIGKILL: the host is gone
        try:
            group.wait_for_new_primary(old, timeout=120)
            named = time.monotonic() - killed
            time.sleep(sentinel.TIMEOUTS["socket_timeout"] + 3.0 if hang else 3.0)
            for loop in loops:
                loop.stop.set()
                loop.thread.join()
        finally:
            if hang:
                os.kill(lost.process.pid, signal.SIGCONT)
        print(f"  the Sentinels name a new primary {named:5.2f} s after the {'hang' if hang else 'kill'}")
        for loop in loops:
            print(loop.report())


def a_run_through_a_failover(down_after_ms: int) -> None:
    spec = f"synthetic:{TICKERS}?latency=0.01"
    durations = {}
    for killed in (False, True):
        with ThrowawaySentinels(replicas=2, down_after_ms=down_after_ms) as group:
            url, settings = group.url, Settings(redis_url=group.url)
            store = OhlcvStore(client_from_url(url), KeySpace())
            run_once(store, SyntheticSource(TICKERS), BEFORE, settings=settings, run_id="yesterday")
            killer = threading.Timer(1.5, group.kill_primary) if killed else None
            if killer:
                killer.start()
            started = time.perf_counter()
            try:
                run_once(store, from_spec(spec), AS_OF, settings=settings, run_id="run", full_refresh=True)
                state = store.recent_runs(1)[0]["state"]
            except Exception as exc:
                state = f"raised {type(exc).__name__}"
            durations[killed] = time.perf_counter() - started
            if killer:
                killer.join()
            survivor = OhlcvStore(redis.Redis(port=group.primary_port(), password=group.password), KeySpace())
            last = survivor.last_updates()
            torn = sum(
                codec.decode_columns(survivor.client.get(survivor.keys.series(code))).last_date() != day
                for code, day in last.items()
            )
            what = "with the primary killed after 1.5 s" if killed else "without a failover"
            print(
                f"  {what:<38} {durations[killed]:6.2f} s, {state}; cut {survivor.meta().last_update_at}, "
                f"{sum(day == AS_OF for day in last.values())} of {len(last)} tickers through {AS_OF}, {torn} torn"
            )
    print(f"  => the failover added {durations[True] - durations[False]:5.2f} s to the run")


def acknowledgement_cost() -> None:
    source = SyntheticSource(2_900)
    with ThrowawaySentinels(replicas=2) as group:
        store = OhlcvStore(client_from_url(group.url), KeySpace())
        blobs = {code: codec.encode(source.history(code, BEFORE, AS_OF), source.name) for code in source.codes}
        timeout = dt.timedelta(seconds=10)
        for _ in range(3):
            started = time.perf_counter()
            with store.client.pipeline(transaction=False) as pipe:
                for code, blob in blobs.items():
                    pipe.set(f"bench:{code}", blob)
                pipe.execute()
            written = time.perf_counter() - started
            began = time.perf_counter()
            held = sentinel.acknowledged(store.client, store.keys.replication_probe, 2, timeout)
            waited = time.perf_counter() - began
            print(f"  {len(blobs):,} writes of two sessions' rows {written:5.3f} s; then WAIT until {held} replicas "
                  f"hold them {waited * 1000:5.1f} ms")  # fmt: skip


def first_reads() -> None:
    with ThrowawaySentinels(replicas=2, password="bench-password") as group:
        fill(group.url)
        plain = f"redis://:{group.password}@127.0.0.1:{group.primary_port()}/0"
        code = "from ohlcv import OhlcvCache; OhlcvCache.from_url(URL{extra}).get('000100')"
        replica = ", settings=__import__('ohlcv.settings').settings.Settings(redis_url=URL, read_from='replica')"
        figures = {
            "plain URL": in_new_processes(code.format(extra=""), plain),
            "Sentinel URL, primary": in_new_processes(code.format(extra=""), group.url),
            "Sentinel URL, replica": in_new_processes(code.format(extra=replica), group.url),
        }
        for name, seconds in figures.items():
            print(f"  {name:<24} {seconds:6.3f} s   {seconds / figures['plain URL']:5.2f}x the plain URL")


def main() -> None:
    for down_after_ms in (1000, 5000):
        print(f"\n1. clients through a failover, Sentinels' down-after-milliseconds {down_after_ms}")
        clients_through_a_failover(down_after_ms)
        print(f"\n2. a run of {TICKERS} histories through a failover, down-after-milliseconds {down_after_ms}")
        a_run_through_a_failover(down_after_ms)
    print("\n1b. clients through a primary whose host hangs (SIGSTOP, no TCP reset), down-after-milliseconds 5000")
    clients_through_a_failover(5000, hang=True)
    print("\n3. publishing only acknowledged writes")
    acknowledgement_cost()
    print("\n4. a new process's first read (import, connect, one ticker)")
    first_reads()


if __name__ == "__main__":
    main()
