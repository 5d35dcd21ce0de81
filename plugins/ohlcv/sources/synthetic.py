"""SYNTHETIC prices for demos, tests and benchmarks. Not market data.

Deterministic: the same code always gives the same history, and a later ``end`` only
appends rows (the series is a prefix-stable random walk seeded by the code). Prices move
on the KRX tick-size grid, sessions are XKRX sessions, and every value written from this
source says ``synthetic`` in its ``source`` field.

Switches make it misbehave the way real vendors do (all keyed by ticker code):

- ``splits={code: (date, ratio)}``: from ``date`` on, the vendor serves the whole history
  split-adjusted (prices / ratio on the tick grid, volumes x ratio), as Naver does;
- ``halts={code: [(first, last), ...]}``: trading-halt rows in Naver's shape (Volume 0,
  Open = High = Low = 0, the previous close carried);
- ``bad={code: kind}``: a broken answer of one of the kinds in ``BAD_KINDS``;
- ``delisted={code: date}``: the history ends on ``date``, and later snapshots do not list the code;
- ``listed={code: date}``: a new listing: the code trades from ``date`` on (no data before);
- ``snapshot_lag=N``: a snapshot asked for a session describes the session N sessions earlier
  (a vendor that has not yet published the day's table);
- ``snapshot_down=N``: the first N snapshot calls fail with ``SourceUnavailable``;
- ``transient=0.3``: that share of tickers (chosen by code) fails with ``SourceUnavailable``
  on its first call in this process, then answers;
- ``down=N``: the whole vendor fails with ``SourceUnavailable`` on its first N history calls;
- ``fail={code, ...}``: these tickers always fail with ``SourceUnavailable``;
- ``block={code, ...}``: asking for these tickers gets a block answer (``SourceBlocked``);
- ``latency=0.5``: every history call takes that many seconds more (Naver's answer time), so
  that a run lasts long enough for a test to break something in the middle of it.

In a spec string: ``synthetic:8?split=000100:2026-11-16:50&halt=000300:2026-11-09:2026-11-11
&bad=000200:nan&transient=0.3&down=5&fail=000400&block=000500&delisted=000600:2026-10-30
&listed=000700:2026-11-18&snapshot_lag=1&latency=0.5`` (several values separated by commas). The
failure switches count calls per process.

The snapshot of a session is every listed code's last row of its history through that
session, with ``Changes`` taken against the close before it (the base price), so a split
re-bases the price exactly as the split-adjusted history does; a new listing's base price
is its first open.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections import Counter
from typing import ClassVar
from urllib.parse import parse_qs

import numpy as np
import pandas as pd

from ohlcv import calendar, snapshot
from ohlcv.errors import ConfigurationError, NoData, SourceBlocked, SourceUnavailable
from ohlcv.keys import is_index, validate_ticker
from ohlcv.snapshot import Snapshot
from ohlcv.sources.base import MARKETS
from ohlcv.validation import canonical

# KRX tick sizes for stocks on KOSPI and KOSDAQ since 2023-01-25: (price below, tick).
TICKS: tuple[tuple[float, int], ...] = (
    (2_000, 1),
    (5_000, 5),
    (20_000, 10),
    (50_000, 50),
    (200_000, 100),
    (500_000, 500),
    (float("inf"), 1_000),
)
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
FIRST_LISTING = dt.date(1995, 1, 3)
LAST_LISTING = dt.date(2020, 12, 30)
DEFAULT_TICKERS = 50


def tick_size(price: np.ndarray) -> np.ndarray:
    """The KRX tick size for each price."""
    bounds = np.array([bound for bound, _ in TICKS])
    ticks = np.array([tick for _, tick in TICKS])
    return ticks[np.searchsorted(bounds, price, side="right")]


def to_tick(price: np.ndarray, how: str = "nearest") -> np.ndarray:
    """Prices moved onto the tick grid (``nearest``, ``up`` or ``down``), at least one tick."""
    tick = tick_size(price)
    rounding = {"nearest": np.round, "up": np.ceil, "down": np.floor}[how]
    return np.maximum(rounding(price / tick) * tick, tick).astype("int64")


def synthetic_code(number: int) -> str:
    """The code of the ``number``-th synthetic ticker; every tenth uses a 2024-reform letter code."""
    if not 0 <= number < 9_999:
        raise ConfigurationError("the synthetic universe holds at most 9,999 tickers")
    return f"{number + 1:04d}" + ("Z0" if number % 10 == 9 else "00")


def _seed(code: str) -> int:
    return int.from_bytes(hashlib.sha256(f"ohlcv-synthetic:{code}".encode()).digest()[:8], "little")


class SyntheticSource:
    """A deterministic offline vendor with ``tickers`` stocks plus the index symbols."""

    name = "synthetic"
    #: vendor calls made by every instance in this process: ("history", code) or ("listing", market)
    calls: ClassVar[Counter] = Counter()
    #: the same calls in the order they were made
    call_log: ClassVar[list[tuple[str, str]]] = []

    def __init__(
        self,
        tickers: int = DEFAULT_TICKERS,
        *,
        splits: dict[str, tuple[dt.date, float]] | None = None,
        halts: dict[str, list[tuple[dt.date, dt.date]]] | None = None,
        bad: dict[str, str] | None = None,
        delisted: dict[str, dt.date] | None = None,
        listed: dict[str, dt.date] | None = None,
        snapshot_lag: int = 0,
        snapshot_down: int = 0,
        transient: float = 0.0,
        down: int = 0,
        fail: set[str] | frozenset[str] = frozenset(),
        block: set[str] | frozenset[str] = frozenset(),
        latency: float = 0.0,
    ) -> None:
        if tickers < 1:
            raise ConfigurationError("the synthetic universe needs at least one ticker")
        self.codes = [synthetic_code(number) for number in range(tickers)]
        self.splits = splits or {}
        self.halts = halts or {}
        self.bad = bad or {}
        self.delisted = delisted or {}
        self.listed = listed or {}
        self.snapshot_lag = snapshot_lag
        self.snapshot_down = snapshot_down
        self.transient = transient
        self.down = down
        self.fail = frozenset(fail)
        self.block = frozenset(block)
        self.latency = latency
        unknown = set(self.bad.values()) - set(BAD_KINDS)
        if unknown:
            raise ConfigurationError(f"unknown bad payload kinds {sorted(unknown)}; expected {list(BAD_KINDS)}")

    @classmethod
    def from_options(cls, tickers: int, query: str) -> SyntheticSource:
        """Build from a spec's query string (see the module docstring)."""
        options = {key: ",".join(values).split(",") for key, values in parse_qs(query, strict_parsing=True).items()}
        known = {
            "split", "halt", "bad", "delisted", "listed", "snapshot_lag", "snapshot_down", "transient", "down", "fail",
            "block", "latency",
        }  # fmt: skip
        unknown = set(options) - known
        if unknown:
            raise ConfigurationError(f"unknown synthetic switches {sorted(unknown)}; expected {sorted(known)}")
        try:
            splits = {
                code: (dt.date.fromisoformat(day), float(ratio))
                for code, day, ratio in (item.split(":") for item in options.get("split", []))
            }
            halts: dict[str, list[tuple[dt.date, dt.date]]] = {}
            for code, first, last in (item.split(":") for item in options.get("halt", [])):
                halts.setdefault(code, []).append((dt.date.fromisoformat(first), dt.date.fromisoformat(last)))
            bad = dict(item.split(":") for item in options.get("bad", []))
            delisted = {
                code: dt.date.fromisoformat(day)
                for code, day in (item.split(":") for item in options.get("delisted", []))
            }
            listed = {
                code: dt.date.fromisoformat(day)
                for code, day in (item.split(":") for item in options.get("listed", []))
            }
            snapshot_lag = int(options.get("snapshot_lag", ["0"])[0])
            snapshot_down = int(options.get("snapshot_down", ["0"])[0])
            transient = float(options.get("transient", ["0"])[0])
            down = int(options.get("down", ["0"])[0])
            latency = float(options.get("latency", ["0"])[0])
        except ValueError as exc:
            raise ConfigurationError(f"cannot read synthetic switches {query!r}: {exc}") from None
        return cls(
            tickers, splits=splits, halts=halts, bad=bad, delisted=delisted, listed=listed,
            snapshot_lag=snapshot_lag, snapshot_down=snapshot_down, transient=transient, down=down,
            fail=set(options.get("fail", [])), block=set(options.get("block", [])), latency=latency,
        )  # fmt: skip

    @staticmethod
    def market_of(code: str) -> str:
        """The synthetic market of a code: six in ten on KOSDAQ, three on KOSPI, one on KONEX."""
        slot = _seed(code) % 10
        return "KOSDAQ" if slot < 6 else "KOSPI" if slot < 9 else "KONEX"

    def list_universe(self, market: str) -> list[str]:
        self.calls["listing", market] += 1
        self.call_log.append(("listing", market))
        if market not in MARKETS:
            raise ConfigurationError(f"unknown market {market!r}; expected one of {list(MARKETS)}")
        return sorted(code for code in self.codes if market == "KRX" or self.market_of(code) == market)

    def listing_date(self, code: str) -> dt.date:
        """The first session of a synthetic ticker (indices start with the calendar)."""
        if code in self.listed:
            return self.listed[code]
        if is_index(code):
            return dt.date.fromisoformat(calendar.FIRST_DAY)
        span = (LAST_LISTING - FIRST_LISTING).days
        return FIRST_LISTING + dt.timedelta(days=_seed(code) % span)

    def snapshot(self, session: dt.date) -> Snapshot:
        self.calls["snapshot", "KRX"] += 1
        self.call_log.append(("snapshot", "KRX"))
        if self.calls["snapshot", "KRX"] <= self.snapshot_down:
            raise SourceUnavailable("synthetic vendor: HTTP 503 Service Unavailable for the daily table")
        recent = calendar.sessions(session - dt.timedelta(days=30), session)
        if len(recent) <= self.snapshot_lag:
            raise NoData(f"the synthetic vendor has no table up to {session}")
        day = recent[-1 - self.snapshot_lag].date()
        codes = [code for code in self.codes if self.listing_date(code) <= day and self.delisted.get(code, day) >= day]
        every = calendar.sessions(FIRST_LISTING, day)
        rows: dict[str, list] = {name: [] for name in snapshot.COLUMNS}
        for code in codes:
            if code in self.halts or code in self.splits:
                history = self._history(code, day)
                last = {name: history[name].to_numpy()[-2:] for name in ("Open", "High", "Low", "Close", "Volume")}
            else:  # the same numbers without building a frame: a KRX-sized table takes a second, not ten
                listed = int(every.searchsorted(pd.Timestamp(self.listing_date(code))))
                last = {name: values[-2:] for name, values in self._arrays(code, len(every) - listed).items()}
            closes = last["Close"]
            base = closes[-2] if len(closes) > 1 else (last["Open"][-1] or closes[-1])
            for name in ("Open", "High", "Low", "Close", "Volume"):
                rows[name].append(int(last[name][-1]))
            rows["Changes"].append(int(closes[-1] - base))
            rows["Market"].append(self.market_of(code))
        return Snapshot(day, self.name, snapshot.frame(rows, codes))

    def history(self, code: str, start: dt.date | None, end: dt.date) -> pd.DataFrame:
        code = validate_ticker(code)
        self.calls["history", code] += 1
        self.call_log.append(("history", code))
        if self.latency:
            time.sleep(self.latency)
        self._misbehave(code)
        if not is_index(code) and code not in self.codes:
            raise NoData(f"{code} is not in the synthetic universe of {len(self.codes)} tickers")
        frame = self._history(code, end)
        frame = frame.loc[pd.Timestamp(start) if start else None :]
        if code in self.bad:
            return _broken(frame, self.bad[code], end)
        if frame.empty:
            raise NoData(f"synthetic {code} has no sessions from {start} to {end}")
        return frame

    def _history(self, code: str, end: dt.date) -> pd.DataFrame:
        """The whole history through ``end`` as the vendor serves it on ``end`` (halts, splits)."""
        if code in self.delisted:
            end = min(end, self.delisted[code])
        days = calendar.sessions(self.listing_date(code), end)
        if days.empty:
            raise NoData(f"synthetic {code} is not listed until after {end.isoformat()}")
        frame = self._series(code, days)
        for first, last in self.halts.get(code, []):
            frame = _halt(frame, first, last)
        if code in self.splits and end >= self.splits[code][0]:
            frame = _split_adjusted(frame, self.splits[code][1])
        return frame

    @staticmethod
    def _seed_share(code: str) -> float:
        """Where ``code`` falls in [0, 1): the ``transient`` switch fails codes below its share."""
        return (_seed(code) % 1000) / 1000

    def _misbehave(self, code: str) -> None:
        """Fail the way the failure switches say, counting this process's calls."""
        if code in self.block:
            raise SourceBlocked(f"synthetic vendor: HTTP 429 Too Many Requests for {code}")
        if self.down and sum(count for (kind, _), count in self.calls.items() if kind == "history") <= self.down:
            raise SourceUnavailable(f"synthetic vendor: HTTP 503 Service Unavailable for {code}")
        if code in self.fail:
            raise SourceUnavailable(f"synthetic vendor: connection reset for {code}, every time")
        if self.transient and self.calls["history", code] == 1 and self._seed_share(code) < self.transient:
            raise SourceUnavailable(f"synthetic vendor: read timed out for {code} (first attempt)")

    def _series(self, code: str, days: pd.DatetimeIndex) -> pd.DataFrame:
        return canonical(pd.DataFrame(self._arrays(code, len(days)), index=days))

    def _arrays(self, code: str, sessions: int) -> dict[str, np.ndarray]:
        """Open, High, Low, Close, Volume of the first ``sessions`` sessions since the listing."""
        rng = np.random.default_rng(_seed(code))
        start_price = float(np.exp(rng.uniform(np.log(1_500), np.log(600_000))))
        volatility = rng.uniform(0.012, 0.035)
        drift = 0.0002
        if is_index(code):  # a broad index: calmer, and near KOSPI's real levels (700 in 1990)
            volatility, drift = 0.011, 0.00005
        # One draw of shape (n, 4) row by row: the first k rows never depend on n.
        noise = rng.standard_normal(size=(sessions, 4))
        returns = np.clip(noise[:, 0] * volatility + drift, -0.26, 0.26)
        path = start_price * np.exp(np.cumsum(returns))
        previous = np.concatenate([[start_price], path[:-1]])
        raw_open = previous * np.exp(noise[:, 1] * volatility / 3)
        spread = np.abs(noise[:, 2]) * volatility / 2
        volume = np.exp(11 + 1.5 * np.abs(noise[:, 3])).astype("int64")
        if is_index(code):
            close = np.round(path / start_price * 700, 2)
            open_ = np.round(raw_open / start_price * 700, 2)
            high = np.round(np.maximum(open_, close) * (1 + spread), 2)
            low = np.round(np.minimum(open_, close) * (1 - spread), 2)
            volume = volume * 100
        else:
            close = to_tick(path)
            open_ = to_tick(raw_open)
            high = to_tick(np.maximum(open_, close) * (1 + spread), "up")
            low = np.minimum(to_tick(np.minimum(open_, close) * (1 - spread), "down"), np.minimum(open_, close))
        return {"Open": open_, "High": high, "Low": low, "Close": close, "Volume": volume}


