"""The frames readers return, built from decoded OHLCV_STR arrays."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ohlcv import codec
from ohlcv.errors import BadOhlcvData


def arrays_from_cached(code: str, blob: bytes) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A cached history as arrays; a value that is not OHLCV_STR says what to do about it."""
    try:
        return codec.decode_arrays(blob)
    except BadOhlcvData as exc:
        raise BadOhlcvData(
            f"{code}: the cached value is not OHLCV_STR ({exc}); the indexer's next run replaces it, "
            "and `python -m ohlcv migrate` converts the old job's values"
        ) from None


def from_cached(code: str, blob: bytes) -> pd.DataFrame:
    """A cached history as a frame (see ``arrays_from_cached``)."""
    return codec.frame_from_arrays(*arrays_from_cached(code, blob))


def window(dates: np.ndarray, columns: dict[str, np.ndarray], first: dt.date | None, last: dt.date):
    """The rows from ``first`` (None: the first) to ``last``, both included, as views."""
    lo = 0 if first is None else int(np.searchsorted(dates, np.datetime64(first, "ns"), side="left"))
    hi = int(np.searchsorted(dates, np.datetime64(last, "ns"), side="right"))
    return dates[lo:hi], {name: values[lo:hi] for name, values in columns.items()}


def long_frame(codes: list[str], arrays: dict) -> pd.DataFrame:
    """One frame for many tickers, built once: (Ticker, Date) index, the usual columns."""
    present = [code for code in codes if code in arrays]
    if not present:
        return empty().set_index(pd.MultiIndex.from_arrays([[], []], names=["Ticker", "Date"]))
    lengths = [len(arrays[code][0]) for code in present]
    dates = np.concatenate([arrays[code][0] for code in present])
    # numpy widens a column to float64 when some tickers have decimal prices
    columns = {name: np.concatenate([arrays[code][1][name] for code in present]) for name in codec.VALUE_COLUMNS}
    tickers = pd.Categorical(np.repeat(np.array(present, dtype=object), lengths), categories=present)
    index = pd.MultiIndex.from_arrays([tickers, pd.DatetimeIndex(dates)], names=["Ticker", "Date"])
    return pd.DataFrame(columns, index=index)


def empty() -> pd.DataFrame:
    """A frame without sessions, with the usual columns and types."""
    return pd.DataFrame(
        {name: pd.Series(dtype="float64" if name == "Change" else "int64") for name in codec.VALUE_COLUMNS},
        index=pd.DatetimeIndex([], dtype="datetime64[ns]", name="Date"),
    )
