"""Arrow tables and Polars frames from OhlcvCache: the same rows, types and order as pandas."""

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from ohlcv import OhlcvCache, codec
from ohlcv.errors import FormatUnavailable, InvalidDate, UnknownFormat
from ohlcv.keys import KeySpace
from ohlcv.reader import tables
from ohlcv.settings import Settings
from ohlcv.sources import SyntheticSource
from ohlcv.store import OhlcvStore
from tests.support import keep_period

PUBLISHED = dt.date(2026, 11, 20)
CODES = ("000100", "000200", "000300")


@pytest.fixture
def cache(redis_client):
    store = OhlcvStore(redis_client, KeySpace())
    source = SyntheticSource(5)
    for code in CODES:
        store.write_series(code, source.history(code, None, PUBLISHED), source.name)
    # a ticker with decimal prices: its columns are float64 in every format
    decimal = source.history("000400", None, PUBLISHED)
    decimal[["Open", "High", "Low", "Close"]] = decimal[["Open", "High", "Low", "Close"]] + 0.5
    store.write_series("000400", decimal, source.name)
    store.publish(PUBLISHED, 4)
    return OhlcvCache(redis_client, SyntheticSource(5))


def as_pandas(table: pa.Table) -> pd.DataFrame:
    """An Arrow table of one ticker as the frame ``get`` returns."""
    frame = table.to_pandas().set_index("Date")
    frame.index = pd.DatetimeIndex(frame.index.astype("datetime64[ns]"), name="Date")
    return frame


@pytest.mark.parametrize(("start", "end"), [(None, None), ("2026-3-3", "2026-3-31"), ("2025-11-21", None)])
def test_get_as_arrow_and_polars_holds_the_rows_pandas_holds(cache, start, end):
    frame = cache.get("000100", start, end)
    table = cache.get("000100", start, end, as_="arrow")
    assert table.schema.names == ["Date", *codec.VALUE_COLUMNS]
    assert table.schema.field("Date").type == pa.date32()
    assert [table.schema.field(name).type for name in codec.VALUE_COLUMNS] == [pa.int64()] * 5 + [pa.float64()]
    pd.testing.assert_frame_equal(as_pandas(table), frame)
    polars = cache.get("000100", start, end, as_="polars")
    assert isinstance(polars, pl.DataFrame)
    assert polars.schema["Date"] == pl.Date
    assert polars["Date"].to_list() == [day.date() for day in frame.index]
    for name in codec.VALUE_COLUMNS:  # the first Change is NaN in every format, as in pandas
        np.testing.assert_array_equal(polars[name].to_numpy(), frame[name].to_numpy(), err_msg=name)
        assert polars.schema[name] == (pl.Float64 if name == "Change" else pl.Int64)


def test_a_period_key_and_a_slice_of_the_whole_history_give_the_same_table(cache, redis_client):
    sliced = cache.get("000200", "2026-3-3", "2026-3-31", as_="arrow")
    key = keep_period(OhlcvStore(redis_client, KeySpace()), "000200", "2026-3-3", "2026-3-31", dt.timedelta(hours=1))
    redis_client.delete("ticker:000200")  # the period key alone answers now
    assert redis_client.exists(key)
    assert cache.get("000200", "2026-3-3", "2026-3-31", as_="arrow").equals(sliced)


def test_a_miss_is_filled_and_returned_as_arrow(redis_client):
    store = OhlcvStore(redis_client, KeySpace())
    store.publish(PUBLISHED, 0)
    cache = OhlcvCache(redis_client, SyntheticSource(5))
    table = cache.get("000500", "2026-11-2", as_="arrow")
    pd.testing.assert_frame_equal(
        as_pandas(table), SyntheticSource(5).history("000500", dt.date(2026, 11, 2), PUBLISHED)
    )
    assert redis_client.exists("ticker:000500")


