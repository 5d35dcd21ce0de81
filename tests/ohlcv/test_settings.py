"""``Settings``: every deployment setting, read once from the environment and checked there."""

import dataclasses
import datetime as dt
import os
import subprocess
import sys
from urllib.parse import urlsplit

import limits
import pytest

from ohlcv.errors import ConfigurationError
from ohlcv.keys import KeySpace
from ohlcv.settings import Settings

EVERY_VARIABLE = {
    "OHLCV_REDIS_URL": "rediss://:pw@cache.example:6380/2",
    "OHLCV_SOURCE": "synthetic:5",
    "OHLCV_KEY_PREFIX": "staging:",
    "OHLCV_VENDOR_RATE": "300/minute",
    "OHLCV_CLIENT_CACHE": "64",
    "OHLCV_BREAKER_HOURS": "1.5",
    "OHLCV_SCHEDULE": "5 * * * *",
    "OHLCV_SCHEDULE_TIMEZONE": "Asia/Seoul",
    "OHLCV_RETRY_DELAY_SECONDS": "5",
    "OHLCV_SOURCE_POKE_SECONDS": "2",
    "OHLCV_SOURCE_WAIT_SECONDS": "30",
    "OHLCV_TICKER_DEADLINE": "90",
    "OHLCV_READ_FROM": "replica",
    "OHLCV_REPLICA_MAX_LAG": "2.5",
    "OHLCV_MIN_REPLICAS": "2",
    "OHLCV_REPLICA_ACK_TIMEOUT": "4",
    "OHLCV_FAILOVER_WAIT": "45",
}


def test_an_empty_environment_gives_the_production_defaults():
    settings = Settings.from_env({})
    assert settings == Settings()
    # the documented default: the local Redis, db 0 (the tests themselves never connect to it)
    url = urlsplit(settings.redis_url)
    assert (url.scheme, url.hostname, url.port, url.path) == ("redis", "127.0.0.1", 6379, "/0")
    assert settings.source == "fdr"
    assert KeySpace(settings.key_prefix) == KeySpace("")
    assert settings.client_cache_mb == 256
    assert settings.breaker_ttl == dt.timedelta(hours=12)
    assert (settings.schedule, settings.schedule_timezone) == ("23 8-12,18 * * *", "Europe/London")
    assert settings.retry_delay == dt.timedelta(seconds=60)
    assert (settings.source_poke_seconds, settings.source_wait_seconds) == (60, 3600)
    assert settings.ticker_deadline_seconds == 600
    assert (settings.read_from, settings.replica_max_lag, settings.min_replicas) == ("primary", 5, None)
    assert (settings.replica_ack_timeout, settings.failover_wait) == (10, 30)
    assert settings.sentinel is None
    assert settings.replicas_required(under_sentinel=True) == 1
    assert settings.replicas_required(under_sentinel=False) == 0
    assert Settings.from_env({"OHLCV_MIN_REPLICAS": "auto"}).min_replicas is None
    assert Settings.from_env({"OHLCV_MIN_REPLICAS": "0"}).replicas_required(under_sentinel=True) == 0
    assert settings.rate_for("fdr") == limits.parse("5/second")
    assert settings.rate_for("synthetic") is None


def test_empty_variables_keep_their_defaults():
    assert Settings.from_env({name: "  " for name in EVERY_VARIABLE if name != "OHLCV_KEY_PREFIX"}) == Settings()


def test_every_variable_is_read():
    settings = Settings.from_env(EVERY_VARIABLE)
    assert settings.redis_url == "rediss://:pw@cache.example:6380/2"
    assert settings.source == "synthetic:5"
    assert KeySpace(settings.key_prefix) == KeySpace("staging:")
    assert settings.rate_for("fdr") == settings.rate_for("synthetic") == limits.parse("300/minute")
    assert settings.client_cache_mb == 64
    assert settings.breaker_ttl == dt.timedelta(hours=1.5)
    assert (settings.schedule, settings.schedule_timezone) == ("5 * * * *", "Asia/Seoul")
    assert settings.retry_delay == dt.timedelta(seconds=5)
    assert (settings.source_poke_seconds, settings.source_wait_seconds) == (2, 30)
    assert settings.ticker_deadline_seconds == 90
    assert (settings.read_from, settings.replica_max_lag, settings.min_replicas) == ("replica", 2.5, 2)
    assert (settings.replica_ack_timeout, settings.failover_wait) == (4, 45)


