import contextlib
import struct
import zlib

import msgpack
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ohlcv import codec
from ohlcv.errors import BadOhlcvData


def make_frame(rows: int = 7_800, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("1995-01-02", periods=rows).values.astype("datetime64[ns]")
    close = (np.cumprod(1 + rng.normal(0, 0.02, rows)) * 50_000).round(-1).astype("int64")
    return pd.DataFrame(
        {
            "Open": close + 50,
            "High": close + 200,
            "Low": close - 200,
            "Close": close,
            "Volume": rng.integers(0, 50_000_000, rows),
            "Change": pd.Series(close).pct_change().to_numpy(),
        },
        index=pd.DatetimeIndex(days, name="Date"),
    )


def test_round_trip_is_exact():
    frame = make_frame()
    pd.testing.assert_frame_equal(codec.decode(codec.encode(frame, "synthetic")), frame)


def test_round_trip_keeps_float_prices_and_large_volumes():
    frame = make_frame(300)
    frame["Close"] = frame["Close"] / 7  # index levels have decimals
    frame["Volume"] = frame["Volume"] * 1_000  # beyond int32
    decoded = codec.decode(codec.encode(frame))
    pd.testing.assert_frame_equal(decoded, frame)
    assert decoded["Close"].dtype == np.float64


def test_decoded_frame_has_the_documented_shape():
    decoded = codec.decode(codec.encode(make_frame(10)))
    assert list(decoded.columns) == ["Open", "High", "Low", "Close", "Volume", "Change"]
    assert decoded.index.name == "Date"
    assert decoded.index.dtype == np.dtype("datetime64[ns]")


def test_integer_krw_prices_cost_at_most_36_bytes_a_row():
    frame = make_frame()
    assert len(codec.encode(frame)) / len(frame) <= 36


def test_layout_is_readable_without_this_package():
    """Decode with nothing but a MessagePack reader and struct, as a non-Python client would."""
    frame = make_frame(5)
    doc = msgpack.unpackb(codec.encode(frame, "fdr"))
    assert list(doc) == ["format", "version", "rows", "source", "columns", "dtypes", "data"]
    assert (doc["format"], doc["version"], doc["rows"], doc["source"]) == ("OHLCV_STR", 1, 5, "fdr")
    assert doc["columns"] == ["Date", "Open", "High", "Low", "Close", "Volume", "Change"]
    assert doc["dtypes"] == ["<i4", "<i4", "<i4", "<i4", "<i4", "<i4", "<f8"]
    days = struct.unpack("<5i", doc["data"][0])
    assert [np.datetime64("1970-01-01") + np.timedelta64(day, "D") for day in days] == list(
        frame.index.values.astype("datetime64[D]")
    )
    assert list(struct.unpack("<5i", doc["data"][4])) == frame["Close"].tolist()
    change = struct.unpack("<5d", doc["data"][6])
    assert np.isnan(change[0])
    assert change[1] == pytest.approx(frame["Change"].iloc[1])


def test_source_label_is_readable_without_decoding_columns():
    assert codec.source_of(codec.encode(make_frame(3), "synthetic")) == "synthetic"


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"not msgpack at all \xff\xfe",
        b"\x80\x04\x95",  # the start of a pickle
        msgpack.packb({"format": "something else"}),
        msgpack.packb([1, 2, 3]),
    ],
)
def test_garbage_is_rejected(blob):
    with pytest.raises(BadOhlcvData):
        codec.decode(blob)


def test_unknown_version_is_rejected():
    doc = msgpack.unpackb(codec.encode(make_frame(3)))
    doc["version"] = 2
    with pytest.raises(BadOhlcvData, match="version 2"):
        codec.decode(msgpack.packb(doc))


def test_truncated_column_is_rejected():
    doc = msgpack.unpackb(codec.encode(make_frame(3)))
    doc["data"][4] = doc["data"][4][:-1]
    with pytest.raises(BadOhlcvData, match="Close is truncated"):
        codec.decode(msgpack.packb(doc))


