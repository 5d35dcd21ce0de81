"""``python -m ohlcv``: run the indexer without Airflow, look at and warm the cache, and migrate
what the Jenkins job left in Redis.

Exit codes: 0 success, 1 the requested data is not available (not cached with
``--cached-only``, the vendor has none, ``index`` left tickers failing, or ``migrate`` found
values it could not migrate), 2 bad input or
configuration, 3 Redis could not be reached, 4 the vendor could not be reached, 5 another
indexer run holds the run lock, 6 Redis refused the credentials, 7 the Redis user may not do
what was asked (``--read-only`` reads with a read-only user).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import logging
import re
import socket
import sys
import warnings
from collections import Counter

import redis

from ohlcv.errors import (
    BadOhlcvData,
    BreakerOpen,
    ConfigurationError,
    InexactUniverse,
    InvalidDate,
    InvalidTicker,
    NeverListed,
    NoData,
    SourceBlocked,
    SourceUnavailable,
    UnknownMarket,
    UnknownRevision,
    UnknownSession,
)
from ohlcv.keys import KeySpace, validate_period, validate_ticker
from ohlcv.reader.cache import OhlcvCache
from ohlcv.settings import DEFAULT_BENCHMARK, MARKETS, Settings
from ohlcv.store import OhlcvStore, RunLocked, client_from_url

EXIT_OK, EXIT_MISSING, EXIT_USAGE, EXIT_REDIS, EXIT_VENDOR, EXIT_LOCKED = 0, 1, 2, 3, 4, 5
EXIT_AUTH, EXIT_PERMISSION = 6, 7
EXIT_REDIS_FULL, EXIT_REDIS_READ_ONLY, EXIT_REDIS_COMMAND, EXIT_REDIS_TIMEOUT = 8, 9, 10, 11
#: redis-py names a failed pipeline command with its arguments: a value's bytes among them
_PIPELINE_COMMAND = re.compile(r"^Command # (\d+) \((\S+)(?: (\S+))?.*?\) of pipeline caused error: ", re.DOTALL)
#: the longest a breaker opened by hand stays open: a month
MAX_BREAKER_HOURS = 24 * 31


#: tickers a warm reads per get_many: the bar moves every batch
WARM_BATCH = 250


def _bar(items, total: int, what: str):
    """``items`` with a progress bar on stderr when it is a terminal (tqdm); as they are when it
    is not (CI, cron, Airflow), where each command's own lines say how far it got."""
    from tqdm import tqdm

    return tqdm(items, total=total, desc=what, unit="", disable=None, file=sys.stderr, dynamic_ncols=True, leave=False)


