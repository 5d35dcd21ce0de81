"""Property tests over what a user types: settings, the CLI's options and Redis URLs. Each input
either works or ends in one clear line naming what was wrong, with a documented exit code;
never a stack trace, and a refused input creates or changes no key."""

from __future__ import annotations

import datetime as dt
import socket
import string

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ohlcv import cli
from ohlcv.errors import ConfigurationError
from ohlcv.settings import Settings, masked, redis_url_problem
from ohlcv.sources import SyntheticSource
from ohlcv.store import client_from_url
from tests.ohlcv.test_exit_codes import documented

VARIABLES = [
    "OHLCV_REDIS_URL", "OHLCV_SOURCE", "OHLCV_KEY_PREFIX", "OHLCV_VENDOR_RATE", "OHLCV_CLIENT_CACHE",
    "OHLCV_BREAKER_HOURS", "OHLCV_SCHEDULE", "OHLCV_SCHEDULE_TIMEZONE", "OHLCV_RETRY_DELAY_SECONDS",
    "OHLCV_SOURCE_POKE_SECONDS", "OHLCV_SOURCE_WAIT_SECONDS", "OHLCV_CATCHUP_SESSIONS", "OHLCV_HISTORY_BUDGET",
    "OHLCV_TABLE_DEADLINE", "OHLCV_TICKER_DEADLINE", "OHLCV_KRX_OPENAPI_KEY", "OHLCV_KRX_OPENAPI_RATE",
]  # fmt: skip
#: what people type into settings: numbers, units, rates, times, specs, URLs, and noise
TYPED = (
    st.sampled_from(
        ["0", "-1", "1", "1.5", "inf", "-inf", "nan", "1e309", "5/second", "0/day", "none", "off", "12:23", "24:00",
         "fdr", "synthetic:3", "csv:/tmp", "redis://127.0.0.1:1/0", "Asia/Seoul", "23 8-12 * * *", "1h", " ", "٣"]
    )
    | st.text(max_size=30)
    | st.from_regex(r"[0-9a-z:/.?=&@*-]{0,20}", fullmatch=True)
)  # fmt: skip
CODES = set(documented())
AS_OF = dt.date(2026, 11, 20)


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(VARIABLES), value=TYPED)
def test_a_setting_is_taken_or_refused_naming_its_variable(name, value):
    refused = _refusal(Settings.from_env, {name: value})
    if refused:
        assert name in refused
        assert "\n" not in refused


URLS = st.builds(
    "{}{}{}{}{}".format,
    st.sampled_from(["redis://", "rediss://", "unix://", "http://", "", "redis:/", "REDIS://"]),
    st.sampled_from(["", "user:pw@", ":pw@", "user@", "a:b:c@", ":p%40ss@"]),
    st.sampled_from(["127.0.0.1", "", "[::1]", "cache", "ca che", "[::1"]),
    st.sampled_from(["", ":6380", ":0", ":65536", ":x", ":"]),
    st.sampled_from(["", "/", "/0", "/15", "/-1", "/x", "/0/1", "/0?db=3", "/0?socket_timeout=x", "?", "/0#f"]),
)


@settings(max_examples=300, deadline=None)
@given(URLS | st.text(max_size=40))
def test_a_redis_url_is_taken_or_refused_the_same_way_everywhere(url):
    problem = redis_url_problem(url)
    refused = _refusal(Settings, redis_url=url)
    assert bool(refused) == bool(problem)
    assert not refused or refused.startswith("OHLCV_REDIS_URL=")
    if not url:
        return  # client_from_url(""), like no URL, takes OHLCV_REDIS_URL
    refused = _refusal(client_from_url, url)
    assert not refused or refused.startswith("cannot use Redis URL")
    assert ":pw@" not in refused  # the password is never shown
    if problem:  # refused wherever a URL comes in; redis-py refuses more (a query value it cannot read)
        assert refused


def _refusal(call, *args, **kwargs) -> str:
    """The ``ConfigurationError`` message ``call`` raises, "" if it takes the input."""
    try:
        call(*args, **kwargs)
    except ConfigurationError as exc:
        return str(exc)
    return ""