def test_special_values_turn_things_off():
    settings = Settings.from_env({"OHLCV_SCHEDULE": "none", "OHLCV_VENDOR_RATE": "none", "OHLCV_CLIENT_CACHE": "off"})
    assert settings.schedule is None
    assert settings.rate_for("fdr") is None
    assert settings.client_cache_mb == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OHLCV_VENDOR_RATE", "fast please"),
        ("OHLCV_CLIENT_CACHE", "lots"),
        ("OHLCV_CLIENT_CACHE", "-1"),
        ("OHLCV_KEY_PREFIX", "bad prefix*"),
        ("OHLCV_BREAKER_HOURS", "a day"),
        ("OHLCV_RETRY_DELAY_SECONDS", "-5"),
        ("OHLCV_SOURCE_POKE_SECONDS", "nan"),
        ("OHLCV_SOURCE_WAIT_SECONDS", "1h"),
        ("OHLCV_BREAKER_HOURS", "inf"),
        ("OHLCV_BREAKER_HOURS", "0"),
        ("OHLCV_RETRY_DELAY_SECONDS", "inf"),
        ("OHLCV_VENDOR_RATE", "0/second"),
        ("OHLCV_KRX_OPENAPI_RATE", "0/day"),
        ("OHLCV_TICKER_DEADLINE", "0"),
        ("OHLCV_TICKER_DEADLINE", "inf"),
        ("OHLCV_TICKER_DEADLINE", "ten minutes"),
        ("OHLCV_SOURCE", "yahoo"),
        ("OHLCV_SOURCE", "synthetic:many"),
        ("OHLCV_SOURCE", "csv:"),
        ("OHLCV_SOURCE_POKE_SECONDS", "0"),
        ("OHLCV_SCHEDULE", "every hour"),
        ("OHLCV_SCHEDULE", "61 * * * *"),
        ("OHLCV_SCHEDULE_TIMEZONE", "Asia/Nowhere"),
        ("OHLCV_SCHEDULE_TIMEZONE", "../../etc/passwd"),
        ("OHLCV_REDIS_URL", "http://cache:6380/0"),
        ("OHLCV_REDIS_URL", "redis://cache:6380/one"),
        ("OHLCV_REDIS_URL", "redis://cache:6380/-1"),
        ("OHLCV_REDIS_URL", "redis://cache:port/0"),
        ("OHLCV_REDIS_URL", "redis://cache:0/0"),
        ("OHLCV_REDIS_URL", "redis:///0"),
        ("OHLCV_REDIS_URL", "redis://ca che:6380/0"),
        ("OHLCV_REDIS_URL", "redis+sentinel:///ohlcv/0"),
        ("OHLCV_REDIS_URL", "redis+sentinel://sentinel-1:26379"),
        ("OHLCV_REDIS_URL", "redis+sentinel://sentinel-1:26379/ohlcv/zero"),
        ("OHLCV_REDIS_URL", "redis+sentinel://sentinel-1:26379/ohlcv/0/extra"),
        ("OHLCV_REDIS_URL", "redis+sentinel://sentinel-1:99999/ohlcv/0"),
        ("OHLCV_REDIS_URL", "redis+sentinel://sentinel-1/ohlcv/0?sentinels=sentinel-2:port"),
        ("OHLCV_REDIS_URL", "redis+sentinel://sentinel-1/ohlcv/0?master=other"),
        ("OHLCV_REDIS_URL", "redis+sentinel://sentinel-1/ohlcv/0?ssl_cert_reqs=none"),
        ("OHLCV_READ_FROM", "nearest"),
        ("OHLCV_REPLICA_MAX_LAG", "0"),
        ("OHLCV_REPLICA_ACK_TIMEOUT", "inf"),
        ("OHLCV_MIN_REPLICAS", "-1"),
        ("OHLCV_MIN_REPLICAS", "one"),
        ("OHLCV_FAILOVER_WAIT", "-3"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(name, value):
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: value})


