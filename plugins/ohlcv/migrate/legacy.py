"""The old job's values: recognising them and converting them to OHLCV_STR, exactly or not at all.

A value is OHLCV_STR, or the old job's pandas JSON (``DataFrame.to_json()`` of a
FinanceDataReader frame: the columns orient, dates as epoch milliseconds), or neither
(``BadOhlcvData``). A conversion must pass ``ohlcv.validation`` and come back from the codec
with exactly the numbers the JSON held.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ohlcv import codec
from ohlcv.errors import BadOhlcvData, ConfigurationError
from ohlcv.validation import NUMBER_COLUMNS, validate

_SOURCE_LABEL = re.compile(r"[a-z0-9_.-]{0,32}")
_EPOCH_LABEL = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class Value:
    """One value read for a ticker: what it is and, when readable, its rows.

    :param kind: ``OHLCV_STR`` or ``pandas JSON``
    :param blob: the bytes to store under ``ticker:{code}`` (the original for OHLCV_STR)
    """

    key: str
    kind: str
    blob: bytes
    original: bytes
    last: dt.date
    rows: int

    def describe(self) -> str:
        return f"{self.key} ({self.kind}, {self.rows} rows through {self.last})"


def check_source(label: str) -> str:
    """The ``source`` label for converted values, or ``ConfigurationError``."""
    if not _SOURCE_LABEL.fullmatch(label):
        raise ConfigurationError(f"--source {label!r}: use up to 32 lower-case letters, digits, '_', '.', '-'")
    return label


def from_pandas_json(blob: bytes) -> pd.DataFrame:
    """The frame a value of the old job holds: ``DataFrame.to_json()`` in the columns orient,
    dates as epoch milliseconds (or ISO strings), Open, High, Low, Close, Volume[, Change].

    Whole numbers stay int64, anything else is float64, ``null`` is NaN; other columns
    (FinanceDataReader adds some for indices) are left out. Raises ``BadOhlcvData``.
    """
    try:
        doc = json.loads(blob)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadOhlcvData(f"neither OHLCV_STR nor JSON ({exc})") from None
    if not isinstance(doc, dict) or not doc or not all(isinstance(column, dict) for column in doc.values()):
        raise BadOhlcvData("JSON, but not a pandas frame in the columns orient (column -> {date: value})")
    missing = [name for name in NUMBER_COLUMNS if name not in doc]
    if missing:
        raise BadOhlcvData(f"pandas JSON without the columns {missing}")
    labels = list(doc["Close"])
    names = [name for name in codec.VALUE_COLUMNS if name in doc]
    for name in names:
        if list(doc[name]) != labels:
            raise BadOhlcvData(f"pandas JSON whose column {name} has other dates than Close")
    if not labels:
        raise BadOhlcvData("pandas JSON without rows")
    columns = {name: _column(name, [doc[name][label] for label in labels]) for name in names}
    return pd.DataFrame(columns, index=pd.DatetimeIndex(_dates(labels), name="Date"))


def _dates(labels: list[str]) -> np.ndarray:
    if all(_EPOCH_LABEL.fullmatch(label) for label in labels):
        try:
            return np.array([int(label) for label in labels], dtype="int64").astype("datetime64[ms]")
        except OverflowError:
            raise BadOhlcvData("pandas JSON with dates beyond any calendar") from None
    try:
        return pd.to_datetime(labels, format="ISO8601").values
    except (ValueError, TypeError) as exc:
        raise BadOhlcvData(f"pandas JSON whose dates are neither epoch milliseconds nor ISO dates ({exc})") from None


def _column(name: str, values: list) -> np.ndarray:
    for value in values:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise BadOhlcvData(f"pandas JSON whose {name} holds {value!r}, not a number")
    if all(isinstance(value, int) for value in values):
        try:
            return np.array(values, dtype="int64")
        except OverflowError:
            raise BadOhlcvData(f"pandas JSON whose {name} holds integers beyond int64") from None
    return np.array([np.nan if value is None else value for value in values], dtype="float64")


def _same_numbers(parsed: pd.DataFrame, back: pd.DataFrame) -> None:
    """Raise ``BadOhlcvData`` unless the decoded value holds exactly the parsed numbers: the same
    dates, integers as integers, every price and Volume equal, and every Change the old value
    held (a gap after the first row is filled from Close by ``validate``)."""
    if not pd.DatetimeIndex(parsed.index.normalize()).as_unit("ns").equals(back.index):
        raise BadOhlcvData("the dates do not survive encoding")
    for name in NUMBER_COLUMNS:
        old, new = parsed[name].to_numpy(), back[name].to_numpy()
        if old.dtype.kind == "i" and new.dtype.kind != "i":
            raise BadOhlcvData(f"{name}: integers would be stored as {new.dtype}")
        if not np.array_equal(old.astype("float64"), new.astype("float64")) or (
            old.dtype.kind == "i" and not np.array_equal(old, new)
        ):
            raise BadOhlcvData(f"{name} does not survive encoding exactly")
    if "Change" in parsed.columns:
        old, new = parsed["Change"].to_numpy("float64"), back["Change"].to_numpy("float64")
        held = ~np.isnan(old)
        if not np.array_equal(old[held], new[held]) or (len(old) and np.isnan(old[0]) != np.isnan(new[0])):
            raise BadOhlcvData("Change does not survive encoding exactly")


def convert(blob: bytes, source: str, as_of: dt.date) -> bytes:
    """The OHLCV_STR value for one of the old job's pandas JSON values.

    The frame must pass ``ohlcv.validation.validate`` through ``as_of`` and come back from
    ``codec.decode`` with exactly the numbers the JSON held; otherwise ``BadOhlcvData``.
    """
    parsed = from_pandas_json(blob)
    frame = validate(parsed, as_of)
    value = codec.encode(frame, source)
    _same_numbers(parsed, codec.decode(value))
    return value


def read_value(key: str, blob: bytes | None, source: str, as_of: dt.date) -> Value | None:
    """What one value is, converted when it is pandas JSON; ``BadOhlcvData`` when neither."""
    if blob is None:
        return None
    try:
        frame = codec.decode(blob)
    except BadOhlcvData as exc:
        if blob.lstrip()[:1] != b"{":
            raise BadOhlcvData(f"neither OHLCV_STR nor pandas JSON ({exc})") from None
    else:
        return Value(key, "OHLCV_STR", blob, blob, frame.index[-1].date(), len(frame))
    converted = convert(blob, source, as_of)
    frame = codec.decode(converted)
    return Value(key, "pandas JSON", converted, blob, frame.index[-1].date(), len(frame))


def is_ohlcv_str(blob: bytes | None) -> bool:
    if blob is None:
        return True  # expired meanwhile: nothing to delete
    try:
        codec.decode(blob)
    except BadOhlcvData:
        return False
    return True
