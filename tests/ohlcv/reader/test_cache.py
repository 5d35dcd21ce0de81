"""OhlcvCache against the session's real redis-server."""

import datetime as dt
import hashlib
import multiprocessing
import time

import pandas as pd
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ohlcv import OhlcvCache, codec
from ohlcv.errors import BreakerOpen, InvalidDate, InvalidTicker, NoData
from ohlcv.keys import KeySpace
from ohlcv.sources import SyntheticSource
from ohlcv.store import OhlcvStore
from tests.support import keep_period

PUBLISHED = dt.date(2026, 11, 20)


class CountingSource(SyntheticSource):
    """The synthetic vendor, counting history calls in Redis so every process sees them, and slow."""

    def __init__(self, port: int, delay: float = 0.0):
        super().__init__(5)
        self.port, self.delay = port, delay

    def history(self, code, start, end):
        redis.Redis(port=self.port).incr(f"test:vendor-calls:{code}")
        time.sleep(self.delay)
        return super().history(code, start, end)


def calls(client, code: str) -> int:
    return int(client.get(f"test:vendor-calls:{code}") or 0)


@pytest.fixture
def cache(redis_server, redis_client):
    store = OhlcvStore(redis_client, KeySpace())
    source = SyntheticSource(5)
    for code in ("000100", "000200", "KS11"):
        store.write_series(code, source.history(code, None, PUBLISHED), source.name)
    store.publish(PUBLISHED, 3)
    return OhlcvCache(redis_client, CountingSource(redis_server.port))


def expected(code, start, end):
    return SyntheticSource(5).history(code, start, end)


def test_a_period_key_is_served_as_it_is(cache, redis_client):
    frame = expected("000100", dt.date(2026, 3, 3), dt.date(2026, 3, 31))
    keep_period(OhlcvStore(redis_client, KeySpace()), "000100", "2026-3-3", "2026-3-31", dt.timedelta(hours=1))
    redis_client.delete("ticker:000100")  # proves the period key alone answers
    pd.testing.assert_frame_equal(cache.get("000100", "2026-3-3", "2026-03-31"), frame)
    assert calls(redis_client, "000100") == 0


def test_a_slice_of_the_whole_history_is_written_back_as_a_registered_period_key(cache, redis_client):
    got = cache.get("000200", dt.date(2025, 1, 2), pd.Timestamp("2025-12-30"))
    pd.testing.assert_frame_equal(got, expected("000200", dt.date(2025, 1, 2), dt.date(2025, 12, 30)))
    key = "ticker:000200:2025-01-02:2025-12-30"
    pd.testing.assert_frame_equal(codec.decode(redis_client.get(key)), got)
    assert 0 < redis_client.pttl(key) <= 7 * 86_400_000
    assert redis_client.smembers("ohlcv:periods:000200") == {key.encode()}
    assert calls(redis_client, "000200") == 0


def test_a_miss_is_fetched_once_stored_and_served(cache, redis_client):
    got = cache.get("000300", "2026-1-2", "2026-2-27")
    pd.testing.assert_frame_equal(got, expected("000300", dt.date(2026, 1, 2), dt.date(2026, 2, 27)))
    assert calls(redis_client, "000300") == 1
    assert redis_client.hget("ticker:lastUpdateAt", "000300") >= b"2026-11-20"
    cache.get("000300", "2025-1-2", "2025-2-27")  # another window: served from the stored history
    assert calls(redis_client, "000300") == 1


def _miss(port: int, barrier) -> None:
    cache = OhlcvCache(redis.Redis(port=port), CountingSource(port, delay=0.5))
    barrier.wait()
    frame = cache.get("000400", "2026-1-2", "2026-6-30")
    redis.Redis(port=port).rpush("test:rows", len(frame))


def test_twenty_processes_missing_together_make_one_vendor_call(cache, redis_server, redis_client):
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(20)
    readers = [context.Process(target=_miss, args=(redis_server.port, barrier)) for _ in range(20)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=60)
    assert [reader.exitcode for reader in readers] == [0] * 20
    assert calls(redis_client, "000400") == 1
    rows = len(expected("000400", dt.date(2026, 1, 2), dt.date(2026, 6, 30)))
    assert redis_client.lrange("test:rows", 0, -1) == [str(rows).encode()] * 20


def test_reads_are_cut_at_the_published_session_while_the_indexer_writes(cache, redis_client):
    # The last finished run published 2026-11-13; the running indexer has written 2026-11-20.
    redis_client.set("getOHLCV_lastUpdateAt", "2026-11-13")
    cache.refresh()
    assert cache.get("000100").index[-1] == pd.Timestamp("2026-11-13")
    assert cache.get("000100", "2026-11-2", "2026-12-31").index[-1] == pd.Timestamp("2026-11-13")
    assert cache.get("000100", end="2026-11-20", latest=True).index[-1] == pd.Timestamp("2026-11-20")
    many = cache.get_many(["000100", "000200", "KS11"], "2026-11-1")
    assert {frame.index[-1] for frame in many.values()} == {pd.Timestamp("2026-11-13")}


