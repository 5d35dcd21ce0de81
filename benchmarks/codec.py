"""OHLCV_STR on one 7,800-row KRW series: size, Redis memory, decode and GET+decode latency.

Prints figures and ratios measured in the same run; asserts nothing. Uses a throwaway
redis-server unless OHLCV_REDIS_URL is set.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time

import msgpack
import redis

from ohlcv import calendar, codec
from ohlcv.redis_server import ThrowawayRedis
from ohlcv.sources.synthetic import SyntheticSource

ROWS = 7_800
REPEAT = 500
KEY = "bench:ohlcv:series"


def series():
    source = SyntheticSource(1)
    days = calendar.sessions(dt.date(1990, 1, 3), dt.date(2026, 11, 20))[-ROWS:]
    return source._series("000100", days)


def timed(function, repeat: int = REPEAT) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1_000)
    return samples


def describe(name: str, samples: list[float]) -> float:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(f"{name:<28} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms")
    return p50


def run(client: redis.Redis) -> None:
    frame = series()
    blob = codec.encode(frame, "synthetic")
    client.set(KEY, blob)
    client.set("bench:ohlcv:tiny", b"12345678")
    print(f"rows                         {len(frame)}")
    print(f"OHLCV_STR bytes              {len(blob)}  ({len(blob) / len(frame):.1f} bytes/row)")
    print(f"dtypes                       {' '.join(msgpack.unpackb(blob, raw=False)['dtypes'])}")
    usage = client.memory_usage(KEY)
    print(f"Redis MEMORY USAGE           {usage}  ({usage / len(frame):.1f} bytes/row)")
    tiny = describe("GET 8 bytes", timed(lambda: client.get("bench:ohlcv:tiny")))
    raw = describe("GET raw value", timed(lambda: client.get(KEY)))
    decode = describe("decode only", timed(lambda: codec.decode(blob)))
    full = describe("GET + decode", timed(lambda: codec.decode(client.get(KEY))))
    encode = describe("encode only", timed(lambda: codec.encode(frame, "synthetic"), repeat=100))
    print(f"ratio GET+decode / raw GET   {full / raw:.2f}x")
    print(f"ratio raw GET / 8-byte GET   {raw / tiny:.2f}x")
    print(f"decode share of GET+decode   {decode / full:.0%}   (encode p50 {encode:.3f} ms)")
    client.delete(KEY, "bench:ohlcv:tiny")


def main() -> None:
    url = os.environ.get("OHLCV_REDIS_URL")
    if url:
        run(redis.Redis.from_url(url))
        return
    with ThrowawayRedis() as server:
        run(server.client())


if __name__ == "__main__":
    main()
