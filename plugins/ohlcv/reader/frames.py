"""The frames readers return, built from decoded OHLCV_STR column arrays (``codec.Columns``):
pandas here, Arrow tables and Polars frames in ``ohlcv.reader.tables``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ohlcv import codec
from ohlcv.errors import BadOhlcvData

#: what ``as_=`` may name; pandas is the default
FORMATS = ("pandas", "polars", "arrow")


def columns_from_cached(code: str, blob: bytes) -> codec.Columns:
    """A cached history as column arrays; a value that is not OHLCV_STR says what to do about it."""
    try:
        return codec.decode_columns(blob)
    except BadOhlcvData as exc:
        raise BadOhlcvData(
            f"{code}: the cached value is not OHLCV_STR ({exc}); the indexer's next run replaces it, "
            "and `python -m ohlcv migrate` converts the old job's values"
        ) from None


def from_cached(code: str, blob: bytes) -> pd.DataFrame:
    """A cached history as a frame (see ``columns_from_cached``)."""
    return codec.frame_from_columns(columns_from_cached(code, blob))


def empty_columns() -> codec.Columns:
    """Column arrays without sessions, in the types a frame without sessions has."""
    days = np.empty(0, dtype="<i4")
    return codec.Columns(days, tuple(np.empty(0, "<f8" if name == "Change" else "<i8") for name in codec.VALUE_COLUMNS))


def widened(parts: list[codec.Columns]) -> list[np.ndarray]:
    """Each value column of ``parts`` end to end, in one copy: int64, or float64 when some
    part holds decimals (numpy's rule, as pandas applies it when frames are concatenated)."""
    result = []
    for position in range(len(codec.VALUE_COLUMNS)):
        arrays = [part.values[position] for part in parts]
        kind = np.float64 if any(array.dtype.kind == "f" for array in arrays) else np.int64
        result.append(np.concatenate(arrays, dtype=kind) if arrays else np.empty(0, kind))
    return result


def long_frame(codes: list[str], parts: dict[str, codec.Columns]) -> pd.DataFrame:
    """One frame for many tickers, built once: (Ticker, Date) index, the usual columns."""
    present = [code for code in codes if code in parts]
    if not present:
        return empty().set_index(pd.MultiIndex.from_arrays([[], []], names=["Ticker", "Date"]))
    ordered = [parts[code] for code in present]
    lengths = [part.rows for part in ordered]
    days = np.concatenate([part.days for part in ordered]).astype(np.int64)
    dates = (days * 86_400_000_000_000).view("datetime64[ns]")
    columns = dict(zip(codec.VALUE_COLUMNS, widened(ordered), strict=True))
    tickers = pd.Categorical.from_codes(np.repeat(np.arange(len(present), dtype=np.int32), lengths), present)
    index = pd.MultiIndex.from_arrays([tickers, pd.DatetimeIndex(dates)], names=["Ticker", "Date"])
    return pd.DataFrame(columns, index=index)


def empty() -> pd.DataFrame:
    """A frame without sessions, with the usual columns and types."""
    return codec.frame_from_columns(empty_columns())