@contextlib.contextmanager
def _logging(level: int):
    """Log lines to stderr, written above the progress bar while one is shown."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    with logging_redirect_tqdm():
        yield


def _print_redis(redis_doc: dict) -> None:
    """Where the cache lives: the primary, its replicas and their lag, the Sentinels."""
    if redis_doc["mode"] == "sentinel":
        answering = [view for view in redis_doc["sentinels"] if view["reachable"]]
        down = [view["address"] for view in answering if view.get("primary_down")]
        print(
            f"redis primary             {redis_doc['primary'] or '-'} (Sentinel service {redis_doc['service']!r}: "
            f"{len(answering)} of {len(redis_doc['sentinels'])} Sentinels answer"
            + (f"; {len(down)} see the primary down" if down else "")
            + ")"
        )
        for view in redis_doc["sentinels"]:
            if not view["reachable"]:
                print(f"  Sentinel {view['address']} does not answer: {view['error']}")
    else:
        print(f"redis                     {redis_doc['primary']}")
    if redis_doc.get("error"):
        print(f"  replication unknown: {redis_doc['error']}")
    for replica in redis_doc["replicas"]:
        print(
            f"  replica {replica['address']:<17} {replica['state']}, last acknowledged {replica['lag_seconds']} s ago, "
            f"{replica['behind_bytes']} bytes behind"
        )
    if redis_doc["mode"] == "sentinel" and not redis_doc["replicas"]:
        print("  no replica: a failover has nothing to promote")


def _status(store: OhlcvStore, args: argparse.Namespace) -> int:
    """The cache's state (``ohlcv.overview.cache``): as text, or with ``--json`` the document the
    Airflow cache page shows."""
    import json

    from ohlcv.overview import cache as overview

    doc = overview.state(store, runs=args.runs)
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return EXIT_OK
    cut, tickers, breaker = doc["cut"], doc["tickers"], doc["breaker"]
    _print_redis(doc["redis"])
    print(f"getOHLCV_isUpdating       {'1' if cut['is_updating'] else '0'}")
    print(f"getOHLCV_lastUpdateAt     {cut['last_update_at'] or '-'}")
    print(f"getOHLCV_lastUpdateCount  {cut['last_update_count'] if cut['last_update_count'] is not None else '-'}")
    expires = cut["run_lock_expires_in_seconds"]
    print(f"run lock                  {f'held, expires in {expires} s' if expires is not None else 'free'}")
    if breaker["open"]:
        closes = breaker["closes_in_seconds"]
        remaining = f", closes in {dt.timedelta(seconds=closes)}" if closes else ""
        print(f"vendor breaker            OPEN{remaining}: {breaker['reason']}")
    else:
        print("vendor breaker            closed")
    updates = store.last_updates()
    print(f"tickers cached            {len(updates)}")
    for day, count in sorted(Counter(updates.values()).items(), reverse=True)[:5]:
        print(f"  current through {day}  {count}")
    states = ", ".join(f"{count} {name}" for name, count in tickers["by_state"].items() if count)
    print(
        f"tickers by state          {states or '-'} (of {tickers['total']}; python -m ohlcv status --json lists them)"
    )
    if doc["universe"]:
        universe = doc["universe"]
        print(
            f"universe recorded         {universe['oldest']} to {universe['newest']} ({universe['sessions']} sessions, "
            f"exact from {universe['exact_from']}); {len(store.delisted())} codes delisted"
        )
    if doc["revision"]:
        revision = doc["revision"]
        when = f"published {revision['published'][:16].replace('T', ' ')} UTC, readable until {revision['expires']}"
        print(f"revision                  {revision['id']} (cut {revision['cut']}, {when})")
    for kind in ("unreadable", "missing", "mismatched"):
        found = [row for row in doc["damaged"] if row["kind"] == kind]
        if found:
            print(f"series {kind:<18} {len(found)} (the next index run indexes them again)")
        for row in found[: args.oldest]:
            print(f"  {row['code']}  {row['reason']}")
    held = doc["preliminary"]
    print(
        f"preliminary rows          {held['rows']}"
        + (" (evening volumes, settled by the night run)" if held["rows"] else "")
    )
    for day, count in held["by_session"].items():
        print(f"  of {day}  {count}")
    if doc["cross_checks"]:
        print("tables cross-checked      (newest first; the differing codes are in ohlcv:quality)")
    for note in doc["cross_checks"]:
        if note.get("served"):
            print(f"  {note['session']}  served by {note['second']} (the first source had none)")
        else:
            print(f"  {note['session']}  {note['differing']} of {note['codes']} codes differ from {note['second']}")
    stale = sorted(updates.items(), key=lambda item: (item[1], item[0]))[: args.oldest]
    if stale and cut["last_update_at"] and stale[0][1].isoformat() < cut["last_update_at"]:
        print("oldest tickers:")
        for code, day in stale:
            print(f"  {code}  {day}")
    runs = doc["runs"]
    if runs:
        print("recent runs (newest first):")
        columns = [
            ("as_of", 10), ("state", 7), ("planned", 7), ("appended", 8), ("handed_on", 9), ("written", 7),
            ("repaired", 8), ("unchanged", 9), ("skipped_no_data", 7), ("waiting", 7), ("deferred", 8),
            ("settled", 7), ("failed", 6), ("retries", 7), ("actions", 7),
            ("snapshot_calls", 8), ("history_calls", 7), ("vendor_seconds", 8), ("rows_written", 7),
            ("duration_seconds", 8),
        ]  # fmt: skip
        titles = {"skipped_no_data": "no_data", "snapshot_calls": "snapshot", "history_calls": "history",
                  "vendor_seconds": "vendor_s", "rows_written": "rows", "duration_seconds": "took_s"}  # fmt: skip
        print("  " + " ".join(f"{titles.get(name, name):>{width}}" for name, width in columns) + "  run_id")
        for run in runs:
            cells = " ".join(f"{run.get(name, '-'):>{width}}" for name, width in columns)
            gaps = [
                f"{field} {run[field]}"
                for field in ("table_missing", "table_refused", "table_second")
                if run.get(field)
            ]
            print(f"  {cells}  {run['run_id']}" + (f"  ({'; '.join(gaps)})" if gaps else ""))
    return EXIT_OK


def _index(store: OhlcvStore, args: argparse.Namespace) -> int:
    """The DAG's steps in this process: for cron, or Jenkins during a cutover."""
    import pandas as pd

    from ohlcv.calendar import last_complete_session
    from ohlcv.indexer.runner import run_once
    from ohlcv.keys import to_date
    from ohlcv.sources import from_spec

    source = from_spec(args.source or args.settings.source)
    as_of = to_date(args.as_of) if args.as_of else last_complete_session(pd.Timestamp.now(tz="UTC"))
    tickers = [validate_ticker(code) for part in args.tickers for code in part.split(",") if code]
    run_id = f"cli__{as_of}__{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%S.%f}__{socket.gethostname()}"
    with _logging(logging.INFO):
        outcome = run_once(
            store, source, as_of, run_id=run_id, market=args.universe, tickers=tickers, benchmark=args.benchmark,
            full_refresh=args.full_refresh, snapshot=not args.no_snapshot, settings=args.settings, bar=_bar,
        )  # fmt: skip
    record = outcome.record
    print(
        f"as of {as_of}: {record['state']}; {record['appended']} appended from the tables, {record['written']} "
        f"written, {record['repaired']} repaired, {record['settled']} settled, {record['waiting']} waiting for a "
        f"table, {record['deferred']} deferred, {record['failed']} failing, {record['actions']} ledger entries "
        f"(corporate actions and repairs); published cut {record['published']}; "
        f"{record['vendor_calls']} vendor calls in {record['duration_seconds']} s"
    )
    if record["table_missing"]:
        print(f"market tables not published yet: {record['table_missing']}")
    if record["unpublished"]:
        print(f"error: {record['unpublished']}", file=sys.stderr)
    for day in outcome.overdue:
        print(
            f"error: the KRX table for {day} is not published by {args.settings.table_deadline} "
            f"{args.settings.schedule_timezone}",
            file=sys.stderr,
        )
    for code in outcome.still_failing:
        print(f"still failing: {code}: {outcome.summary.reasons.get(code, 'see the log above')}", file=sys.stderr)
    return EXIT_MISSING if outcome.still_failing or outcome.overdue or record["unpublished"] else EXIT_OK


