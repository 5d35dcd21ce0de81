"""Redis under Sentinel, with real servers on loopback (a primary, two replicas, three
Sentinels): writes follow the primary, readers read from fit replicas with client tracking,
a run publishes only what a replica holds, and a killed primary loses no published session."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import threading
import time
from contextlib import contextmanager

import pandas as pd
import pytest
import redis

from ohlcv import cli, codec
from ohlcv.errors import ConfigurationError, ReplicasBehind
from ohlcv.indexer import steps
from ohlcv.indexer.runner import run_once
from ohlcv.keys import KeySpace
from ohlcv.reader import cache as cache_module
from ohlcv.reader.cache import OhlcvCache
from ohlcv.redis_server import ThrowawaySentinels
from ohlcv.settings import Settings
from ohlcv.sources import SyntheticSource, from_spec
from ohlcv.store import OhlcvStore, client_from_url, sentinel
from tests.support import redis_speaks_tls, tls_files, until

AS_OF = dt.date(2026, 11, 20)
BEFORE = dt.date(2026, 11, 19)
CODES = ["000100", "000200", "000300"]


def _store(url: str) -> OhlcvStore:
    return OhlcvStore(client_from_url(url), KeySpace())


def _replica_ports(group: ThrowawaySentinels) -> list[int]:
    primary = group.primary_port()
    return [node.port for node in group.nodes if node.port != primary and node.process.poll() is None]


@contextmanager
def frozen(*nodes):
    """The servers stopped (SIGSTOP: a host that hangs), continued afterwards."""
    for node in nodes:
        os.kill(node.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for node in nodes:
            os.kill(node.process.pid, signal.SIGCONT)


def _lag_of(primary: redis.Redis, port: int) -> int:
    _, replicas = sentinel.replication(primary)
    return next((replica.lag for replica in replicas if replica.address == f"127.0.0.1:{port}"), 10**6)


def assert_consistent(store: OhlcvStore, codes: list[str]) -> dt.date | None:
    """Every series decodes and ends on its ``ticker:lastUpdateAt`` date, every date has its
    series, and the published cut is no later than what any of ``codes`` holds; the cut."""
    last = store.last_updates()
    series = {key.decode().split(":")[1] for key in store.client.scan_iter("ticker:*") if key.count(b":") == 1} - {
        "lastUpdateAt"
    }
    assert series == set(last), "series keys and ticker:lastUpdateAt disagree"
    for code in series:
        columns = codec.decode_columns(store.client.get(store.keys.series(code)))
        assert columns.last_date() == last[code], f"{code}: the series and ticker:lastUpdateAt disagree"
    cut = store.meta().last_update_at
    if cut is not None:
        assert all(last.get(code, dt.date.min) >= cut for code in codes), f"the cut {cut} is ahead of the data"
    return cut


# -- URLs and the connection --------------------------------------------------------------


def test_a_sentinel_url_writes_to_the_primary_and_the_replicas_hold_it(sentinel_group, sentinel_primary):
    client = client_from_url(sentinel_group.url)
    assert sentinel.is_sentinel_client(client)
    client.set("probe", "written")
    assert sentinel_primary.get("probe") == b"written"
    assert sentinel.acknowledged(client, "ohlcv:replication:probe", 2, dt.timedelta(seconds=5)) == 2
    for port in _replica_ports(sentinel_group):
        assert redis.Redis(port=port, password=sentinel_group.password).get("probe") == b"written"


def test_a_sentinel_url_with_a_wrong_service_fails_clearly(sentinel_group):
    url = sentinel_group.url.replace("/ohlcv/0", "/nosuchservice/0")
    began = time.monotonic()
    with pytest.raises(ConfigurationError, match="no Sentinel watches a service named 'nosuchservice'"):
        client_from_url(url).ping()
    assert time.monotonic() - began < 5  # not waited out like a failover


def test_sentinels_with_their_own_password_take_it_from_the_url_and_refuse_a_wrong_one():
    with ThrowawaySentinels(replicas=1, password="node-pw-1", sentinel_password="watch/pw 2") as group:
        assert "sentinel_password=watch%2Fpw%202" in group.url
        client = client_from_url(group.url)
        client.set("x", "1")
        assert client.get("x") == b"1"
        assert all(view["reachable"] for view in sentinel.topology(client)["sentinels"])
        for wrong in (group.url.partition("?")[0], group.url.replace("watch%2Fpw%202", "guess")):
            began = time.monotonic()
            with pytest.raises(ConfigurationError, match="the Sentinels refuse the password"):
                client_from_url(wrong).get("x")
            assert time.monotonic() - began < 5  # at once, not after OHLCV_FAILOVER_WAIT


@pytest.mark.skipif(not redis_speaks_tls(), reason="this redis-server was built without TLS")
def test_rediss_sentinel_speaks_tls_to_the_sentinels_the_primary_and_the_replicas(tmp_path):
    with ThrowawaySentinels(replicas=1, password="node-pw-3", tls=tls_files(tmp_path)) as group:
        url = group.url
        assert url.startswith("rediss+sentinel://")
        store = _store(url)
        run_once(store, SyntheticSource(3), AS_OF, settings=Settings(redis_url=url), run_id="tls")
        assert store.recent_runs(1)[0]["state"] == "success"  # its writes held by the replica (WAIT)
        assert store.meta().last_update_at == AS_OF
        doc = sentinel.topology(store.client)
        assert all(view["reachable"] for view in doc["sentinels"])
        assert [replica["state"] for replica in doc["replicas"]] == ["online"]

        reader = OhlcvCache.from_url(settings=Settings(redis_url=url, read_from="replica"), source=SyntheticSource(3))
        assert sentinel.address_of(reader.read_client) == doc["replicas"][0]["address"]
        expected = SyntheticSource(3).history("000100", None, AS_OF)["Close"].tolist()
        for _ in range(2):  # from the replica, then from the process (tracked over TLS)
            assert reader.get("000100")["Close"].tolist() == expected
        assert reader.tracked.hits >= 1
        assert reader.read_client is not reader.client  # still on the replica: its reads did not fail

        plain = url.replace("rediss+sentinel://", "redis+sentinel://").partition("?")[0]
        with pytest.raises(redis.exceptions.ConnectionError):  # the servers speak nothing but TLS
            client_from_url(plain, failover_wait=0.5).ping()


def test_the_airflow_connection_takes_the_sentinel_form(monkeypatch, sentinel_group, sentinel_primary):
    from ohlcv.airflow.hook import OhlcvRedisHook

    first, *others = [f"127.0.0.1:{node.port}" for node in sentinel_group.sentinels]
    uri = (
        f"redis+sentinel://:{sentinel_group.password}@{first}/ohlcv%2F3"
        f"?sentinels={'%2C'.join(item.replace(':', '%3A') for item in others)}"
    )
    monkeypatch.setenv("AIRFLOW_CONN_OHLCV_REDIS", uri)
    hook = OhlcvRedisHook()
    assert hook.sentinel_spec().sentinels == tuple(("127.0.0.1", node.port) for node in sentinel_group.sentinels)
    client = hook.get_conn()
    assert sentinel.is_sentinel_client(client)
    client.set("probe", "db3")
    assert redis.Redis(port=sentinel_primary.connection_pool.connection_kwargs["port"], db=3,
                       password=sentinel_group.password).get("probe") == b"db3"  # fmt: skip
    sentinel_group.node(sentinel_group.primary_port()).flush()  # db 3 too: the group's own server


def test_status_shows_the_primary_the_replicas_and_their_lag(sentinel_group, sentinel_primary, capsys):
    assert cli.main(["--redis-url", sentinel_group.url, "status"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    primary = f"127.0.0.1:{sentinel_group.primary_port()}"
    assert f"redis primary             {primary} (Sentinel service 'ohlcv': 3 of 3 Sentinels answer)" in out
    for port in _replica_ports(sentinel_group):
        assert f"  replica 127.0.0.1:{port}" in out
    assert out.count(", last acknowledged ") == 2
    assert sentinel_group.password not in out
    assert cli.main(["--redis-url", sentinel_group.url, "status", "--json"]) == cli.EXIT_OK
    doc = json.loads(capsys.readouterr().out)["redis"]
    assert (doc["mode"], doc["primary"], doc["role"]) == ("sentinel", primary, "master")
    assert sorted(replica["address"] for replica in doc["replicas"]) == sorted(
        f"127.0.0.1:{port}" for port in _replica_ports(sentinel_group)
    )
    assert all(replica["state"] == "online" and replica["lag_seconds"] <= 1 for replica in doc["replicas"])
    assert [view["reachable"] for view in doc["sentinels"]] == [True] * 3


def test_status_of_a_single_redis_names_it_and_its_replicas(redis_server, redis_client, capsys):
    assert cli.main(["--redis-url", redis_server.url, "status", "--json"]) == cli.EXIT_OK
    doc = json.loads(capsys.readouterr().out)["redis"]
    assert doc == {"mode": "single", "primary": f"127.0.0.1:{redis_server.port}", "role": "master", "replicas": []}


# -- reads from replicas ------------------------------------------------------------------


def test_readers_read_from_a_replica_and_see_a_repair_once_it_arrives(sentinel_group, sentinel_primary):
    url = sentinel_group.url
    run_once(_store(url), SyntheticSource(3), AS_OF, settings=Settings(redis_url=url), run_id="fill")
    reader = OhlcvCache.from_url(settings=Settings(redis_url=url, read_from="replica"), source=SyntheticSource(3))
    port = int(sentinel.address_of(reader.read_client).rsplit(":", 1)[1])
    assert port in _replica_ports(sentinel_group)
    replica = redis.Redis(port=port, password=sentinel_group.password)
    replica.config_resetstat()
    sentinel_primary.config_resetstat()

    first = reader.get("000100", "2026-01-02", AS_OF)
    assert first["Close"].tolist() == SyntheticSource(3).history("000100", dt.date(2026, 1, 2), AS_OF)["Close"].tolist()
    assert sentinel_primary.wait(2, 5000) == 2  # the period key the read kept is on the replicas
    for _ in range(2):  # the period key, read from the replica, then from the process
        assert reader.get("000100", "2026-01-02", AS_OF).equals(first)
    assert reader.tracked.hits >= 1  # tracked on the replica
    reads = replica.info("commandstats")
    assert reads["cmdstat_mget"]["calls"] >= 1
    primary_reads = sentinel_primary.info("commandstats")
    # the primary only ran the period key's script (whose GET checks the series it was cut from)
    assert not {"cmdstat_mget", "cmdstat_hgetall", "cmdstat_hmget"} & set(primary_reads)

    split = SyntheticSource(3, splits={"000100": (dt.date(2026, 6, 1), 50)})
    writer = _store(url)
    writer.write_series("000100", split.history("000100", None, AS_OF), split.name)
    assert writer.client.wait(2, 5000) == 2  # every replica holds the repair
    repaired = split.history("000100", dt.date(2026, 1, 2), AS_OF)["Close"].tolist()
    assert until(lambda: reader.get("000100", "2026-01-02", AS_OF)["Close"].tolist() == repaired, timeout=2)


def test_only_replicas_within_the_lag_bound_are_read_and_a_failed_one_hands_reads_to_the_primary(monkeypatch, caplog):
    monkeypatch.setattr(cache_module, "REPLICA_CHECK", dt.timedelta(0))  # ask about the replica at every read
    with ThrowawaySentinels(replicas=2) as group:
        url = group.url
        run_once(_store(url), SyntheticSource(3), AS_OF, settings=Settings(redis_url=url), run_id="fill")
        primary = group.node(group.primary_port())
        first, second = (group.node(port) for port in _replica_ports(group))
        settings = Settings(redis_url=url, read_from="replica", replica_max_lag=1)
        expected = SyntheticSource(3).history("000200", None, AS_OF)["Close"].tolist()
        with frozen(first):
            assert until(lambda: _lag_of(primary.client(), first.port) > 1, timeout=10)
            reader = OhlcvCache.from_url(settings=settings, source=SyntheticSource(3))
            assert sentinel.address_of(reader.read_client) == f"127.0.0.1:{second.port}"
            assert reader.get("000200")["Close"].tolist() == expected
            with frozen(second):
                assert until(lambda: _lag_of(primary.client(), second.port) > 1, timeout=10)
                with caplog.at_level(logging.WARNING, logger="ohlcv.reader.cache"):
                    assert reader.get("000200")["Close"].tolist() == expected
                assert reader.read_client is reader.client
                assert "not online within OHLCV_REPLICA_MAX_LAG=1 s" in caplog.text
        assert until(lambda: max(_lag_of(primary.client(), port) for port in (first.port, second.port)) <= 1, 10)
        reader.get("000200")
        assert reader.read_client is not reader.client  # back on a replica once one is fit

        monkeypatch.setattr(cache_module, "REPLICA_CHECK", dt.timedelta(hours=1))
        on = group.node(int(sentinel.address_of(reader.read_client).rsplit(":", 1)[1]))
        on.kill()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ohlcv.reader.cache"):
            assert reader.get("000200", "2026-03-02", AS_OF)["Close"].tolist() == expected[-len(
                SyntheticSource(3).history("000200", dt.date(2026, 3, 2), AS_OF)):]  # fmt: skip
        assert reader.read_client is reader.client
        assert f"the replica 127.0.0.1:{on.port} failed" in caplog.text


def test_a_pinned_read_from_a_replica_keeps_its_period_key_on_the_primary(sentinel_group, sentinel_primary, caplog):
    url = sentinel_group.url
    run_once(_store(url), SyntheticSource(3), AS_OF, settings=Settings(redis_url=url), run_id="fill")
    reader = OhlcvCache.from_url(settings=Settings(redis_url=url, read_from="replica"), source=SyntheticSource(3))
    assert reader.read_client is not reader.client
    revision = reader.revision()
    with caplog.at_level(logging.WARNING, logger="ohlcv.reader.cache"):
        pinned = reader.get("000100", "2026-01-02", AS_OF, revision=revision.id)
    assert pinned["Close"].tolist() == reader.get("000100", "2026-01-02", AS_OF)["Close"].tolist()
    assert "a period key was not kept" not in caplog.text  # not sent to the read-only replica
    assert sentinel_primary.exists(KeySpace().period("000100", "2026-01-02", AS_OF))


@pytest.mark.parametrize("client_cache_mb", [64, 0])
def test_a_hung_replica_holds_a_read_up_once_then_hands_it_to_the_primary(monkeypatch, caplog, client_cache_mb):
    monkeypatch.setattr(sentinel, "REPLICA_READ_TIMEOUT", 1.5)
    with ThrowawaySentinels(replicas=1) as group:
        url = group.url
        run_once(_store(url), SyntheticSource(3), AS_OF, settings=Settings(redis_url=url), run_id="fill")
        settings = Settings(redis_url=url, read_from="replica", client_cache_mb=client_cache_mb)
        reader = OhlcvCache.from_url(settings=settings, source=SyntheticSource(3))
        replica = group.node(int(sentinel.address_of(reader.read_client).rsplit(":", 1)[1]))
        expected = SyntheticSource(3).history("000200", None, AS_OF)["Close"].tolist()
        assert reader.get("000100")["Close"].size
        with frozen(replica), caplog.at_level(logging.WARNING, logger="ohlcv.reader"):
            began = time.monotonic()
            assert reader.get("000200")["Close"].tolist() == expected
            took = time.monotonic() - began
        assert reader.read_client is reader.client
        assert f"the replica 127.0.0.1:{replica.port} failed" in caplog.text
        assert took < 1.5 + 0.9, f"{took:.1f} s: the hung replica was tried again"


def test_a_hung_sentinel_is_passed_over_and_status_says_so():
    with ThrowawaySentinels(replicas=1) as group:
        run_once(_store(group.url), SyntheticSource(3), AS_OF, settings=Settings(redis_url=group.url), run_id="fill")
        hung = group.sentinels[0]
        with frozen(hung):
            began = time.monotonic()
            client = client_from_url(group.url)
            assert client.get(KeySpace().last_update_at) == AS_OF.isoformat().encode()
            doc = sentinel.topology(client)
            took = time.monotonic() - began
        views = {view["address"]: view for view in doc["sentinels"]}
        assert views[f"127.0.0.1:{hung.port}"]["reachable"] is False
        assert sum(view["reachable"] for view in views.values()) == 2
        assert doc["primary"] == f"127.0.0.1:{group.primary_port()}"
        assert took < 3 * sentinel.SENTINEL_TIMEOUTS["socket_timeout"], f"{took:.1f} s: held up by the hung Sentinel"


def test_read_from_replica_without_sentinel_reads_the_one_server(redis_server, redis_client, caplog):
    with caplog.at_level(logging.WARNING, logger="ohlcv.reader.cache"):
        reader = OhlcvCache.from_url(redis_server.url, settings=Settings(read_from="replica"))
    assert reader.read_client is reader.client
    assert "OHLCV_READ_FROM=replica needs a Sentinel URL" in caplog.text


# -- publishing only what a replica holds -------------------------------------------------


def test_a_run_whose_writes_too_few_replicas_hold_does_not_publish(sentinel_group, sentinel_primary):
    url = sentinel_group.url
    store = _store(url)
    run_once(store, SyntheticSource(3), BEFORE, settings=Settings(redis_url=url), run_id="yesterday")
    settings = Settings(redis_url=url, min_replicas=3, replica_ack_timeout=0.3)
    outcome = run_once(store, SyntheticSource(3), AS_OF, settings=settings, run_id="short")
    record = store.recent_runs(1)[0]
    assert record["state"] == "failed"
    assert record["unpublished"].startswith("the run's writes are held by 2 of the 3 replicas required")
    assert "the cut is not published, and stays at 2026-11-19" in record["unpublished"]
    assert not outcome.still_failing  # every ticker was written; only the cut waits
    assert store.meta().last_update_at == BEFORE
    assert store.current_revision().cut == BEFORE
    assert store.last_updates()["000100"] == AS_OF

    # Airflow's retry (the same run id) publishes once a replica holds the writes, and is green
    run_once(store, SyntheticSource(3), AS_OF, settings=Settings(redis_url=url), run_id="short")
    record = store.recent_runs(1)[0]
    assert (record["run_id"], record["state"], record["unpublished"]) == ("short", "success", "")
    assert store.meta().last_update_at == AS_OF


def test_the_cli_says_why_a_run_did_not_publish(monkeypatch, sentinel_group, sentinel_primary, capsys):
    monkeypatch.setenv("OHLCV_MIN_REPLICAS", "5")
    monkeypatch.setenv("OHLCV_REPLICA_ACK_TIMEOUT", "0.2")
    args = ["--redis-url", sentinel_group.url, "index", "--source", "synthetic:3", "--as-of", AS_OF.isoformat()]
    assert cli.main(args) == cli.EXIT_MISSING
    err = capsys.readouterr().err
    assert "error: the run's writes are held by 2 of the 5 replicas required (OHLCV_MIN_REPLICAS) after 0.2 s" in err
    assert _store(sentinel_group.url).meta().last_update_at is None


def test_a_run_publishes_nothing_while_its_replicas_hang_and_the_next_run_does():
    with ThrowawaySentinels(replicas=2) as group:
        url = group.url
        store = _store(url)
        settings = Settings(redis_url=url, replica_ack_timeout=0.5)  # one replica required: the default
        with frozen(*(group.node(port) for port in _replica_ports(group))):
            run_once(store, SyntheticSource(3), AS_OF, settings=settings, run_id="hung")
            assert "held by 0 of the 1 replicas required" in store.recent_runs(1)[0]["unpublished"]
            assert store.meta().last_update_at is None
        run_once(store, SyntheticSource(3), AS_OF, settings=settings, run_id="after")
        assert store.meta().last_update_at == AS_OF


def _losing_publishes(monkeypatch, store: OhlcvStore, lost: int) -> list:
    """Every publish of the cut counted; the first ``lost`` of them taken back, as a failover
    right after it would: the cut and the revision return to what they were before it."""
    publishes, publish = [], OhlcvStore.publish_watermark
    keys = [store.keys.last_update_at, store.keys.revision]

    def counted(self, *args, **kwargs):
        before = dict(zip(keys, self.client.mget(keys), strict=True))
        mark = publish(self, *args, **kwargs)
        publishes.append(mark)
        if len(publishes) <= lost:
            self.client.mset({key: value for key, value in before.items() if value is not None})
        return mark

    monkeypatch.setattr(OhlcvStore, "publish_watermark", counted)
    monkeypatch.setattr(sentinel, "acknowledged", lambda *args: 1)  # every write held by the one replica required
    return publishes


def test_a_publish_taken_back_is_done_again_even_when_the_cut_it_leaves_is_later(monkeypatch, redis_client):
    store = OhlcvStore(redis_client, KeySpace())
    run_once(store, SyntheticSource(3), AS_OF, settings=Settings(), run_id="fill")
    later = dt.date(2026, 11, 23)  # a cut later than the data: the one a publish moving it back replaces
    redis_client.set(store.keys.last_update_at, later.isoformat())
    publishes = _losing_publishes(monkeypatch, store, lost=1)
    mark = steps.publish_cut(store, "synthetic", "KRX", CODES, "back", settings=Settings(min_replicas=1))
    assert len(publishes) == 2
    assert (mark.cut, store.meta().last_update_at) == (AS_OF, AS_OF)
    assert int(redis_client.get(store.keys.revision)) == mark.revision


def test_a_publish_taken_back_every_time_fails_the_run_after_three(monkeypatch, redis_client):
    store = OhlcvStore(redis_client, KeySpace())
    run_once(store, SyntheticSource(3), BEFORE, settings=Settings(), run_id="yesterday")
    run_once(store, SyntheticSource(3), AS_OF, settings=Settings(min_replicas=0), run_id="fill")
    redis_client.set(store.keys.last_update_at, BEFORE.isoformat())
    publishes = _losing_publishes(monkeypatch, store, lost=10)
    lost = "lost in a failover after each of 3 publishes: the primary holds 2026-11-19"
    with pytest.raises(ReplicasBehind, match=lost):
        steps.publish_cut(store, "synthetic", "KRX", CODES, "lost", settings=Settings(min_replicas=1))
    assert len(publishes) == steps.CUT_ATTEMPTS == 3
    assert store.unpublished("lost").startswith("the cut 2026-11-20 was lost")


# -- failover ------------------------------------------------------------------------------


@pytest.mark.parametrize("transaction", [True, False])
def test_a_pipeline_whose_primary_dies_under_it_reaches_the_next_one(monkeypatch, transaction):
    # redis-py's own retry of a pipeline reconnects to the address it had (redis/redis-py#3874)
    with ThrowawaySentinels(replicas=2) as group:
        client = client_from_url(group.url, failover_wait=20)
        client.set("counter", 0)
        assert client.wait(2, 5000) == 2
        old, pool, killed = group.primary_port(), client.connection_pool, []
        taken = pool.get_connection

        def take_then_lose(*args, **kwargs):  # the primary dies between taking a connection and sending
            connection = taken(*args, **kwargs)
            if not killed:
                killed.append(group.kill_primary())
            return connection

        monkeypatch.setattr(pool, "get_connection", take_then_lose)
        began = time.monotonic()
        with client.pipeline(transaction=transaction) as pipe:
            pipe.incr("counter")
            pipe.get("counter")
            assert pipe.execute() == [1, b"1"]
        assert killed
        assert time.monotonic() - began < 10  # the election's time, not the whole wait
        assert group.primary_port() != old


def test_a_hung_primary_is_left_for_the_new_one_and_a_long_wait_outlasts_no_socket(monkeypatch):
    with ThrowawaySentinels(replicas=1) as group:
        # WAIT longer than a connection's read timeout: sent in slices, it ends with a count
        monkeypatch.setitem(sentinel.TIMEOUTS, "socket_timeout", 1)
        monkeypatch.setattr(sentinel, "WAIT_SLICE", dt.timedelta(seconds=0.4))
        quick = client_from_url(group.url, failover_wait=5)
        quick.set("x", 1)
        with frozen(group.node(_replica_ports(group)[0])):
            assert sentinel.acknowledged(quick, "probe", 1, dt.timedelta(seconds=2.5)) == 0
        assert sentinel.acknowledged(quick, "probe", 1, dt.timedelta(seconds=2.5)) == 1
        monkeypatch.undo()

        # a primary whose host hangs (no TCP reset): the command in flight goes to the new
        # primary after the data node's read timeout, not a minute later
        client = client_from_url(group.url)
        client.set("x", 1)
        old = group.primary_port()
        with frozen(group.node(old)):
            began = time.monotonic()
            assert client.incr("x") == 2
            took = time.monotonic() - began
            assert group.primary_port() != old
        assert took < sentinel.TIMEOUTS["socket_timeout"] + 5, f"{took:.1f} s on the hung primary"


@pytest.mark.parametrize("moment", ["writes", "publish"])
def test_a_run_finishes_on_the_new_primary_and_loses_no_published_session(monkeypatch, caplog, moment):
    codes = SyntheticSource(12).list_universe("KRX")
    with ThrowawaySentinels(replicas=2) as group:
        url, settings = group.url, Settings(redis_url=group.url)
        store = _store(url)
        run_once(store, SyntheticSource(12), BEFORE, settings=settings, run_id="yesterday")
        old = group.primary_port()
        if moment == "writes":  # a quarter of the way through the ticker writes
            killer = threading.Timer(0.5, group.kill_primary)
            killer.start()
        else:  # the new cut is written where no replica can receive it, then the primary dies
            publish, killed = OhlcvStore.publish_watermark, []

            def publish_then_die(self, *args, **kwargs):
                if killed:
                    return publish(self, *args, **kwargs)
                replicas = [group.node(port) for port in _replica_ports(group)]
                with frozen(*replicas):  # cut off from the primary before the cut, so it never reaches them
                    redis.Redis(port=old, password=group.password).client_kill_filter(_type="replica")
                    mark = publish(self, *args, **kwargs)
                    killed.append(group.kill_primary())
                return mark

            monkeypatch.setattr(OhlcvStore, "publish_watermark", publish_then_die)
        began = time.monotonic()
        outcome = run_once(
            store, from_spec("synthetic:12?latency=0.15"), AS_OF, settings=settings, run_id="during", full_refresh=True
        )
        if moment == "writes":
            killer.join()
        monkeypatch.undo()
        assert group.primary_port() != old
        assert time.monotonic() - began < settings.failover_wait
        assert not outcome.still_failing
        survivor = OhlcvStore(redis.Redis(port=group.primary_port(), password=group.password), KeySpace())
        assert survivor.recent_runs(1)[0]["run_id"] == "during"
        assert survivor.recent_runs(1)[0]["state"] == "success"
        assert assert_consistent(survivor, codes) == AS_OF  # the session the run published is kept
        assert not survivor.client.exists(survivor.keys.run_lock)
        if moment == "publish":
            assert killed
            assert "was lost in a failover (the primary holds 2026-11-19, revision" in caplog.text

        run_once(store, SyntheticSource(12), AS_OF, settings=settings, run_id="next")
        assert store.recent_runs(1)[0]["state"] == "success"
        assert assert_consistent(survivor, codes) == AS_OF


def test_a_run_that_cannot_wait_out_the_failover_fails_clearly_and_its_retry_finishes(caplog):
    codes = SyntheticSource(12).list_universe("KRX")
    with ThrowawaySentinels(replicas=2) as group:
        settings = Settings(redis_url=group.url, failover_wait=0.3)  # shorter than the election
        store = OhlcvStore(client_from_url(group.url, failover_wait=settings.failover_wait), KeySpace())
        run_once(store, SyntheticSource(12), BEFORE, settings=settings, run_id="yesterday")
        old = group.primary_port()
        killer = threading.Timer(0.5, group.kill_primary)
        killer.start()
        with pytest.raises(redis.exceptions.ConnectionError):
            run_once(store, from_spec("synthetic:12?latency=0.15"), AS_OF, settings=settings, run_id="during",
                     full_refresh=True)  # fmt: skip
        killer.join()
        assert "the run lock could not be released" in caplog.text
        group.wait_for_new_primary(old)
        survivor = OhlcvStore(redis.Redis(port=group.primary_port(), password=group.password), KeySpace())
        assert assert_consistent(survivor, codes) == BEFORE

        run_once(store, SyntheticSource(12), AS_OF, settings=settings, run_id="during")  # Airflow's retry
        assert store.recent_runs(1)[0]["state"] == "success"
        assert assert_consistent(survivor, codes) == AS_OF


def test_readers_see_a_bounded_number_of_errors_then_read_the_new_primary():
    codes = SyntheticSource(12).list_universe("KRX")
    with ThrowawaySentinels(replicas=2) as group:
        url = group.url
        run_once(_store(url), SyntheticSource(12), AS_OF, settings=Settings(redis_url=url), run_id="fill")
        expected = {code: SyntheticSource(12).history(code, dt.date(2026, 6, 1), AS_OF)["Close"].tolist()
                    for code in codes}  # fmt: skip
        readers = {
            where: OhlcvCache.from_url(
                settings=Settings(redis_url=url, read_from=where, client_cache_mb=0), source=SyntheticSource(12)
            )
            for where in ("primary", "replica")
        }
        seen: dict[str, list] = {where: [] for where in readers}
        stop = threading.Event()

        def read(where: str) -> None:
            while not stop.is_set():
                began = time.monotonic()
                try:
                    frames = readers[where].get_many(codes, "2026-06-01", AS_OF)
                    ok = all(frames[code]["Close"].tolist() == expected[code] for code in codes)
                    seen[where].append((began, "ok" if ok else "wrong"))
                except Exception as exc:  # counted: what a forward test would see
                    seen[where].append((began, type(exc).__name__))
                time.sleep(0.02)

        threads = [threading.Thread(target=read, args=(where,)) for where in readers]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        old, killed_at = group.primary_port(), time.monotonic()
        group.kill_primary()
        group.wait_for_new_primary(old)
        time.sleep(2.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        for where, outcomes in seen.items():
            assert "wrong" not in [kind for _, kind in outcomes], f"{where}: a read returned wrong data"
            errors = [began for began, kind in outcomes if kind != "ok"]
            assert len(errors) <= 3, f"{where}: {len(errors)} reads failed"
            assert all(began - killed_at < 10 for began in errors)
            assert outcomes[-1][1] == "ok"
            assert outcomes[-1][0] > killed_at
        assert not [kind for _, kind in seen["replica"] if kind != "ok"]  # a replica reader reads on


def test_settled_groups_start_with_their_replicas_online():
    # the deployment the failover tests rely on: every replica online before the test begins
    with ThrowawaySentinels(replicas=1, password="pw-xyz-123") as group:
        doc = sentinel.topology(client_from_url(group.url))
        assert [replica["state"] for replica in doc["replicas"]] == ["online"]
        assert pd.Series([view["primary"] for view in doc["sentinels"]]).nunique() == 1
