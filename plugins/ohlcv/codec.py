"""OHLCV_STR: the versioned, language-neutral encoding of one OHLCV series in Redis.

The specification is ``docs/ohlcv-str.md``. In short, version 1 is one bare MessagePack map
(``format``, ``version``, ``rows``, ``source``, ``columns``, ``dtypes``, ``data``) whose
``data`` holds one little-endian byte string per column: ``Date`` as ``<i4`` days since
1970-01-01, prices and ``Volume`` as ``<i4``, ``<i8`` or ``<f8``, ``Change`` as ``<f8``.

``encode`` refuses a frame that breaks a rule on structure or dates, or holds NaN or infinity
where none may be; ``decode`` checks every rule a reader must and ignores keys it does not
know. Both raise ``BadOhlcvData`` naming the rule. Nothing in a value is executable, so a
shared Redis cannot run code in a reader.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import msgpack
import numpy as np
import pandas as pd

from ohlcv.errors import BadOhlcvData

FORMAT = "OHLCV_STR"
VERSION = 1
COLUMNS: tuple[str, ...] = ("Date", "Open", "High", "Low", "Close", "Volume", "Change")
VALUE_COLUMNS: tuple[str, ...] = COLUMNS[1:]
_ALLOWED_DTYPES = frozenset({"<i4", "<i8", "<f8"})
_INT32 = np.iinfo(np.int32)
_EPOCH_DAY = np.datetime64("1970-01-01", "D")
_NS_PER_DAY = 86_400 * 10**9
#: The dates a value may hold: every KRX session (from 1956 on), and far inside what
#: pandas' datetime64[ns] can hold (1677-09-21 to 2262-04-11).
FIRST_DATE = dt.date(1900, 1, 1)
LAST_DATE = dt.date(2199, 12, 31)
_FIRST_DAY = (FIRST_DATE - dt.date(1970, 1, 1)).days
_LAST_DAY = (LAST_DATE - dt.date(1970, 1, 1)).days
_DATE_RANGE = f"from {FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()} (days {_FIRST_DAY} to {_LAST_DAY})"


def _narrowest(values: np.ndarray) -> np.ndarray:
    """The same values as ``<i4``, ``<i8`` or ``<f8``, whichever is smallest and exact."""
    if values.dtype.kind in "iu":
        ints = values.astype("<i8")
    else:
        floats = values.astype("<f8")
        whole = np.isfinite(floats).all() and np.array_equal(floats, np.trunc(floats))
        if not (whole and floats.min() >= -(2.0**63) and floats.max() < 2.0**63):
            return floats
        ints = floats.astype("<i8")
    if ints.size == 0 or (ints.min() >= _INT32.min and ints.max() <= _INT32.max):
        return ints.astype("<i4")
    return ints


def _check_writable(dates: np.ndarray, days: np.ndarray, columns: dict[str, np.ndarray]) -> None:
    """Refuse values that break a rule of the specification, naming the rule and the row."""

    def date(position: int) -> str:
        return str(np.datetime_as_string(dates[position], unit="D"))

    if len(days) == 0:
        raise BadOhlcvData("cannot encode an empty series: an OHLCV_STR value holds at least one row")
    if days.min() < _FIRST_DAY or days.max() > _LAST_DAY:
        found = f"{date(int(days.argmin()))} to {date(int(days.argmax()))}"
        raise BadOhlcvData(f"cannot encode: dates must lie {_DATE_RANGE}, found {found}")
    steps = np.diff(days)
    if (steps <= 0).any():
        raise BadOhlcvData(
            f"cannot encode: dates are not strictly increasing at {date(int(np.argmax(steps <= 0)) + 1)}"
        )
    for name, values in columns.items():
        if values.dtype.kind not in "iuf":
            raise BadOhlcvData(f"cannot encode: column {name} is not numeric ({values.dtype})")
        if values.dtype.kind == "u" and values.size and values.max() > np.iinfo(np.int64).max:
            raise BadOhlcvData(f"cannot encode: column {name} holds integers beyond int64")
        if values.dtype.kind != "f":
            continue
        bad = ~np.isfinite(values)
        if name == "Change":
            bad = np.isinf(values) | np.concatenate([[False], np.isnan(values[1:])])
        if bad.any():
            where = date(int(np.argmax(bad)))
            rule = "only the first row may be NaN" if name == "Change" else "prices and Volume are finite numbers"
            raise BadOhlcvData(f"cannot encode: {name} is {values[bad][0]} on {where}; {rule}")


def encode(frame: pd.DataFrame, source: str = "") -> bytes:
    """Encode a canonical OHLCV frame (see ``ohlcv.validation.canonical``) as OHLCV_STR.

    Raises ``BadOhlcvData`` if the frame breaks a rule of ``docs/ohlcv-str.md``: no rows,
    dates out of range or not strictly increasing, missing or infinite prices, NaN in
    ``Change`` after the first row.
    """
    missing = [name for name in VALUE_COLUMNS if name not in frame.columns]
    if missing:
        raise BadOhlcvData(f"cannot encode: missing columns {missing}")
    return encode_arrays(frame.index.values, {name: frame[name].to_numpy() for name in VALUE_COLUMNS}, source)


def encode_arrays(dates: np.ndarray, columns: dict[str, np.ndarray], source: str = "") -> bytes:
    """Encode dates (``datetime64``) and the value columns as OHLCV_STR: the arrays
    ``decode_arrays`` returns, with the same checks as ``encode``."""
    days = (dates.astype("datetime64[D]") - _EPOCH_DAY).astype(np.int64)
    columns = {name: np.asarray(columns[name]) for name in VALUE_COLUMNS}
    _check_writable(dates, days, columns)
    arrays = [days.astype("<i4")]
    for name, values in columns.items():
        arrays.append(values.astype("<f8") if name == "Change" else _narrowest(values))
    return msgpack.packb(
        {
            "format": FORMAT,
            "version": VERSION,
            "rows": len(days),
            "source": source,
            "columns": list(COLUMNS),
            "dtypes": [array.dtype.str for array in arrays],
            "data": [array.tobytes() for array in arrays],
        },
        use_bin_type=True,
    )


def _unpack(blob: bytes) -> dict:
    try:
        doc = msgpack.unpackb(blob, raw=False)
    except Exception as exc:  # msgpack raises several unrelated classes on garbage
        raise BadOhlcvData(f"not an OHLCV_STR value: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BadOhlcvData("not an OHLCV_STR value: missing format marker")
    return doc


def _is_int(value: object) -> bool:
    """An integer as MessagePack has it: ``True`` and ``1.0`` are not integers here."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_header(doc: dict) -> tuple[int, list[str]]:
    """The rows and column types of an unpacked value, checked as the specification requires."""
    version = doc.get("version")
    if not (_is_int(version) and version == VERSION):
        raise BadOhlcvData(f"unsupported OHLCV_STR version {version!r}; this reader reads version {VERSION}")
    rows, dtypes = doc.get("rows"), doc.get("dtypes")
    if not (_is_int(rows) and rows >= 1):
        raise BadOhlcvData(f"OHLCV_STR header is damaged: rows must be an integer >= 1, got {rows!r}")
    if not isinstance(doc.get("source"), str):
        raise BadOhlcvData("OHLCV_STR header is damaged: source must be a string")
    if doc.get("columns") != list(COLUMNS):
        raise BadOhlcvData(f"OHLCV_STR header is damaged: columns must be {list(COLUMNS)}")
    if not (isinstance(dtypes, list) and len(dtypes) == len(COLUMNS)):
        raise BadOhlcvData("OHLCV_STR header is damaged: expected 7 dtypes and 7 columns")
    if dtypes[0] != "<i4":
        raise BadOhlcvData("OHLCV_STR Date column must be <i4 days")
    if dtypes[-1] != "<f8":
        raise BadOhlcvData("OHLCV_STR Change column must be <f8")
    for name, dtype in zip(COLUMNS, dtypes, strict=True):
        if not isinstance(dtype, str) or dtype not in _ALLOWED_DTYPES:
            raise BadOhlcvData(f"OHLCV_STR column {name} has unsupported type {dtype!r}")
    return rows, dtypes


