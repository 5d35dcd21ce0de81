"""TEST SUPPORT, not for production: a vendor that fails on purpose.

``FaultySource`` wraps a vendor (the synthetic one, in every test) and makes it misbehave the
way real vendors do, keyed by ticker code:

- ``bad={code: kind}``: a broken answer of one of the kinds in ``BAD_KINDS``;
- ``snapshot_lag=N``: a snapshot asked for a session describes the session N sessions earlier
  (a vendor that has not yet published the day's table);
- ``snapshot_down=N``: the first N snapshot and table calls fail with ``SourceUnavailable``;
- ``table_missing={session, ...}``: the vendor has not published these sessions' tables
  (``TableMissing``, as FinanceData's public file answering 404);
- ``preliminary={session, ...}``: these sessions' tables are still the evening's, with
  preliminary volumes (1.5 % short, as the after-hours trades are missing) until the test
  removes the session from the set (the night's final table);
- ``stale_table={session, ...}``: asked for these sessions, the vendor serves the previous
  session's table as if it were theirs (a weekend file repeats Friday's);
- ``transient=0.3``: that share of tickers (chosen by code) fails with ``SourceUnavailable``
  on its first call, then answers;
- ``down=N``: the whole vendor fails with ``SourceUnavailable`` on its first N history calls;
- ``fail={code, ...}``: these tickers always fail with ``SourceUnavailable``;
- ``block={code, ...}``: asking for these tickers gets a block answer (``SourceBlocked``);
- ``hang={code, ...}``: asking for these tickers connects to a local server (``SilentServer``)
  that accepts the connection and never answers, and waits for its answer without a timeout:
  a vendor that hangs on one ticker;
- ``latency=0.5``: every history call takes that many seconds more (Naver's answer time), so
  that a run lasts long enough for a test to break something in the middle of it.

It lives in the package rather than under ``tests/`` because Airflow task processes (the
real-scheduler and Celery tests) build their vendor from the ``OHLCV_SOURCE`` spec string,
e.g. ``synthetic:8?fail=000400&latency=0.5`` (see ``ohlcv.sources.from_spec``).

The switches that count calls (``down``, ``snapshot_down``, ``transient``) count them per
instance. ``from_spec`` gives every task of one process the same instance for the same spec
(``shared``), so "the first N calls" means the first N in that process; ``forget_shared``
starts them over (the tests do, between tests). Tests that count vendor calls across tasks
read the run's counters in Redis (``OhlcvStore.run_metrics``), which every process shares.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from ohlcv import calendar
from ohlcv.errors import ConfigurationError, NoData, SourceBlocked, SourceUnavailable, TableMissing
from ohlcv.keys import validate_ticker
from ohlcv.snapshot import Snapshot
from ohlcv.sources.base import Source
from ohlcv.sources.synthetic import code_seed

BAD_KINDS: tuple[str, ...] = (
    "empty",
    "html",
    "nan",
    "negative",
    "duplicate",
    "unsorted",
    "missing_column",
    "wrong_dtype",
    "after_as_of",
    "high_below_low",
    "non_session",
    "string_numbers",
)
#: the spec switches this module reads (the rest of a ``synthetic:`` spec is the plain vendor's)
SWITCHES: frozenset[str] = frozenset(
    {
        "bad", "snapshot_lag", "snapshot_down", "table_missing", "preliminary", "stale_table",
        "transient", "down", "fail", "block", "hang", "latency",
    }
)  # fmt: skip
#: the share of Volume a preliminary table lacks (KRX's after-hours session)
PRELIMINARY_SHORT = 0.015

_shared: dict[str, FaultySource] = {}


def share(code: str) -> float:
    """Where ``code`` falls in [0, 1): the ``transient`` switch fails codes below its share."""
    return (code_seed(code) % 1000) / 1000


class FaultySource:
    """``inner`` with the failure switches of the module docstring; ``calls`` counts this
    instance's calls by (kind, code)."""

    def __init__(
        self,
        inner: Source,
        *,
        bad: Mapping[str, str] | None = None,
        snapshot_lag: int = 0,
        snapshot_down: int = 0,
        table_missing: set[dt.date] | frozenset[dt.date] = frozenset(),
        preliminary: set[dt.date] | frozenset[dt.date] = frozenset(),
        stale_table: set[dt.date] | frozenset[dt.date] = frozenset(),
        transient: float = 0.0,
        down: int = 0,
        fail: set[str] | frozenset[str] = frozenset(),
        block: set[str] | frozenset[str] = frozenset(),
        hang: set[str] | frozenset[str] = frozenset(),
        latency: float = 0.0,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.bad = dict(bad or {})
        unknown = set(self.bad.values()) - set(BAD_KINDS)
        if unknown:
            raise ConfigurationError(f"unknown bad payload kinds {sorted(unknown)}; expected {list(BAD_KINDS)}")
        self.snapshot_lag = snapshot_lag
        self.snapshot_down = snapshot_down
        self.table_missing = set(table_missing)
        self.preliminary = set(preliminary)
        self.stale_table = set(stale_table)
        self.transient = transient
        self.down = down
        self.fail = frozenset(fail)
        self.block = frozenset(block)
        self.hang = frozenset(hang)
        self.latency = latency
        self.calls: Counter[tuple[str, str]] = Counter()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # list_universe, codes, listing_date: the plain vendor's

    def snapshot(self, session: dt.date) -> Snapshot:
        self._table_call()
        recent = calendar.sessions(session - dt.timedelta(days=30), session)
        if len(recent) <= self.snapshot_lag:
            raise NoData(f"the synthetic vendor has no table up to {session}")
        latest = recent[-1 - self.snapshot_lag].date()
        if latest in self.table_missing:
            raise TableMissing(f"synthetic vendor: the table of {latest} is not published (HTTP 404)")
        return self._as_published(self.inner.snapshot(latest))

    def table(self, session: dt.date) -> Snapshot:
        self._table_call()
        if session in self.table_missing:
            raise TableMissing(f"synthetic vendor: the table of {session} is not published (HTTP 404)")
        if session in self.stale_table:
            served = self.inner.table(calendar.previous_session(session))
            return Snapshot(session, served.source, served.frame, served.final)
        return self._as_published(self.inner.table(session))

    def settles(self, session: dt.date, now: dt.datetime) -> bool:
        return session not in self.preliminary

    def _table_call(self) -> None:
        self.calls["snapshot", "KRX"] += 1
        if self.calls["snapshot", "KRX"] <= self.snapshot_down:
            raise SourceUnavailable("synthetic vendor: HTTP 503 Service Unavailable for the daily table")

    def _as_published(self, table: Snapshot) -> Snapshot:
        """The evening's table of a session still in ``preliminary``: volumes short, not final."""
        if table.session not in self.preliminary:
            return table
        frame = table.frame.copy()
        frame["Volume"] = (frame["Volume"] * (1 - PRELIMINARY_SHORT)).astype("int64")
        return Snapshot(table.session, table.source, frame, final=False)

    def history(self, code: str, start: dt.date | None, end: dt.date) -> pd.DataFrame:
        code = validate_ticker(code)
        self.calls["history", code] += 1
        if self.latency:
            time.sleep(self.latency)
        self._misbehave(code)
        if code not in self.bad:
            return self.inner.history(code, start, end)
        return _broken(self.inner.history(code, start, end), self.bad[code], end)

    def _misbehave(self, code: str) -> None:
        if code in self.hang:
            SilentServer.shared().wait_for_answer(code)
        if code in self.block:
            raise SourceBlocked(f"synthetic vendor: HTTP 429 Too Many Requests for {code}")
        if self.down and sum(n for (kind, _), n in self.calls.items() if kind == "history") <= self.down:
            raise SourceUnavailable(f"synthetic vendor: HTTP 503 Service Unavailable for {code}")
        if code in self.fail:
            raise SourceUnavailable(f"synthetic vendor: connection reset for {code}, every time")
        if self.transient and self.calls["history", code] == 1 and share(code) < self.transient:
            raise SourceUnavailable(f"synthetic vendor: read timed out for {code} (first attempt)")


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""

    _shared: SilentServer | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, name="silent-server", daemon=True).start()

    @classmethod
    def shared(cls) -> SilentServer:
        """This process's server, started on first use."""
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.held.append(connection)  # kept open, never answered

    def wait_for_answer(self, code: str) -> bytes:
        """Ask for ``code`` and wait for the answer, without a timeout: forever."""
        with socket.create_connection(("127.0.0.1", self.port)) as connection:
            connection.sendall(f"GET /history?code={code} HTTP/1.1\r\nHost: vendor\r\n\r\n".encode())
            return connection.recv(1)

    def close(self) -> None:
        self.socket.close()
        for connection in self.held:
            connection.close()