def test_unsupported_column_type_is_rejected():
    doc = msgpack.unpackb(codec.encode(make_frame(3)))
    doc["dtypes"][1] = "|O"
    with pytest.raises(BadOhlcvData, match="unsupported type"):
        codec.decode(msgpack.packb(doc))


def _damaged(change) -> bytes:
    doc = msgpack.unpackb(codec.encode(make_frame(4)))
    change(doc)
    return msgpack.packb(doc)


@pytest.mark.parametrize(
    "change",
    [
        lambda doc: doc["data"].pop(),  # six columns of data
        lambda doc: doc.update(data=[]),
        lambda doc: doc["dtypes"].__setitem__(2, ["<i4"]),  # not a string
        lambda doc: doc.update(rows=-1),
        lambda doc: doc.update(columns=["Date", "Open"]),
        lambda doc: doc["data"].__setitem__(0, doc["data"][0][4:] + doc["data"][0][:4]),  # dates out of order
        lambda doc: doc["dtypes"].__setitem__(0, "<f8"),
    ],
)
def test_structurally_damaged_values_are_rejected(change):
    with pytest.raises(BadOhlcvData):
        codec.decode(_damaged(change))


def test_fast_frame_building_equals_the_public_constructor():
    for frame in (make_frame(50), make_frame(50).assign(Close=lambda f: f["Close"] / 3), make_frame(1)):
        dates, columns = codec.decode_arrays(codec.encode(frame))
        public = pd.DataFrame(columns, index=pd.DatetimeIndex(dates, name="Date"), columns=list(codec.VALUE_COLUMNS))
        fast = codec._frame_from_views(dates, [columns[name] for name in codec.VALUE_COLUMNS])
        pd.testing.assert_frame_equal(fast, public)
        pd.testing.assert_frame_equal(codec.decode(codec.encode(frame)), frame)


def test_decoded_frames_are_writable_and_independent():
    blob = codec.encode(make_frame(20))
    first, second = codec.decode(blob), codec.decode(blob)
    first.iloc[0, 0] = -1
    assert second.iloc[0, 0] != -1


# -- the rules of docs/ohlcv-str.md, one test each ------------------------------------------


def _doc(rows: int = 3) -> dict:
    return msgpack.unpackb(codec.encode(make_frame(rows), "synthetic"))


def _with_days(days: list[int]) -> bytes:
    doc = _doc(len(days))
    doc["data"][0] = np.array(days, dtype="<i4").tobytes()
    return msgpack.packb(doc)


@pytest.mark.parametrize("version", [True, 1.0, "1", None, 2])
def test_version_must_be_the_integer_1(version):
    doc = _doc()
    doc["version"] = version
    with pytest.raises(BadOhlcvData, match="version"):
        codec.decode(msgpack.packb(doc))


@pytest.mark.parametrize(("rows", "keep"), [(True, 1), (0, 0), (1.0, 1), ("1", 1), (None, 1)])
def test_rows_must_be_an_integer_of_at_least_1(rows, keep):
    doc = _doc(max(keep, 1))
    doc["rows"] = rows
    doc["data"] = [
        column[: keep * (8 if dtype == "<f8" else 4)] for dtype, column in zip(doc["dtypes"], doc["data"], strict=True)
    ]
    with pytest.raises(BadOhlcvData, match="rows"):
        codec.decode(msgpack.packb(doc))


def test_source_must_be_a_string():
    doc = _doc()
    doc["source"] = 5
    with pytest.raises(BadOhlcvData, match="source"):
        codec.decode(msgpack.packb(doc))


@pytest.mark.parametrize("missing", ["format", "version", "rows", "source", "columns", "dtypes", "data"])
def test_every_version_1_key_is_required(missing):
    doc = _doc()
    del doc[missing]
    with pytest.raises(BadOhlcvData):
        codec.decode(msgpack.packb(doc))


def test_unknown_keys_are_ignored():
    frame = make_frame(5)
    doc = msgpack.unpackb(codec.encode(frame))
    doc.update(comment="an optional field of a later writer", zz=[1, {"a": b"x"}])
    pd.testing.assert_frame_equal(codec.decode(msgpack.packb(doc)), frame)


