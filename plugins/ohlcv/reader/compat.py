"""``getOHLCV(ticker, start, end)``: the old reader's function, served from the cache.

Forward-test code written against the old job changes one import (``from ohlcv import
getOHLCV``) and keeps its calls. Every call reads through one ``OhlcvCache`` per process,
built at the first call from ``OHLCV_REDIS_URL`` (``OHLCV_SOURCE`` and ``OHLCV_KEY_PREFIX``
apply as everywhere): a hit costs a Redis read, a miss is fetched from the vendor once and
stored for every later reader.

The frame has FinanceDataReader's shape for a KRX stock: a ``DatetimeIndex`` named ``Date``
and the columns Open, High, Low, Close, Volume (int64) and Change (float64), exactly what
``ohlcv.sources.fdr`` gives for the same data. Two differences from calling
FinanceDataReader directly: the index is ``datetime64[ns]`` (FinanceDataReader under pandas 3
gives ``datetime64[us]``), and an index symbol has only these six columns. An open or future
end is cut at the published ``getOHLCV_lastUpdateAt``, as ``OhlcvCache.get`` does.
"""

from __future__ import annotations

import datetime as dt
import re
import threading

import numpy as np
import pandas as pd

from ohlcv import calendar
from ohlcv.errors import InvalidDate
from ohlcv.keys import DateLike, to_date
from ohlcv.reader.cache import OhlcvCache

# FinanceDataReader reads a bare year or year-month as its first day ("1900" is what the old
# job passed for "from the beginning")
_YEAR_MONTH = re.compile(r"([0-9]{4})(?:-([0-9]{1,2}))?")
_FIRST_SESSION = dt.date.fromisoformat(calendar.FIRST_DAY)

_cache: OhlcvCache | None = None
_building = threading.Lock()


def shared_cache() -> OhlcvCache:
    """The process's ``OhlcvCache`` behind ``getOHLCV``, built from the environment at first use."""
    global _cache
    with _building:
        if _cache is None:
            _cache = OhlcvCache.from_url()
        return _cache


def _date(value: DateLike | np.datetime64 | None) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, str) and (match := _YEAR_MONTH.fullmatch(value.strip())):
        try:
            return dt.date(int(match[1]), int(match[2] or 1), 1)
        except ValueError as exc:
            raise InvalidDate(f"invalid date {value!r}: {exc}") from None
    return to_date(value)


def getOHLCV(  # noqa: N802 - the old reader's name, kept so callers change only the import
    ticker: str, start: DateLike | None = None, end: DateLike | None = None
) -> pd.DataFrame:
    """Daily OHLCV of ``ticker`` from ``start`` to ``end`` (both inclusive; None: open).

    Dates may be ``2022-9-12``, ``2022-09-12``, ``20220912``, ``2022``, ``date``, ``datetime``
    or ``Timestamp``. A start before the first session this package knows (the old job's
    ``"1900"``) reads the whole history. Raises ``InvalidTicker`` / ``InvalidDate`` (both
    ``ValueError``) for bad input, ``NoData`` when the vendor has nothing for the code,
    ``SourceUnavailable`` when a miss cannot be fetched.
    """
    first, last = _date(start), _date(end)
    if first is not None and last is not None and first > last:
        raise InvalidDate(f"start {first.isoformat()} is after end {last.isoformat()}")
    if first is not None and first <= _FIRST_SESSION:
        first = None  # the whole history, not a period key holding a copy of it
    return shared_cache().get(ticker, first, last)
