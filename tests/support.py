"""Helpers several test modules share."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ohlcv import codec
from ohlcv.errors import SourceUnavailable, TableMissing
from ohlcv.keys import validate_period
from ohlcv.redis_server import TlsFiles, redis_server_binary
from ohlcv.sources import SyntheticSource
from ohlcv.store import OhlcvStore


def until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return whether it held.

    For what Redis does on its own clock (a key's TTL running out): the test shortens the TTL
    to a millisecond with PEXPIRE and waits for the effect, instead of sleeping a fixed time.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class CountingSource(SyntheticSource):
    """The synthetic source, counting its own calls and failing on demand."""

    def __init__(self, tickers=5, failing=(), **switches):
        super().__init__(tickers, **switches)
        self.asked = []
        self.failing = set(failing)

    def snapshot(self, session):
        self.asked.append(("snapshot", session))
        return super().snapshot(session)

    def history(self, code, start, end):
        self.asked.append(code)
        if code in self.failing:
            raise SourceUnavailable(f"{code}: vendor down")
        return super().history(code, start, end)


def series_values(client, prefix: str = "") -> dict[bytes, bytes]:
    """Every series value of one key space, without the prefix, and its lastUpdateAt hash."""
    found = {
        key[len(prefix) :]: client.get(key)
        for key in client.scan_iter(f"{prefix}ticker:*")
        if client.type(key) == b"string"
    }
    found[b"ticker:lastUpdateAt"] = client.hgetall(f"{prefix}ticker:lastUpdateAt")
    return found


def keep_period(store: OhlcvStore, code: str, start, end, ttl: dt.timedelta) -> str:
    """Keep ``start``..``end`` of ``code``'s cached history as a period key, the way a reader's
    write-back does (``OhlcvStore.keep_period``); return the key."""
    first, last = validate_period(start, end)
    blob = store.client.get(store.keys.series(code))
    window = codec.encode(codec.decode(blob).loc[pd.Timestamp(first) : pd.Timestamp(last)], codec.source_of(blob))
    assert store.keep_period(code, first, last, blob, window, ttl), f"{code}: the period was not kept"
    return store.keys.period(code, first, last)


class TablesSource:
    """A vendor of the given market tables only (one per session), with its calls counted."""

    def __init__(self, *tables, name: str = "fdr") -> None:
        self.name = name
        self.tables = {table.session: table for table in tables}
        self.asked: list[dt.date] = []

    def table(self, session: dt.date):
        self.asked.append(session)
        if session not in self.tables:
            raise TableMissing(f"no table of {session} (HTTP 404)")
        return self.tables[session]

    def snapshot(self, session: dt.date):
        return self.tables[max(day for day in self.tables if day <= session)]

    def settles(self, session: dt.date, now) -> bool:
        return True

    def history(self, code, start, end):
        raise SourceUnavailable(f"{code}: this vendor serves tables only")


def redis_speaks_tls() -> bool:
    """Whether the ``redis-server`` the tests start was built with TLS."""
    if not shutil.which("ldd"):
        return False
    return "libssl" in subprocess.run(["ldd", redis_server_binary()], capture_output=True, text=True).stdout


def tls_files(directory: Path) -> TlsFiles:
    """A throwaway authority (``ca.pem``) and a certificate for 127.0.0.1 signed by it
    (``server.pem``, key and chain) in ``directory``."""
    import trustme

    authority = trustme.CA()
    authority.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(directory / "server.pem"))
    authority.cert_pem.write_to_path(str(directory / "ca.pem"))
    return TlsFiles(directory / "server.pem", directory / "server.pem", directory / "ca.pem")