def _columns(blob: bytes) -> tuple[np.ndarray, list[np.ndarray]]:
    """The dates (int32 days) and the six value columns as read-only views of ``blob``.

    Checks the structure the specification requires; keys it does not know are ignored.
    """
    doc = _unpack(blob)
    rows, dtypes = _check_header(doc)
    data = doc.get("data")
    if not (isinstance(data, list) and len(data) == len(COLUMNS)):
        raise BadOhlcvData("OHLCV_STR header is damaged: expected 7 dtypes and 7 columns")
    views = []
    for name, dtype, raw in zip(COLUMNS, dtypes, data, strict=True):
        if not isinstance(raw, bytes):
            raise BadOhlcvData(f"OHLCV_STR column {name} is not a MessagePack bin")
        if len(raw) != rows * np.dtype(dtype).itemsize:
            raise BadOhlcvData(f"OHLCV_STR column {name} is truncated")
        views.append(np.frombuffer(raw, dtype=dtype))
    days = views[0]
    # neighbours compared, not subtracted: a difference of int32 days can overflow and look positive
    if rows > 1 and not (days[1:] > days[:-1]).all():
        raise BadOhlcvData("OHLCV_STR dates are not strictly increasing")
    if days[0] < _FIRST_DAY or days[-1] > _LAST_DAY:
        raise BadOhlcvData(f"OHLCV_STR dates must lie {_DATE_RANGE}, found days {days[0]} to {days[-1]}")
    return days, views[1:]


