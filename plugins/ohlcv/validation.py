"""What a good OHLCV frame is, and turning a vendor's frame into the canonical one.

The canonical frame has a tz-naive ``datetime64[ns]`` index named ``Date`` (unique,
increasing), and the columns Open, High, Low, Close, Volume (int64 when every value is a
whole number, else float64) and Change (float64, the close-to-close return, NaN on the
first row of the history).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ohlcv.codec import VALUE_COLUMNS
from ohlcv.errors import BadOhlcvData

PRICE_COLUMNS: tuple[str, ...] = ("Open", "High", "Low", "Close")
NUMBER_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "Volume")


def _whole_or_float(values: pd.Series, name: str) -> np.ndarray:
    if not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)):
        raise BadOhlcvData(f"column {name} is {values.dtype}, not numeric")
    array = values.to_numpy(dtype="float64", na_value=np.nan)
    if np.isfinite(array).all() and np.array_equal(array, np.trunc(array)):
        return array.astype("int64")
    return array


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` in canonical form, or raise ``BadOhlcvData`` saying what is wrong.

    Accepts the index or a ``Date`` column as the dates and computes ``Change`` when it is
    missing. It never sorts, deduplicates or fills: such a frame is rejected instead.
    """
    if not isinstance(frame, pd.DataFrame):
        raise BadOhlcvData(f"expected a DataFrame, got {type(frame).__name__}")
    if frame.empty:
        raise BadOhlcvData("the frame has no rows")
    if "Date" in frame.columns:
        frame = frame.set_index("Date")
    missing = [name for name in NUMBER_COLUMNS if name not in frame.columns]
    if missing:
        raise BadOhlcvData(f"missing columns {missing}")
    try:
        dates = pd.DatetimeIndex(frame.index)
    except (TypeError, ValueError) as exc:
        raise BadOhlcvData(f"the dates are not dates: {exc}") from None
    if dates.tz is not None:
        dates = dates.tz_localize(None)
    dates = dates.normalize().astype("datetime64[ns]")
    if dates.hasnans:
        raise BadOhlcvData("some dates are missing")
    if not dates.is_unique:
        raise BadOhlcvData(f"duplicate dates, first {dates[dates.duplicated()][0].date()}")
    if not dates.is_monotonic_increasing:
        raise BadOhlcvData("dates are not in increasing order")
    columns = {name: _whole_or_float(frame[name], name) for name in NUMBER_COLUMNS}
    if "Change" in frame.columns:
        columns["Change"] = _whole_or_float(frame["Change"], "Change").astype("float64")
    else:
        columns["Change"] = pd.Series(columns["Close"], dtype="float64").pct_change().to_numpy()
    for name in PRICE_COLUMNS:
        if np.isnan(columns[name].astype("float64")).any():
            raise BadOhlcvData(f"column {name} has missing prices")
    index = pd.DatetimeIndex(dates.values, name="Date")
    return pd.DataFrame(columns, index=index, columns=list(VALUE_COLUMNS))
