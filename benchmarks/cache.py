"""Cache-aside read benchmark: figures and the ratios the goals are stated in, from one run.

Runs in the benchmark environment (`make bench`: core package, no Airflow, ArcticDB on
LMDB as the comparison). Uses a throwaway redis-server; FinanceDataReader's Naver path is
served by a local HTTP stub with 6,000-row payloads in Naver's format (no network).
Asserts nothing.
"""

from __future__ import annotations

import datetime as dt
import http.server
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from typing import ClassVar

import pandas as pd

from ohlcv import OhlcvCache, calendar
from ohlcv.keys import KeySpace
from ohlcv.redis_server import ThrowawayRedis
from ohlcv.settings import Settings
from ohlcv.sources import FdrSource
from ohlcv.sources.synthetic import SyntheticSource
from ohlcv.store import OhlcvStore

AS_OF = dt.date(2026, 11, 20)
YEAR = (dt.date(2025, 11, 21), AS_OF)
REPORT_TICKERS = int(os.environ.get("BENCH_REPORT_TICKERS", "200"))
MANY_TICKERS = int(os.environ.get("BENCH_MANY_TICKERS", "2700"))
PERIODS = [(dt.date(2019, 1, 2), dt.date(2021, 12, 30)), (dt.date(2022, 1, 3), dt.date(2024, 12, 30)), YEAR]
NAVER = "https://fchart.stock.naver.com/sise.nhn"


