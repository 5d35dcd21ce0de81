import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ohlcv import calendar, codec
from ohlcv.errors import ConfigurationError, NoData
from ohlcv.sources import SyntheticSource, from_spec
from ohlcv.sources.synthetic import tick_size

AS_OF = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def source():
    return SyntheticSource(40)


def test_same_code_same_history(source):
    first = source.history("000100", None, AS_OF)
    again = SyntheticSource(40).history("000100", None, AS_OF)
    pd.testing.assert_frame_equal(first, again)


def test_a_later_end_only_appends(source):
    short = source.history("000300", None, dt.date(2020, 6, 30))
    long = source.history("000300", None, AS_OF)
    pd.testing.assert_frame_equal(long.loc[:"2020-06-30"], short)
    assert len(long) > len(short)


def test_sessions_are_xkrx_sessions(source):
    frame = source.history("000200", dt.date(2024, 1, 1), AS_OF)
    expected = calendar.sessions(dt.date(2024, 1, 1), AS_OF)
    assert frame.index.equals(expected)


def test_prices_sit_on_the_krx_tick_grid_and_are_consistent(source):
    for code in source.list_universe("KRX")[:10]:
        frame = source.history(code, None, AS_OF)
        for column in ("Open", "High", "Low", "Close"):
            values = frame[column].to_numpy()
            assert (values > 0).all()
            assert (values % tick_size(values) == 0).all(), (code, column)
        assert (frame["High"] >= frame[["Open", "Close"]].max(axis=1)).all()
        assert (frame["Low"] <= frame[["Open", "Close"]].min(axis=1)).all()
        assert (frame["Volume"] >= 0).all()


def test_tick_sizes_follow_the_krx_table():
    prices = np.array([1_999, 2_000, 4_999, 5_000, 19_990, 20_000, 49_950, 50_000, 199_900, 200_000, 499_500, 500_000])
    assert tick_size(prices).tolist() == [1, 5, 5, 10, 10, 50, 50, 100, 100, 500, 500, 1_000]


def test_index_has_decimal_levels_from_the_first_calendar_day(source):
    frame = source.history("KS11", None, AS_OF)
    assert frame.index[0] == pd.Timestamp(calendar.FIRST_DAY)
    assert frame["Close"].dtype == np.float64


def test_universe_is_split_into_markets_and_includes_reform_codes(source):
    everything = source.list_universe("KRX")
    assert len(everything) == 40
    parts = [set(source.list_universe(market)) for market in ("KOSPI", "KOSDAQ", "KONEX")]
    assert set.union(*parts) == set(everything)
    assert sum(len(part) for part in parts) == 40
    assert any(not code.isdigit() for code in everything)  # e.g. 0010Z0


def test_unknown_code_is_no_data(source):
    with pytest.raises(NoData):
        source.history("999990", None, AS_OF)


def test_before_listing_is_no_data(source):
    code = "000100"
    listed = source.listing_date(code)
    with pytest.raises(NoData):
        source.history(code, None, listed - dt.timedelta(days=1))


def test_values_written_from_it_are_labelled_synthetic(source):
    blob = codec.encode(source.history("000100", None, AS_OF), source.name)
    assert codec.source_of(blob) == "synthetic"


@pytest.mark.parametrize(("spec", "size"), [("synthetic", 50), ("synthetic:7", 7)])
def test_spec_sets_the_universe_size(spec, size):
    assert len(from_spec(spec).list_universe("KRX")) == size


@pytest.mark.parametrize("spec", ["", "yahoo", "synthetic:x", "csv:", "fdr:extra", "synthetic:0"])
def test_unknown_specs_are_refused(spec):
    with pytest.raises(ConfigurationError):
        from_spec(spec)


def test_the_snapshot_is_the_last_row_of_every_listed_history_with_the_change_against_the_base():
    day = dt.date(2026, 11, 20)
    source = SyntheticSource(
        12,
        splits={"000100": (day, 50)},
        halts={"000200": [(dt.date(2026, 11, 18), day)]},
        listed={"000300": day},
        delisted={"000400": dt.date(2026, 11, 19)},
    )
    table = source.snapshot(day)
    assert table.session == day
    assert "000400" not in table.frame.index  # delisted the day before
    for code, row in table.frame.iterrows():
        history = source.history(code, None, day)
        last = history.iloc[-1]
        assert [row[name] for name in ("Open", "High", "Low", "Close", "Volume")] == [
            last[name] for name in ("Open", "High", "Low", "Close", "Volume")
        ], code
        base = history["Close"].iloc[-2] if len(history) > 1 else last["Open"]
        assert row["Changes"] == last["Close"] - base, code
        assert row["Market"] == source.market_of(code)
    split = source.history("000100", None, day)["Close"]
    assert table.frame.loc["000100", "Close"] - table.frame.loc["000100", "Changes"] == split.iloc[-2]  # re-based
    assert table.frame.loc["000200", "Volume"] == 0
    assert "000300" not in source.snapshot(dt.date(2026, 11, 19)).frame.index  # listed on the 20th