def test_key_order_does_not_matter():
    frame = make_frame(5)
    doc = msgpack.unpackb(codec.encode(frame))
    reordered = dict(reversed(list(doc.items())))
    assert list(msgpack.unpackb(msgpack.packb(reordered))) != list(doc)
    pd.testing.assert_frame_equal(codec.decode(msgpack.packb(reordered)), frame)


def test_change_must_be_f8():
    doc = _doc()
    doc["dtypes"][6] = "<i4"
    doc["data"][6] = np.zeros(3, dtype="<i4").tobytes()
    with pytest.raises(BadOhlcvData, match="Change"):
        codec.decode(msgpack.packb(doc))


@pytest.mark.parametrize("dtype", ["<i2", ">i4", "<u4", "<f4", "<M8[D]", "i4", "int32"])
def test_only_i4_i8_f8_are_column_types(dtype):
    doc = _doc()
    doc["dtypes"][5] = dtype
    with pytest.raises(BadOhlcvData, match="unsupported type"):
        codec.decode(msgpack.packb(doc))


def test_equal_dates_are_rejected():
    with pytest.raises(BadOhlcvData, match="strictly increasing"):
        codec.decode(_with_days([19724, 19725, 19725]))


@pytest.mark.parametrize(
    "days",
    [
        [-25568, 19724, 19725],  # 1899-12-31
        [19724, 19725, 84006],  # 2200-01-01
        [19724, 19725, 2**31 - 1],  # beyond datetime64[ns]: used to wrap around silently
        [-(2**31), 19724, 19725],
        [0, 2**31 - 1, -25_567],  # the step down overflows int32 and looks like a step up
    ],
)
def test_dates_outside_1900_to_2199_are_rejected(days):
    with pytest.raises(BadOhlcvData, match=r"1900-01-01|strictly increasing"):
        codec.decode(_with_days(days))


def test_first_and_last_allowed_dates_are_read():
    decoded = codec.decode(_with_days([-25567, 19724, 84005]))
    assert list(decoded.index) == [pd.Timestamp("1900-01-01"), pd.Timestamp("2024-01-02"), pd.Timestamp("2199-12-31")]


@pytest.mark.parametrize(
    "wrap",
    [
        lambda blob: blob + b"\xc0",  # a second MessagePack object after the map
        lambda blob: zlib.compress(blob),
        lambda blob: len(blob).to_bytes(4, "big") + blob,  # length-prefixed framing
    ],
)
def test_value_is_bare_uncompressed_messagepack(wrap):
    with pytest.raises(BadOhlcvData):
        codec.decode(wrap(codec.encode(make_frame(3))))


def test_column_bytes_must_be_bin_not_str():
    doc = _doc()
    doc["data"][4] = doc["data"][4].decode("latin-1")
    with pytest.raises(BadOhlcvData, match="Close"):
        codec.decode(msgpack.packb(doc, use_bin_type=True))


def test_strings_must_be_str_not_bin():
    doc = _doc()
    doc["format"] = b"OHLCV_STR"
    with pytest.raises(BadOhlcvData, match="format"):
        codec.decode(msgpack.packb(doc, use_bin_type=True))


def test_change_may_be_nan_on_any_row_for_readers():
    """Rules on values bind writers; the decoder checks structure only."""
    doc = _doc(4)
    doc["data"][6] = np.array([np.nan, 0.1, np.nan, 0.2], dtype="<f8").tobytes()
    assert codec.decode(msgpack.packb(doc))["Change"].isna().tolist() == [True, False, True, False]


# -- the encoder writes only what the rules allow ----------------------------------------------


def test_encoder_refuses_an_empty_series():
    with pytest.raises(BadOhlcvData, match="empty"):
        codec.encode(make_frame(0))