def _halt(frame: pd.DataFrame, first: dt.date, last: dt.date) -> pd.DataFrame:
    """Rows from ``first`` to ``last`` as trading-halt rows, the last close before them carried."""
    frame = frame.copy()
    inside = (frame.index >= pd.Timestamp(first)) & (frame.index <= pd.Timestamp(last))
    if not inside.any():
        return frame
    position = int(np.argmax(inside))
    carried = frame["Close"].iloc[position - 1] if position > 0 else frame["Close"].iloc[position]
    frame.loc[inside, ["Open", "High", "Low", "Volume"]] = 0
    frame.loc[inside, "Close"] = carried
    return canonical(frame.drop(columns="Change"))


def _split_adjusted(frame: pd.DataFrame, ratio: float) -> pd.DataFrame:
    """The whole history as a vendor serves it after a 1:ratio split (halt zeros stay zero)."""
    adjusted = frame.drop(columns="Change").copy()
    for column in ("Open", "High", "Low", "Close"):
        values = adjusted[column].to_numpy(dtype="float64")
        adjusted[column] = np.where(values > 0, to_tick(np.maximum(values / ratio, 1)), 0)
    adjusted["Volume"] = (adjusted["Volume"] * ratio).round().astype("int64")
    return canonical(adjusted)


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
        following = calendar.xkrx().next_session(pd.Timestamp(end))
        extra = frame.iloc[[-1]].copy()
        extra.index = pd.DatetimeIndex([following.tz_localize(None) if following.tzinfo else following], name="Date")
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