def timed(function, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000


def line(name: str, samples: list[float]) -> float:
    print(f"  {name:<44} p50 {p50(samples):9.3f} ms   p99 {p99(samples):9.3f} ms")
    return p50(samples)


def verdict(name: str, ratio: float, goal: str, ok: bool) -> None:
    print(f"  => {name:<42} {ratio:8.2f}x   goal {goal:<8} {'met' if ok else 'MISSED'}")


def seven_thousand_eight_hundred_rows() -> pd.DataFrame:
    days = calendar.sessions(dt.date(1990, 1, 3), AS_OF)[-7_800:]
    return SyntheticSource(1)._series("000100", days)


BASELINE = "import pandas, redis; redis.Redis.from_url(URL).get('ticker:000100')"
READER = "from ohlcv import OhlcvCache; OhlcvCache.from_url(URL).get('000100')"
#: the newest data through the cut: asks the calendar which session is the newest final one
READER_LATEST = "from ohlcv import OhlcvCache; OhlcvCache.from_url(URL).get('000100', latest=True)"
TIMED = "import time; started = time.perf_counter(); {code}; print(time.perf_counter() - started)"


def in_new_processes(code: str, url: str, repeat: int = 7) -> list[float]:
    """Seconds from the first import to the answer, each in a new interpreter."""
    script = TIMED.format(code=code.replace("URL", repr(url)))
    runs = [
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        for _ in range(repeat)
    ]
    return [float(run.stdout.split()[-1]) for run in runs]


def cli_wall(url: str, repeat: int = 7) -> list[float]:
    """Wall time of `python -m ohlcv get 000100`, interpreter start included."""
    env = {**os.environ, "OHLCV_REDIS_URL": url}
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ohlcv", "get", "000100"], env=env, capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
    return samples


def new_process(server, store: OhlcvStore) -> None:
    print("\n0. a new process: import, then the first hit of one 7,800-row history")
    store.write_series("000100", seven_thousand_eight_hundred_rows(), "synthetic")
    store.publish(AS_OF, 1)
    store.publish_sessions(calendar.table())  # what every indexer run leaves for readers
    url = server.url
    baseline = statistics.median(in_new_processes(BASELINE, url))
    reader = statistics.median(in_new_processes(READER, url))
    cli = statistics.median(cli_wall(url))
    print(f"  import pandas, redis + one GET of the key               {baseline:6.3f} s")
    print(f"  from ohlcv import OhlcvCache + first get (full history) {reader:6.3f} s")
    print(f"  python -m ohlcv get 000100 (wall, interpreter included) {cli:6.3f} s")
    print(f"  => new process, first hit: {reader:.3f} s   goal <= 1.0 s   {'met' if reader <= 1.0 else 'MISSED'}")
    verdict("first hit / (import pandas, redis + GET)", reader / baseline, "<= 1.5x", reader / baseline <= 1.5)
    print(f"  => python -m ohlcv get: {cli:.3f} s   goal <= 1.5 s   {'met' if cli <= 1.5 else 'MISSED'}")
    newest = calendar.last_complete_session(dt.datetime.now(dt.UTC))  # latest=True: current through today
    store.write_series("000100", SyntheticSource(1).history("000100", None, newest), "synthetic")
    store.publish(newest, 1)
    store.client.delete(store.keys.sessions)  # a cache filled by readers only: no indexer has run
    bare = statistics.median(in_new_processes(READER_LATEST, url))
    store.publish_sessions(calendar.table())
    print(f"  first get(latest=True), no session table in Redis (the shipped one answers) {bare:6.3f} s")
    print(
        f"  => new process, first hit, no indexer run: {bare:.3f} s   goal <= 1.0 s   "
        f"{'met' if bare <= 1.0 else 'MISSED'}"
    )
    verdict("first hit without indexer / baseline", bare / baseline, "<= 1.5x", bare / baseline <= 1.5)


def single_series(client, store: OhlcvStore) -> None:
    print("\n1. one 7,800-row series: full-history hit, 1-year period hit, ArcticDB on LMDB")
    frame = seven_thousand_eight_hundred_rows()
    store.write_series("000100", frame, "synthetic")
    store.publish(AS_OF, 1)
    cache = OhlcvCache(client, SyntheticSource(1))  # keeps what it read until Redis says it changed
    untracked = OhlcvCache(client, SyntheticSource(1), settings=Settings(client_cache_mb=0))
    cache.get("000100", *YEAR)  # writes the period key back
    raw = line("raw GET of the same bytes", timed(lambda: client.get("ticker:000100"), 1000))
    full = line("OhlcvCache.get(code): full history", timed(lambda: cache.get("000100"), 1000))
    year = line("OhlcvCache.get(code, 1 year): period hit", timed(lambda: cache.get("000100", *YEAR), 1000))
    line("  the same, client tracking off (every read a GET)", timed(lambda: untracked.get("000100"), 1000))

    import arcticdb

    with tempfile.TemporaryDirectory() as folder:
        library = arcticdb.Arctic(f"lmdb://{folder}").get_library("bench", create_if_missing=True)
        library.write("000100", frame)
        arctic_full = line("ArcticDB read: full history", timed(lambda: library.read("000100").data, 300))
        window = (pd.Timestamp(YEAR[0]), pd.Timestamp(YEAR[1]))
        arctic_year = line(
            "ArcticDB read: 1 year (date_range)",
            timed(lambda: library.read("000100", date_range=window).data, 300),
        )
    verdict("full-history hit / raw GET", full / raw, "<= 1.0x", full / raw <= 1.0)
    verdict("ArcticDB full / cache full", arctic_full / full, ">= 2x", arctic_full / full >= 2)
    verdict("ArcticDB 1 year / cache 1 year", arctic_year / year, ">= 3x", arctic_year / year >= 3)


class NaverStub(http.server.BaseHTTPRequestHandler):
    """Answers Naver's chart endpoint with the last 6,000 synthetic sessions, in Naver's XML."""

    source = SyntheticSource(REPORT_TICKERS)
    payloads: ClassVar[dict[str, bytes]] = {}
    lock = threading.Lock()

    def do_GET(self) -> None:
        code = self.path.rsplit("symbol=", 1)[-1]
        with self.lock:
            if code not in self.payloads:
                frame = self.source.history(code, None, AS_OF).tail(6_000)
                items = "\n".join(
                    f'\t\t<item data="{day:%Y%m%d}|{row.Open}|{row.High}|{row.Low}|{row.Close}|{row.Volume}" />'
                    for day, row in zip(frame.index, frame.itertuples(), strict=True)
                )
                self.payloads[code] = (
                    f'<?xml version="1.0" encoding="EUC-KR" ?>\n<protocol>\n\t<chartdata symbol="{code}" '
                    f'name="SYNTHETIC" count="{len(frame)}" timeframe="day" precision="0" origintime="19900103">\n'
                    f"{items}\n\t</chartdata>\n</protocol>\n"
                ).encode()
        body = self.payloads[code]
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=EUC-KR")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def forward_test_report(client, store: OhlcvStore) -> None:
    print(f"\n2. a forward-test report: {REPORT_TICKERS} tickers x {len(PERIODS)} periods")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NaverStub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stub = f"http://127.0.0.1:{server.server_address[1]}/sise.nhn"
    from FinanceDataReader.naver import data as naver_data

    from ohlcv.sources import fdr as fdr_source

    fdr = fdr_source._fdr()  # installs the checked get; route it to the stub
    checked = naver_data.requests.get
    naver_data.requests = types.SimpleNamespace(get=lambda url, *a, **k: checked(url.replace(NAVER, stub), *a, **k))
    codes = NaverStub.source.list_universe("KRX")
    for code in codes:  # build the payloads up front, so the stub's own work is not timed
        checked(f"{stub}?timeframe=day&count=6000&requestType=0&symbol={code}")
    requests_ = [(code, first, last) for code in codes for first, last in PERIODS]

    def cold() -> None:  # what forward tests did before: one vendor call per read
        for code, first, last in requests_:
            fdr.DataReader(code, first.isoformat(), last.isoformat())

    cache = OhlcvCache(client, FdrSource())

    def through_cache() -> None:
        for code, first, last in requests_:
            cache.get(code, first, last)

    def bulk() -> None:  # the same report, one get_many per period
        for first, last in PERIODS:
            cache.get_many(codes, first, last)

    cold_s = timed(cold, 1)[0]
    first_s = timed(through_cache, 1)[0]
    # the next pass finds every period key in Redis, one round trip each, as a new process would
    redis_s = timed(through_cache, 1)[0]
    warm_s = statistics.median(timed(through_cache, 5))  # from the values the reader keeps
    bulk_s = statistics.median(timed(bulk, 5))
    server.shutdown()
    print(
        f"  cold, FinanceDataReader per read ({len(requests_)} reads)   {cold_s:8.2f} s   (a local stub: a lower bound)"
    )
    print(f"  first pass through the cache (fills misses)    {first_s:8.2f} s")
    print(
        f"  warm, one get per read, from Redis             {redis_s:8.3f} s   ({cold_s / redis_s:.0f}x; a new process)"
    )
    print(f"  warm, one get per read, kept in the process    {warm_s:8.3f} s")
    print(f"  warm, one get_many per period                  {bulk_s:8.3f} s")
    verdict("cold / warm (get per read)", cold_s / warm_s, ">= 100x", cold_s / warm_s >= 100)
    verdict("cold / warm (get_many per period)", cold_s / bulk_s, ">= 100x", cold_s / bulk_s >= 100)


def many(client, store: OhlcvStore) -> None:
    print(f"\n3. get_many of {MANY_TICKERS} tickers x 1 year, and Redis memory")
    source = SyntheticSource(MANY_TICKERS)
    codes = source.list_universe("KRX")
    started = time.perf_counter()
    rows = 0
    for code in codes:
        frame = source.history(code, None, AS_OF)
        rows += len(frame)
        store.write_series(code, frame, source.name)
    print(f"  filled {len(codes)} whole histories ({rows:,} rows) in {time.perf_counter() - started:.1f} s")
    cache = OhlcvCache(client, source)
    first = timed(lambda: cache.get_many(codes, *YEAR), 1)[0]
    print(f"  get_many, first time (whole histories, writes period keys)  {first:6.3f} s")
    as_dict = statistics.median(timed(lambda: cache.get_many(codes, *YEAR), 5))
    as_long = statistics.median(timed(lambda: cache.get_many(codes, *YEAR, as_frame=True), 5))
    print(f"  get_many, period keys, dict of frames          {as_dict:6.3f} s")
    print(f"  get_many, period keys, one long frame          {as_long:6.3f} s")
    best = min(as_dict, as_long)
    print(f"  => get_many 2,700 x 1 year: {best:.3f} s   goal <= 0.4 s   {'met' if best <= 0.4 else 'MISSED'}")
    as_arrow = statistics.median(timed(lambda: cache.get_many(codes, *YEAR, as_frame=True, as_="arrow"), 5))
    as_polars = statistics.median(timed(lambda: cache.get_many(codes, *YEAR, as_frame=True, as_="polars"), 5))
    arrow_dict = statistics.median(timed(lambda: cache.get_many(codes, *YEAR, as_="arrow"), 5))
    print(f"  get_many, period keys, one Arrow table         {as_arrow:6.3f} s")
    print(f"  get_many, period keys, one Polars frame        {as_polars:6.3f} s")
    print(f"  get_many, period keys, dict of Arrow tables    {arrow_dict:6.3f} s")
    published = store.publish(AS_OF, len(codes))  # a revision, as an indexer run publishes one
    pinned = statistics.median(
        timed(lambda: cache.get_many(codes, *YEAR, as_frame=True, as_="arrow", revision=published.revision), 5)
    )
    print(f"  get_many, one Arrow table, pinned revision     {pinned:6.3f} s")
    # what a new process feels: no values kept in the process yet, every period key read from Redis
    cold = OhlcvCache(client, source, settings=Settings(client_cache_mb=0))
    arrow_cold = statistics.median(timed(lambda: cold.get_many(codes, *YEAR, as_frame=True, as_="arrow"), 5))
    print(f"  get_many, one Arrow table, client cache off    {arrow_cold:6.3f} s")
    for name, seconds in (("Arrow table", as_arrow), ("Polars frame", as_polars)):
        print(
            f"  => get_many 2,700 x 1 year as one {name:<12}: {seconds:.3f} s ({seconds / as_long:.2f}x the long "
            f"pandas frame)   goal <= 0.1 s   {'met' if seconds <= 0.1 else 'MISSED'}"
        )
    sample = codes[:: max(1, len(codes) // 300)]
    usage = sum(client.memory_usage(f"ticker:{code}") for code in sample)
    sample_rows = sum(len(source.history(code, None, AS_OF)) for code in sample)
    per_row = usage / sample_rows
    print(
        f"  => Redis bytes per row (MEMORY USAGE, {len(sample)} whole histories): {per_row:.1f}   "
        f"goal <= 35   {'met' if per_row <= 35 else 'MISSED'}"
    )


def main() -> None:
    with ThrowawayRedis() as server:
        client = server.client()
        store = OhlcvStore(client, KeySpace())
        new_process(server, store)
        server.flush()
        single_series(client, store)
        server.flush()
        store.publish(AS_OF, 0)
        forward_test_report(client, store)
        server.flush()
        store.publish(AS_OF, 0)
        many(client, store)


if __name__ == "__main__":
    main()
