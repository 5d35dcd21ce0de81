"""What checking every current series costs a run: ``OhlcvStore.check_series`` over a market
of KRX size on a throwaway redis-server, against reading and decoding every value.

Fills ``--tickers`` series of ``--rows`` sessions each (the check reads a fixed 516 bytes of a
value whatever its length; the full read grows with it), damages a few, and prints the time
of each way, the bytes each moved and what each found. Asserts nothing.

    .venv/bin/python benchmarks/damage_check.py [--tickers 2900] [--rows 6000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from ohlcv import codec  # noqa: E402
from ohlcv.keys import KeySpace  # noqa: E402
from ohlcv.redis_server import ThrowawayRedis  # noqa: E402
from ohlcv.sources import SyntheticSource  # noqa: E402
from ohlcv.store import OhlcvStore  # noqa: E402

AS_OF = dt.date(2026, 11, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickers", type=int, default=2900)
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    frame = SyntheticSource(1).history("000100", None, AS_OF).iloc[-args.rows :]
    blob = codec.encode(frame, "fdr")
    codes = [f"{number:06d}" for number in range(1, args.tickers + 1)]
    with ThrowawayRedis() as server:
        store = OhlcvStore(server.client(), KeySpace())
        with store.client.pipeline(transaction=False) as pipe:
            for code in codes:
                pipe.set(store.keys.series(code), blob)
            pipe.hset(store.keys.last_update_hash, mapping=dict.fromkeys(codes, AS_OF.isoformat()))
            pipe.execute()
        store.client.set(store.keys.series(codes[0]), b"garbage")
        store.client.set(store.keys.series(codes[1]), blob[:-100])
        store.client.set(store.keys.series(codes[2]), codec.encode(frame.iloc[:-1], "fdr"))
        entries = dict.fromkeys(codes, AS_OF)

        def full_read() -> dict[str, str]:
            found = {}
            with store.client.pipeline(transaction=False) as pipe:
                for code in codes:
                    pipe.get(store.keys.series(code))
                values = pipe.execute()
            for code, value in zip(codes, values, strict=True):
                try:
                    if codec.last_date(value) != AS_OF:
                        found[code] = "mismatched"
                except Exception:
                    found[code] = "unreadable"
            return found

        def timed(call) -> tuple[float, object]:
            times, result = [], None
            for _ in range(args.repeat):
                start = time.perf_counter()
                result = call()
                times.append(time.perf_counter() - start)
            return statistics.median(times), result

        net = store.client.info("stats")["total_net_output_bytes"]
        probe_s, probe = timed(lambda: store.check_series(entries))
        probe_bytes = (store.client.info("stats")["total_net_output_bytes"] - net) / args.repeat
        net = store.client.info("stats")["total_net_output_bytes"]
        full_s, full = timed(full_read)
        full_bytes = (store.client.info("stats")["total_net_output_bytes"] - net) / args.repeat
    print(f"{args.tickers} series of {args.rows} rows ({len(blob):,} bytes each), median of {args.repeat}")
    print(f"check_series (STRLEN + 512-byte prefix, then 4 bytes): {probe_s * 1000:8.1f} ms "
          f"{probe_bytes / 1e6:8.2f} MB  found {sorted((c, d.kind) for c, d in probe.items())}")  # fmt: skip
    print(f"GET and decode every value:                           {full_s * 1000:8.1f} ms "
          f"{full_bytes / 1e6:8.2f} MB  found {sorted(full.items())}")  # fmt: skip
    print(
        f"ratio: the check takes {probe_s / full_s:.3f} of the full read's time, "
        f"{probe_bytes / full_bytes:.4f} of its bytes"
    )


if __name__ == "__main__":
    main()
