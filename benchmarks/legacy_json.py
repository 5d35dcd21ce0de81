"""What a pandas-JSON twin of every value would cost: the old job's ``to_json()`` next to
OHLCV_STR for one 7,800-row KRW series (size, Redis memory, encode time), for docs/cutover.md.

Prints figures measured in the same run; asserts nothing. Always uses a throwaway redis-server.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
import warnings

from ohlcv import calendar, codec
from ohlcv.migrate import from_pandas_json
from ohlcv.redis_server import ThrowawayRedis
from ohlcv.sources.synthetic import SyntheticSource

ROWS = 7_800
REPEAT = 50
TICKERS = 2_700


def series():
    days = calendar.sessions(dt.date(1990, 1, 3), dt.date(2026, 11, 20))[-ROWS:]
    return SyntheticSource(1)._series("000100", days)


def p50_ms(function) -> float:
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    frame = series()
    warnings.filterwarnings("ignore", "The default formatting of datetime")  # pandas: the epoch default will change
    legacy = frame.to_json().encode()
    value = codec.encode(frame, "fdr")
    with ThrowawayRedis() as server:
        client = server.client()
        client.set("json", legacy)
        client.set("ohlcv", value)
        json_memory, str_memory = client.memory_usage("json"), client.memory_usage("ohlcv")
    print(f"{len(frame)} rows, {frame.index[0].date()} to {frame.index[-1].date()}")
    print(f"pandas JSON (to_json())  {len(legacy):>9,} bytes  Redis MEMORY USAGE {json_memory:>9,}")
    print(f"OHLCV_STR                {len(value):>9,} bytes  Redis MEMORY USAGE {str_memory:>9,}")
    print(f"ratio JSON / OHLCV_STR   {len(legacy) / len(value):.1f}x")
    print(f"to_json() p50            {p50_ms(frame.to_json):.1f} ms")
    print(f"codec.encode p50         {p50_ms(lambda: codec.encode(frame, 'fdr')):.2f} ms")
    print(f"parse the JSON p50       {p50_ms(lambda: from_pandas_json(legacy)):.1f} ms (migrate.from_pandas_json)")
    total = (json_memory + str_memory) / 2**20 * TICKERS
    print(f"{TICKERS} tickers: OHLCV_STR {str_memory / 2**20 * TICKERS:.0f} MiB, both formats {total:.0f} MiB")


if __name__ == "__main__":
    main()
