"""OhlcvRedisHook: connection URIs read correctly, checked against real redis-servers."""

import pytest
import redis

from ohlcv.airflow.hook import OhlcvRedisHook, parse_bool, parse_db
from ohlcv.errors import ConfigurationError
from ohlcv.redis_server import ThrowawayRedis, free_port
from tests.support import redis_speaks_tls, tls_files


def hook_for(monkeypatch, uri: str) -> OhlcvRedisHook:
    monkeypatch.setenv("AIRFLOW_CONN_OHLCV_REDIS", uri)
    return OhlcvRedisHook()


def test_default_connection_id_is_ohlcv_redis():
    assert OhlcvRedisHook().redis_conn_id == "ohlcv_redis"
    assert OhlcvRedisHook.default_conn_name == "ohlcv_redis"


def test_db_comes_from_the_uri_path(monkeypatch, redis_server, redis_client):
    hook = hook_for(monkeypatch, f"redis://127.0.0.1:{redis_server.port}/3")
    hook.get_conn().set("probe", "db3")
    assert redis_client.get("probe") is None
    assert redis.Redis(port=redis_server.port, db=3).get("probe") == b"db3"


def test_db_in_the_extra_wins_over_the_path(monkeypatch, redis_server):
    hook = hook_for(monkeypatch, f"redis://127.0.0.1:{redis_server.port}/3?db=5")
    assert hook.client_kwargs()["db"] == 5


def test_the_client_is_built_once(monkeypatch, redis_server):
    hook = hook_for(monkeypatch, f"redis://127.0.0.1:{redis_server.port}/0")
    assert hook.get_conn() is hook.get_conn()


def test_password_from_the_connection_opens_a_protected_server(monkeypatch):
    with ThrowawayRedis(password="s3cret-pass") as server:
        assert hook_for(monkeypatch, f"redis://:s3cret-pass@127.0.0.1:{server.port}/0").get_conn().ping()
        with pytest.raises(redis.AuthenticationError):
            hook_for(monkeypatch, f"redis://:wrong@127.0.0.1:{server.port}/0").get_conn().ping()


def test_password_with_reserved_characters_is_url_decoded(monkeypatch):
    with ThrowawayRedis(password="p@ss:w/rd") as server:
        assert hook_for(monkeypatch, f"redis://:p%40ss%3Aw%2Frd@127.0.0.1:{server.port}/0").get_conn().ping()


def test_ssl_false_in_the_extra_means_no_tls(monkeypatch, redis_server):
    hook = hook_for(monkeypatch, f"redis://127.0.0.1:{redis_server.port}/0?ssl=false")
    assert hook.client_kwargs()["ssl"] is False
    assert hook.get_conn().ping()


def test_rediss_scheme_turns_tls_on(monkeypatch):
    kwargs = hook_for(monkeypatch, "rediss://cache.example:6380/2?ssl_cert_reqs=none").client_kwargs()
    assert (kwargs["ssl"], kwargs["ssl_cert_reqs"], kwargs["db"], kwargs["port"]) == (True, "none", 2, 6380)


@pytest.mark.parametrize(
    "uri",
    [
        "redis://127.0.0.1:6390/0?ssl=maybe",
        "redis://127.0.0.1:6390/x",
        "redis://127.0.0.1:6390/0?db=-1",
        "postgres://127.0.0.1:5432/0",
        "redis://:6390/0",
    ],
)
def test_a_connection_that_cannot_work_is_refused_clearly(monkeypatch, uri):
    with pytest.raises(ConfigurationError):
        hook_for(monkeypatch, uri).client_kwargs()


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("true", True), ("1", True), ("False", False), (0, False)]
)
def test_parse_bool(value, expected):
    assert parse_bool(value, "ssl") is expected


def test_parse_db_defaults_to_zero():
    assert parse_db({}, None) == 0
    assert parse_db({}, "") == 0
    assert parse_db({"db": "7"}, "2") == 7


@pytest.mark.skipif(not redis_speaks_tls(), reason="this redis-server was built without TLS")
def test_rediss_talks_tls_to_a_tls_server(monkeypatch, tmp_path):
    tls_files(tmp_path)
    tls_port = free_port()
    tls_args = [
        "--tls-port", str(tls_port), "--tls-cert-file", str(tmp_path / "server.pem"),
        "--tls-key-file", str(tmp_path / "server.pem"), "--tls-ca-cert-file", str(tmp_path / "ca.pem"),
        "--tls-auth-clients", "no",
    ]  # fmt: skip
    with ThrowawayRedis(extra_args=tls_args):
        secure = hook_for(monkeypatch, f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={tmp_path / 'ca.pem'}")
        assert secure.get_conn().ping()
        plain = hook_for(monkeypatch, f"redis://127.0.0.1:{tls_port}/0?ssl=false")
        with pytest.raises(redis.ConnectionError):
            plain.get_conn().ping()


@pytest.mark.parametrize(
    ("uri", "said"),
    [
        ("redis+sentinel://sentinel-1:26379", "name the Sentinel service"),
        ("redis+sentinel://sentinel-1:26379/ohlcv%2Fzero", "the database must be a whole number"),
        ("redis+sentinel://sentinel-1:26379/ohlcv?sentinels=sentinel-2%3Aport", "a Sentinel is host:port"),
        ("redis+sentinel://sentinel-1:26379/ohlcv?ssl_cert_reqs=none", "ssl_cert_reqs is a TLS option"),
    ],
)
def test_a_bad_sentinel_connection_is_refused_naming_the_connection(monkeypatch, uri, said):
    with pytest.raises(ConfigurationError, match=f"connection 'ohlcv_redis': {said}"):
        hook_for(monkeypatch, uri).get_conn()


def test_a_sentinel_connection_reads_its_parts(monkeypatch):
    uri = (
        "rediss+sentinel://cache:node-pw@sentinel-1:26380/ohlcv%2F2"
        "?sentinels=sentinel-2%3A26381&sentinel_password=watch-pw&ssl_cert_reqs=none"
    )
    spec = hook_for(monkeypatch, uri).sentinel_spec()
    assert spec.sentinels == (("sentinel-1", 26380), ("sentinel-2", 26381))
    assert (spec.service, spec.db, spec.username, spec.password) == ("ohlcv", 2, "cache", "node-pw")
    assert (spec.sentinel_password, spec.ssl, dict(spec.ssl_options)) == ("watch-pw", True, {"ssl_cert_reqs": "none"})
    assert hook_for(monkeypatch, "redis://cache:6379/0").sentinel_spec() is None
    # "ssl": true in the extra turns TLS on, as for a single Redis
    tls = hook_for(monkeypatch, "redis+sentinel://sentinel-1/ohlcv?ssl=true&ssl_cert_reqs=none").sentinel_spec()
    assert (tls.ssl, dict(tls.ssl_options)) == (True, {"ssl_cert_reqs": "none"})
