"""Client-side caching that Redis invalidates (ohlcv.reader.tracking), against the session's redis-server."""

import datetime as dt
import logging
import time

import pandas as pd
import pytest
import redis

from ohlcv import OhlcvCache, codec
from ohlcv.errors import ConfigurationError
from ohlcv.reader.tracking import TrackedReads
from ohlcv.settings import Settings
from ohlcv.sources import SyntheticSource

AS_OF = dt.date(2026, 11, 20)


def expired(client, key: str) -> bool:
    deadline = time.monotonic() + 5
    while client.exists(key) and time.monotonic() < deadline:  # EXISTS expires it once its time is up
        time.sleep(0.001)
    return True


def mget_calls(client) -> int:
    return int(client.info("commandstats").get("cmdstat_mget", {}).get("calls", 0))


def test_a_repeated_read_makes_no_round_trip(redis_client):
    redis_client.set("a", b"1")
    tracked = TrackedReads(redis_client, 2**20)
    assert tracked.get("a") == b"1"
    before = mget_calls(redis_client)
    assert [tracked.get("a") for _ in range(5)] == [b"1"] * 5
    assert mget_calls(redis_client) == before
    assert (tracked.hits, tracked.misses) == (5, 1)


@pytest.mark.parametrize(
    "change",
    [
        lambda client: client.set("a", b"2"),
        lambda client: client.delete("a"),
        lambda client: client.flushdb(),
        lambda client: client.pexpire("a", 1) and expired(client, "a"),
    ],
    ids=["written", "deleted", "flushed", "expired"],
)
def test_a_value_changed_by_another_client_is_never_served_stale(redis_client, change):
    redis_client.set("a", b"1")
    tracked = TrackedReads(redis_client, 2**20)
    assert tracked.get("a") == b"1"
    change(redis_client)
    assert tracked.get("a") == redis_client.get("a")


def test_after_the_indexer_writes_a_series_the_next_read_returns_it(store, redis_client):
    source = SyntheticSource(3)
    store.write_series("000100", source.history("000100", None, dt.date(2026, 11, 19)), source.name)
    store.publish(dt.date(2026, 11, 19), 1)
    cache = OhlcvCache(redis_client, source, settings=Settings(client_cache_mb=16))
    assert cache.get("000100").index[-1] == pd.Timestamp("2026-11-19")
    assert cache.get("000100").index[-1] == pd.Timestamp("2026-11-19")  # served from the process
    assert cache.tracked.hits >= 1
    store.write_series("000100", source.history("000100", None, AS_OF), source.name)  # the indexer
    store.publish(AS_OF, 1)
    cache.refresh()
    got = cache.get("000100")
    pd.testing.assert_frame_equal(got, codec.decode(redis_client.get("ticker:000100")))
    assert got.index[-1] == pd.Timestamp(AS_OF)


def test_memory_is_bounded_least_recently_used_first(redis_client):
    for name in "abc":
        redis_client.set(name, name.encode() * 400)
    tracked = TrackedReads(redis_client, 1_000)
    tracked.mget(["a", "b"])
    tracked.get("a")  # b is now the least recently used
    tracked.get("c")
    assert set(tracked._values) == {b"a", b"c"}
    assert tracked._size <= 1_000


def test_it_can_be_turned_off(redis_client, monkeypatch):
    monkeypatch.setenv("OHLCV_CLIENT_CACHE", "0")
    assert OhlcvCache(redis_client).tracked is None
    monkeypatch.setenv("OHLCV_CLIENT_CACHE", "64")
    assert OhlcvCache(redis_client).tracked.max_bytes == 64 * 2**20
    assert OhlcvCache(redis_client, settings=Settings(client_cache_mb=0)).tracked is None
    monkeypatch.setenv("OHLCV_CLIENT_CACHE", "lots")
    with pytest.raises(ConfigurationError, match="OHLCV_CLIENT_CACHE"):
        OhlcvCache(redis_client)


def test_a_user_without_tracking_permissions_reads_through_redis_after_one_warning(redis_server, redis_client, caplog):
    redis_client.set("a", b"1")
    redis_client.acl_setuser(
        "plain", enabled=True, passwords=["+pw"], commands=["+@read", "+@connection", "-client"], keys=["*"]
    )
    try:
        user = redis.Redis(port=redis_server.port, username="plain", password="pw")
        tracked = TrackedReads(user, 2**20)
        with caplog.at_level(logging.WARNING, logger="ohlcv.reader.tracking"):
            assert [tracked.get("a") for _ in range(3)] == [b"1"] * 3
        assert caplog.text.count("every read goes to Redis") == 1
        redis_client.set("a", b"2")
        assert tracked.get("a") == b"2"
    finally:
        redis_client.acl_deluser("plain")


def test_a_lost_connection_forgets_everything_and_tracks_again(redis_client):
    redis_client.set("a", b"1")
    tracked = TrackedReads(redis_client, 2**20)
    assert tracked.get("a") == b"1"
    redis_client.client_kill_filter(_type="pubsub")  # the invalidation channel is gone
    redis_client.set("a", b"2")
    assert tracked.get("a") == b"2"
    redis_client.set("a", b"3")
    assert tracked.get("a") == b"3"


def test_a_forked_child_opens_its_own_connections(redis_client):
    import multiprocessing

    redis_client.set("a", b"1")
    tracked = TrackedReads(redis_client, 2**20)
    assert tracked.get("a") == b"1"
    redis_client.set("a", b"2")
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=lambda: sending.send(tracked.get("a")))
    child.start()
    assert receiving.recv() == b"2"
    child.join()
    assert child.exitcode == 0
    assert tracked.get("a") == b"2"  # the parent's connections still work
