import datetime as dt

import pandas as pd
import pytest

from ohlcv import codec
from ohlcv.errors import BadOhlcvData, NoData, SourceUnavailable
from ohlcv.indexer import per_ticker, planning
from ohlcv.sources import SyntheticSource
from ohlcv.sources.testing import BAD_KINDS, FaultySource
from ohlcv.status import Status
from tests.support import CountingSource, keep_period

AS_OF = dt.date(2026, 11, 20)


def test_index_ticker_writes_then_skips_the_vendor_when_current(store):
    source = CountingSource()
    first = per_ticker.index_ticker(store, source, "000100", AS_OF)
    assert (first.status, first.last_date) == (Status.WRITTEN, "2026-11-20")
    assert first.rows == first.new_rows == len(source.history("000100", None, AS_OF))
    source.asked.clear()
    second = per_ticker.index_ticker(store, source, "000100", AS_OF)
    assert second.status == Status.CURRENT
    assert source.asked == []


def test_a_later_run_appends_only_new_sessions(store):
    source = SyntheticSource(3)
    per_ticker.index_ticker(store, source, "000100", dt.date(2026, 11, 13))
    result = per_ticker.index_ticker(store, source, "000100", AS_OF)
    assert (result.status, result.new_rows) == (Status.WRITTEN, 5)


def test_full_refresh_asks_the_vendor_again(store):
    source = CountingSource()
    per_ticker.index_ticker(store, source, "000100", AS_OF)
    source.asked.clear()
    per_ticker.index_ticker(store, source, "000100", AS_OF, full_refresh=True)
    assert source.asked == ["000100"]


def test_rows_after_as_of_are_never_written(store):
    per_ticker.index_ticker(store, SyntheticSource(5), "000100", dt.date(2026, 11, 13))
    assert store.read_series("000100").index[-1].date() == dt.date(2026, 11, 13)


def test_a_split_repairs_the_series_and_deletes_its_period_keys(store, redis_client):
    plain = SyntheticSource(3)
    for code in ("000100", "000200"):
        per_ticker.index_ticker(store, plain, code, dt.date(2026, 11, 13))
        keep_period(store, code, "2026-1-2", "2026-6-30", dt.timedelta(days=1))
    other_before = redis_client.get("ticker:000200")
    split = SyntheticSource(3, splits={"000100": (dt.date(2026, 11, 16), 50)})
    result = per_ticker.index_ticker(store, split, "000100", AS_OF)
    assert result.status == Status.REPAIRED
    assert codec.decode(redis_client.get("ticker:000100")).equals(split.history("000100", None, AS_OF))
    assert redis_client.exists("ticker:000100:2026-01-02:2026-06-30", "ohlcv:periods:000100") == 0
    assert redis_client.get("ticker:000200") == other_before
    assert redis_client.exists("ticker:000200:2026-01-02:2026-06-30") == 1


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_each_kind_of_bad_frame_is_rejected_and_the_cache_is_left_alone(store, redis_client, kind):
    per_ticker.index_ticker(store, SyntheticSource(3), "000100", dt.date(2026, 11, 13))
    before = {key: redis_client.dump(key) for key in redis_client.keys("*")}
    broken = FaultySource(SyntheticSource(3), bad={"000100": kind})
    with pytest.raises(BadOhlcvData) as raised:
        per_ticker.index_ticker(store, broken, "000100", AS_OF)
    assert len(str(raised.value)) > 5
    assert {key: redis_client.dump(key) for key in redis_client.keys("*")} == before


def test_halt_rows_are_accepted(store):
    source = SyntheticSource(3, halts={"000300": [(dt.date(2026, 11, 9), dt.date(2026, 11, 11))]})
    assert per_ticker.index_ticker(store, source, "000300", AS_OF).status == Status.WRITTEN
    cached = store.read_series("000300")
    assert cached.loc["2026-11-10", ["Open", "High", "Low", "Volume"]].tolist() == [0, 0, 0, 0]


def test_a_ticker_far_behind_as_of_is_recorded_inactive(store):
    delisted = SyntheticSource(3)
    per_ticker.index_ticker(store, delisted, "000100", dt.date(2026, 10, 30))

    class Delisted(SyntheticSource):
        def history(self, code, start, end):
            return super().history(code, start, dt.date(2026, 10, 30))

    result = per_ticker.index_ticker(store, Delisted(3), "000100", AS_OF)
    assert result.status == Status.INACTIVE
    assert "delisted or halted" in result.reason
    assert planning.plan(store, ["000100"], AS_OF).to_index == []


def test_no_data_is_a_result_not_an_error(store):
    result = per_ticker.index_ticker(store, CountingSource(), "999990", AS_OF)
    assert result.status == Status.NO_DATA
    assert "999990" in result.reason
    assert store.read_series("999990") is None


def test_vendor_errors_propagate_for_airflow_to_retry(store):
    with pytest.raises(SourceUnavailable):
        per_ticker.index_ticker(store, CountingSource(failing={"000100"}), "000100", AS_OF)
    assert store.read_series("000100") is None


def test_no_data_for_a_ticker_with_history_is_an_outage_not_a_delisting(store):
    per_ticker.index_ticker(store, SyntheticSource(3), "000100", dt.date(2026, 11, 13))

    class Empty(SyntheticSource):
        def history(self, code, start, end):
            raise NoData(f"{code}: empty answer")

    with pytest.raises(SourceUnavailable, match="cache holds it through 2026-11-13"):
        per_ticker.index_ticker(store, Empty(3), "000100", AS_OF)
    assert planning.plan(store, ["000100"], AS_OF).to_index == ["000100"]  # not silenced for a week


class Truncated(SyntheticSource):
    """A vendor whose answers stop on ``last``, whatever is asked."""

    def __init__(self, last, tickers=3):
        super().__init__(tickers)
        self.last = last

    def history(self, code, start, end):
        return super().history(code, start, min(end, self.last))


def test_an_answer_ending_before_the_cache_is_a_truncated_download_not_a_delisting(store, redis_client):
    per_ticker.index_ticker(store, SyntheticSource(3), "KS11", AS_OF)
    before = redis_client.get("ticker:KS11")
    with pytest.raises(
        SourceUnavailable, match="ends on 2026-10-30, before the cached 2026-11-20: a truncated download"
    ):
        per_ticker.index_ticker(store, Truncated(dt.date(2026, 10, 30)), "KS11", AS_OF + dt.timedelta(days=3))
    assert redis_client.get("ticker:KS11") == before
    assert redis_client.hlen("ohlcv:inactive") == 0
    assert planning.plan(store, ["KS11"], dt.date(2026, 11, 23)).to_index == ["KS11"]  # asked again next run


def test_an_index_is_never_called_delisted_even_on_its_first_fill(store, redis_client):
    with pytest.raises(SourceUnavailable, match="an index is never delisted"):
        per_ticker.index_ticker(store, Truncated(dt.date(2025, 12, 30)), "KS11", AS_OF)
    assert redis_client.hlen("ohlcv:inactive") == 0
    assert store.read_series("KS11").index[-1] == pd.Timestamp("2025-12-30")  # what came is kept
    assert per_ticker.index_ticker(store, SyntheticSource(3), "KS11", AS_OF).status == Status.WRITTEN


def test_a_stock_whose_whole_answer_ends_long_ago_is_inactive_when_the_cache_holds_nothing_newer(store):
    result = per_ticker.index_ticker(store, Truncated(dt.date(2026, 10, 30)), "000100", AS_OF)
    assert result.status == Status.INACTIVE
