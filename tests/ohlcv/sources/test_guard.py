import datetime as dt
import time

import limits
import pytest

from ohlcv.errors import BreakerOpen, ConfigurationError, SourceBlocked, SourceUnavailable
from ohlcv.settings import Settings
from ohlcv.sources import SyntheticSource
from ohlcv.sources.guard import GuardedSource
from ohlcv.sources.testing import FaultySource
from ohlcv.store import OhlcvStore
from tests.support import until

END = dt.date(2026, 11, 20)


def test_a_block_answer_opens_the_breaker_and_no_call_passes_while_it_is_open(store, redis_client):
    source = FaultySource(SyntheticSource(3), block={"000200"})
    guarded = GuardedSource(source, store, settings=Settings(breaker_hours=12))
    guarded.history("000100", None, END)
    with pytest.raises(SourceBlocked):
        guarded.history("000200", None, END)
    assert store.breaker().startswith("synthetic vendor: HTTP 429")
    assert store.breaker_ttl() > dt.timedelta(hours=11)
    source.calls.clear()
    with pytest.raises(BreakerOpen, match="breaker open"):
        guarded.history("000300", None, END)
    with pytest.raises(BreakerOpen):
        guarded.snapshot(END)
    assert source.calls.total() == 0


def test_the_breaker_closes_by_itself(store, redis_client):
    store.open_breaker("blocked", dt.timedelta(hours=12))
    redis_client.pexpire(store.keys.breaker, 1)  # its time runs out now
    assert until(lambda: store.breaker() is None)
    GuardedSource(SyntheticSource(3), store, settings=Settings()).history("000100", None, END)


def test_the_rate_limit_is_shared_by_every_process_through_redis(redis_server, store):
    """Two guarded sources on two connection pools stand for two task processes."""
    four = Settings(vendor_rate="4/second")
    first = GuardedSource(SyntheticSource(3), store, settings=four)
    other = OhlcvStore(redis_server.client(), store.keys)
    second = GuardedSource(SyntheticSource(3), other, settings=four)
    started = time.monotonic()
    for _ in range(6):
        first.history("000100", None, END)
        second.history("000200", None, END)
    assert time.monotonic() - started >= 2.0  # 12 calls at 4 a second: the third window at the earliest
    assert store.client.keys("ohlcv:rate*")  # the window lives in Redis


def test_each_vendor_has_its_own_rate_which_the_environment_overrides(monkeypatch):
    assert Settings.from_env().rate_for("fdr") == limits.parse("5/second")
    assert Settings.from_env().rate_for("synthetic") is None
    monkeypatch.setenv("OHLCV_VENDOR_RATE", "300/minute")
    assert Settings.from_env().rate_for("synthetic") == limits.parse("300/minute")
    monkeypatch.setenv("OHLCV_VENDOR_RATE", "none")
    assert Settings.from_env().rate_for("fdr") is None
    monkeypatch.setenv("OHLCV_VENDOR_RATE", "fast please")
    with pytest.raises(ConfigurationError, match="not a rate such as 5/second"):
        Settings.from_env().rate_for("fdr")


def test_calls_and_their_time_are_counted_for_the_run_even_when_they_fail(store):
    guarded = GuardedSource(
        FaultySource(SyntheticSource(3), fail={"000200"}), store, settings=Settings(), run_id="run-1"
    )
    guarded.history("000100", None, END)
    with pytest.raises(SourceUnavailable):
        guarded.history("000200", None, END)
    guarded.snapshot(END)
    metrics = store.run_metrics("run-1")
    assert (metrics["vendor_calls"], metrics["history_calls"], metrics["snapshot_calls"]) == (3, 2, 1)
    assert metrics["vendor_seconds"] > 0
    assert store.breaker() is None  # an outage is not a block
