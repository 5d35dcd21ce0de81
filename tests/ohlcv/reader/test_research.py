"""``OhlcvCache.universe``: an answer for every recorded session, one clear error class for each
kind of bad question, and never a key written or a vendor asked."""

import datetime as dt

import pytest

from ohlcv import OhlcvCache, calendar
from ohlcv.errors import InvalidDate, NotASession, UnknownMarket, UnknownSession
from ohlcv.indexer import listings
from ohlcv.settings import Settings
from ohlcv.sources import SyntheticSource

DAYS = [day.date() for day in calendar.sessions(dt.date(2026, 11, 2), dt.date(2026, 11, 6))]


class NoVendor(SyntheticSource):
    def history(self, code, start, end):
        raise AssertionError("a universe read asked the vendor")


@pytest.fixture
def cache(redis_client, store):
    source = SyntheticSource(12)
    listings.record(store, [source.table(day) for day in DAYS])
    return OhlcvCache(redis_client, NoVendor(12), settings=Settings(client_cache_mb=0))


def test_each_board_and_the_whole_market(cache):
    source = SyntheticSource(12)
    whole = cache.universe("2026-11-4")
    assert whole.exact
    assert whole.session == DAYS[2]
    assert whole.exact_from == DAYS[0]
    assert whole.codes == source.list_universe("KRX")
    assert len(whole) == 12
    assert "000100" in whole
    boards = {market: cache.universe(DAYS[2], market) for market in ("KOSPI", "KOSDAQ", "KONEX")}
    for market, found in boards.items():
        assert found.codes == source.list_universe(market)
        assert set(found.markets.values()) <= {market}
    assert sorted(code for found in boards.values() for code in found) == whole.codes


@pytest.mark.parametrize(
    ("session", "error", "message"),
    [
        ("2026-11-07", NotASession, "not an XKRX session; the sessions around it are 2026-11-06 and 2026-11-09"),
        ("1985-06-03", NotASession, "before 1990-01-03"),
        ("2026-11-09", UnknownSession, "recorded through 2026-11-06"),
        ("2026-11-31", InvalidDate, "invalid date"),
        ("last friday", InvalidDate, "expected YYYY-MM-DD"),
    ],
)
def test_a_bad_session_is_one_clear_error_and_writes_nothing(cache, redis_client, session, error, message):
    before = sorted(redis_client.keys("*"))
    with pytest.raises(error, match=message):
        cache.universe(session)
    assert sorted(redis_client.keys("*")) == before


def test_an_unknown_market_is_refused(cache):
    with pytest.raises(UnknownMarket, match="give one of KRX, KOSPI, KOSDAQ, KONEX"):
        cache.universe(DAYS[0], "NASDAQ")
    assert issubclass(UnknownMarket, ValueError)


def test_nothing_recorded_says_how_to_fill_the_record(redis_client):
    cache = OhlcvCache(redis_client, NoVendor(3), settings=Settings(client_cache_mb=0))
    with pytest.raises(UnknownSession, match="--backfill"):
        cache.universe(DAYS[0])
    assert redis_client.dbsize() == 0
