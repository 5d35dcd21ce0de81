import datetime as dt
import time

import pytest

from ohlcv.errors import BreakerOpen, SourceBlocked, SourceUnavailable
from ohlcv.sources import SyntheticSource
from ohlcv.sources.guard import GuardedSource

END = dt.date(2026, 11, 20)


def test_a_block_answer_opens_the_breaker_and_no_call_passes_while_it_is_open(store, redis_client):
    source = SyntheticSource(3, block={"000200"})
    guarded = GuardedSource(source, store, min_gap=dt.timedelta(0), breaker_ttl=dt.timedelta(hours=12))
    guarded.history("000100", None, END)
    with pytest.raises(SourceBlocked):
        guarded.history("000200", None, END)
    assert store.breaker().startswith("synthetic vendor: HTTP 429")
    assert store.breaker_ttl() > dt.timedelta(hours=11)
    SyntheticSource.calls.clear()
    with pytest.raises(BreakerOpen, match="breaker open"):
        guarded.history("000300", None, END)
    with pytest.raises(BreakerOpen):
        guarded.snapshot(END)
    assert sum(SyntheticSource.calls.values()) == 0


def test_the_breaker_closes_by_itself(store):
    store.open_breaker("blocked", dt.timedelta(milliseconds=100))
    time.sleep(0.2)
    assert store.breaker() is None
    GuardedSource(SyntheticSource(3), store, min_gap=dt.timedelta(0)).history("000100", None, END)


def test_calls_are_spaced_by_the_minimum_gap(store):
    guarded = GuardedSource(SyntheticSource(3), store, min_gap=dt.timedelta(milliseconds=150))
    started = time.monotonic()
    for _ in range(4):
        guarded.history("000100", None, END)
    assert time.monotonic() - started >= 0.45  # three gaps after the first call


def test_calls_and_their_time_are_counted_for_the_run_even_when_they_fail(store):
    guarded = GuardedSource(SyntheticSource(3, fail={"000200"}), store, run_id="run-1", min_gap=dt.timedelta(0))
    guarded.history("000100", None, END)
    with pytest.raises(SourceUnavailable):
        guarded.history("000200", None, END)
    guarded.snapshot(END)
    metrics = store.run_metrics("run-1")
    assert (metrics["vendor_calls"], metrics["history_calls"], metrics["snapshot_calls"]) == (3, 2, 1)
    assert metrics["vendor_seconds"] > 0
    assert store.breaker() is None  # an outage is not a block