@pytest.mark.parametrize("start", [None, "2025-11-21"])
def test_get_many_as_one_table_matches_the_long_pandas_frame(cache, start):
    codes = [*CODES, "000400"]
    long = cache.get_many(codes, start, as_frame=True)
    table = cache.get_many(codes, start, as_frame=True, as_="arrow")
    assert table.schema.names == ["Ticker", "Date", *codec.VALUE_COLUMNS]
    assert table.schema.field("Ticker").type == pa.dictionary(pa.int32(), pa.string())
    # 000400's decimal prices make the price columns float64, as pandas does
    assert table.schema.field("Close").type == pa.float64() == pa.from_numpy_dtype(long["Close"].dtype)
    assert table.schema.field("Volume").type == pa.int64()
    assert table.num_rows == len(long)
    assert table["Ticker"].to_pylist() == list(long.index.get_level_values("Ticker"))
    assert table["Date"].to_pylist() == [day.date() for day in long.index.get_level_values("Date")]
    for name in codec.VALUE_COLUMNS:
        np.testing.assert_array_equal(table[name].to_numpy(), long[name].to_numpy())
    polars = cache.get_many(codes, start, as_frame=True, as_="polars")
    assert polars.columns == ["Ticker", "Date", *codec.VALUE_COLUMNS]
    assert polars.schema["Ticker"] == pl.Categorical
    assert polars["Ticker"].cast(pl.String).to_list() == table["Ticker"].to_pylist()
    assert polars["Close"].to_list() == table["Close"].to_pylist()
    np.testing.assert_array_equal(polars["Change"].to_numpy(), long["Change"].to_numpy())
    assert (
        polars.filter(pl.col("Ticker") == "000300").height == (long.index.get_level_values("Ticker") == "000300").sum()
    )


def test_get_many_as_a_dict_of_tables(cache):
    frames = cache.get_many(CODES, "2026-3-3", "2026-3-31")
    tables_ = cache.get_many(CODES, "2026-3-3", "2026-3-31", as_="arrow")
    assert list(tables_) == list(CODES)
    for code in CODES:
        pd.testing.assert_frame_equal(as_pandas(tables_[code]), frames[code])
    polars = cache.get_many(CODES, "2026-3-3", "2026-3-31", as_="polars")
    assert all(polars[code].height == len(frames[code]) for code in CODES)


def test_no_rows_keep_the_columns_and_types(cache):
    table = cache.get("000100", "2026-11-21", "2026-11-22", as_="arrow")  # a weekend
    assert table.num_rows == 0
    assert table.schema.field("Date").type == pa.date32()
    assert table.schema.field("Close").type == pa.int64()
    long = cache.get_many([], "2026-3-3", as_frame=True, as_="arrow")
    assert long.num_rows == 0
    assert long.schema.names == ["Ticker", "Date", *codec.VALUE_COLUMNS]
    assert cache.get_many([], as_frame=True, as_="polars").height == 0


def test_a_table_shares_the_value_bytes_of_a_one_ticker_read(cache):
    """``Date`` is the value's own ``<i4`` days: no conversion of the dates."""
    table = cache.get("000100", as_="arrow")
    days = np.frombuffer(table["Date"].chunk(0).buffers()[1], dtype="<i4")[: table.num_rows]
    expected = (cache.get("000100").index.values.astype("datetime64[D]").astype(np.int64)).astype(np.int32)
    np.testing.assert_array_equal(days, expected)


@pytest.mark.parametrize("as_", ["excel", "Pandas", "", None, 1])
def test_an_unknown_format_is_refused_before_redis_is_asked(as_):
    cache = OhlcvCache.from_url("redis://127.0.0.1:1/0", settings=Settings(client_cache_mb=0))
    with pytest.raises(UnknownFormat, match=r"as_=.*give one of 'pandas', 'polars', 'arrow'"):
        cache.get("000100", as_=as_)
    with pytest.raises(UnknownFormat):
        cache.get_many(["000100"], as_frame=True, as_=as_)
    assert issubclass(UnknownFormat, ValueError)


def test_an_unknown_format_writes_no_key(cache, redis_client):
    before = sorted(redis_client.keys("*"))
    with pytest.raises(UnknownFormat):
        cache.get("000900", "2026-3-3", as_="csv")
    with pytest.raises(UnknownFormat):
        cache.get_many(["000900", "000100"], "2026-3-3", as_="csv")
    assert sorted(redis_client.keys("*")) == before


def test_bad_dates_are_still_refused_with_their_own_class(cache):
    with pytest.raises(InvalidDate):
        cache.get("000100", "2026-3-31", "2026-3-3", as_="arrow")


@pytest.mark.parametrize(("as_", "missing"), [("arrow", "pyarrow"), ("polars", "polars"), ("polars", "pyarrow")])
def test_a_format_whose_library_is_missing_names_the_extra(monkeypatch, as_, missing):
    monkeypatch.setitem(__import__("sys").modules, missing, None)  # import raises ImportError
    with pytest.raises(
        FormatUnavailable, match=rf"needs {missing}.*ohlcv-cache\[{'polars' if as_ == 'polars' else 'arrow'}\]"
    ):
        tables.check(as_)
    assert issubclass(FormatUnavailable, ImportError)
    assert tables.check("pandas") == "pandas"
