import datetime as dt

import pytest

from ohlcv import indexer
from ohlcv.errors import InvalidTicker, SourceUnavailable
from ohlcv.sources import SyntheticSource

AS_OF = dt.date(2026, 11, 20)


class CountingSource(SyntheticSource):
    """The synthetic source, counting history calls and failing on demand."""

    def __init__(self, tickers=5, failing=()):
        super().__init__(tickers)
        self.calls = []
        self.failing = set(failing)

    def history(self, code, start, end):
        self.calls.append(code)
        if code in self.failing:
            raise SourceUnavailable(f"{code}: vendor down")
        return super().history(code, start, end)


def test_universe_is_the_listing_plus_benchmark():
    assert indexer.universe(SyntheticSource(3), "KRX", [], ["KS11"]) == ["000100", "000200", "000300", "KS11"]


def test_explicit_tickers_replace_the_listing_and_are_deduplicated():
    assert indexer.universe(SyntheticSource(3), "KRX", ["005930", "ks11"], ["KS11"]) == ["005930", "KS11"]


def test_a_bad_code_stops_the_plan():
    with pytest.raises(InvalidTicker):
        indexer.universe(SyntheticSource(3), "KRX", ["005930", "1:*"], [])
    with pytest.raises(ValueError, match="unknown universe"):
        indexer.universe(SyntheticSource(3), "NYSE", [], [])


def test_index_ticker_writes_then_skips_the_vendor_when_current(store):
    source = CountingSource()
    first = indexer.index_ticker(store, source, "000100", AS_OF)
    assert (first.status, first.last_date) == (indexer.WRITTEN, "2026-11-20")
    assert first.rows == len(source.history("000100", None, AS_OF))
    source.calls.clear()
    second = indexer.index_ticker(store, source, "000100", AS_OF)
    assert second.status == indexer.FRESH
    assert source.calls == []


def test_full_refresh_asks_the_vendor_again(store):
    source = CountingSource()
    indexer.index_ticker(store, source, "000100", AS_OF)
    source.calls.clear()
    indexer.index_ticker(store, source, "000100", AS_OF, full_refresh=True)
    assert source.calls == ["000100"]


def test_rows_after_as_of_are_never_written(store):
    indexer.index_ticker(store, SyntheticSource(5), "000100", dt.date(2026, 11, 13))
    assert store.read_series("000100").index[-1].date() == dt.date(2026, 11, 13)


def test_no_data_is_a_result_not_an_error(store):
    result = indexer.index_ticker(store, CountingSource(), "999990", AS_OF)
    assert result.status == indexer.NO_DATA
    assert "999990" in result.reason
    assert store.read_series("999990") is None


def test_vendor_errors_propagate_for_airflow_to_retry(store):
    with pytest.raises(SourceUnavailable):
        indexer.index_ticker(store, CountingSource(failing={"000100"}), "000100", AS_OF)
    assert store.read_series("000100") is None


def test_summarize_counts_and_names_the_tickers_without_a_result(store):
    source = CountingSource()
    indexer.index_ticker(store, source, "000200", AS_OF)  # cached by an earlier run
    results = [indexer.index_ticker(store, source, code, AS_OF).to_xcom() for code in ("000100", "000200", "999990")]
    # 000300's task failed: Airflow gives no result for it.
    summary = indexer.summarize(store, ["000100", "000200", "000300", "999990"], [*results, None], AS_OF)
    assert (summary.planned, summary.written, summary.fresh, summary.no_data) == (4, 1, 1, 1)
    assert summary.failed == ["000300"]
    assert summary.current == 2
    assert summary.canary == "000100"  # served in this pass, unlike the failed one