@pytest.fixture(scope="module")
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _keys(client) -> dict[bytes, bytes]:
    return {key: client.dump(key) for key in client.scan_iter(count=1000)}


def _one_clear_line(code: int, err: str) -> None:
    assert code in CODES, f"undocumented exit code {code}: {err}"
    assert "Traceback" not in err
    if code not in (0, 1):
        last = err.strip().splitlines()[-1]
        assert last.startswith(("error: ", "usage: ")) or ": error: " in last


def _run(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2 with one line
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def filled_server(redis_server):
    from ohlcv.keys import KeySpace
    from ohlcv.store import OhlcvStore

    redis_server.flush()
    store = OhlcvStore(redis_server.client(), KeySpace())
    source = SyntheticSource(3)
    for code in source.list_universe("KRX"):
        store.write_series(code, source.history(code, None, AS_OF), source.name)
    store.publish(AS_OF, 3)
    return redis_server


OPTION_TEXT = (
    st.sampled_from(["", "0", "-1", "2026-11-20", "2026-13-01", "20261120", "2022", "1800-01-02", "2030-01-02",
                     "000100", "00:*", "KS11", "*", "ticker:000100", "--", "-h", "nan", "inf", "1e9",
                     "2026-11-2:2026-11-6"])
    | st.text(alphabet=string.printable, max_size=15)
)  # fmt: skip
COMMANDS = st.sampled_from(
    [
        ["get", "{0}", "--cached-only"],
        ["get", "000100", "--start", "{0}", "--end", "{1}", "--cached-only"],
        ["warm", "--tickers", "{0}", "--period", "{1}", "--read-only-probe"],
        ["index", "--as-of", "{0}", "--tickers", "{1}"],
        ["breaker", "open", "{0}", "--hours", "{1}"],
        ["status", "--oldest", "{0}"],
        ["migrate", "--tickers", "{0}", "--source", "{1}"],
    ]
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=COMMANDS, first=OPTION_TEXT, second=OPTION_TEXT)
def test_every_option_is_taken_or_refused_in_one_line_without_touching_redis(
    filled_server, command, first, second, monkeypatch, capsys
):
    monkeypatch.setenv("OHLCV_SOURCE", "synthetic:3")
    client = filled_server.client()
    argv = [part.format(first, second) for part in command if part != "--read-only-probe"]
    before = _keys(client)
    code, err = _run(["--redis-url", filled_server.url, *argv], capsys)
    event(f"{argv[0]}: exit {code}")
    _one_clear_line(code, err)
    if code == cli.EXIT_USAGE:
        assert _keys(client) == before, f"{argv} was refused but changed keys"
    if code == cli.EXIT_OK and argv[0] in ("index", "breaker", "migrate"):
        client.flushdb()  # a run or breaker that worked: start the next example from the filled cache
        filled_server_refill(client)


def filled_server_refill(client) -> None:
    from ohlcv.keys import KeySpace
    from ohlcv.store import OhlcvStore

    store = OhlcvStore(client, KeySpace())
    source = SyntheticSource(3)
    for code in source.list_universe("KRX"):
        store.write_series(code, source.history(code, None, AS_OF), source.name)
    store.publish(AS_OF, 3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(VARIABLES), value=TYPED)
def test_a_bad_setting_stops_every_command_before_redis_is_touched(
    filled_server, closed_port, name, value, monkeypatch, capsys
):
    if "\x00" in value:
        return  # no environment can hold it
    try:
        Settings.from_env({name: value})
    except ConfigurationError:
        pass
    else:
        return  # a good value: the other tests cover what it does
    client = filled_server.client()
    before = _keys(client)
    with monkeypatch.context() as patch:  # one example's variable, not the ones before it
        patch.setenv(name, value)
        code, err = _run(["--redis-url", filled_server.url, "index"], capsys)
    assert code == cli.EXIT_USAGE
    assert err.strip().splitlines()[-1].startswith("error: ")
    assert name in err
    assert _keys(client) == before


def test_masking_keeps_everything_but_the_password():
    assert masked("redis://reader:pw@cache:6380/2?ssl=true") == "redis://reader:***@cache:6380/2?ssl=true"
    assert masked("redis://cache:6380/0") == "redis://cache:6380/0"