@pytest.mark.parametrize("day", ["1899-12-31", "2200-01-01", "1600-01-01", "2300-01-01"])
def test_encoder_refuses_dates_outside_1900_to_2199(day):
    frame = make_frame(3)
    days = frame.index.values.astype("datetime64[s]").copy()
    days[0 if day < "1970" else -1] = np.datetime64(day, "s")
    frame.index = pd.DatetimeIndex(days, name="Date")
    with pytest.raises(BadOhlcvData, match="1900-01-01"):
        codec.encode(frame)


@pytest.mark.parametrize("order", [[0, 2, 1], [0, 1, 1]])
def test_encoder_refuses_dates_that_do_not_strictly_increase(order):
    with pytest.raises(BadOhlcvData, match="strictly increasing"):
        codec.encode(make_frame(3).iloc[order])


@pytest.mark.parametrize("column", ["Open", "Close", "Volume"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_encoder_refuses_missing_or_infinite_prices(column, bad):
    frame = make_frame(3).astype({column: "float64"})
    frame.iloc[1, frame.columns.get_loc(column)] = bad
    with pytest.raises(BadOhlcvData, match=column):
        codec.encode(frame)


def test_encoder_refuses_nan_change_after_the_first_row():
    frame = make_frame(4)
    frame.iloc[2, frame.columns.get_loc("Change")] = np.nan
    with pytest.raises(BadOhlcvData, match="Change"):
        codec.encode(frame)


def test_change_may_be_a_number_on_the_first_row():
    """A period value starts with the real return from the session before it."""
    frame = make_frame(10).iloc[3:]
    assert not np.isnan(frame["Change"].iloc[0])
    pd.testing.assert_frame_equal(codec.decode(codec.encode(frame)), frame)


# -- properties ---------------------------------------------------------------------------------

FIRST_DAY, LAST_DAY = -25_567, 84_005


@st.composite
def frames(draw) -> pd.DataFrame:
    """Any series the rules allow: 1-40 rows, increasing dates in range, int32/int64/float prices."""
    rows = draw(st.integers(1, 40))
    days = sorted(draw(st.sets(st.integers(FIRST_DAY, LAST_DAY), min_size=rows, max_size=rows)))
    columns = {}
    for name in ("Open", "High", "Low", "Close", "Volume"):
        kind = draw(st.sampled_from(["int32", "int64", "float64"]))
        elements = st.floats(-1e300, 1e300, allow_nan=False) if kind == "float64" else None
        values = draw(hnp.arrays(np.dtype(kind), rows, elements=elements))
        columns[name] = values.astype("int64") if kind != "float64" else values
    change = draw(hnp.arrays(np.float64, rows, elements=st.floats(-1, 10, allow_nan=False)))
    if draw(st.booleans()):
        change[0] = np.nan
    columns["Change"] = change
    dates = (np.array(days, dtype="int64") * 86_400 * 10**9).astype("datetime64[ns]")
    return pd.DataFrame(columns, index=pd.DatetimeIndex(dates, name="Date"))


@settings(max_examples=150, deadline=None)
@given(frames())
def test_every_allowed_series_round_trips(frame):
    blob = codec.encode(frame, "synthetic")
    decoded = codec.decode(blob)
    for name in codec.VALUE_COLUMNS:
        if frame[name].dtype.kind == "f" and name != "Change" and decoded[name].dtype.kind == "i":
            decoded[name] = decoded[name].astype("float64")  # whole-number floats come back as integers
    pd.testing.assert_frame_equal(decoded, frame)
    assert msgpack.unpackb(blob)["rows"] == len(frame) >= 1


MSGPACK_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FIELDS = st.sampled_from(["format", "version", "rows", "source", "columns", "dtypes", "data"])


def _byte_damaged(position: int, value: int, cut: int) -> bytes:
    """A 4-row value with one byte set to ``value``, and every third case also cut short."""
    blob = bytearray(codec.encode(make_frame(4), "synthetic"))
    blob[position % len(blob)] = value
    return bytes(blob[: len(blob) - cut % len(blob)] if cut % 3 == 0 else blob)


def _replaced(field: str, position: int | None, value) -> bytes:
    """A 4-row value with ``field`` (or its item at ``position``) replaced by ``value``."""
    doc = _doc(4)
    if position is not None and isinstance(doc[field], list):
        doc[field][position] = value
    else:
        doc[field] = value
    return msgpack.packb(doc)


@settings(max_examples=300, deadline=None)
@given(field=FIELDS, position=st.integers(0, 6) | st.none(), value=MSGPACK_VALUES)
def test_any_field_replaced_by_anything_decodes_or_raises_bad_ohlcv_data(field, position, value):
    with contextlib.suppress(BadOhlcvData):
        codec.decode(_replaced(field, position, value))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_any_bytes_decode_or_raise_bad_ohlcv_data(blob):
    with contextlib.suppress(BadOhlcvData):
        codec.decode(blob)


@settings(max_examples=300, deadline=None)
@given(
    position=st.integers(0, 10_000),
    value=st.integers(0, 255),
    cut=st.integers(0, 10_000),
)
def test_a_damaged_value_decodes_or_raises_bad_ohlcv_data(position, value, cut):
    """Flip one byte or cut the value short: never another exception, never a wrapped date."""
    damaged = _byte_damaged(position, value, cut)
    try:
        decoded = codec.decode(damaged)
    except BadOhlcvData:
        return
    assert len(decoded) >= 1
    assert decoded.index[0] >= pd.Timestamp("1900-01-01")
    assert decoded.index[-1] <= pd.Timestamp("2199-12-31")
    assert decoded.index.is_monotonic_increasing
    assert decoded.index.is_unique


def _layout_agrees_with_decode(blob: bytes) -> None:
    """``layout`` raises only ``BadOhlcvData``; where it locates the last date and the value has
    the length it describes, that date is the one ``decode`` finds (no false alarm, no miss)."""
    try:
        found = codec.layout(blob[: codec.PROBE_BYTES])
    except BadOhlcvData:
        with pytest.raises(BadOhlcvData):
            codec.decode(blob)
        return
    try:
        last = codec.last_date(blob)
    except BadOhlcvData:
        return  # a damaged column: check_series finds it by its length, or by decoding it whole
    if found is not None and found.length == len(blob):
        assert codec.day_at(blob[found.last_day_at : found.last_day_at + 4]) == last


@settings(max_examples=200, deadline=None)
@given(frames(), st.text(max_size=600))
def test_layout_locates_the_last_date_of_every_allowed_series(frame, source):
    blob = codec.encode(frame, source)
    found = codec.layout(blob[: codec.PROBE_BYTES])
    if found is not None:  # None only when a long source label pushes the columns past the probe
        assert found.length == len(blob)
        assert codec.day_at(blob[found.last_day_at : found.last_day_at + 4]) == frame.index[-1].date()
    else:
        assert len(source.encode()) > codec.PROBE_BYTES - 120


@settings(max_examples=300, deadline=None)
@given(field=FIELDS, position=st.integers(0, 6) | st.none(), value=MSGPACK_VALUES)
def test_layout_of_any_field_replaced_by_anything_agrees_with_decode(field, position, value):
    _layout_agrees_with_decode(_replaced(field, position, value))


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, 10_000), value=st.integers(0, 255), cut=st.integers(0, 10_000))
def test_layout_of_a_damaged_value_agrees_with_decode(position, value, cut):
    _layout_agrees_with_decode(_byte_damaged(position, value, cut))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_layout_of_any_bytes_raises_only_bad_ohlcv_data(blob):
    _layout_agrees_with_decode(blob)


def test_the_frame_builder_is_chosen_once_and_falls_back_when_pandas_changes(monkeypatch):
    assert codec._build_frame is codec._frame_from_views  # this pandas: the fast road

    def changed_internals(*args):
        raise AttributeError("BlockManager has no attribute ...")

    monkeypatch.setattr(codec, "_frame_from_views", changed_internals)
    assert codec._choose_frame_builder() is codec._public_frame
    monkeypatch.setattr(codec, "_build_frame", codec._public_frame)
    blob = codec.encode(make_frame(40), "synthetic")
    pd.testing.assert_frame_equal(codec.decode(blob), make_frame(40))
