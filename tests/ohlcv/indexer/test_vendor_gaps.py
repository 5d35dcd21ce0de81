"""Runs across the vendor's gaps keep the cache a run fetching every history keeps: a missed
day is caught up from the market tables, a table not yet published is waited for (and turns the
run red at the deadline), history calls stop at the run's budget, and evening volumes are
settled by the night run."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ohlcv import calendar
from ohlcv.indexer.runner import run_once
from ohlcv.keys import KeySpace
from ohlcv.settings import Settings
from ohlcv.sources import SyntheticSource
from ohlcv.sources.testing import FaultySource
from ohlcv.store import OhlcvStore
from tests.support import series_values as series

LONDON = ZoneInfo("Europe/London")
DAYS = [day.date() for day in calendar.sessions(dt.date(2026, 11, 2), dt.date(2026, 11, 20))]
TICKERS = 12


def evening(day: dt.date) -> dt.datetime:
    """10:23 in London (19:23 in Seoul): the day's table is out, before the deadline."""
    return dt.datetime.combine(day, dt.time(10, 23), LONDON)


def night(day: dt.date) -> dt.datetime:
    """18:23 in London (03:23 in Seoul the next day): the final table is out."""
    return dt.datetime.combine(day, dt.time(18, 23), LONDON)


@pytest.fixture
def reference(redis_client):
    """The cache of the same days kept by fetching every history, in its own key space."""

    def build(through: dt.date) -> dict[bytes, bytes]:
        store = OhlcvStore(redis_client, KeySpace("history:"))
        run_once(
            store, SyntheticSource(TICKERS), through, settings=Settings(), run_id=f"history:{through}", snapshot=False
        )
        return series(redis_client, "history:")

    return build


def run(store, source, day, moment, **settings):
    return run_once(store, source, day, run_id=f"{day}@{moment:%H%M}", now=moment, settings=Settings(**settings))


def test_a_missed_week_is_caught_up_from_the_tables_with_no_stock_history(redis_client, reference):
    store = OhlcvStore(redis_client, KeySpace("gap:"))
    source = SyntheticSource(TICKERS)
    run(store, source, DAYS[0], evening(DAYS[0]))
    # five sessions without a run (the host was down), then one run
    outcome = run(store, source, DAYS[6], evening(DAYS[6]))
    metrics = store.run_metrics(f"{DAYS[6]}@1023")
    assert outcome.still_failing == []
    assert outcome.summary.appended == TICKERS  # (the listing's table is the newest of the six)
    assert (metrics["snapshot_calls"], metrics["history_calls"]) == (6, 1)  # six tables, the index
    assert series(redis_client, "gap:") == reference(DAYS[6])


def test_beyond_the_catch_up_reach_histories_are_fetched(redis_client, reference):
    store = OhlcvStore(redis_client, KeySpace("gap:"))
    source = SyntheticSource(TICKERS)
    run(store, source, DAYS[0], evening(DAYS[0]))
    outcome = run(store, source, DAYS[6], evening(DAYS[6]), catchup_sessions=3)
    assert outcome.summary.appended == 0
    assert store.run_metrics(f"{DAYS[6]}@1023")["history_calls"] == TICKERS + 1
    assert series(redis_client, "gap:") == reference(DAYS[6])


def test_the_history_budget_defers_the_rest_to_the_next_run(redis_client, reference):
    store = OhlcvStore(redis_client, KeySpace("gap:"))
    source = SyntheticSource(TICKERS)
    run(store, source, DAYS[0], evening(DAYS[0]))
    first = run(store, source, DAYS[6], evening(DAYS[6]), catchup_sessions=3, history_budget=5)
    assert store.run_metrics(f"{DAYS[6]}@1023")["history_calls"] == 5
    assert first.summary.deferred == TICKERS + 1 - 5
    assert first.still_failing == []  # deferred tickers lag; they have not failed
    assert (first.record["state"], int(first.record["deferred"])) == ("success", TICKERS + 1 - 5)
    results = store.run_results(f"{DAYS[6]}@1023")
    assert results["KS11"] == "written"  # the index is served first
    assert sorted(results.values()).count("deferred") == TICKERS + 1 - 5
    # the next run fetches five more, the one after the last three
    run(store, source, DAYS[6], night(DAYS[6]), catchup_sessions=3, history_budget=5)
    last = run(store, source, DAYS[7], evening(DAYS[7]), catchup_sessions=3, history_budget=5)
    assert last.summary.deferred == 0
    assert series(redis_client, "gap:") == reference(DAYS[7])


