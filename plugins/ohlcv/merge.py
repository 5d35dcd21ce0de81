"""Merging a vendor's answer into a cached series, and detecting rewritten history.

A vendor answer is compared with the cache on the sessions both hold. When they agree
within the tolerance below, the answer's sessions before and after the cached ones are
added and every cached row is kept (including rows older than the vendor's window: Naver
serves the last 6,000 sessions only). When they disagree (a split or dividend adjustment, a vendor correction) the
vendor's series replaces the cached one: that is a *repair*.

Tolerance: two rows agree when every price differs by at most 1 (one won; one index point)
plus 0.1% of the cached price, and Volume by at most 0.1%. The same dates must be present
on both sides. ``Change`` is derived from Close and not compared. Volume is not compared on
the sessions whose cached row came from a preliminary table (read on the session's evening,
before the after-hours trades): the vendor's final volume replaces it, and that is *settling*,
not a repair.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ohlcv.errors import BadOhlcvData
from ohlcv.status import Status
from ohlcv.validation import PRICE_COLUMNS, canonical

PRICE_RTOL = 1e-3
PRICE_ATOL = 1.0
VOLUME_RTOL = 1e-3


@dataclass(frozen=True)
class Merge:
    """The series to store and how it came about.

    :param first_difference: the first session where the vendor disagreed with the cache
    :param ratio: vendor Close / cached Close on that session (0.02 for a 1:50 split)
    """

    frame: pd.DataFrame
    #: ``written`` (new sessions, or a new ticker), ``unchanged`` or ``repaired``
    status: Status
    new_rows: int
    first_difference: dt.date | None = None
    ratio: float | None = None
    #: preliminary volumes replaced by the vendor's
    settled: int = 0


def first_difference(
    cached: pd.DataFrame, fresh: pd.DataFrame, provisional: Collection[pd.Timestamp] = ()
) -> tuple[dt.date, float | None] | None:
    """Where ``fresh`` first disagrees with ``cached`` on the sessions both cover, or None.

    :param provisional: sessions whose cached Volume is preliminary and not compared
    """
    start, end = max(cached.index[0], fresh.index[0]), min(cached.index[-1], fresh.index[-1])
    if start > end:
        return None
    old, new = cached.loc[start:end], fresh.loc[start:end]
    if not old.index.equals(new.index):
        missing = old.index.symmetric_difference(new.index)
        return missing[0].date(), None
    columns = list(PRICE_COLUMNS)
    prices_ok = np.isclose(
        new[columns].to_numpy("float64"), old[columns].to_numpy("float64"), rtol=PRICE_RTOL, atol=PRICE_ATOL
    )
    volume_ok = np.isclose(
        new["Volume"].to_numpy("float64"), old["Volume"].to_numpy("float64"), rtol=VOLUME_RTOL, atol=0
    )
    if len(provisional):
        volume_ok |= old.index.isin(list(provisional))
    agree = prices_ok.all(axis=1) & volume_ok
    if agree.all():
        return None
    position = int(np.argmin(agree))
    old_close = float(old["Close"].iloc[position])
    return old.index[position].date(), (float(new["Close"].iloc[position]) / old_close if old_close else None)


def merge(cached: pd.DataFrame | None, fresh: pd.DataFrame, provisional: Collection[pd.Timestamp] = ()) -> Merge:
    """Combine a validated vendor answer with the cached series (None: nothing cached).

    :param provisional: sessions whose cached Volume is preliminary: the vendor's replaces it
    """
    if cached is None or cached.empty:
        return Merge(fresh, Status.WRITTEN, len(fresh))
    difference = first_difference(cached, fresh, provisional)
    if difference is None:
        older = fresh.loc[fresh.index < cached.index[0]]
        newer = fresh.loc[fresh.index > cached.index[-1]]
        settle = cached.index[cached.index.isin(list(provisional)) & cached.index.isin(fresh.index)]
        settle = settle[cached.loc[settle, "Volume"].to_numpy() != fresh.loc[settle, "Volume"].to_numpy()]
        if older.empty and newer.empty and settle.empty:
            return Merge(cached, Status.UNCHANGED, 0)
        kept = cached
        if not settle.empty:
            kept = cached.copy()
            kept.loc[settle, "Volume"] = fresh.loc[settle, "Volume"]
        combined = canonical(pd.concat([older, kept, newer]))
        # The cached first row had no previous close; with older rows in front, it has one.
        combined["Change"] = combined["Change"].fillna(fresh["Change"].reindex(combined.index))
        status = Status.WRITTEN if not (older.empty and newer.empty) else Status.SETTLED
        return Merge(combined, status, len(newer), settled=len(settle))
    if fresh.index[-1] < cached.index[-1]:
        raise BadOhlcvData(
            f"history changed from {difference[0]} on, but the vendor's answer ends on {fresh.index[-1].date()}, "
            f"before the cache's {cached.index[-1].date()}; not replaced"
        )
    return Merge(fresh, Status.REPAIRED, int((fresh.index > cached.index[-1]).sum()), difference[0], difference[1])