def test_settings_cannot_change_once_built():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().source = "synthetic"  # type: ignore[misc]


def test_the_default_environment_is_the_process_environment(monkeypatch):
    monkeypatch.setenv("OHLCV_SOURCE", "synthetic:3")
    assert Settings.from_env().source == "synthetic:3"
    assert KeySpace(Settings.from_env().key_prefix) == KeySpace("")


def test_importing_the_package_reads_no_environment():
    """A broken setting is reported when settings are built, not when a module is imported."""
    code = (
        "import ohlcv.sources.guard, ohlcv.reader.cache, ohlcv.cli, ohlcv.indexer.runner, ohlcv.sources\n"
        "from ohlcv.settings import Settings\n"
        "print('imported', flush=True)\n"
        "Settings.from_env()\n"
    )
    env = {**os.environ, "OHLCV_VENDOR_RATE": "fast please", "OHLCV_BREAKER_HOURS": "a day"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout == "imported\n"
    assert "ConfigurationError" in done.stderr
    assert "OHLCV_" in done.stderr


def test_a_bad_redis_url_is_named_without_its_password():
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"OHLCV_REDIS_URL": "redis://:s3cret-pw@cache:6380/zero"})
    assert "s3cret-pw" not in str(refused.value)
    assert "redis://:***@cache:6380/zero" in str(refused.value)
    assert "the database must be a whole number" in str(refused.value)


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6380/0", "rediss://user:pw@cache.example:6380/15", "redis://cache", "unix:///run/redis.sock",
     "redis://[::1]:6380/3", "redis://cache/0?socket_keepalive=true"],
)  # fmt: skip
def test_the_url_forms_redis_py_reads_are_accepted(url):
    assert Settings.from_env({"OHLCV_REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize("spec", ["fdr", "synthetic", "synthetic:50", "synthetic:5?splits=000100", "csv:/data/krx"])
def test_every_vendor_form_is_accepted(spec):
    assert Settings.from_env({"OHLCV_SOURCE": spec}).source == spec


def test_a_sentinel_url_names_its_sentinels_service_database_and_credentials():
    url = (
        "rediss+sentinel://cache:p%40ss@sentinel-1:26380,sentinel-2/ohlcv/3?sentinels=sentinel-3:26381"
        "&sentinel_password=watch-pw&ssl_cert_reqs=none&ssl_check_hostname=false"
    )
    spec = Settings.from_env({"OHLCV_REDIS_URL": url}).sentinel
    assert spec.sentinels == (("sentinel-1", 26380), ("sentinel-2", 26379), ("sentinel-3", 26381))
    assert (spec.service, spec.db, spec.username, spec.password) == ("ohlcv", 3, "cache", "p@ss")
    assert (spec.sentinel_password, spec.ssl) == ("watch-pw", True)
    assert dict(spec.ssl_options) == {"ssl_cert_reqs": "none", "ssl_check_hostname": False}
    assert "p@ss" not in repr(spec)
    assert "watch-pw" not in repr(spec)
    assert Settings.from_env({"OHLCV_REDIS_URL": "redis+sentinel://s1/ohlcv?db=4"}).sentinel.db == 4


def test_a_bad_sentinel_url_is_named_without_either_password():
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"OHLCV_REDIS_URL": "redis+sentinel://:node-pw@s1:26379/ohlcv/x?sentinel_password=watch-pw"})
    said = str(refused.value)
    assert "node-pw" not in said
    assert "watch-pw" not in said
    assert "redis+sentinel://:***@s1:26379/ohlcv/x?sentinel_password=***" in said
    assert "the database must be a whole number" in said
