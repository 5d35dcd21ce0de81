"""SYNTHETIC prices for demos, tests and benchmarks. Not market data.

Deterministic: the same code always gives the same history, and a later ``end`` only
appends rows (the series is a prefix-stable random walk seeded by the code). Prices move
on the KRX tick-size grid, sessions are XKRX sessions, and every value written from this
source says ``synthetic`` in its ``source`` field.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from ohlcv import calendar
from ohlcv.errors import ConfigurationError, NoData
from ohlcv.keys import is_index, validate_ticker
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

    def __init__(self, tickers: int = DEFAULT_TICKERS) -> None:
        if tickers < 1:
            raise ConfigurationError("the synthetic universe needs at least one ticker")
        self.codes = [synthetic_code(number) for number in range(tickers)]

    @staticmethod
    def market_of(code: str) -> str:
        """The synthetic market of a code: six in ten on KOSDAQ, three on KOSPI, one on KONEX."""
        slot = _seed(code) % 10
        return "KOSDAQ" if slot < 6 else "KOSPI" if slot < 9 else "KONEX"

    def list_universe(self, market: str) -> list[str]:
        if market not in MARKETS:
            raise ConfigurationError(f"unknown market {market!r}; expected one of {list(MARKETS)}")
        return sorted(code for code in self.codes if market == "KRX" or self.market_of(code) == market)

    def listing_date(self, code: str) -> dt.date:
        """The first session of a synthetic ticker (indices start with the calendar)."""
        if is_index(code):
            return dt.date.fromisoformat(calendar.FIRST_DAY)
        span = (LAST_LISTING - FIRST_LISTING).days
        return FIRST_LISTING + dt.timedelta(days=_seed(code) % span)

    def history(self, code: str, start: dt.date | None, end: dt.date) -> pd.DataFrame:
        code = validate_ticker(code)
        if not is_index(code) and code not in self.codes:
            raise NoData(f"{code} is not in the synthetic universe of {len(self.codes)} tickers")
        days = calendar.sessions(self.listing_date(code), end)
        if days.empty:
            raise NoData(f"synthetic {code} is not listed until after {end.isoformat()}")
        frame = self._series(code, days)
        frame = frame.loc[pd.Timestamp(start) if start else None :]
        if frame.empty:
            raise NoData(f"synthetic {code} has no sessions from {start} to {end}")
        return frame

    def _series(self, code: str, days: pd.DatetimeIndex) -> pd.DataFrame:
        rng = np.random.default_rng(_seed(code))
        start_price = float(np.exp(rng.uniform(np.log(1_500), np.log(600_000))))
        volatility = rng.uniform(0.012, 0.035)
        drift = 0.0002
        if is_index(code):  # a broad index: calmer, and near KOSPI's real levels (700 in 1990)
            volatility, drift = 0.011, 0.00005
        # One draw of shape (n, 4) row by row: the first k rows never depend on n.
        noise = rng.standard_normal(size=(len(days), 4))
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
        frame = pd.DataFrame(
            {"Open": open_, "High": high, "Low": low, "Close": close, "Volume": volume},
            index=days,
        )
        return canonical(frame)
