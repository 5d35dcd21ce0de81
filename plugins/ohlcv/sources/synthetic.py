"""SYNTHETIC prices for demos, tests and benchmarks. Not market data.

Deterministic: the same code always gives the same history, and a later ``end`` only
appends rows (the series is a prefix-stable random walk seeded by the code). Prices move
on the KRX tick-size grid, sessions are XKRX sessions, and every value written from this
source says ``synthetic`` in its ``source`` field.

Switches give it the market events a real vendor serves (all keyed by ticker code):

- ``splits={code: (date, ratio)}``: from ``date`` on, the vendor serves the whole history
  split-adjusted (prices / ratio on the tick grid, volumes x ratio), as Naver does;
- ``halts={code: [(first, last), ...]}``: trading-halt rows in Naver's shape (Volume 0,
  Open = High = Low = 0, the previous close carried);
- ``delisted={code: date}``: the history ends on ``date``, and later snapshots do not list the code;
- ``listed={code: date}``: a new listing: the code trades from ``date`` on (no data before);
In a spec string: ``synthetic:8?split=000100:2026-11-16:50&halt=000300:2026-11-09:2026-11-11
&delisted=000600:2026-10-30&listed=000700:2026-11-18`` (several values separated by commas).
The vendor failures tests need (outages, blocks, broken answers) are not here: they are the
test-only switches of ``ohlcv.sources.testing``, which the same spec string can add.

The snapshot of a session is every listed code's last row of its history through that
session, with ``Changes`` taken against the close before it (the base price), so a split
re-bases the price exactly as the split-adjusted history does; a new listing's base price
is its first open.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ohlcv import calendar, snapshot
from ohlcv.errors import ConfigurationError, NoData, TableMissing
from ohlcv.keys import is_index, validate_ticker
from ohlcv.snapshot import Snapshot
from ohlcv.sources.base import MARKETS
from ohlcv.universe import Delisting
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


def code_seed(code: str) -> int:
    """A stable number for ``code``: its prices, market and listing date all derive from it."""
    return int.from_bytes(hashlib.sha256(f"ohlcv-synthetic:{code}".encode()).digest()[:8], "little")


class SyntheticSource:
    """A deterministic offline vendor with ``tickers`` stocks plus the index symbols."""

    name = "synthetic"
    #: the spec switches this vendor reads (see the module docstring)
    SWITCHES: frozenset[str] = frozenset({"split", "halt", "delisted", "listed"})

    def __init__(
        self,
        tickers: int = DEFAULT_TICKERS,
        *,
        splits: dict[str, tuple[dt.date, float]] | None = None,
        halts: dict[str, list[tuple[dt.date, dt.date]]] | None = None,
        delisted: dict[str, dt.date] | None = None,
        listed: dict[str, dt.date] | None = None,
    ) -> None:
        if tickers < 1:
            raise ConfigurationError("the synthetic universe needs at least one ticker")
        self.codes = [synthetic_code(number) for number in range(tickers)]
        self.splits = splits or {}
        self.halts = halts or {}
        self.delisted = delisted or {}
        self.listed = listed or {}

    @classmethod
    def from_options(cls, tickers: int, options: Mapping[str, list[str]]) -> SyntheticSource:
        """Build from a spec's parsed query string (see the module docstring)."""
        try:
            splits = {
                code: (dt.date.fromisoformat(day), float(ratio))
                for code, day, ratio in (item.split(":") for item in options.get("split", []))
            }
            halts: dict[str, list[tuple[dt.date, dt.date]]] = {}
            for code, first, last in (item.split(":") for item in options.get("halt", [])):
                halts.setdefault(code, []).append((dt.date.fromisoformat(first), dt.date.fromisoformat(last)))
            delisted = {
                code: dt.date.fromisoformat(day)
                for code, day in (item.split(":") for item in options.get("delisted", []))
            }
            listed = {
                code: dt.date.fromisoformat(day)
                for code, day in (item.split(":") for item in options.get("listed", []))
            }
        except ValueError as exc:
            raise ConfigurationError(f"cannot read synthetic switches {dict(options)}: {exc}") from None
        return cls(tickers, splits=splits, halts=halts, delisted=delisted, listed=listed)

    @staticmethod
    def market_of(code: str) -> str:
        """The synthetic market of a code: six in ten on KOSDAQ, three on KOSPI, one on KONEX."""
        slot = code_seed(code) % 10
        return "KOSDAQ" if slot < 6 else "KOSPI" if slot < 9 else "KONEX"

    def list_universe(self, market: str) -> list[str]:
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
        return FIRST_LISTING + dt.timedelta(days=code_seed(code) % span)

    def snapshot(self, session: dt.date) -> Snapshot:
        recent = calendar.sessions(session - dt.timedelta(days=30), session)
        if recent.empty:
            raise NoData(f"the synthetic vendor has no table up to {session}")
        day = recent[-1].date()
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

    def table(self, session: dt.date) -> Snapshot:
        if not calendar.is_session(session):
            raise TableMissing(f"{session} is not an XKRX session: the synthetic vendor has no table of it")
        return self.snapshot(session)

    def settles(self, session: dt.date, now: dt.datetime) -> bool:
        return True  # its tables are final as soon as they exist

    def delistings(self) -> list[Delisting]:
        """The delisting listing of its ``delisted`` codes: delisted the session after their last."""
        return sorted(
            (
                Delisting(code, f"SYNTHETIC {code}", self.market_of(code), self.listing_date(code),
                          calendar.next_session(last), "synthetic delisting")
                for code, last in self.delisted.items()
            ),
            key=lambda item: (item.delisted, item.code),
        )  # fmt: skip

    def history(self, code: str, start: dt.date | None, end: dt.date) -> pd.DataFrame:
        code = validate_ticker(code)
        if not is_index(code) and code not in self.codes:
            raise NoData(f"{code} is not in the synthetic universe of {len(self.codes)} tickers")
        frame = self._history(code, end)
        frame = frame.loc[pd.Timestamp(start) if start else None :]
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

    def _series(self, code: str, days: pd.DatetimeIndex) -> pd.DataFrame:
        return canonical(pd.DataFrame(self._arrays(code, len(days)), index=days))

    def _arrays(self, code: str, sessions: int) -> dict[str, np.ndarray]:
        """Open, High, Low, Close, Volume of the first ``sessions`` sessions since the listing."""
        rng = np.random.default_rng(code_seed(code))
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
