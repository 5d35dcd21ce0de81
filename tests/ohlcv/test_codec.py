import struct

import msgpack
import numpy as np
import pandas as pd
import pytest

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
    for frame in (make_frame(50), make_frame(50).assign(Close=lambda f: f["Close"] / 3), make_frame(0)):
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
