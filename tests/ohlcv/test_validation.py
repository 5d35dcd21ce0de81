import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ohlcv.errors import BadOhlcvData
from ohlcv.validation import canonical, halt_rows, validate

AS_OF = dt.date(2024, 1, 31)


def vendor_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"]),
            "Open": [100.0, 102.0, 101.0],
            "High": [105.0, 104.0, 103.0],
            "Low": [99.0, 100.0, 98.0],
            "Close": [102.0, 101.0, 99.0],
            "Volume": [1000, 0, 1200],
        }
    )


def test_canonical_form():
    frame = validate(vendor_frame(), AS_OF)
    assert list(frame.columns) == ["Open", "High", "Low", "Close", "Volume", "Change"]
    assert frame.index.name == "Date"
    assert frame.index.dtype == np.dtype("datetime64[ns]")
    assert frame["Close"].dtype == np.int64  # whole KRW prices become integers
    assert np.isnan(frame["Change"].iloc[0])
    assert frame["Change"].iloc[1] == pytest.approx(101 / 102 - 1)


def test_vendor_change_column_is_kept():
    raw = vendor_frame().assign(Change=[0.5, 0.25, 0.125])
    assert validate(raw, AS_OF)["Change"].tolist() == [0.5, 0.25, 0.125]


def test_gaps_in_a_vendor_change_column_are_filled_from_close():
    """OHLCV_STR allows NaN in Change on the first row only; the vendor's own figures are kept."""
    raw = vendor_frame().assign(Change=[np.nan, np.nan, -0.0198])
    change = validate(raw, AS_OF)["Change"].tolist()
    assert np.isnan(change[0])
    assert change[1:] == [pytest.approx(101 / 102 - 1), -0.0198]


def test_an_empty_frame_with_a_change_column_is_judged_not_crashed_on():
    with pytest.raises(BadOhlcvData, match="no rows"):
        validate(vendor_frame().assign(Change=0.0).iloc[0:0], AS_OF)


def test_decimal_prices_stay_float():
    raw = vendor_frame()
    raw.loc[1, ["Close", "Low"]] = [101.25, 100.5]
    assert validate(raw, AS_OF)["Close"].dtype == np.float64


def test_time_zone_and_time_of_day_are_dropped():
    raw = vendor_frame().set_index("Date")
    raw.index = (raw.index + pd.Timedelta(hours=15)).tz_localize("Asia/Seoul")
    assert validate(raw, AS_OF).index[0] == pd.Timestamp("2024-01-02")


def test_canonical_never_sorts_or_drops_rows():
    shuffled = vendor_frame().iloc[[2, 0, 1]]
    assert list(canonical(shuffled).index) == list(pd.to_datetime(["2024-01-04", "2024-01-02", "2024-01-03"]))


def test_trading_halt_rows_pass_and_are_recognised():
    raw = vendor_frame()
    raw.loc[1, ["Open", "High", "Low", "Volume"]] = 0
    raw.loc[1, "Close"] = 102.0  # the last close, carried over
    frame = validate(raw, AS_OF)
    assert halt_rows(frame).tolist() == [False, True, False]


def test_zero_prices_with_volume_are_not_a_halt():
    raw = vendor_frame()
    raw.loc[1, ["Open", "High", "Low"]] = 0
    with pytest.raises(BadOhlcvData, match=r"price <= 0 \(not a halt row\) on 1 row, first 2024-01-03"):
        validate(raw.assign(Volume=[1000, 5, 1200]), AS_OF)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f.iloc[0:0], "no rows"),
        (lambda f: f.drop(columns="Volume"), r"missing columns \['Volume'\]"),
        (lambda f: f.iloc[[1, 0, 2]], "dates not increasing"),
        (lambda f: f.assign(Date=[f.Date[0], f.Date[0], f.Date[2]]), "Date: field_uniqueness .* 2024-01-02"),
        (lambda f: f.assign(Close=[1.0, np.nan, 2.0]), "Close: not_nullable on 1 row, first 2024-01-03"),
        (lambda f: f.assign(Open=["100", "102", "101"]), "Open: not numeric"),
        (lambda f: f.assign(Volume=[True, False, True]), "Volume: not numeric"),
        (lambda f: f.assign(Low=[-99.0, 100.0, 98.0]), "price <= 0 .* first 2024-01-02"),
        (lambda f: f.assign(Volume=[10, -1, 10]), "Volume: Volume < 0 .* 2024-01-03 .*value -1"),
        (lambda f: f.assign(High=[105.0, 99.0, 103.0]), r"High < max\(Open, Close\) on 1 row, first 2024-01-03"),
        (lambda f: f.assign(Low=[103.0, 100.0, 98.0]), r"Low > min\(Open, Close\) on 1 row, first 2024-01-02"),
        (lambda f: f.assign(Date=pd.to_datetime(["2024-01-02", "2024-01-06", "2024-01-08"])), "not an XKRX session"),
        (lambda f: f.assign(Date=pd.to_datetime(["2024-01-02", "2024-01-03", "2024-02-01"])), "after as_of 2024-01-31"),
        (lambda f: f.assign(Date=["2024-01-02", "not a date", "2024-01-04"]), "not dates"),
    ],
)
def test_frames_that_cannot_be_trusted_are_rejected_with_a_reason(damage, message):
    with pytest.raises(BadOhlcvData, match=message):
        validate(damage(vendor_frame()), AS_OF)
