"""The ticker deadline: a vendor that accepts the connection and never answers costs a ticker
``OHLCV_TICKER_DEADLINE`` in all, across its tries, and the run goes on without it."""

import datetime as dt
import time

import pytest

from ohlcv.errors import SourceUnavailable, TickerDeadline
from ohlcv.indexer import per_ticker, runner
from ohlcv.indexer.deadline import call_within
from ohlcv.settings import Settings
from ohlcv.sources import FdrSource, SyntheticSource
from ohlcv.sources import fdr as fdr_module
from ohlcv.sources.testing import FaultySource, SilentServer

AS_OF = dt.date(2026, 11, 20)


def test_a_call_within_its_time_returns_its_value_or_raises_its_own_error():
    assert call_within(5, lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(SourceUnavailable, match="503"):
        call_within(5, _raises, SourceUnavailable("HTTP 503"))


def _raises(exc: Exception):
    raise exc


def test_a_call_to_a_server_that_never_answers_is_given_up_after_its_time():
    started = time.monotonic()
    with pytest.raises(TickerDeadline, match="asking 000100: no answer within 1 s"):
        call_within(1.0, SilentServer.shared().wait_for_answer, "000100", what="asking 000100")
    assert time.monotonic() - started < 30  # ended, although the call itself never will


def test_the_deadline_spans_the_tries_of_a_run_and_a_try_past_it_asks_nobody(store):
    vendor = FaultySource(SyntheticSource(3), hang={"000200"})
    with pytest.raises(TickerDeadline, match=r"000200: no answer from the vendor within the ticker deadline \(1 s"):
        per_ticker.index_within(store, vendor, "000200", AS_OF, "run-1", deadline=1.0)
    assert 1.0 <= store.ticker_waited("run-1", "000200") < 10
    with pytest.raises(TickerDeadline):  # the next try (an Airflow retry, the retry pass) finds no time left
        per_ticker.index_within(store, vendor, "000200", AS_OF, "run-1", deadline=1.0)
    assert vendor.calls["history", "000200"] == 1
    assert store.state_of(["000200"])[0]["000200"] is None  # nothing written
    assert store.ticker_waited("run-2", "000200") == 0  # another run starts afresh


def test_quick_tries_add_up_against_the_deadline(store):
    vendor = FaultySource(SyntheticSource(3), fail={"000100"})
    for _ in range(3):
        with pytest.raises(SourceUnavailable):
            per_ticker.index_within(store, vendor, "000100", AS_OF, "run-1", deadline=600)
    assert 0 < store.ticker_waited("run-1", "000100") < 600
    assert per_ticker.index_within(store, SyntheticSource(3), "000300", AS_OF, "run-1", deadline=600).new_rows > 0


def test_a_ticker_past_its_deadline_is_not_retried_and_is_never_the_canary(store):
    vendor = FaultySource(SyntheticSource(3), hang={"000100"}, fail={"000200"})
    settings = Settings(ticker_deadline_seconds=1.0)
    outcome = runner.run_once(store, vendor, AS_OF, run_id="run-1", settings=settings)
    assert outcome.summary.retry == ["000200"]  # answered with an error: asked again
    assert outcome.summary.canary == "000300"  # served in this run
    assert sorted(outcome.still_failing) == ["000100", "000200"]
    assert vendor.calls["history", "000100"] == 1
    assert vendor.calls["history", "000200"] == 2
    record = store.failures(["000100"], run_id="run-1")["000100"]
    assert record["retry"] is False
    assert record["reason"].startswith("TickerDeadline: 000100: no answer from the vendor")
    assert outcome.record["state"] == "failed"


def test_financedatareader_waiting_on_a_silent_server_is_bounded_by_the_deadline(store, monkeypatch):
    """FinanceDataReader's real Naver code, through a proxy that accepts the connection and never
    answers, with the HTTP timeouts off: only the deadline ends the call."""
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{SilentServer.shared().port}")
    for name in ("NO_PROXY", "no_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(fdr_module, "TIMEOUT", None)
    with pytest.raises(TickerDeadline, match="005930"):
        per_ticker.index_within(store, FdrSource(), "005930", AS_OF, "run-1", deadline=1.5)
    assert store.ticker_waited("run-1", "005930") >= 1.5
    assert len(SilentServer.shared().held) >= 1  # the connection was made and accepted
