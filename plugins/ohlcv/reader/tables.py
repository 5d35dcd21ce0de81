"""Arrow tables and Polars frames straight from OHLCV_STR's column arrays, with no pandas
frame in between.

``Date`` is Arrow's ``date32``: the value's ``<i4`` days are its buffer as they are. Prices and
``Volume`` are int64 (float64 when a ticker has decimal prices), ``Change`` float64; a table
of many tickers has a ``Ticker`` column first (dictionary-encoded; a Polars ``Categorical``).
pyarrow and polars are optional extras (``pip install 'ohlcv-cache[arrow]'`` / ``[polars]``).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from ohlcv import codec
from ohlcv.errors import FormatUnavailable, UnknownFormat
from ohlcv.reader import frames


def check(as_: object) -> str:
    """``as_`` if it names a format readers build; the library it needs is importable."""
    if as_ not in frames.FORMATS:
        raise UnknownFormat(f"as_={as_!r}: give one of {', '.join(repr(name) for name in frames.FORMATS)}")
    if as_ != "pandas":
        _library("pyarrow", as_)
        if as_ == "polars":
            _library("polars", as_)
    return as_


def _library(name: str, as_: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        extra = "polars" if as_ == "polars" else "arrow"
        raise FormatUnavailable(
            f"as_={as_!r} needs {name}, which is not installed: pip install 'ohlcv-cache[{extra}]' ({exc})"
        ) from None


def _schema(pa, value_types: list, with_ticker: bool):
    fields = [pa.field("Ticker", pa.dictionary(pa.int32(), pa.string()))] if with_ticker else []
    fields.append(pa.field("Date", pa.date32()))
    fields += [pa.field(name, kind) for name, kind in zip(codec.VALUE_COLUMNS, value_types, strict=True)]
    return pa.schema(fields)


def _arrays(pa, days: np.ndarray, values: list[np.ndarray]) -> list:
    arrays = [pa.Array.from_buffers(pa.date32(), len(days), [None, pa.py_buffer(np.ascontiguousarray(days))])]
    return arrays + [pa.array(column) for column in values]


def arrow(columns: codec.Columns):
    """One ticker's rows as a ``pyarrow.Table``: Date, Open, High, Low, Close, Volume, Change."""
    pa = _library("pyarrow", "arrow")
    values = frames.widened([columns])
    arrays = _arrays(pa, columns.days.astype("<i4", copy=False), values)
    return pa.Table.from_arrays(arrays, schema=_schema(pa, [array.type for array in arrays[1:]], False))


def long_arrow(codes: list[str], parts: dict[str, codec.Columns]):
    """Many tickers' rows as one ``pyarrow.Table``, built once: Ticker, Date and the usual columns."""
    pa = _library("pyarrow", "arrow")
    present = [code for code in codes if code in parts]
    ordered = [parts[code] for code in present] or [frames.empty_columns()]
    days = np.concatenate([part.days for part in ordered]).astype("<i4", copy=False)
    values = frames.widened(ordered)
    lengths = [part.rows for part in ordered] if present else [0]
    indices = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    tickers = pa.DictionaryArray.from_arrays(pa.array(indices), pa.array(present or [""], pa.string()))
    arrays = [tickers, *_arrays(pa, days, values)]
    return pa.Table.from_arrays(arrays, schema=_schema(pa, [array.type for array in arrays[2:]], True))


def polars(table):
    """A Polars frame of an Arrow table (its buffers shared, not copied)."""
    return _library("polars", "polars").from_arrow(table)


def build(columns: codec.Columns, as_: str):
    """One ticker's rows in the format ``as_`` names (see ``check``)."""
    if as_ == "pandas":
        return codec.frame_from_columns(columns)
    table = arrow(columns)
    return polars(table) if as_ == "polars" else table


def build_many(codes: list[str], parts: dict[str, codec.Columns], as_: str, as_frame: bool):
    """Many tickers' rows: one long frame or table with ``as_frame``, else a dict code -> frame."""
    if as_frame:
        if as_ == "pandas":
            return frames.long_frame(codes, parts)
        table = long_arrow(codes, parts)
        return polars(table) if as_ == "polars" else table
    empty = frames.empty_columns()
    return {code: build(parts.get(code, empty), as_) for code in codes}
