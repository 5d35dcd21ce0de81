"""getOHLCV, the old reader's function, against the session's real redis-server, with the
vendor's HTTP answers intercepted (FinanceDataReader's own parsing code runs)."""

import datetime as dt
import subprocess
import sys

import pandas as pd
import pytest
import responses

import ohlcv
from ohlcv.errors import InvalidDate, InvalidTicker
from ohlcv.reader import compat
from ohlcv.sources import FdrSource
from tests.ohlcv.sources.test_fdr import NAVER, naver_chart


@pytest.fixture
def naver():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(NAVER, body=naver_chart("005930"))
        yield mock


@pytest.fixture
def fresh_cache(redis_server, redis_client, monkeypatch):
    """getOHLCV's process-wide cache, built anew from the environment for each test."""
    monkeypatch.setenv("OHLCV_REDIS_URL", redis_server.url)
    monkeypatch.setenv("OHLCV_SOURCE", "fdr")
    monkeypatch.setattr(compat, "_cache", None)
    return redis_client


def test_the_frame_is_what_the_financedatareader_source_returns(fresh_cache, naver):
    frame = ohlcv.getOHLCV("005930", "2024-1-3", "2024-01-05")
    expected = FdrSource().history("005930", dt.date(2024, 1, 3), dt.date(2024, 1, 5))
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert frame.index.name == "Date"
    assert frame.dtypes.astype(str).to_dict() == {
        "Open": "int64", "High": "int64", "Low": "int64", "Close": "int64", "Volume": "int64", "Change": "float64",
    }  # fmt: skip


def test_a_miss_is_fetched_once_and_stored(fresh_cache, naver):
    ohlcv.getOHLCV("005930", "2024-1-3", "2024-1-5")
    assert len(naver.calls) == 1
    assert fresh_cache.exists("ticker:005930") == 1
    assert fresh_cache.hget("ticker:lastUpdateAt", "005930") == b"2024-01-08"
    again = ohlcv.getOHLCV("005930", dt.datetime(2024, 1, 4, 9, 30), pd.Timestamp("2024-01-08"))
    assert list(again.index.strftime("%Y-%m-%d")) == ["2024-01-04", "2024-01-05", "2024-01-08"]
    assert len(naver.calls) == 1  # the second read is a hit
    assert compat.shared_cache() is compat.shared_cache()


@pytest.mark.parametrize(
    ("start", "end", "first", "last"),
    [
        (None, None, "2024-01-02", "2024-01-08"),
        ("1900", "2024-1-4", "2024-01-02", "2024-01-04"),  # the old job's "from the beginning"
        (None, dt.date(2024, 1, 4), "2024-01-02", "2024-01-04"),
        ("2024-1-4", None, "2024-01-04", "2024-01-08"),
        ("20240103", "2099-12-31", "2024-01-03", "2024-01-08"),
    ],
)
def test_open_ends_read_to_the_first_and_the_last_session(fresh_cache, naver, start, end, first, last):
    frame = ohlcv.getOHLCV("005930", start, end)
    assert (frame.index[0].date().isoformat(), frame.index[-1].date().isoformat()) == (first, last)


def test_a_start_before_any_session_stores_no_copy_of_the_whole_history(fresh_cache, naver):
    ohlcv.getOHLCV("005930", "1900", "2024-01-08")
    assert fresh_cache.keys("ticker:005930:*") == []


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("00:*", "2024-1-2", "2024-1-5"), InvalidTicker),
        (("005930", "2024-1-5", "2024-1-2"), InvalidDate),
        (("005930", "someday", None), InvalidDate),
        (("005930", "2024-13", None), InvalidDate),
        ((5930, None, None), InvalidTicker),
    ],
)
def test_bad_input_raises_a_value_error_before_redis_or_the_vendor_is_asked(fresh_cache, naver, args, error):
    with pytest.raises(error) as raised:
        ohlcv.getOHLCV(*args)
    assert isinstance(raised.value, ValueError)
    assert fresh_cache.dbsize() == 0
    assert len(naver.calls) == 0


def test_importing_ohlcv_stays_cheap_and_getohlcv_is_one_import_away():
    probe = (
        "import sys, ohlcv; cheap = 'pandas' not in sys.modules; "
        "from ohlcv import getOHLCV; from ohlcv.reader.compat import getOHLCV as same; print(cheap, getOHLCV is same)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]