def test_a_missing_table_is_waited_for_then_caught_up_the_next_day(redis_client, reference):
    store = OhlcvStore(redis_client, KeySpace("gap:"))
    plain = SyntheticSource(TICKERS)
    run(store, plain, DAYS[0], evening(DAYS[0]))
    before = series(redis_client, "gap:")
    missing = FaultySource(SyntheticSource(TICKERS), table_missing={DAYS[1]})
    waiting = run(store, missing, DAYS[1], evening(DAYS[1]))
    assert waiting.summary.waiting == TICKERS
    assert waiting.still_failing == []
    assert (waiting.record["state"], waiting.overdue) == ("success", [])
    assert missing.calls["history", "000100"] == 0  # no history instead of one missing row
    after = series(redis_client, "gap:")
    stocks = [key for key in before if key not in (b"ticker:KS11", b"ticker:lastUpdateAt")]
    assert len(stocks) == TICKERS
    assert all(after[key] == before[key] for key in stocks)  # the stocks wait, untouched
    # the next day both tables are there
    caught = run(store, plain, DAYS[2], evening(DAYS[2]))
    assert caught.summary.appended == TICKERS
    assert store.run_metrics(f"{DAYS[2]}@1023")["history_calls"] == 1
    assert series(redis_client, "gap:") == reference(DAYS[2])


def test_a_table_missing_at_the_deadline_turns_the_run_red_and_keeps_the_cache(redis_client):
    store = OhlcvStore(redis_client, KeySpace("gap:"))
    run(store, SyntheticSource(TICKERS), DAYS[0], evening(DAYS[0]))
    missing = FaultySource(SyntheticSource(TICKERS), table_missing={DAYS[1]})
    late = run(store, missing, DAYS[1], dt.datetime.combine(DAYS[1], dt.time(12, 23), LONDON))
    assert late.overdue == [DAYS[1].isoformat()]
    assert late.record["state"] == "failed"
    assert late.record["table_missing"] == DAYS[1].isoformat()
    assert redis_client.get("gap:getOHLCV_lastUpdateAt") == DAYS[0].isoformat().encode()


def test_a_stale_table_is_refused_not_appended(redis_client, reference):
    store = OhlcvStore(redis_client, KeySpace("gap:"))
    run(store, SyntheticSource(TICKERS), DAYS[0], evening(DAYS[0]))
    stale = FaultySource(SyntheticSource(TICKERS), stale_table={DAYS[1]})
    outcome = run(store, stale, DAYS[1], evening(DAYS[1]))
    assert outcome.summary.appended == 0
    assert outcome.record["table_refused"] == DAYS[1].isoformat()
    # whatever the run did instead, it wrote nothing the vendor's history contradicts
    run(store, SyntheticSource(TICKERS), DAYS[2], evening(DAYS[2]))
    assert series(redis_client, "gap:") == reference(DAYS[2])


def test_evening_volumes_are_settled_by_the_night_run(redis_client, reference):
    store = OhlcvStore(redis_client, KeySpace("gap:"))
    run(store, SyntheticSource(TICKERS), DAYS[0], evening(DAYS[0]))
    evening_table = FaultySource(SyntheticSource(TICKERS), preliminary={DAYS[1]})
    first = run(store, evening_table, DAYS[1], evening(DAYS[1]))
    assert first.summary.appended == TICKERS
    assert int(first.record["preliminary"]) == TICKERS
    assert series(redis_client, "gap:") != reference(DAYS[1])  # volumes short by the after-hours trades
    settled = run(store, SyntheticSource(TICKERS), DAYS[1], night(DAYS[1]))
    assert (int(settled.record["settled"]), int(settled.record["preliminary"])) == (TICKERS, 0)
    assert store.run_metrics(f"{DAYS[1]}@1823").get("history_calls", 0) == 0
    assert series(redis_client, "gap:") == reference(DAYS[1])


def test_a_table_call_that_keeps_failing_is_a_missing_table_and_the_index_still_moves(redis_client):
    store = OhlcvStore(redis_client, KeySpace("gap:"))
    run(store, SyntheticSource(TICKERS), DAYS[0], evening(DAYS[0]))
    down = FaultySource(SyntheticSource(TICKERS), snapshot_down=99)
    outcome = run(store, down, DAYS[1], evening(DAYS[1]))
    assert outcome.record["state"] == "success"  # before the deadline: a later run picks the table up
    assert outcome.summary.waiting == TICKERS
    assert outcome.record["table_missing"] == DAYS[1].isoformat()
    assert store.run_results(f"{DAYS[1]}@1023")["KS11"] == "written"
    assert redis_client.hget("gap:ticker:lastUpdateAt", "KS11") == DAYS[1].isoformat().encode()


def test_inside_retrying_outages_an_outage_is_raised_for_the_task_to_retry(redis_client):
    from ohlcv.errors import SourceUnavailable
    from ohlcv.indexer import tables

    store = OhlcvStore(redis_client, KeySpace("gap:"))
    down = FaultySource(SyntheticSource(TICKERS), snapshot_down=1)
    with tables.retrying_outages(), pytest.raises(SourceUnavailable):
        tables.get(store, down, DAYS[1], evening(DAYS[1]), "try-1")
    assert store.run_tables("try-1") == {}  # nothing noted: the next try asks again
    assert tables.get(store, down, DAYS[1], evening(DAYS[1]), "try-1").session == DAYS[1]