def test_a_report_keeps_its_cut_when_the_indexer_publishes_meanwhile(cache, redis_client):
    redis_client.set("getOHLCV_lastUpdateAt", "2026-11-13")
    cache.refresh()
    assert cache.get("000100").index[-1] == pd.Timestamp("2026-11-13")
    redis_client.set("getOHLCV_lastUpdateAt", "2026-11-20")  # the indexer finishes mid-report
    assert cache.get("000200").index[-1] == pd.Timestamp("2026-11-13")  # same session for the whole report
    cache.refresh()
    assert cache.get("000200").index[-1] == pd.Timestamp("2026-11-20")


def test_get_many_reads_hits_and_fills_misses(cache, redis_client):
    codes = ["000100", "000200", "000300", "KS11", "000500"]
    got = cache.get_many(codes, "2026-1-2", "2026-6-30")
    assert list(got) == codes
    for code in codes:
        pd.testing.assert_frame_equal(got[code], expected(code, dt.date(2026, 1, 2), dt.date(2026, 6, 30)))
    assert [calls(redis_client, code) for code in codes] == [0, 0, 1, 0, 1]
    long = cache.get_many(codes, "2026-1-2", "2026-6-30", as_frame=True)
    assert long.index.names == ["Ticker", "Date"]
    assert list(long.index.get_level_values("Ticker").unique()) == codes
    pd.testing.assert_frame_equal(long.loc["KS11"], got["KS11"], check_dtype=False)
    assert [calls(redis_client, code) for code in codes] == [0, 0, 1, 0, 1]  # period keys now


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.get("000100", "2026-3-1", "2026-2-1"), InvalidDate),
        (lambda c: c.get("000100", "2026-13-1"), InvalidDate),
        (lambda c: c.get("000100", end="soon"), InvalidDate),
        (lambda c: c.get("00010"), InvalidTicker),
        (lambda c: c.get("000100:*"), InvalidTicker),
        (lambda c: c.get("ticker:lastUpdateAt"), InvalidTicker),
        (lambda c: c.get("000100\r\nDEL ticker:lastUpdateAt"), InvalidTicker),
        (lambda c: c.get_many(["000100", "x y"], "2026-1-2"), InvalidTicker),
        (lambda c: c.get_many(["000100"], "2026-3-1", "2026-2-1"), InvalidDate),
    ],
)
def test_bad_input_raises_a_typed_error_and_creates_no_key(cache, redis_client, call, error):
    before = sorted(redis_client.keys("*"))
    with pytest.raises(error):
        call(cache)
    assert sorted(redis_client.keys("*")) == before


def test_a_code_the_vendor_does_not_know_is_no_data(cache):
    with pytest.raises(NoData):
        cache.get("999990", "2026-1-2", "2026-2-27")


DAYS = st.dates(min_value=dt.date(1994, 1, 1), max_value=PUBLISHED)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(code=st.sampled_from(["000100", "000200", "000300", "000500", "KS11"]), first=DAYS, last=DAYS)
def test_the_cache_returns_exactly_what_the_vendor_would(cache, code, first, last):
    """For a known ticker, a window without sessions (before listing, a weekend) is empty."""
    first, last = min(first, last), max(first, last)
    try:
        vendor = expected(code, first, last)
    except NoData:
        vendor = expected(code, None, PUBLISHED).iloc[0:0]
    got = cache.get(code, first, last)
    pd.testing.assert_frame_equal(got, vendor, check_index_type=not vendor.empty)


def test_a_slice_of_a_history_repaired_meanwhile_is_not_kept(cache, redis_client):
    """The reader sliced the old history; a repair lands before its write-back."""
    old = redis_client.get("ticker:000100")
    window = codec.encode(codec.decode(old).loc["2026-01-02":"2026-06-30"], "synthetic")
    split = SyntheticSource(5, splits={"000100": (dt.date(2026, 11, 16), 50)})
    OhlcvStore(redis_client, KeySpace()).write_series("000100", split.history("000100", None, PUBLISHED), "synthetic")
    half = (dt.date(2026, 1, 2), dt.date(2026, 6, 30))
    assert cache.store.keep_period("000100", *half, old, window, dt.timedelta(days=1)) is False
    assert redis_client.exists("ticker:000100:2026-01-02:2026-06-30") == 0
    fresh = redis_client.get("ticker:000100")
    assert cache.store.keep_period("000100", *half, fresh, window, dt.timedelta(days=1)) is True


