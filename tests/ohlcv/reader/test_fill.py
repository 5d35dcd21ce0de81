"""What a reader may write on a miss (ohlcv.reader.fill through OhlcvCache): add and append, never replace."""

import datetime as dt
import logging

import pandas as pd
import pytest

from ohlcv import OhlcvCache, codec
from ohlcv.errors import BadOhlcvData, NoData, SourceMismatch
from ohlcv.indexer.per_ticker import index_ticker
from ohlcv.sources import SyntheticSource
from ohlcv.sources.csvdir import CsvDirSource

CACHED = dt.date(2026, 11, 19)
NEXT = dt.date(2026, 11, 20)


class Counting(SyntheticSource):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[str] = []

    def history(self, code, start, end):
        self.asked.append(code)
        return super().history(code, start, end)


def a_day_behind(store, source_name: str = "synthetic", vendor=None) -> bytes:
    """000100 cached through CACHED, the cut published one session later: a read must fill."""
    vendor = vendor or SyntheticSource(5)
    store.write_series("000100", vendor.history("000100", None, CACHED), source_name)
    store.keep_period(
        "000100", dt.date(2026, 1, 2), dt.date(2026, 6, 30), store.client.get("ticker:000100"),
        codec.encode(codec.decode(store.client.get("ticker:000100")).loc["2026-01-02":"2026-06-30"], source_name),
        dt.timedelta(days=1),
    )  # fmt: skip
    store.publish(NEXT, 1)
    return store.client.get("ticker:000100")


def test_a_reader_appends_the_sessions_the_vendor_agrees_on(store, redis_client):
    before = codec.decode(a_day_behind(store))
    frame = OhlcvCache(redis_client, SyntheticSource(5)).get("000100", "2026-11-2")
    assert frame.index[-1] == pd.Timestamp(NEXT)
    stored = codec.decode(redis_client.get("ticker:000100"))
    pd.testing.assert_frame_equal(stored.loc[: pd.Timestamp(CACHED)], before)  # every cached row kept as it was
    # the fill stores through the newest complete session, so later windows need no fetch
    vendor = SyntheticSource(5).history("000100", None, stored.index[-1].date())
    pd.testing.assert_frame_equal(stored.loc[pd.Timestamp(NEXT) :], vendor.loc[pd.Timestamp(NEXT) :])
    assert redis_client.hget("ticker:lastUpdateAt", "000100") == stored.index[-1].date().isoformat().encode()
    assert redis_client.exists("ticker:000100:2026-01-02:2026-06-30") == 1


def test_a_reader_whose_vendor_rewrote_history_leaves_the_cache_alone_and_serves_the_cached_rows(
    store, redis_client, caplog
):
    before = a_day_behind(store)
    split = SyntheticSource(5, splits={"000100": (dt.date(2026, 11, 20), 50)})
    cache = OhlcvCache(redis_client, split)
    with caplog.at_level(logging.WARNING, logger="ohlcv.reader.cache"):
        frame = cache.get("000100", "2026-11-2")
    assert frame.index[-1] == pd.Timestamp(CACHED)  # the cached rows, not the vendor's rewritten ones
    assert redis_client.get("ticker:000100") == before
    assert redis_client.exists("ticker:000100:2026-01-02:2026-06-30") == 1  # no period key deleted
    assert "the indexer's next run replaces the history" in caplog.text
    assert "differs from the cache from" in caplog.text
    # the indexer, not the reader, repairs it
    result = index_ticker(store, split, "000100", NEXT)
    assert result.status == "repaired"
    assert redis_client.exists("ticker:000100:2026-01-02:2026-06-30") == 0


def test_a_reader_with_another_vendor_refuses_to_write_and_names_both(store, redis_client, tmp_path):
    """The reproduced damage: a csv-vendor ticker read a session later with OHLCV_SOURCE=synthetic."""
    before = a_day_behind(store, source_name="csv")
    vendor = Counting(5)
    with pytest.raises(SourceMismatch, match="cached from the vendor 'csv', and this reader's vendor is 'synthetic'"):
        OhlcvCache(redis_client, vendor).get("000100", "2026-11-2")
    assert vendor.asked == []  # refused before asking the vendor
    assert redis_client.get("ticker:000100") == before
    assert redis_client.exists("ticker:000100:2026-01-02:2026-06-30") == 1


def test_the_same_refusal_holds_for_the_real_csv_vendor_against_synthetic_data(store, redis_client, tmp_path):
    before = a_day_behind(store)
    with pytest.raises(SourceMismatch, match=r"'synthetic'.*'csv'"):
        OhlcvCache(redis_client, CsvDirSource(tmp_path)).get("000100", "2026-11-2")
    assert redis_client.get("ticker:000100") == before


def test_a_reader_never_marks_a_ticker_inactive(store, redis_client):
    store.publish(NEXT, 0)
    delisted = SyntheticSource(5, delisted={"000300": dt.date(2025, 6, 30)})
    frame = OhlcvCache(redis_client, delisted).get("000300", "2025-6-2")
    assert frame.index[-1] == pd.Timestamp("2025-06-30")
    assert redis_client.hlen("ohlcv:inactive") == 0
    with pytest.raises(NoData):
        OhlcvCache(redis_client, SyntheticSource(5)).get("999990")
    assert redis_client.hlen("ohlcv:inactive") == 0


def test_a_reader_never_replaces_a_value_it_cannot_read(store, redis_client, caplog):
    store.publish(NEXT, 0)
    legacy = b'{"Open":{"1763596800000":100}}'
    redis_client.set("ticker:000100", legacy)
    with pytest.raises(BadOhlcvData, match=r"indexer's next run replaces it.*migrate"):
        OhlcvCache(redis_client, SyntheticSource(5)).get("000100", "2026-11-2")
    assert redis_client.get("ticker:000100") == legacy


def test_period_registries_forget_expired_periods_and_expire_with_them(store, redis_client):
    source = SyntheticSource(5)
    store.write_series("000100", source.history("000100", None, NEXT), source.name)
    store.publish(NEXT, 1)
    cache = OhlcvCache(redis_client, source, period_ttl=dt.timedelta(hours=2))
    cache.get("000100", "2026-1-2", "2026-3-31")
    cache.get("000100", "2026-4-1", "2026-6-30")
    registry = "ohlcv:periods:000100"
    assert redis_client.scard(registry) == 2
    assert 0 < redis_client.pttl(registry) <= 2 * 3_600_000  # the registry lives as long as its periods
    redis_client.delete("ticker:000100:2026-01-02:2026-03-31")  # as if it had expired
    cache.get("000100", "2026-7-1", "2026-9-30")
    assert redis_client.smembers(registry) == {
        b"ticker:000100:2026-04-01:2026-06-30",
        b"ticker:000100:2026-07-01:2026-09-30",
    }
    OhlcvCache(redis_client, source, period_ttl=dt.timedelta(days=3)).get("000100", "2026-10-1", "2026-10-30")
    assert redis_client.pttl(registry) > 2 * 86_400_000  # extended to the longest-lived period