def _operator() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()} (python -m ohlcv breaker)"


def _breaker(store: OhlcvStore, args: argparse.Namespace) -> int:
    if args.action == "open":
        store.open_breaker(args.reason, dt.timedelta(hours=args.hours), by=_operator())
        print(f"vendor breaker opened for {args.hours:g} h: {args.reason}")
    elif args.action == "close":
        reason = store.close_breaker(by=_operator())
        print(f"vendor breaker closed (it was open: {reason})" if reason else "vendor breaker was already closed")
    for entry in store.breaker_log(args.log):
        hours = f" for {entry['hours']} h" if entry.get("hours") else ""
        print(f"  {entry['at']}  {entry['action']:<5}{hours} by {entry['by']}: {entry['reason']}")
    return EXIT_OK


def _get(store: OhlcvStore, args: argparse.Namespace) -> int:
    code = validate_ticker(args.code)
    cache = OhlcvCache(store.client, read_only=args.read_only, settings=args.settings)
    if args.cached_only:
        frame = store.read_series(code)
        if frame is None:
            print(f"{code} is not cached", file=sys.stderr)
            return EXIT_MISSING
        last = cache.read_end(args.end, latest=args.latest)  # the same cut as a cache read
        first, last = validate_period(args.start or frame.index[0].date(), max(last, frame.index[0].date()))
        frame = frame.loc[str(first) : str(last)]
    else:
        frame = cache.get(code, args.start, args.end, latest=args.latest)
    if args.csv:
        frame.to_csv(sys.stdout)
    else:
        print(frame.to_string(max_rows=args.rows))
        span = f"{frame.index[0].date()} to {frame.index[-1].date()}" if len(frame) else "no sessions"
        print(f"{code}: {len(frame)} rows, {span}")
    return EXIT_OK