def test_a_period_key_registered_while_a_repair_is_being_written_is_deleted_with_the_others(
    cache, redis_client, monkeypatch
):
    """The reader's write-back lands between the repairing writer's SMEMBERS and its EXEC."""
    import ohlcv.store.series as store_module

    old = redis_client.get("ticker:000100")
    window = codec.decode(old).loc["2026-01-02":"2026-06-30"]
    keys = ["ticker:000100", "ticker:000100:2026-01-02:2026-06-30", "ohlcv:periods:000100"]
    real_encode = store_module.codec.encode
    args = [hashlib.sha1(old).hexdigest(), real_encode(window, "synthetic"), 86_400_000]
    landed = []

    def encode_while_a_reader_writes_back(frame, source=""):
        if not landed:
            landed.append(cache.store._keep_period(keys=keys, args=args))
        return real_encode(frame, source)

    monkeypatch.setattr(store_module.codec, "encode", encode_while_a_reader_writes_back)
    split = SyntheticSource(5, splits={"000100": (dt.date(2026, 11, 16), 50)})
    outcome = OhlcvStore(redis_client, KeySpace()).write_series(
        "000100", split.history("000100", None, PUBLISHED), "synthetic"
    )
    assert landed == [1]  # the stale period key was written in the gap...
    assert outcome.status == "repaired"
    assert redis_client.exists(keys[1], keys[2]) == 0  # ...and the retried repair deleted it


def test_the_reader_respects_the_vendor_breaker(cache, redis_client):
    OhlcvStore(redis_client, KeySpace()).open_breaker("HTTP 429", dt.timedelta(hours=1))
    with pytest.raises(BreakerOpen):
        cache.get("000300", "2026-1-2", "2026-2-27")
    assert calls(redis_client, "000300") == 0


def test_a_code_without_data_is_asked_once_not_on_every_read(cache, redis_client):
    for _ in range(5):
        with pytest.raises(NoData):
            cache.get("999990", "2026-1-2", "2026-2-27")
    assert calls(redis_client, "999990") == 1


def test_a_halted_ticker_is_asked_once_an_hour_not_on_every_read(redis_server, redis_client):
    class Halted(CountingSource):
        def history(self, code, start, end):
            return super().history(code, start, min(end, dt.date(2026, 11, 18)))

    store = OhlcvStore(redis_client, KeySpace())
    store.publish(PUBLISHED, 0)
    cache = OhlcvCache(redis_client, Halted(redis_server.port))
    for _ in range(4):
        assert cache.get("000300", "2026-11-2").index[-1] == pd.Timestamp("2026-11-18")
    assert calls(redis_client, "000300") == 1
    assert redis_client.exists("ticker:000300:2026-11-02:2026-11-20") == 0  # a short slice is not frozen


class NoVendor(SyntheticSource):
    """A vendor a read-only reader must never ask."""

    def history(self, code, start, end):
        raise AssertionError(f"a read-only reader asked the vendor for {code}")


def test_a_read_only_reader_serves_what_is_cached_and_asks_no_vendor(store, redis_client):
    source = SyntheticSource(3)
    store.write_series("000100", source.history("000100", None, dt.date(2026, 11, 13)), "synthetic")
    store.publish(dt.date(2026, 11, 20), 1)
    cache = OhlcvCache(redis_client, NoVendor(3), read_only=True)
    frame = cache.get("000100", "2026-11-02")  # cached through the 13th only: served as it is
    assert frame.index[-1] == pd.Timestamp("2026-11-13")
    with pytest.raises(NoData, match="read-only: no vendor call"):
        cache.get("000200")
    assert redis_client.keys("ticker:000100:*") == []  # no period key written back
    assert cache.get_many(["000100"], "2026-11-02")["000100"].index[-1] == pd.Timestamp("2026-11-13")


def test_a_bad_vendor_stops_the_reader_when_it_is_built_not_at_its_first_miss(monkeypatch):
    from ohlcv.errors import ConfigurationError

    monkeypatch.setenv("OHLCV_SOURCE", "yahoo")
    unreachable = redis.Redis(port=1)  # never asked: the check comes first
    with pytest.raises(ConfigurationError, match="OHLCV_SOURCE='yahoo' is not a vendor"):
        OhlcvCache(unreachable)


@pytest.mark.parametrize(
    ("option", "value"),
    [("period_ttl", dt.timedelta(0)), ("fill_timeout", dt.timedelta(seconds=-1)), ("cut_ttl", 60)],
)  # fmt: skip
def test_the_readers_options_are_checked_when_it_is_built(option, value):
    from ohlcv.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=option):
        OhlcvCache(redis.Redis(port=1), SyntheticSource(3), **{option: value})


def test_a_bare_year_is_refused_with_the_whole_date_to_give(redis_client):
    cache = OhlcvCache(redis_client, SyntheticSource(3))
    with pytest.raises(InvalidDate, match="give a whole date such as 2022-01-02"):
        cache.get("000100", "2022")
    assert redis_client.dbsize() == 0
