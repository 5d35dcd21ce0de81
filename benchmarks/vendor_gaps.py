"""The vendor's gaps at KRX scale, in one process (``python -m ohlcv index``'s code path):
a normal day, a missed day, a day whose table is late and the day after it.

Fills a throwaway redis-server with 2,900 synthetic tickers plus KS11, then runs, each as of
its session at 10:23 in London (19:23 in Seoul, the evening table out, before the table
deadline):

1. the normal daily run, every ticker one session behind;
2. a missed day: no run for one session, then a run two sessions behind;
3. a late table: the session's table is not published (HTTP 404 from the public file);
4. the day after the late table: both tables are there.

Prints each run's vendor calls (tables, histories), wall time, and what the run record
says (appended, waiting, deferred). Asserts nothing.

    .venv/bin/python benchmarks/vendor_gaps.py [--tickers 2900]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from ohlcv import calendar  # noqa: E402
from ohlcv.indexer.runner import run_once  # noqa: E402
from ohlcv.keys import KeySpace  # noqa: E402
from ohlcv.redis_server import ThrowawayRedis  # noqa: E402
from ohlcv.settings import Settings  # noqa: E402
from ohlcv.sources.synthetic import SyntheticSource  # noqa: E402
from ohlcv.sources.testing import FaultySource  # noqa: E402
from ohlcv.store import OhlcvStore  # noqa: E402

LONDON = ZoneInfo("Europe/London")
#: six consecutive sessions, Monday 16 to Monday 23 November 2026
DAYS = [day.date() for day in calendar.sessions(dt.date(2026, 11, 16), dt.date(2026, 11, 23))]


def evening(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(10, 23), LONDON)


def timed(store: OhlcvStore, source, day: dt.date, label: str) -> dict:
    run_id = f"{label}@{day}"
    began = time.perf_counter()
    outcome = run_once(store, source, day, run_id=run_id, now=evening(day), settings=Settings(vendor_rate="none"))
    wall = time.perf_counter() - began
    metrics = store.run_metrics(run_id)
    record = outcome.record
    figures = {
        "label": label, "as_of": day, "state": record["state"], "wall": wall,
        "tables": int(metrics.get("snapshot_calls", 0)), "histories": int(metrics.get("history_calls", 0)),
        "appended": record.get("appended"), "waiting": record.get("waiting"), "deferred": record.get("deferred"),
        "table_missing": record.get("table_missing") or "-",
    }  # fmt: skip
    print(
        f"{label} (as of {day}): {figures['state']} in {wall:.1f} s; vendor calls: {figures['tables']} tables, "
        f"{figures['histories']} histories; appended {figures['appended']}, waiting {figures['waiting']}, "
        f"deferred {figures['deferred']}, table missing {figures['table_missing']}",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickers", type=int, default=2900)
    args = parser.parse_args()
    plain = SyntheticSource(args.tickers)
    late = FaultySource(SyntheticSource(args.tickers), table_missing={DAYS[4]})
    with ThrowawayRedis() as server:
        store = OhlcvStore(server.client(), KeySpace())
        print(f"{args.tickers} synthetic tickers + KS11, a throwaway redis-server; sessions {DAYS[0]} to {DAYS[-1]}")
        fill = timed(store, plain, DAYS[0], "first fill")
        rows = [
            timed(store, plain, DAYS[1], "normal day (one session behind)"),
            # no run as of DAYS[2]
            timed(store, plain, DAYS[3], "missed day (two sessions behind)"),
            timed(store, late, DAYS[4], "late table (not published)"),
            timed(store, plain, DAYS[5], "the day after the late table"),
        ]
    print(f"\n{'run':<34} {'as of':<10} {'state':<8} {'wall s':>7} {'tables':>6} {'histories':>9} {'appended':>8} "
          f"{'waiting':>7}")  # fmt: skip
    for f in [fill, *rows]:
        print(f"{f['label']:<34} {f['as_of']!s:<10} {f['state']:<8} {f['wall']:7.1f} {f['tables']:6d} "
              f"{f['histories']:9d} {f['appended']:>8} {f['waiting']:>7}")  # fmt: skip
    normal, calls = rows[0]["wall"], rows[0]["tables"] + rows[0]["histories"]
    for f in rows[1:]:
        print(f"{f['label']}: {f['wall'] / normal:.1f}x the normal day's wall time, "
              f"{f['tables'] + f['histories']} vendor calls against {calls}")  # fmt: skip


if __name__ == "__main__":
    main()
