"""Research reads at KRX scale: what the universe record, the ledger and revisions cost.

A throwaway redis-server holds 2,900 synthetic tickers and, as after a year of runs and a
backfill with the real delisting listing, 2,300 delisted codes. Prints figures and ratios;
asserts nothing.

- recording one session's table (what every run adds), and its bytes in Redis;
- ``universe(session)`` in a new process (import, connect, read) against ``import pandas,
  redis`` and one ``GET`` of a history, and in a warm process;
- a pinned ``get_many`` of 2,700 tickers x 1 year against the unpinned one;
- the cache page's document for every ticker (goal: 1 s);
- what one repair keeps for older revisions.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import sys
import time

from ohlcv import OhlcvCache, calendar
from ohlcv.indexer import listings
from ohlcv.keys import KeySpace
from ohlcv.overview import cache as overview
from ohlcv.redis_server import ThrowawayRedis
from ohlcv.settings import Settings
from ohlcv.sources.synthetic import SyntheticSource
from ohlcv.store import OhlcvStore

TICKERS = 2_900
DELISTED = 2_300
AS_OF = dt.date(2026, 11, 20)
YEAR = (dt.date(2025, 11, 21), AS_OF)
NEW_PROCESS = "import time; started = time.perf_counter(); {code}; print(time.perf_counter() - started)"


def timed(function, repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def in_new_processes(code: str, url: str, repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-c", NEW_PROCESS.format(code=code.replace("URL", repr(url)))],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        samples.append(float(done.stdout.split()[-1]))
    return statistics.median(samples)


def main() -> None:
    source = SyntheticSource(TICKERS)
    days = [day.date() for day in calendar.sessions(AS_OF - dt.timedelta(days=30), AS_OF)]
    with ThrowawayRedis() as server:
        client = server.client()
        store = OhlcvStore(client, KeySpace())
        old = [
            (f"{9000 + number:04d}00", dt.date(2001, 1, 2), dt.date(2019, 6, 28), "KOSDAQ")
            for number in range(DELISTED)
        ]
        store.infer_listings(old)
        tables = [source.table(day) for day in days]
        listings.record(store, tables[:-1])
        print(f"1. the universe record: {TICKERS:,} listed codes, {DELISTED:,} delisted ones, {len(days) - 1} sessions")
        started = time.perf_counter()
        listings.record(store, tables[-1:])
        print(f"  recording one session's table (a run's addition)        {time.perf_counter() - started:6.3f} s")
        size = client.memory_usage("ohlcv:universe") + client.memory_usage("ohlcv:universe:sessions")
        print(f"  ohlcv:universe + ohlcv:universe:sessions in Redis         {size / 2**20:6.2f} MiB")

        print("\n2. universe(session)")
        cache = OhlcvCache(client, source, settings=Settings(client_cache_mb=0))
        warm = timed(lambda: cache.universe(AS_OF))
        print(f"  warm process                                              {warm * 1000:6.1f} ms")
        store.write_series("000100", source.history("000100", None, AS_OF), source.name)
        reader = f"from ohlcv import OhlcvCache; OhlcvCache.from_url(URL).universe('{AS_OF}')"
        baseline = "import pandas, redis; redis.Redis.from_url(URL).get('ticker:000100')"
        fresh, raw = in_new_processes(reader, server.url), in_new_processes(baseline, server.url)
        print(f"  new process: import, connect, universe                    {fresh:6.3f} s")
        print(f"  new process: import pandas, redis and one GET             {raw:6.3f} s")
        print(f"  => a new process's universe / the GET baseline            {fresh / raw:6.2f}x")

        print("\n3. get_many of 2,700 tickers x 1 year, pinned to a revision")
        codes = source.list_universe("KRX")[:2_700]
        for code in codes:
            store.write_series(code, source.history(code, None, AS_OF), source.name)
        published = store.publish(AS_OF, len(codes))
        cache.get_many(codes, *YEAR)  # the period keys a report's first read leaves
        plain = timed(lambda: cache.get_many(codes, *YEAR, as_frame=True, as_="arrow"))
        pinned = timed(lambda: cache.get_many(codes, *YEAR, as_frame=True, as_="arrow", revision=published.revision))
        print(f"  unpinned, one Arrow table                                 {plain:6.3f} s")
        print(f"  pinned to revision {published.revision}, one Arrow table                     {pinned:6.3f} s")
        print(f"  => pinned / unpinned                                      {pinned / plain:6.2f}x")

        print("\n4. the cache page: its document (GET ohlcv/api/cache) for every ticker")
        for number in range(30):  # the runs the page charts
            store.record_run({"run_id": f"run-{number}", "as_of": AS_OF.isoformat(), "state": "success",
                              "duration_seconds": 17.3, "vendor_calls": 3})  # fmt: skip
        for code in codes[:40]:  # a red night: some tickers failing
            store.record_failure(code, AS_OF, "SourceUnavailable: the vendor is down", "run-29")
        page = timed(lambda: json.dumps(overview.state(store)), 5)
        kib = len(json.dumps(overview.state(store))) / 1024
        print(f"  {TICKERS:,} tickers, {DELISTED:,} delisted codes in the record: {page:.3f} s, {kib:.0f} KiB of JSON")
        print(f"  => the cache page's data in {page:.3f} s   goal <= 1 s   {'met' if page <= 1 else 'MISSED'}")

        print("\n5. what a repair keeps for older revisions")
        split = SyntheticSource(TICKERS, splits={"000200": (AS_OF, 10)})
        before = client.memory_usage("ticker:000200")
        store.write_series("000200", split.history("000200", None, AS_OF), split.name, run_id="bench")
        (kept,) = client.keys("ohlcv:version:000200:*")
        rows, kept_kib = len(store.read_series("000200")), client.memory_usage(kept) / 1024
        print(f"  one repaired history of {rows:,} rows: {kept_kib:.0f} KiB kept ({before / 1024:.0f} KiB the series)")
        client.close()


if __name__ == "__main__":
    main()
