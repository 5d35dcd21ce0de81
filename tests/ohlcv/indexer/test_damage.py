"""A run finds the series ``ticker:lastUpdateAt`` counts as current but a reader could not use
(unreadable, truncated, ending on another session) and indexes them again the same day;
``status`` lists them by kind."""

from __future__ import annotations

import datetime as dt

import pytest

from ohlcv import cli, codec
from ohlcv.indexer import runner
from ohlcv.settings import Settings
from ohlcv.sources import SyntheticSource
from tests.support import CountingSource

AS_OF = dt.date(2026, 11, 20)
AFTER = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)  # 21:00 KST: the session is final


@pytest.fixture
def current(store):
    """Every ticker of synthetic:3 and KS11 cached through AS_OF and published."""
    runner.run_once(store, SyntheticSource(3), AS_OF, settings=Settings(), run_id="fill", now=AFTER)
    return store


def _damage(store, code: str, how: str) -> None:
    key = store.keys.series(code)
    blob = store.client.get(key)
    if how == "garbage":
        store.client.set(key, b"garbage")
    elif how == "truncated":
        store.client.set(key, blob[: len(blob) - 100])
    elif how == "header":
        store.client.set(key, blob.replace(b"OHLCV_STR", b"OHLCV_XYZ", 1))
    elif how == "shorter":  # an older value under a newer entry: a restore, or a hand edit
        frame = codec.decode(blob)
        store.client.set(key, codec.encode(frame.iloc[:-3], "synthetic"))


@pytest.mark.parametrize("how", ["garbage", "truncated", "header", "shorter"])
def test_a_damaged_current_series_is_indexed_again_the_same_day(current, how, caplog):
    _damage(current, "000200", how)
    vendor = CountingSource(3)
    outcome = runner.run_once(current, vendor, AS_OF, settings=Settings(), run_id="same-day", now=AFTER)
    assert outcome.record["state"] == "success"
    assert outcome.record["damaged"] == 1
    kind = "mismatched" if how == "shorter" else "unreadable"
    assert f"000200 counted as current but {kind}" in caplog.text
    frame = codec.decode(current.client.get("ticker:000200"))
    assert frame.index[-1].date() == AS_OF
    assert frame.equals(codec.decode(codec.encode(SyntheticSource(3).history("000200", None, AS_OF), "synthetic")))
    assert current.client.hget("ticker:lastUpdateAt", "000200") == AS_OF.isoformat().encode()
    if kind == "unreadable":
        assert vendor.asked.count("000200") == 1  # its whole history again
        assert current.client.exists("ohlcv:unreadable:000200")  # the damaged bytes are kept a while
    assert {"000100", "000300", "KS11"}.isdisjoint(vendor.asked)  # the sound ones cost nothing


def test_a_sound_cache_is_checked_without_a_vendor_call_or_a_change(current):
    before = {key: current.client.dump(key) for key in current.client.keys("ticker:*")}
    vendor = CountingSource(3)
    runner.run_once(current, vendor, AS_OF, settings=Settings(), run_id="again", now=AFTER)
    assert [ask for ask in vendor.asked if not isinstance(ask, tuple)] == []
    assert {key: current.client.dump(key) for key in current.client.keys("ticker:*")} == before


def test_check_series_names_each_kind_with_its_reason(current):
    entries = {code: AS_OF for code in ("000100", "000200", "000300", "KS11")}
    _damage(current, "000100", "truncated")
    _damage(current, "000300", "shorter")
    current.client.delete("ticker:KS11")
    found = current.check_series(entries)
    assert set(found) == {"000100", "000300", "KS11"}
    assert found["000100"].kind == "unreadable"
    assert "truncated" in found["000100"].reason
    assert found["000300"].kind == "mismatched"
    assert found["000300"].ends == dt.date(2026, 11, 17)
    assert "ticker:000300 ends on 2026-11-17, ticker:lastUpdateAt says 2026-11-20" in found["000300"].reason
    assert found["KS11"].kind == "missing"


def test_a_value_another_writer_laid_out_differently_is_decoded_not_flagged(current):
    import msgpack

    doc = msgpack.unpackb(current.client.get("ticker:000100"), raw=False)
    reordered = {"data": doc.pop("data"), **doc, "note": "written by another tool"}
    current.client.set("ticker:000100", msgpack.packb(reordered, use_bin_type=True))
    assert current.check_series({"000100": AS_OF}) == {}


def test_an_entry_a_writer_changed_since_the_check_is_not_corrected(current):
    _damage(current, "000200", "shorter")
    entries = {"000200": AS_OF}
    found = current.check_series(entries)
    current.client.hset("ticker:lastUpdateAt", "000200", "2026-11-23")  # a cache-aside write came between
    current.correct_last_updates(entries, found)
    assert current.client.hget("ticker:lastUpdateAt", "000200") == b"2026-11-23"


def test_status_lists_unreadable_missing_and_mismatched_series(current, redis_server, capsys):
    _damage(current, "000100", "garbage")
    _damage(current, "000300", "shorter")
    current.client.delete("ticker:000200")
    assert cli.main(["--redis-url", redis_server.url, "status"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "series unreadable         1" in out
    assert "  000100  not an OHLCV_STR value" in out
    assert "series missing            1" in out
    assert "  000200  ticker:000200 does not exist" in out
    assert "series mismatched         1" in out
    assert "  000300  ticker:000300 ends on 2026-11-17, ticker:lastUpdateAt says 2026-11-20" in out
    assert "tickers cached            4" in out
