"""The small interface every vendor implements."""

from __future__ import annotations

import datetime as dt
from typing import Protocol, runtime_checkable

import pandas as pd

from ohlcv.settings import MARKETS
from ohlcv.snapshot import Snapshot

__all__ = ["MARKETS", "Source"]


@runtime_checkable
class Source(Protocol):
    """A vendor of daily OHLCV history."""

    #: short name stored in every value written from this source (``fdr``, ``synthetic``, ...)
    name: str

    def snapshot(self, session: dt.date) -> Snapshot:
        """Every listed code's OHLCV for one session: ``session`` if the vendor can serve it,
        else its latest. The snapshot's ``session`` is the one the vendor says it describes.

        It is also the listing: its codes are the universe. Raises ``SourceUnavailable`` when
        the vendor cannot be asked and ``BadOhlcvData`` when the answer cannot be read or its
        session cannot be established.
        """
        ...

    def table(self, session: dt.date) -> Snapshot:
        """The market's table of exactly ``session``, final when the vendor publishes it so by now.

        Raises ``TableMissing`` when the vendor has no table of that session (not yet, or not
        published at all), ``SourceUnavailable`` when it cannot be asked and ``BadOhlcvData``
        when the answer cannot be read.
        """
        ...

    def settles(self, session: dt.date, now: dt.datetime) -> bool:
        """Whether a table of ``session`` asked at ``now`` holds its final values (the vendor's
        publishing rule): a preliminary table kept in Redis is asked again only then."""
        ...

    def history(self, code: str, start: dt.date | None, end: dt.date) -> pd.DataFrame:
        """Canonical daily history of ``code`` from ``start`` (None: the first day) to ``end``.

        Raises ``NoData`` when the vendor has nothing for the code, ``SourceUnavailable``
        when it cannot be asked, and ``BadOhlcvData`` when its answer is not a valid series.
        """
        ...