def _warm(store: OhlcvStore, args: argparse.Namespace) -> int:
    codes = [validate_ticker(code) for part in args.tickers for code in part.split(",") if code]
    periods = []
    for text in args.period:
        start, _, end = text.partition(":")
        if not start.strip() or not end.strip():
            raise InvalidDate(f"--period {text!r} needs a start and an end: START:END, e.g. 2024-01-02:2024-12-30")
        periods.append(validate_period(start, end))
    cache = OhlcvCache(store.client, read_only=args.read_only, settings=args.settings)
    for first, last in periods:
        batches = [codes[start : start + WARM_BATCH] for start in range(0, len(codes), WARM_BATCH)]
        tickers = rows = 0
        for batch in _bar(batches, len(batches), f"{first}:{last}"):
            frames = cache.get_many(batch, first, last)
            tickers, rows = tickers + len(frames), rows + sum(len(frame) for frame in frames.values())
        print(f"{first}:{last}  {tickers} tickers, {rows} rows")
    return EXIT_OK


def _universe(store: OhlcvStore, args: argparse.Namespace) -> int:
    """The codes listed on a session (delisted ones included), or the backfill of the record."""
    if args.backfill:
        return _backfill(store, args)
    cache = OhlcvCache(store.client, read_only=True, settings=args.settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InexactUniverse)  # said below, on stderr
        found = cache.universe(args.session, args.market)
    for code, market in found.markets.items():
        print(f"{code} {market}")
    how = "exact: that session's market table" if found.exact else f"NOT EXACT: {found.note}"
    print(f"{len(found)} codes listed on {found.session} ({found.market}); {how}", file=sys.stderr)
    return EXIT_OK


def _actions(store: OhlcvStore, args: argparse.Namespace) -> int:
    """The ledger of one code: its corporate actions and repairs."""
    import pandas as pd

    code = validate_ticker(args.code)
    frame = OhlcvCache(store.client, read_only=True, settings=args.settings).actions(code)
    if frame.empty:
        print(f"{code}: no continuity break or repair recorded")
        return EXIT_OK
    shown = frame.drop(columns=["digest_before", "digest_after"]) if not args.digests else frame
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(shown.to_string(index=False))
    print(f"{code}: {len(frame)} ledger entries")
    return EXIT_OK


def _say(line: str) -> None:
    """A line on stdout, above the progress bar while one is shown."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout)


def _backfill(store: OhlcvStore, args: argparse.Namespace) -> int:
    """Record the sessions before the indexer began, as far as the vendor's archive reaches."""
    import pandas as pd

    from ohlcv.calendar import last_complete_session
    from ohlcv.indexer import listings
    from ohlcv.keys import to_date
    from ohlcv.sources import from_spec, second_tables
    from ohlcv.sources.guard import GuardedSource

    source = GuardedSource(
        from_spec(args.source or args.settings.source), store, settings=args.settings,
        second=second_tables(args.settings.krx_openapi_key),
    )  # fmt: skip
    newest = last_complete_session(pd.Timestamp.now(tz="UTC"))
    since = to_date(args.since) if args.since else None
    with _logging(logging.WARNING):
        report = listings.backfill(store, source, newest, since=since, progress=_say, bar=_bar)
    for line in report.lines():
        print(line)
    return EXIT_OK


