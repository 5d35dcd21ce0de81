"""The store against the session's real redis-server."""

import datetime as dt

import pandas as pd
import pytest
import redis

from ohlcv import codec
from ohlcv.errors import InvalidTicker
from ohlcv.keys import KeySpace
from ohlcv.settings import Settings
from ohlcv.sources import SyntheticSource
from ohlcv.status import Status
from ohlcv.store import OhlcvStore, RunLocked, client_from_url
from tests.support import keep_period

SOURCE = SyntheticSource(5)


def series(code: str, end: dt.date) -> pd.DataFrame:
    return SOURCE.history(code, None, end)


def test_series_and_last_update_are_written_together(store, redis_client):
    frame = series("000100", dt.date(2026, 11, 20))
    outcome = store.write_series("000100", frame, "synthetic")
    assert outcome.status == Status.WRITTEN
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
    assert outcome.status == Status.UNCHANGED
    assert outcome.last_date == dt.date(2026, 11, 20)
    assert redis_client.get("ticker:000100") == before
    assert redis_client.hget("ticker:lastUpdateAt", "000100") == b"2026-11-20"


def test_last_updates_reads_many_codes_at_once(store):
    store.write_series("000100", series("000100", dt.date(2026, 11, 20)), "synthetic")
    assert store.state_of(["000100", "000200"])[0] == {"000100": dt.date(2026, 11, 20), "000200": None}
    assert store.state_of([])[0] == {}


def test_prefix_keeps_two_environments_apart(redis_client):
    staging = OhlcvStore(redis_client, KeySpace("staging:"))
    staging.write_series("KS11", series("KS11", dt.date(2026, 11, 20)), "synthetic")
    assert set(redis_client.keys("*")) == {b"staging:ticker:KS11", b"staging:ticker:lastUpdateAt"}
    assert OhlcvStore(redis_client, KeySpace()).read_series("KS11") is None


def test_run_lock_admits_one_run_at_a_time(store, redis_client):
    first = store.begin_run()
    assert redis_client.get("getOHLCV_isUpdating") == b"1"
    assert not first.found_dead_run
    with pytest.raises(RunLocked, match="another indexer run"):
        store.begin_run()
    assert not store.release_run("not-the-token")
    assert redis_client.get("getOHLCV_isUpdating") == b"1"
    assert store.release_run(first.token)
    assert redis_client.get("getOHLCV_isUpdating") == b"0"
    assert redis_client.exists("ohlcv:lock:run") == 0


def test_a_run_that_died_holds_the_lock_no_longer_than_its_ttl_and_leaves_the_flag_at_1_not_missing(
    store, redis_client
):
    store.begin_run("first-run")
    store.publish(dt.date(2026, 11, 19), 3)
    store.release_run("first-run")
    store.begin_run("run-that-dies", ttl=dt.timedelta(minutes=30))
    redis_client.delete("ohlcv:lock:run")  # the lock's expiry, 30 minutes after the run's last task
    assert redis_client.get("getOHLCV_isUpdating") == b"1"  # present: an old reader's int(GET) works
    second = store.begin_run("next-run")
    assert second.found_dead_run  # the next run says what it found
    assert store.release_run("next-run")
    assert redis_client.get("getOHLCV_isUpdating") == b"0"
    assert not store.begin_run("third-run").found_dead_run


def test_a_dead_run_s_flag_reads_as_0_and_is_cleared_as_soon_as_its_lock_has_expired(store, redis_client):
    store.begin_run("run-that-dies")
    assert store.meta().is_updating
    redis_client.delete("ohlcv:lock:run")
    assert not store.meta().is_updating
    assert redis_client.get("getOHLCV_isUpdating") == b"0"


def test_a_flag_left_at_1_by_another_writer_is_reported(store, redis_client):
    redis_client.set("getOHLCV_isUpdating", "1")  # e.g. the original indexer, killed
    assert store.begin_run().found_dead_run


def test_a_retried_start_takes_its_own_lock_again(store):
    store.begin_run("run-1")
    assert store.begin_run("run-1").token == "run-1"
    with pytest.raises(RunLocked):
        store.begin_run("run-2")


def test_extend_run_keeps_the_lock_alive_only_for_its_holder(store, redis_client):
    store.begin_run("run-1", ttl=dt.timedelta(seconds=5))
    assert store.extend_run("run-1", dt.timedelta(minutes=10))
    assert redis_client.pttl("ohlcv:lock:run") > 60_000
    assert redis_client.pttl("getOHLCV_isUpdating") == -1  # the flag itself never expires
    assert not store.extend_run("run-2")


