"""The small interface every vendor implements."""

from __future__ import annotations

import datetime as dt
from typing import Protocol, runtime_checkable

import pandas as pd

MARKETS: tuple[str, ...] = ("KRX", "KOSPI", "KOSDAQ", "KONEX")


@runtime_checkable
class Source(Protocol):
    """A vendor of daily OHLCV history."""

    #: short name stored in every value written from this source (``fdr``, ``synthetic``, ...)
    name: str

    def list_universe(self, market: str) -> list[str]:
        """Ticker codes listed on ``market`` (one of ``MARKETS``), sorted."""
        ...

    def history(self, code: str, start: dt.date | None, end: dt.date) -> pd.DataFrame:
        """Canonical daily history of ``code`` from ``start`` (None: the first day) to ``end``.

        Raises ``NoData`` when the vendor has nothing for the code, ``SourceUnavailable``
        when it cannot be asked, and ``BadOhlcvData`` when its answer is not a valid series.
        """
        ...
