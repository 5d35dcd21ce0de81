"""Daily runs that append the market snapshot keep exactly the cache that daily runs fetching
every ticker's history keep: the same bytes in every ``ticker:{code}`` and ``ticker:lastUpdateAt``."""

import datetime as dt

from ohlcv import calendar
from ohlcv.keys import KeySpace
from ohlcv.runner import run_once
from ohlcv.sources import SyntheticSource
from ohlcv.store import OhlcvStore

DAYS = [day.date() for day in calendar.sessions(dt.date(2026, 10, 14), dt.date(2026, 11, 13))]
SPLIT, HALTED, NEW, DELISTED = "000200", "000300", "000500", "000600"


def vendor() -> SyntheticSource:
    """Twenty tickers with a 1:20 split, a three-session halt, a new listing and a delisting."""
    return SyntheticSource(
        20,
        splits={SPLIT: (DAYS[9], 20)},
        halts={HALTED: [(DAYS[5], DAYS[7])]},
        listed={NEW: DAYS[12]},
        delisted={DELISTED: DAYS[15]},
    )


def cache(client, prefix: str) -> dict[bytes, bytes]:
    """Every series value and the lastUpdateAt hash of one key space, without the prefix."""
    found = {
        key[len(prefix) :]: client.get(key)
        for key in client.scan_iter(f"{prefix}ticker:*")
        if client.type(key) == b"string"
    }
    found[b"ticker:lastUpdateAt"] = client.hgetall(f"{prefix}ticker:lastUpdateAt")
    return found


def test_a_cache_kept_with_the_snapshot_is_byte_identical_to_one_kept_by_history_fetches(redis_client):
    assert len(DAYS) >= 20
    source = vendor()
    daily = OhlcvStore(redis_client, KeySpace("daily:"))
    history = OhlcvStore(redis_client, KeySpace("history:"))
    results, history_calls = {}, {"daily:": 0, "history:": 0}
    for day in DAYS:
        for store, use in ((daily, True), (history, False)):
            run_id = f"{store.keys.prefix}{day}"
            outcome = run_once(store, source, day, run_id=run_id, snapshot=use)
            assert outcome.still_failing == [], (day, outcome.summary.reasons)
            history_calls[store.keys.prefix] += int(store.run_metrics(run_id)["history_calls"])
        results[day] = daily.run_results(f"daily:{day}")
    assert cache(redis_client, "daily:") == cache(redis_client, "history:")
    assert len(cache(redis_client, "daily:")) == 22  # 20 tickers, KS11 and the lastUpdateAt hash

    # not vacuous: after the first fill nearly every ticker came from the snapshot, and each event happened
    assert all(list(results[day].values()).count("appended") >= 17 for day in DAYS[1:])
    assert results[DAYS[9]][SPLIT] == "repaired"  # the split day: base price differs, history refetched
    assert results[DAYS[10]][SPLIT] == "appended"  # and the next day continues the repaired history
    assert all(results[day][HALTED] == "appended" for day in DAYS[5:9])  # halt rows, then the reopening
    assert (results[DAYS[12]][NEW], results[DAYS[13]][NEW]) == ("written", "appended")
    assert results[DAYS[15]][DELISTED] == "appended"  # its last session
    assert DELISTED not in results[DAYS[16]]  # then no longer listed
    assert all(results[day]["KS11"] == "written" for day in DAYS)  # index symbols are not in the snapshot
    # the first fill (19 listed tickers and KS11), then KS11 once a day, the split and the new listing
    assert history_calls["daily:"] == 20 + (len(DAYS) - 1) + 2
    assert history_calls["history:"] > 20 * len(DAYS)
