"""docs/cli.md's exit-code table is the CLI's: every code the CLI has is documented, and each
documented code comes out of the case it describes, with one ``error:`` line on stderr."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from ohlcv import cli
from ohlcv.indexer import planning
from ohlcv.redis_server import ThrowawayRedis
from ohlcv.sources import SyntheticSource
from ohlcv.sources.testing import SilentServer

DOC = Path(__file__).parents[2] / "docs" / "cli.md"
AS_OF = dt.date(2026, 11, 20)


def documented() -> dict[int, str]:
    return {int(code): meaning for code, meaning in re.findall(r"^\| (\d+) \| (.+) \|$", DOC.read_text(), re.M)}


def test_the_table_names_every_exit_code_of_the_cli():
    constants = {value for name, value in vars(cli).items() if name.startswith("EXIT_")}
    assert sorted(documented()) == sorted(constants) == list(range(len(constants)))


class Case:
    """The servers, settings and arguments of one documented exit code."""

    def __init__(self, redis_server, store, monkeypatch, stack) -> None:
        self.server, self.store, self.monkeypatch, self.stack = redis_server, store, monkeypatch, stack
        self.url = redis_server.url
        source = SyntheticSource(3)
        for code in source.list_universe("KRX"):
            store.write_series(code, source.history(code, None, AS_OF), source.name)
        store.publish(AS_OF, 3)
        monkeypatch.setenv("OHLCV_SOURCE", "synthetic:3")

    def own_server(self, *args: str) -> ThrowawayRedis:
        return self.stack.enter_context(ThrowawayRedis(extra_args=list(args)))


CASES: dict[int, Callable[[Case], list[str]]] = {}


def case(code: int):
    def register(build: Callable[[Case], list[str]]) -> Callable[[Case], list[str]]:
        CASES[code] = build
        return build

    return register


@case(cli.EXIT_OK)
def _done(c: Case) -> list[str]:
    return ["--redis-url", c.url, "status"]


@case(cli.EXIT_MISSING)
def _corrupt_value(c: Case) -> list[str]:
    c.store.client.set("ticker:000100", b"garbage")
    return ["--redis-url", c.url, "get", "000100", "--cached-only"]


@case(cli.EXIT_USAGE)
def _bad_ticker(c: Case) -> list[str]:
    return ["--redis-url", c.url, "get", "00:*"]


@case(cli.EXIT_REDIS)
def _nobody_listens(c: Case) -> list[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return ["--redis-url", f"redis://127.0.0.1:{port}/0", "status"]


@case(cli.EXIT_VENDOR)
def _breaker_open(c: Case) -> list[str]:
    c.store.open_breaker("HTTP 429", dt.timedelta(hours=1))
    return ["--redis-url", c.url, "get", "000400"]


@case(cli.EXIT_LOCKED)
def _another_run(c: Case) -> list[str]:
    c.store.begin_run("scheduled__2026-11-24")
    return ["--redis-url", c.url, "index", "--as-of", "2026-11-20"]


@case(cli.EXIT_AUTH)
def _wrong_password(c: Case) -> list[str]:
    return ["--redis-url", f"redis://nobody:not-the-password@127.0.0.1:{c.server.port}/0", "status"]


@case(cli.EXIT_PERMISSION)
def _read_only_user_writes(c: Case) -> list[str]:
    c.store.client.acl_setuser(
        "reader", enabled=True, passwords=["+reader-pw"], keys=["*"], commands=["-@all", "+@read", "+@connection"]
    )
    return ["--redis-url", f"redis://reader:reader-pw@127.0.0.1:{c.server.port}/0", "migrate"]


@case(cli.EXIT_REDIS_FULL)
def _out_of_memory(c: Case) -> list[str]:
    full = c.own_server("--maxmemory-policy", "noeviction")
    client = full.client()
    prepare = planning.prepare

    def fills_up_after_the_lock(*args, **kwargs):  # another user's data takes the last byte mid-run
        client.config_set("maxmemory", 1)
        return prepare(*args, **kwargs)

    c.monkeypatch.setattr(planning, "prepare", fills_up_after_the_lock)
    c.after = lambda: (
        client.get("getOHLCV_isUpdating") == b"0" and not client.exists("ohlcv:lock:run")  # the lock is released
    )
    return ["--redis-url", full.url, "index", "--full-refresh"]


@case(cli.EXIT_REDIS_READ_ONLY)
def _replica(c: Case) -> list[str]:
    replica = c.own_server("--replica-read-only", "yes")
    replica.client().execute_command("REPLICAOF", "127.0.0.1", c.server.port)
    return ["--redis-url", replica.url, "breaker", "open", "by hand", "--hours", "1"]


@case(cli.EXIT_REDIS_COMMAND)
def _wrong_type(c: Case) -> list[str]:
    c.store.client.delete("ticker:lastUpdateAt")
    c.store.client.set("ticker:lastUpdateAt", "not a hash")
    return ["--redis-url", c.url, "status"]


@case(cli.EXIT_REDIS_TIMEOUT)
def _stalled(c: Case) -> list[str]:
    c.monkeypatch.setattr(cli, "client_from_url", lambda url, **_: redis.Redis.from_url(url, socket_timeout=0.2))
    return ["--redis-url", f"redis://127.0.0.1:{SilentServer.shared().port}/0", "status"]


@pytest.mark.parametrize("code", sorted(documented()))
def test_each_documented_exit_code_comes_from_its_case(code, redis_server, store, monkeypatch, capsys):
    assert code in CASES, f"exit code {code} is documented but has no case here"
    with contextlib.ExitStack() as stack:
        c = Case(redis_server, store, monkeypatch, stack)
        c.after = lambda: True
        argv = CASES[code](c)
        capsys.readouterr()
        assert cli.main(argv) == code
        err = capsys.readouterr().err
        assert c.after()
    if code:
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: ")
        assert "Traceback" not in err
        assert "\\x" not in last
        assert "b'" not in last