def _dates(days: np.ndarray) -> np.ndarray:
    return (days.astype(np.int64) * _NS_PER_DAY).view("datetime64[ns]")


def _widened(views: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The value columns by name, as int64 or float64."""
    return {
        name: view.astype(np.int64 if view.dtype.kind == "i" else np.float64)
        for name, view in zip(VALUE_COLUMNS, views, strict=True)
    }


def decode_arrays(blob: bytes) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Decode OHLCV_STR into its dates (``datetime64[ns]``) and value columns (int64/float64).

    Raises ``BadOhlcvData`` if ``blob`` is not a valid value.
    """
    days, views = _columns(blob)
    return _dates(days), _widened(views)


@dataclass(frozen=True)
class Columns:
    """A series as its column arrays, the form every reader's output is built from.

    :param days: the dates as ``int32`` days since 1970-01-01 (what Arrow's ``date32`` holds)
    :param values: Open, High, Low, Close, Volume, Change in the types the value stores them
        in (``<i4``, ``<i8``, ``<f8``); after ``decode_columns`` read-only views of its bytes
    """

    days: np.ndarray
    values: tuple[np.ndarray, ...]

    @property
    def rows(self) -> int:
        return len(self.days)

    def last_date(self) -> dt.date:
        return (_EPOCH_DAY + int(self.days[-1])).astype(dt.date)

    def window(self, first: dt.date | None, last: dt.date) -> Columns:
        """The rows from ``first`` (None: the first) to ``last``, both included, as views."""
        lo = 0 if first is None else int(np.searchsorted(self.days, _day(first), side="left"))
        hi = int(np.searchsorted(self.days, _day(last), side="right"))
        if lo == 0 and hi == len(self.days):
            return self
        return Columns(self.days[lo:hi], tuple(values[lo:hi] for values in self.values))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Columns:
        """The columns of a canonical frame."""
        days = (frame.index.values.astype("datetime64[D]") - _EPOCH_DAY).astype(np.int32)
        return cls(days, tuple(frame[name].to_numpy() for name in VALUE_COLUMNS))


def _day(date: dt.date) -> int:
    return (date - dt.date(1970, 1, 1)).days


def decode_columns(blob: bytes) -> Columns:
    """Decode OHLCV_STR into its column arrays, without copying them out of ``blob``.

    Raises ``BadOhlcvData`` if ``blob`` is not a valid value.
    """
    days, views = _columns(blob)
    return Columns(days, tuple(views))


def encode_columns(columns: Columns, source: str = "") -> bytes:
    """Encode column arrays (see ``decode_columns``) as OHLCV_STR, with the checks of ``encode``."""
    return encode_arrays(_dates(columns.days), dict(zip(VALUE_COLUMNS, columns.values, strict=True)), source)


def frame_from_columns(columns: Columns) -> pd.DataFrame:
    """The canonical frame of column arrays: ``Date`` index, value columns widened to int64/float64."""
    return _build_frame(_dates(columns.days), list(columns.values))


def decode(blob: bytes) -> pd.DataFrame:
    """Decode OHLCV_STR into a frame with a ``Date`` index; raise ``BadOhlcvData`` if it is not one."""
    days, views = _columns(blob)
    return _build_frame(_dates(days), views)


def frame_from_arrays(dates: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The canonical frame for decoded arrays (see ``decode_arrays``)."""
    return _build_frame(dates, [columns[name] for name in VALUE_COLUMNS])


_COLUMN_INDEX = pd.Index(list(VALUE_COLUMNS))


def _frame_from_views(dates: np.ndarray, views: list[np.ndarray]) -> pd.DataFrame:
    """Hand pandas its blocks directly.

    Building a DataFrame through its public constructor costs ~0.3 ms however small the
    data; this costs well under 0.1 ms. Consecutive columns of one kind share a block,
    widened to int64 or float64 in the same copy. ``decode`` and ``frame_from_arrays`` use
    the public constructor instead if this pandas does not build the same frame this way.
    """
    from pandas._libs.internals import BlockPlacement
    from pandas.core.arrays import DatetimeArray
    from pandas.core.internals import BlockManager
    from pandas.core.internals.blocks import new_block

    blocks, start = [], 0
    while start < len(views):
        kind = views[start].dtype.kind
        stop = start + 1
        while stop < len(views) and views[stop].dtype.kind == kind:
            stop += 1
        values = np.empty((stop - start, len(dates)), dtype=np.int64 if kind == "i" else np.float64)
        for row, view in enumerate(views[start:stop]):
            values[row] = view
        blocks.append(new_block(values, BlockPlacement(slice(start, stop)), ndim=2))
        start = stop
    index = pd.DatetimeIndex._simple_new(DatetimeArray._simple_new(dates, dtype=dates.dtype), name="Date")
    manager = BlockManager(tuple(blocks), [_COLUMN_INDEX, index])
    return pd.DataFrame._from_mgr(manager, axes=manager.axes)


def _public_frame(dates: np.ndarray, views: list[np.ndarray]) -> pd.DataFrame:
    """The same frame through pandas' public constructor."""
    return pd.DataFrame(_widened(views), index=pd.DatetimeIndex(dates, name="Date"), columns=list(VALUE_COLUMNS))


def _choose_frame_builder():
    """``_frame_from_views`` if this pandas builds with it the frame its public constructor
    builds, else the public constructor: decided once, when the module is imported."""
    dates = _dates(np.array([0, 1], dtype="<i4"))
    views = [np.array([1, 2], dtype="<i4")] * 5 + [np.array([0.5, 0.25], dtype="<f8")]
    try:
        if _frame_from_views(dates, views).equals(_public_frame(dates, views)):
            return _frame_from_views
    except Exception:  # pandas internals changed: the public road
        pass
    return _public_frame


_build_frame = _choose_frame_builder()


def last_date(blob: bytes) -> dt.date:
    """The last session of an OHLCV_STR value, without building a frame."""
    days, _ = _columns(blob)
    return (_EPOCH_DAY + int(days[-1])).astype(dt.date)


#: the bytes of a value's beginning that hold its header and where its dates start, unless
#: its ``source`` label is unusually long (``layout`` then asks for the whole value)
PROBE_BYTES = 512


@dataclass(frozen=True)
class Layout:
    """Where a value's last date lies and how long the value is, read from its first bytes.

    :param last_day_at: the byte offset of the last date (``<i4`` days since 1970-01-01)
    :param length: the value's length in bytes when every column is where this writer puts it
    """

    rows: int
    last_day_at: int
    length: int


def _bin_header(length: int) -> int:
    return 2 if length < 2**8 else 3 if length < 2**16 else 5


def layout(prefix: bytes) -> Layout | None:
    """The layout of the OHLCV_STR value that begins with ``prefix``, without reading its columns.

    Raises ``BadOhlcvData`` when the header breaks a rule; None when ``prefix`` is too short to
    tell or the value is laid out differently from what ``encode`` writes (another writer's key
    order): read and decode the whole value then. A value whose length differs from
    ``Layout.length`` is truncated or laid out differently: decode it to tell which.
    """
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(prefix)
    try:
        entries, doc = unpacker.read_map_header(), {}
        for _ in range(entries):
            key = unpacker.unpack()
            if key == "data":
                break
            doc[key] = unpacker.unpack()
        else:
            raise BadOhlcvData("OHLCV_STR header is damaged: expected 7 dtypes and 7 columns")
        if len(doc) != entries - 1:
            return None  # keys after data: the columns' bytes cannot be located from here
        if unpacker.read_array_header() != len(COLUMNS):
            raise BadOhlcvData("OHLCV_STR header is damaged: expected 7 dtypes and 7 columns")
        columns_at = unpacker.tell()
    except msgpack.OutOfData:
        return None
    except BadOhlcvData:
        raise
    except Exception as exc:  # msgpack raises several unrelated classes on garbage
        raise BadOhlcvData(f"not an OHLCV_STR value: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BadOhlcvData("not an OHLCV_STR value: missing format marker")
    rows, dtypes = _check_header(doc)
    sizes = [rows * np.dtype(dtype).itemsize for dtype in dtypes]
    length = columns_at + sum(_bin_header(size) + size for size in sizes)
    return Layout(rows, columns_at + _bin_header(sizes[0]) + (rows - 1) * 4, length)


def day_at(raw: bytes) -> dt.date:
    """The date the four bytes at ``Layout.last_day_at`` hold."""
    if len(raw) != 4:
        raise BadOhlcvData("OHLCV_STR Date column is truncated")
    day = int(np.frombuffer(raw, dtype="<i4")[0])
    if not _FIRST_DAY <= day <= _LAST_DAY:
        raise BadOhlcvData(f"OHLCV_STR dates must lie {_DATE_RANGE}, found day {day}")
    return (_EPOCH_DAY + day).astype(dt.date)


def source_of(blob: bytes) -> str:
    """The ``source`` field of an OHLCV_STR value, without building a frame."""
    return str(_unpack(blob).get("source", ""))
