"""``python -m ohlcv``: look at the cache from a terminal.

Exit codes: 0 success, 1 the requested data is not cached, 2 bad input or configuration,
3 Redis could not be reached.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import redis

from ohlcv.errors import ConfigurationError, InvalidDate, InvalidTicker
from ohlcv.keys import validate_period, validate_ticker
from ohlcv.store import OhlcvStore, client_from_url

EXIT_OK, EXIT_MISSING, EXIT_USAGE, EXIT_REDIS = 0, 1, 2, 3


def _status(store: OhlcvStore, args: argparse.Namespace) -> int:
    meta = store.meta()
    updates = {key.decode(): value.decode() for key, value in store.client.hgetall(store.keys.last_update_hash).items()}
    lock_ttl = store.client.pttl(store.keys.run_lock)
    print(f"getOHLCV_isUpdating       {'1' if meta.is_updating else '0'}")
    print(f"getOHLCV_lastUpdateAt     {meta.last_update_at or '-'}")
    print(f"getOHLCV_lastUpdateCount  {meta.last_update_count if meta.last_update_count is not None else '-'}")
    lock = f"held, expires in {lock_ttl // 1000} s" if lock_ttl > 0 else "free"
    print(f"run lock                  {lock}")
    print(f"tickers cached            {len(updates)}")
    for day, count in sorted(Counter(updates.values()).items(), reverse=True)[:5]:
        print(f"  current through {day}  {count}")
    stale = sorted(updates.items(), key=lambda item: (item[1], item[0]))[: args.oldest]
    if stale and meta.last_update_at and stale[0][1] < meta.last_update_at.isoformat():
        print("oldest tickers:")
        for code, day in stale:
            print(f"  {code}  {day}")
    return EXIT_OK


def _get(store: OhlcvStore, args: argparse.Namespace) -> int:
    code = validate_ticker(args.code)
    frame = store.read_series(code)
    if frame is None:
        print(f"{code} is not cached", file=sys.stderr)
        return EXIT_MISSING
    start = args.start or frame.index[0].date()
    end = args.end or frame.index[-1].date()
    first, last = validate_period(start, end)
    frame = frame.loc[str(first) : str(last)]
    if args.csv:
        frame.to_csv(sys.stdout)
    else:
        print(frame.to_string(max_rows=args.rows))
        print(f"{code}: {len(frame)} rows, {first} to {last}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ohlcv", description="Inspect the OHLCV cache in Redis.")
    parser.add_argument("--redis-url", help="Redis URL (default: $OHLCV_REDIS_URL, then redis://127.0.0.1:6379/0)")
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="meta keys, run lock and how current the cached tickers are")
    status.add_argument("--oldest", type=int, default=5, help="how many of the stalest tickers to list")
    get = commands.add_parser("get", help="print one ticker's cached history")
    get.add_argument("code", help="ticker code, e.g. 005930 or KS11")
    get.add_argument("--start", help="first date, e.g. 2022-9-12")
    get.add_argument("--end", help="last date")
    get.add_argument("--csv", action="store_true", help="write CSV to stdout")
    get.add_argument("--rows", type=int, default=10, help="rows to show in the table view")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        store = OhlcvStore(client_from_url(args.redis_url))
        return {"status": _status, "get": _get}[args.command](store, args)
    except (InvalidTicker, InvalidDate, ConfigurationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except redis.RedisError as exc:
        print(f"error: Redis: {exc}", file=sys.stderr)
        return EXIT_REDIS