def _migrate(store: OhlcvStore, args: argparse.Namespace) -> int:
    """The old job's values as OHLCV_STR, without vendor calls (see ``ohlcv.migrate``)."""
    from ohlcv.migrate import Migrator

    tickers = [validate_ticker(code) for part in args.tickers for code in part.split(",") if code]
    migrator = Migrator(store, source=args.source, dry_run=args.dry_run)
    if args.dry_run:
        print("dry run: nothing is written")
        if store.client.exists(store.keys.run_lock):
            print(f"note: an indexer run holds {store.keys.run_lock}; values may change before you migrate")
    report = migrator.run(tickers, bar=_bar)
    for result in report.results:
        print(result.line())
    print(report.totals())
    if not report.changed:
        print("nothing to migrate: every value is already OHLCV_STR under its new name")
    return EXIT_MISSING if report.failed else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ohlcv", description="Inspect the OHLCV cache in Redis.")
    parser.add_argument("--redis-url", help="Redis URL (default: $OHLCV_REDIS_URL, then redis://127.0.0.1:6379/0)")
    parser.add_argument(
        "--read-only", action="store_true", help="get/warm make no write and no vendor call (a read-only Redis user)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="meta keys, run lock and how current the cached tickers are")
    status.add_argument("--oldest", type=int, default=5, help="how many of the stalest tickers to list")
    status.add_argument("--runs", type=int, default=5, help="how many recent runs to show")
    status.add_argument(
        "--json", action="store_true", help="the facts the Airflow cache page shows, as JSON (docs/cli.md)"
    )
    get = commands.add_parser(
        "get", help="print one ticker's history (from the cache; a miss is fetched from $OHLCV_SOURCE and stored)"
    )
    get.add_argument("code", help="ticker code, e.g. 005930 or KS11")
    get.add_argument("--start", help="first date, e.g. 2022-9-12")
    get.add_argument("--end", help="last date (default and upper bound: getOHLCV_lastUpdateAt)")
    get.add_argument("--latest", action="store_true", help="do not cut at getOHLCV_lastUpdateAt")
    get.add_argument("--cached-only", action="store_true", help="never ask the vendor; exit 1 when not cached")
    get.add_argument("--csv", action="store_true", help="write CSV to stdout")
    get.add_argument("--rows", type=int, default=10, help="rows to show in the table view")
    breaker = commands.add_parser("breaker", help="open or close the vendor breaker by hand; show its recent changes")
    breaker.add_argument("action", choices=["show", "open", "close"], help="show its log, open it, or close it now")
    breaker.add_argument("reason", nargs="?", default="", help="why (required with open)")
    breaker.add_argument("--hours", type=float, default=12.0, help="how long an opened breaker stays open")
    breaker.add_argument("--log", type=int, default=5, help="how many recent changes to show")
    index = commands.add_parser(
        "index", help="run the indexer once, without Airflow: the DAG's steps, lock, meta keys and run record"
    )
    index.add_argument("--tickers", nargs="+", default=[], help="codes to index instead of the market's listing")
    index.add_argument("--universe", default=MARKETS[0], choices=MARKETS)
    index.add_argument(
        "--benchmark", nargs="*", default=list(DEFAULT_BENCHMARK), help="index symbols indexed with the universe"
    )
    index.add_argument("--as-of", help="the session to index through (default: the last final XKRX session)")
    index.add_argument("--source", help="vendor spec (default: $OHLCV_SOURCE, then fdr)")
    index.add_argument("--full-refresh", action="store_true", help="fetch every ticker's history again")
    index.add_argument("--no-snapshot", action="store_true", help="fetch histories instead of the market snapshot")
    warm = commands.add_parser("warm", help="create the period keys forward tests will read")
    warm.add_argument("--tickers", nargs="+", required=True, help="codes, separated by spaces or commas")
    warm.add_argument(
        "--period", nargs="+", required=True, metavar="START:END", help="periods such as 2024-01-02:2024-12-30"
    )
    universe = commands.add_parser(
        "universe", help="the codes listed on a session, delisted ones included; --backfill records earlier sessions"
    )
    universe.add_argument("session", nargs="?", help="an XKRX session, e.g. 2026-03-13")
    universe.add_argument("--market", default=MARKETS[0], choices=MARKETS, help="one board (default: every one)")
    universe.add_argument(
        "--backfill", action="store_true",
        help="record the market tables of the sessions before the indexer began, as far back as the vendor has them",
    )  # fmt: skip
    universe.add_argument("--since", help="with --backfill: go back no further than this date")
    universe.add_argument("--source", help="with --backfill: vendor spec (default: $OHLCV_SOURCE, then fdr)")
    actions = commands.add_parser(
        "actions", help="one code's ledger: the continuity breaks found in it and the repairs made to it"
    )
    actions.add_argument("code", help="ticker code, e.g. 005930")
    actions.add_argument("--digests", action="store_true", help="show the series' digests before and after")
    migrate = commands.add_parser(
        "migrate", help="convert the Jenkins job's pandas JSON values into OHLCV_STR in place, without vendor calls"
    )
    migrate.add_argument("--dry-run", action="store_true", help="report what would be done; write nothing")
    migrate.add_argument("--tickers", nargs="+", default=[], help="only these codes (default: every one found)")
    migrate.add_argument(
        "--source", default="fdr", help="source label written into converted values (default: fdr, the old job's)"
    )
    return parser


def _said(exc: BaseException) -> str:
    """What Redis said, in one line without the values a command carried: a failed pipeline
    command is named by its verb and key only."""
    message = str(exc)
    found = _PIPELINE_COMMAND.match(message)
    if found:
        number, verb, key = found.groups()
        message = f"{message[found.end() :]} (pipeline command {number}: {verb} {key or ''})".replace(" )", ")")
    line = " ".join(message.split())
    return "".join(char if char.isprintable() else "?" for char in line)[:300]


_FULL = (
    "Redis is out of memory (maxmemory reached); writing stopped at the refused command and nothing is half-written: "
)
#: what each error becomes, first match wins: its exit code, the words before it, and how it is said
#: (what Redis says, through ``_said``: never a value's bytes)
_ERRORS = [
    (RunLocked, EXIT_LOCKED, "", str),
    ((InvalidTicker, InvalidDate, ConfigurationError, UnknownMarket), EXIT_USAGE, "", str),
    ((NoData, BadOhlcvData, UnknownSession, NeverListed, UnknownRevision), EXIT_MISSING, "", str),
    ((SourceUnavailable, SourceBlocked, BreakerOpen), EXIT_VENDOR, "vendor: ", str),
    (redis.exceptions.AuthenticationError, EXIT_AUTH, "Redis refused the credentials in the URL: ", str),
    (redis.exceptions.NoPermissionError, EXIT_PERMISSION, "the Redis user may not do this: ", str),
    (redis.exceptions.OutOfMemoryError, EXIT_REDIS_FULL, _FULL, _said),
    (redis.exceptions.ReadOnlyError, EXIT_REDIS_READ_ONLY, "this Redis is a read-only replica; point the URL at the "
     "primary: ", _said),
    (redis.exceptions.TimeoutError, EXIT_REDIS_TIMEOUT, "Redis did not answer in time (a busy or stalled server): ",
     _said),
    (redis.exceptions.ConnectionError, EXIT_REDIS, "Redis unreachable: ", _said),
    (redis.RedisError, EXIT_REDIS_COMMAND, "Redis refused a command: ", _said),
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "breaker" and args.action == "open" and not args.reason.strip():
        parser.error("breaker open needs a reason, e.g. python -m ohlcv breaker open 'Naver answers 429'")
    if args.command == "universe" and not args.backfill and not args.session:
        parser.error("universe needs a SESSION (e.g. python -m ohlcv universe 2026-03-13) or --backfill")
    if args.command == "universe" and args.backfill and args.session:
        parser.error("universe --backfill records every session it can; give no SESSION with it (--since limits it)")
    if args.command == "breaker" and not 0 < args.hours <= MAX_BREAKER_HOURS:
        parser.error(
            f"--hours {args.hours:g}: give the hours the breaker stays open, above 0 and at most {MAX_BREAKER_HOURS}"
        )
    try:
        # the one read of the environment: every command takes what it needs from args.settings
        args.settings = Settings.from_env()
        store = OhlcvStore(
            client_from_url(args.redis_url or args.settings.redis_url, failover_wait=args.settings.failover_wait),
            KeySpace(args.settings.key_prefix),
            revision_days=args.settings.revision_days,
        )  # fmt: skip
        commands = {
            "status": _status, "get": _get, "warm": _warm, "breaker": _breaker, "index": _index, "migrate": _migrate,
            "universe": _universe, "actions": _actions,
        }  # fmt: skip
        return commands[args.command](store, args)
    except Exception as exc:
        for kinds, code, before, said in _ERRORS:
            if isinstance(exc, kinds):
                hint = " (a read-only user can read with --read-only)" if code == EXIT_PERMISSION else ""
                print(f"error: {before}{said(exc)}{'' if args.read_only else hint}", file=sys.stderr)
                return code
        raise