def from_options(inner: Source, options: Mapping[str, list[str]]) -> FaultySource:
    """``inner`` behind the switches of a spec's query string (see the module docstring)."""
    try:
        return FaultySource(
            inner,
            bad=dict(item.split(":") for item in options.get("bad", [])),
            snapshot_lag=int(options.get("snapshot_lag", ["0"])[0]),
            snapshot_down=int(options.get("snapshot_down", ["0"])[0]),
            table_missing={dt.date.fromisoformat(day) for day in options.get("table_missing", [])},
            preliminary={dt.date.fromisoformat(day) for day in options.get("preliminary", [])},
            stale_table={dt.date.fromisoformat(day) for day in options.get("stale_table", [])},
            transient=float(options.get("transient", ["0"])[0]),
            down=int(options.get("down", ["0"])[0]),
            fail=set(options.get("fail", [])),
            block=set(options.get("block", [])),
            hang=set(options.get("hang", [])),
            latency=float(options.get("latency", ["0"])[0]),
        )
    except ValueError as exc:
        raise ConfigurationError(f"cannot read the failure switches {dict(options)}: {exc}") from None


def shared(spec: str, build: Callable[[], FaultySource]) -> FaultySource:
    """This process's instance for ``spec``, so the call-counting switches span its tasks."""
    if spec not in _shared:
        _shared[spec] = build()
    return _shared[spec]


