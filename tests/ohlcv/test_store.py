"""The store against the session's real redis-server."""

import datetime as dt
import time

import pandas as pd
import pytest
import redis

from ohlcv import codec
from ohlcv.keys import KeySpace
from ohlcv.sources import SyntheticSource
from ohlcv.store import OhlcvStore, RunLocked, client_from_url

SOURCE = SyntheticSource(5)


def series(code: str, end: dt.date) -> pd.DataFrame:
    return SOURCE.history(code, None, end)


def test_series_and_last_update_are_written_together(store, redis_client):
    frame = series("000100", dt.date(2026, 11, 20))
    outcome = store.write_series("000100", frame, "synthetic")
    assert outcome.written
    assert outcome.rows == len(frame)
    assert outcome.last_date == dt.date(2026, 11, 20)
    pd.testing.assert_frame_equal(codec.decode(redis_client.get("ticker:000100")), frame)
    assert redis_client.hget("ticker:lastUpdateAt", "000100") == b"2026-11-20"
    assert set(redis_client.keys("*")) == {b"ticker:000100", b"ticker:lastUpdateAt"}


def test_read_series_returns_what_was_written_or_none(store):
    assert store.read_series("000200") is None
    frame = series("000200", dt.date(2026, 11, 20))
    store.write_series("000200", frame, "synthetic")
    pd.testing.assert_frame_equal(store.read_series("000200"), frame)


def test_an_older_series_never_replaces_a_newer_one(store, redis_client):
    store.write_series("000100", series("000100", dt.date(2026, 11, 20)), "synthetic")
    before = redis_client.get("ticker:000100")
    outcome = store.write_series("000100", series("000100", dt.date(2026, 6, 30)), "synthetic")
    assert not outcome.written
    assert outcome.last_date == dt.date(2026, 11, 20)
    assert redis_client.get("ticker:000100") == before
    assert redis_client.hget("ticker:lastUpdateAt", "000100") == b"2026-11-20"


def test_last_updates_reads_many_codes_at_once(store):
    store.write_series("000100", series("000100", dt.date(2026, 11, 20)), "synthetic")
    assert store.last_updates(["000100", "000200"]) == {"000100": dt.date(2026, 11, 20), "000200": None}
    assert store.last_updates([]) == {}


def test_prefix_keeps_two_environments_apart(redis_client):
    staging = OhlcvStore(redis_client, KeySpace("staging:"))
    staging.write_series("KS11", series("KS11", dt.date(2026, 11, 20)), "synthetic")
    assert set(redis_client.keys("*")) == {b"staging:ticker:KS11", b"staging:ticker:lastUpdateAt"}
    assert OhlcvStore(redis_client, KeySpace()).read_series("KS11") is None


def test_run_lock_admits_one_run_at_a_time(store, redis_client):
    first = store.begin_run()
    assert redis_client.get("getOHLCV_isUpdating") == b"1"
    assert not first.found_stale_flag
    with pytest.raises(RunLocked, match="another indexer run"):
        store.begin_run()
    assert not store.release_run("not-the-token")
    assert redis_client.get("getOHLCV_isUpdating") == b"1"
    assert store.release_run(first.token)
    assert redis_client.get("getOHLCV_isUpdating") == b"0"
    assert redis_client.exists("ohlcv:lock:run") == 0


def test_a_run_that_died_cannot_hold_the_lock_forever(store):
    store.begin_run(ttl=dt.timedelta(milliseconds=200))
    time.sleep(0.3)
    second = store.begin_run()
    assert second.found_stale_flag  # the flag was still 1: the next run says so


def test_meta_keys_never_move_backwards(store, redis_client):
    assert store.publish_run(dt.date(2026, 11, 20), 51)
    assert not store.publish_run(dt.date(2026, 11, 13), 40)  # a backfill of an older date
    assert redis_client.mget("getOHLCV_lastUpdateAt", "getOHLCV_lastUpdateCount") == [b"2026-11-20", b"51"]
    assert store.publish_run(dt.date(2026, 11, 20), 52)
    meta = store.meta()
    assert (meta.last_update_at, meta.last_update_count, meta.is_updating) == (dt.date(2026, 11, 20), 52, False)


def test_client_from_url_uses_the_db_in_the_url(redis_server, redis_client, monkeypatch):
    monkeypatch.setenv("OHLCV_REDIS_URL", redis_server.url.replace("/0", "/4"))
    client_from_url().set("probe", "1")
    assert redis_client.get("probe") is None
    assert redis.Redis(port=redis_server.port, db=4).get("probe") == b"1"


def test_client_from_url_sends_the_password():
    from ohlcv.redis_server import ThrowawayRedis

    with ThrowawayRedis(password="correct horse") as server:
        assert client_from_url(server.url).ping()
        with pytest.raises(redis.AuthenticationError):
            client_from_url(server.url.replace("correct horse", "wrong")).ping()
