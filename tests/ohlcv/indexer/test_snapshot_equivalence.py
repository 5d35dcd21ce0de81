"""Daily runs that append the market tables keep exactly the cache that daily runs fetching
every ticker's history keep: the same bytes in every ``ticker:{code}`` and ``ticker:lastUpdateAt``,
across a missed day and a day whose table was late. On every session both also answer the
universe as the vendor listed it, enter the split in the ledger once, and read every revision
they published as it read when it was current."""

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from ohlcv import OhlcvCache, calendar
from ohlcv.indexer.runner import run_once
from ohlcv.keys import KeySpace
from ohlcv.settings import Settings
from ohlcv.sources import SyntheticSource
from ohlcv.sources.testing import FaultySource
from ohlcv.store import OhlcvStore
from tests.support import series_values as cache

DAYS = [day.date() for day in calendar.sessions(dt.date(2026, 10, 14), dt.date(2026, 11, 13))]
SPLIT, HALTED, NEW, DELISTED = "000200", "000300", "000500", "000600"
#: no table run that day (the scheduler was down); that day's table not published until the next
MISSED, LATE = DAYS[3], DAYS[18]


def vendor() -> SyntheticSource:
    """Twenty tickers with a 1:20 split, a three-session halt, a new listing and a delisting."""
    return SyntheticSource(
        20,
        splits={SPLIT: (DAYS[9], 20)},
        halts={HALTED: [(DAYS[5], DAYS[7])]},
        listed={NEW: DAYS[12]},
        delisted={DELISTED: DAYS[15]},
    )


def test_a_cache_kept_with_the_snapshot_is_byte_identical_to_one_kept_by_history_fetches(redis_client):
    assert len(DAYS) >= 20
    source = vendor()
    daily = OhlcvStore(redis_client, KeySpace("daily:"))
    history = OhlcvStore(redis_client, KeySpace("history:"))
    results, history_calls = {}, {"daily:": 0, "history:": 0}
    readers = {
        store.keys.prefix: OhlcvCache(
            redis_client, source, settings=Settings(key_prefix=store.keys.prefix, client_cache_mb=0)
        )
        for store in (daily, history)
    }
    seen = {"daily:": {}, "history:": {}}  # revision id -> what a report read right after it was published
    late = FaultySource(vendor(), table_missing={LATE})
    for day in DAYS:
        evening = dt.datetime.combine(day, dt.time(10, 23), ZoneInfo("Europe/London"))
        for store, use in ((daily, True), (history, False)):
            if use and day == MISSED:
                continue
            run_id = f"{store.keys.prefix}{day}"
            served = late if use and day == LATE else source
            outcome = run_once(store, served, day, settings=Settings(), run_id=run_id, snapshot=use, now=evening)
            assert outcome.still_failing == [], (day, outcome.summary.reasons)
            history_calls[store.keys.prefix] += int(store.run_metrics(run_id)["history_calls"])
            reader = readers[store.keys.prefix]
            reader.refresh()  # a report that starts now: it reads the cut just published
            held = [*reader.universe(store.meta().last_update_at), "KS11"]
            seen[store.keys.prefix][reader.revision().id] = reader.get_many(held, as_frame=True)
        results[day] = daily.run_results(f"daily:{day}")
    assert cache(redis_client, "daily:") == cache(redis_client, "history:")

    # the universe of every session is the vendor's listing of it, the missed day's too (its
    # table was applied by the next day's catch-up; the history path lists every day it runs)
    for day in DAYS:
        listed = source.snapshot(day).codes()
        for prefix, reader in readers.items():
            assert reader.universe(day).exact, (prefix, day)
            assert reader.universe(day).codes == listed, (prefix, day)
    assert DELISTED in readers["daily:"].universe(DAYS[15])
    assert DELISTED not in readers["daily:"].universe(DAYS[16])
    assert NEW not in readers["daily:"].universe(DAYS[11])
    assert NEW in readers["daily:"].universe(DAYS[12])
    assert daily.delisted()[DELISTED]["last"] == DAYS[15].isoformat()
    # the split is entered once: found by the table in the daily path, by the history fetch in the other
    for prefix, found_by in (("daily:", "table"), ("history:", "history")):
        ledger = readers[prefix].actions(SPLIT)
        assert ledger["action"].tolist() == ["repaired"], prefix
        assert ledger["found_by"].tolist() == [found_by], prefix
        assert ledger["ratio"].iloc[0] == pytest.approx(1 / 20, rel=0.05)
        assert all(readers[prefix].actions(code).empty for code in (HALTED, NEW, DELISTED, "000100"))
    assert readers["daily:"].actions(SPLIT)["session"].iloc[0] == DAYS[9]
    # every revision reads, after the split's repair and the later days, what it read then
    for prefix, reads in seen.items():
        assert len(reads) >= len(DAYS) - 2, prefix  # the late table's day moved nothing: no new revision
        for revision, read in reads.items():
            codes = list(read.index.get_level_values("Ticker").unique())
            pinned = readers[prefix].get_many(codes, as_frame=True, revision=revision)
            pd.testing.assert_frame_equal(pinned, read, check_exact=True)
    # not vacuous: the revision of the day before the split reads the unsplit history
    (before_split,) = [
        read.xs(SPLIT, level="Ticker") for read in seen["daily:"].values()
        if read.xs(SPLIT, level="Ticker").index[-1].date() == DAYS[8]
    ]  # fmt: skip
    assert before_split["Close"].iloc[0] > 10 * readers["daily:"].get(SPLIT)["Close"].iloc[0]
    assert len(cache(redis_client, "daily:")) == 22  # 20 tickers, KS11 and the lastUpdateAt hash

    # not vacuous: after the first fill nearly every ticker came from the tables, and each event happened
    ran = [day for day in DAYS[1:] if day not in (MISSED, LATE)]
    assert all(list(results[day].values()).count("appended") >= 17 for day in ran)
    assert results[MISSED] == {}
    assert list(results[LATE].values()).count("waiting") >= 17
    assert results[DAYS[9]][SPLIT] == "repaired"  # the split day: base price differs, history refetched
    assert results[DAYS[10]][SPLIT] == "appended"  # and the next day continues the repaired history
    assert all(results[day][HALTED] == "appended" for day in DAYS[5:9])  # halt rows, then the reopening
    assert (results[DAYS[12]][NEW], results[DAYS[13]][NEW]) == ("written", "appended")
    assert results[DAYS[15]][DELISTED] == "appended"  # its last session
    assert DELISTED not in results[DAYS[16]]  # then no longer listed
    assert all(
        results[day]["KS11"] == "written" for day in DAYS if day != MISSED
    )  # index symbols are not in the snapshot
    # the first fill (19 listed tickers and KS11), then KS11 once a run, the split and the new listing:
    # neither the missed day nor the late table cost a stock's history
    assert history_calls["daily:"] == 20 + (len(DAYS) - 2) + 2
    assert history_calls["history:"] > 20 * len(DAYS)