def forget_shared() -> None:
    """Start every shared instance's call counts over."""
    _shared.clear()


def _broken(frame: pd.DataFrame, kind: str, end: dt.date) -> pd.DataFrame:
    """``frame`` damaged in one of the ways vendors have been seen to answer."""
    frame = frame.copy()
    last = frame.index[-1]
    if kind == "empty":
        return frame.iloc[0:0]
    if kind == "html":
        return pd.DataFrame({"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1>": ["</body></html>"]})
    if kind == "nan":
        frame["Close"] = frame["Close"].astype("float64")
        frame.loc[last, "Close"] = np.nan
    elif kind == "negative":
        frame.loc[last, "Low"] = -frame.loc[last, "Low"]
    elif kind == "duplicate":
        frame = pd.concat([frame, frame.iloc[[-1]]])
    elif kind == "unsorted":
        frame = frame.iloc[[*range(len(frame) - 2), len(frame) - 1, len(frame) - 2]]
    elif kind == "missing_column":
        frame = frame.drop(columns="Volume")
    elif kind == "wrong_dtype":
        frame["Volume"] = frame["Volume"] > 0
    elif kind == "after_as_of":
        extra = frame.iloc[[-1]].copy()
        extra.index = pd.DatetimeIndex([pd.Timestamp(calendar.next_session(end))], name="Date")
        frame = pd.concat([frame, extra])
    elif kind == "high_below_low":
        frame.loc[last, "High"] = frame.loc[last, "Low"] - 1
    elif kind == "non_session":
        frame = _move_to_a_closed_day(frame)
    elif kind == "string_numbers":
        for column in ("Open", "High", "Low", "Close"):
            frame[column] = [f"{value:,}" for value in frame[column]]
    return frame


def _move_to_a_closed_day(frame: pd.DataFrame) -> pd.DataFrame:
    """Date the latest row that follows a weekend or holiday on that closed day instead."""
    dates = list(frame.index)
    for position in range(len(dates) - 1, 0, -1):
        gap = pd.date_range(dates[position - 1] + pd.Timedelta(days=1), dates[position] - pd.Timedelta(days=1))
        if len(gap):
            dates[position] = gap[-1]
            frame.index = pd.DatetimeIndex(dates, name="Date")
            return frame
    raise ConfigurationError("the window has no closed day to move a row onto")