def test_the_published_cut_is_the_newest_session_every_active_ticker_holds(store, redis_client):
    for code, end in (
        ("000100", dt.date(2026, 11, 20)),
        ("000200", dt.date(2026, 11, 19)),
        ("KS11", dt.date(2026, 11, 20)),
    ):
        store.write_series(code, series(code, end), "synthetic")
    store.write_series("000300", series("000300", dt.date(2026, 10, 30)), "synthetic")
    store.mark_inactive("000300", dt.date(2026, 11, 20), "delisted")  # inactive: not waited for
    codes = ["000100", "000200", "000300", "KS11", "000400"]  # 000400 is not cached at all

    mark = store.publish_watermark(codes)

    assert (mark.cut, mark.count, mark.previous, mark.advanced) == (dt.date(2026, 11, 19), 3, None, True)
    assert redis_client.mget("getOHLCV_lastUpdateAt", "getOHLCV_lastUpdateCount") == [b"2026-11-19", b"3"]
    store.write_series("000200", series("000200", dt.date(2026, 11, 20)), "synthetic")
    again = store.publish_watermark(codes)
    assert (again.cut, again.count, again.previous, again.advanced) == (
        dt.date(2026, 11, 20), 3, dt.date(2026, 11, 19), True,
    )  # fmt: skip


def test_the_published_cut_follows_the_cache_backwards_too_never_ahead_of_it(store, redis_client):
    store.publish(dt.date(2026, 11, 20), 51)  # published by an earlier version, ahead of the cache
    store.write_series("000100", series("000100", dt.date(2026, 11, 13)), "synthetic")
    mark = store.publish_watermark(["000100"])
    assert (mark.cut, mark.previous, mark.advanced) == (dt.date(2026, 11, 13), dt.date(2026, 11, 20), False)
    meta = store.meta()
    assert (meta.last_update_at, meta.last_update_count, meta.is_updating) == (dt.date(2026, 11, 13), 1, False)


def test_with_nothing_active_cached_the_published_cut_is_left_alone(store, redis_client):
    store.publish(dt.date(2026, 11, 20), 51)
    mark = store.publish_watermark(["000100"])
    assert (mark.cut, mark.previous, mark.advanced) == (None, dt.date(2026, 11, 20), False)
    assert redis_client.get("getOHLCV_lastUpdateAt") == b"2026-11-20"


def test_client_from_url_uses_the_db_in_the_url(redis_server, redis_client, monkeypatch):
    monkeypatch.setenv("OHLCV_REDIS_URL", redis_server.url.replace("/0", "/4"))
    client_from_url(Settings.from_env().redis_url).set("probe", "1")
    assert redis_client.get("probe") is None
    assert redis.Redis(port=redis_server.port, db=4).get("probe") == b"1"


def test_client_from_url_sends_the_password():
    from ohlcv.redis_server import ThrowawayRedis

    with ThrowawayRedis(password="correct horse") as server:
        assert client_from_url(server.url).ping()
        with pytest.raises(redis.AuthenticationError):
            client_from_url(server.url.replace("correct horse", "wrong")).ping()


def test_two_writers_of_one_ticker_never_lose_each_others_rows(redis_server, redis_client):
    """The indexer and a cache-aside miss write the same ticker at once: both answers survive."""
    import threading

    early = SOURCE.history("000100", None, dt.date(2026, 11, 13))
    late = SOURCE.history("000100", dt.date(2026, 1, 1), dt.date(2026, 11, 20))
    errors = []

    def write(frame):
        try:
            for _ in range(20):
                OhlcvStore(redis_server.client(), KeySpace()).write_series("000100", frame, "synthetic")
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(frame,)) for frame in (early, late, early, late)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    pd.testing.assert_frame_equal(
        codec.decode(redis_client.get("ticker:000100")), SOURCE.history("000100", None, dt.date(2026, 11, 20))
    )
    assert redis_client.hget("ticker:lastUpdateAt", "000100") == b"2026-11-20"


def test_a_concurrent_change_makes_the_writer_merge_again(store, redis_client, monkeypatch):
    """Force a WATCH conflict: another writer appends between our read and our EXEC."""
    import ohlcv.store.series as store_module

    store.write_series("000100", SOURCE.history("000100", None, dt.date(2026, 11, 6)), "synthetic")
    other = OhlcvStore(redis_client, KeySpace())
    real_merge = store_module.merge
    calls = []

    def merge_with_interference(cached, fresh, *provisional):
        calls.append(cached.index[-1].date())
        if len(calls) == 1:  # someone else writes a week more right now
            other.write_series("000100", SOURCE.history("000100", None, dt.date(2026, 11, 13)), "synthetic")
        return real_merge(cached, fresh, *provisional)

    monkeypatch.setattr(store_module, "merge", merge_with_interference)
    outcome = store.write_series(
        "000100", SOURCE.history("000100", dt.date(2026, 11, 16), dt.date(2026, 11, 20)), "synthetic"
    )
    # ours, the interfering writer's, then ours again on top of the newer cache
    assert calls == [dt.date(2026, 11, 6), dt.date(2026, 11, 6), dt.date(2026, 11, 13)]
    assert outcome.last_date == dt.date(2026, 11, 20)
    cached = store.read_series("000100")
    pd.testing.assert_frame_equal(cached, SOURCE.history("000100", None, dt.date(2026, 11, 20)))


