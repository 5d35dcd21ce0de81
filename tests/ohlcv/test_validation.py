import numpy as np
import pandas as pd
import pytest

from ohlcv.errors import BadOhlcvData
from ohlcv.validation import canonical


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
    frame = canonical(vendor_frame())
    assert list(frame.columns) == ["Open", "High", "Low", "Close", "Volume", "Change"]
    assert frame.index.name == "Date"
    assert frame.index.dtype == np.dtype("datetime64[ns]")
    assert frame["Close"].dtype == np.int64  # whole KRW prices become integers
    assert np.isnan(frame["Change"].iloc[0])
    assert frame["Change"].iloc[1] == pytest.approx(101 / 102 - 1)


def test_vendor_change_column_is_kept():
    raw = vendor_frame().assign(Change=[0.5, 0.25, 0.125])
    assert canonical(raw)["Change"].tolist() == [0.5, 0.25, 0.125]


def test_decimal_prices_stay_float():
    raw = vendor_frame()
    raw.loc[1, "Close"] = 101.25
    assert canonical(raw)["Close"].dtype == np.float64


def test_time_zone_and_time_of_day_are_dropped():
    raw = vendor_frame().set_index("Date")
    raw.index = (raw.index + pd.Timedelta(hours=15)).tz_localize("Asia/Seoul")
    assert canonical(raw).index[0] == pd.Timestamp("2024-01-02")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f.iloc[0:0], "no rows"),
        (lambda f: f.drop(columns="Volume"), "missing columns"),
        (lambda f: f.iloc[[1, 0, 2]], "increasing order"),
        (lambda f: f.assign(Date=[f.Date[0], f.Date[0], f.Date[2]]), "duplicate dates"),
        (lambda f: f.assign(Close=[1.0, np.nan, 2.0]), "missing prices"),
        (lambda f: f.assign(Open=["100", "102", "101"]), "not numeric"),
        (lambda f: f.assign(Date=["2024-01-02", "not a date", "2024-01-04"]), "not dates"),
    ],
)
def test_frames_that_cannot_be_trusted_are_rejected(damage, message):
    with pytest.raises(BadOhlcvData, match=message):
        canonical(damage(vendor_frame()))
