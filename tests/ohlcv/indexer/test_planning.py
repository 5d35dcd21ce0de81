import datetime as dt

import pytest

from ohlcv.errors import InvalidTicker
from ohlcv.indexer import per_ticker, planning
from ohlcv.sources import SyntheticSource
from ohlcv.status import INACTIVE_RECHECK, Status
from tests.support import CountingSource

AS_OF = dt.date(2026, 11, 20)


def test_universe_is_the_listing_plus_benchmark(store):
    codes = planning.universe(store, SyntheticSource(3), "KRX", [], ["KS11"], AS_OF)
    assert codes == ["000100", "000200", "000300", "KS11"]


def test_the_listing_is_asked_once_per_session(store):
    source = CountingSource(3)
    planning.universe(store, source, "KRX", [], [], AS_OF)
    planning.universe(store, source, "KRX", [], [], AS_OF)
    planning.universe(store, source, "KRX", [], [], dt.date(2026, 11, 13))  # a backfill uses the newer listing
    assert source.asked == [("snapshot", AS_OF)]
    planning.universe(store, source, "KRX", [], [], dt.date(2026, 11, 23))
    assert source.asked == [("snapshot", AS_OF), ("snapshot", dt.date(2026, 11, 23))]


def test_explicit_tickers_replace_the_listing_and_are_deduplicated(store):
    source = CountingSource(3)
    assert planning.universe(store, source, "KRX", ["005930", "ks11"], ["KS11"], AS_OF) == ["005930", "KS11"]
    assert source.asked == []


def test_a_bad_code_stops_the_plan(store):
    with pytest.raises(InvalidTicker):
        planning.universe(store, SyntheticSource(3), "KRX", ["005930", "1:*"], [], AS_OF)
    with pytest.raises(ValueError, match="unknown universe"):
        planning.universe(store, SyntheticSource(3), "NYSE", [], [], AS_OF)


def test_plan_maps_only_tickers_that_are_not_current(store):
    source = SyntheticSource(3)
    per_ticker.index_ticker(store, source, "000100", AS_OF)
    per_ticker.index_ticker(store, source, "000200", dt.date(2026, 11, 13))
    plan = planning.plan(store, ["000100", "000200", "000300"], AS_OF)
    assert (plan.to_index, plan.current) == (["000200", "000300"], 1)
    assert planning.plan(store, ["000100", "000200", "000300"], AS_OF, full_refresh=True).to_index == [
        "000100", "000200", "000300",
    ]  # fmt: skip


def test_tickers_without_data_are_skipped_for_a_week_then_asked_again(store):
    source = CountingSource(3)
    assert per_ticker.index_ticker(store, source, "999990", AS_OF).status == Status.NO_DATA
    assert planning.plan(store, ["999990"], AS_OF).to_index == []
    assert planning.plan(store, ["999990"], AS_OF + INACTIVE_RECHECK).to_index == ["999990"]