def test_period_keys_are_registered_and_expire(store, redis_client):
    store.write_series("000100", SOURCE.history("000100", None, dt.date(2026, 11, 20)), "synthetic")
    key = keep_period(store, "000100", "2026-1-2", "2026-6-30", dt.timedelta(hours=1))
    assert key == "ticker:000100:2026-01-02:2026-06-30"
    assert redis_client.smembers("ohlcv:periods:000100") == {key.encode()}
    assert 0 < redis_client.pttl(key) <= 3_600_000


def test_a_series_key_that_vanished_is_not_cached_even_if_the_hash_says_so(store, redis_client):
    store.write_series("000100", SOURCE.history("000100", None, dt.date(2026, 11, 20)), "synthetic")
    redis_client.delete("ticker:000100")  # evicted or deleted by hand
    last, _ = store.state_of(["000100"])
    assert last == {"000100": None}


def test_last_updates_ignores_a_hash_entry_whose_series_vanished(store, redis_client):
    store.write_series("000100", SOURCE.history("000100", None, dt.date(2026, 11, 20)), "synthetic")
    redis_client.delete("ticker:000100")
    assert store.state_of(["000100"])[0] == {"000100": None}


def test_a_runs_results_keep_the_last_answer_per_ticker_and_expire(store, redis_client):
    store.record_failure("000100", dt.date(2026, 11, 20), "SourceUnavailable: timeout")
    store.record_result("manual__1", "000100", "fresh")
    assert store.failures(["000100"]) == {}  # a result clears the ticker's failure
    store.record_result("manual__1", "000100", "written", rows_written=7)  # the same ticker, run again
    store.record_result("manual__1", "000200", "no_data")
    store.record_result("manual__2", "000300", "written", rows_written=3)

    assert store.run_results("manual__1") == {"000100": "written", "000200": "no_data"}
    assert store.run_metrics("manual__1")["rows_written"] == 7
    assert store.run_results("manual__3") == {}
    assert 0 < redis_client.ttl("ohlcv:run:manual__1:results") <= 2 * 86400
    with pytest.raises(InvalidTicker):
        store.record_result("manual__1", "bad:key", "written")


# the old job's pandas JSON dates rows in epoch milliseconds, a format pandas now deprecates
@pytest.mark.filterwarnings("ignore:'epoch' date format is deprecated")
def test_a_value_that_cannot_be_read_is_replaced_by_the_vendor_s_history_and_kept_aside(store, redis_client):
    legacy = series("000300", dt.date(2026, 11, 13)).to_json(date_format="epoch").encode()  # the old job's value
    redis_client.set("ticker:000300", legacy)
    redis_client.sadd("ohlcv:periods:000300", "ticker:000300:2026-01-02:2026-06-30")
    redis_client.set("ticker:000300:2026-01-02:2026-06-30", b"sliced from the old value")
    fresh = series("000300", dt.date(2026, 11, 20))

    outcome = store.write_series("000300", fresh, "synthetic")

    assert outcome.status == Status.REPAIRED
    assert outcome.unreadable.startswith("the old job's pandas JSON (not an OHLCV_STR value")
    pd.testing.assert_frame_equal(codec.decode(redis_client.get("ticker:000300")), fresh)
    assert redis_client.get("ohlcv:unreadable:000300") == legacy
    assert 29 * 86_400 < redis_client.ttl("ohlcv:unreadable:000300") <= 30 * 86_400
    assert redis_client.exists("ticker:000300:2026-01-02:2026-06-30") == 0  # slices of it go too


def test_an_optimistic_transaction_runs_again_on_what_changed_and_gives_up_in_the_end(redis_server, redis_client):
    from ohlcv.errors import OhlcvError
    from ohlcv.store.base import WRITE_ATTEMPTS, optimistic

    other, runs = redis_server.client(), []

    def attempt(pipe, changes=2):
        runs.append(pipe.get("counted"))
        if len(runs) <= changes:
            other.incr("counted")  # another client writes between the read and the EXEC
        pipe.multi()
        pipe.set("result", f"after {len(runs)} runs")
        pipe.execute()
        return len(runs)

    assert optimistic(redis_client, ["counted"], attempt, "gave up") == 3
    assert runs == [None, b"1", b"2"]  # each run read what the other client had written
    runs.clear()
    with pytest.raises(OhlcvError, match="gave up"):
        optimistic(redis_client, ["counted"], lambda pipe: attempt(pipe, changes=99), "gave up")
    assert len(runs) == WRITE_ATTEMPTS
