import datetime as dt

from ohlcv.indexer import per_ticker, summary
from ohlcv.sources import SyntheticSource
from ohlcv.status import Status

AS_OF = dt.date(2026, 11, 20)


def test_summarize_counts_and_names_the_tickers_without_a_result(store):
    source = SyntheticSource(5)
    per_ticker.index_ticker(store, source, "000200", AS_OF)  # cached by an earlier run
    results = {
        code: per_ticker.index_ticker(store, source, code, AS_OF).status for code in ("000100", "000200", "999990")
    }
    store.record_failure("000300", AS_OF, "SourceUnavailable: vendor down", "run-1")
    universe = ["000100", "000200", "000300", "999990", "KS11"]
    # 000300's task failed: it recorded no result. KS11 was current and not planned.
    first = summary.summarize(store, universe, ["000100", "000200", "000300", "999990"], results, AS_OF, "run-1")
    assert (first.universe, first.planned, first.written, first.unchanged, first.no_data) == (5, 4, 1, 0, 1)
    assert first.failed == ["000300"]
    assert first.reasons == {"000300": "SourceUnavailable: vendor down"}
    assert first.current == 2
    assert first.canary == "000100"  # served in this pass, unlike the failed one


def test_bad_data_and_blocked_failures_are_not_retried_in_the_run(store):
    store.record_failure("000100", AS_OF, "bad data: High < Low", "run-1", retry=False)
    store.record_failure("000200", AS_OF, "SourceUnavailable: timeout", "run-1")
    first = summary.summarize(store, ["000100", "000200"], ["000100", "000200"], {}, AS_OF, "run-1")
    assert (first.failed, first.retry) == (["000100", "000200"], ["000200"])


def test_a_failure_recorded_by_another_run_decides_nothing_in_this_one(store):
    store.record_failure("000100", AS_OF - dt.timedelta(days=7), "bad data: High < Low", "last-week", retry=False)
    first = summary.summarize(store, ["000100"], ["000100"], {}, AS_OF, "this-run")
    assert (first.failed, first.retry, first.reasons) == (["000100"], ["000100"], {})


def test_the_canary_is_a_ticker_the_vendor_served_never_one_that_lags(store):
    source = SyntheticSource(3)
    per_ticker.index_ticker(store, source, "000100", AS_OF)  # current
    per_ticker.index_ticker(store, source, "000200", dt.date(2026, 11, 13))  # lagging: the vendor had nothing newer
    universe = ["000200", "000100", "000300"]
    lagging = {"000200": Status.UNCHANGED}
    assert summary.summarize(store, universe, ["000200", "000300"], lagging, AS_OF, "r").canary == "000100"
    served = {"000200": Status.UNCHANGED, "000300": Status.WRITTEN}
    assert summary.summarize(store, universe, ["000200", "000300"], served, AS_OF, "r").canary == "000300"


def test_one_rule_sorts_a_runs_tickers_into_current_without_data_failed_and_still_failing(store):
    source = SyntheticSource(4)
    per_ticker.index_ticker(store, source, "000100", AS_OF)  # current, with a result
    per_ticker.index_ticker(store, source, "000200", AS_OF)  # current, but its task never reported
    store.mark_inactive("000300", AS_OF, "no data")  # found without data in this run, no result
    store.mark_inactive("000400", AS_OF - dt.timedelta(days=1), "no data")  # found without data in an earlier run
    planned = ["000100", "000200", "000300", "000400"]
    state = summary.standing(store, [*planned, "KS11"], planned, {"000100": Status.WRITTEN}, AS_OF)
    assert state.current == ["000100", "000200"]
    assert state.without_data == ["000300"]
    assert state.failed == ["000200", "000400"]  # no result and not found without data
    assert state.still_failing == ["000400"]  # neither current nor found without data


def test_a_ticker_with_a_no_data_result_is_without_data_not_failed(store):
    state = summary.standing(store, ["000100"], ["000100"], {"000100": Status.NO_DATA}, AS_OF)
    assert (state.without_data, state.failed, state.still_failing) == (["000100"], [], [])
