"""What happened to one ticker in one run: one vocabulary for merge, the indexer, the run's
results hash (``ohlcv:run:{run_id}:results``), the run record and the CLI."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum


class Status(StrEnum):
    """One ticker's outcome in a run; the value is what Redis and the logs show."""

    #: the history was fetched and new sessions (or a whole new ticker) were stored
    WRITTEN = "written"
    #: the session's row was appended from the market's daily snapshot; no history was fetched
    APPENDED = "appended"
    #: the vendor's history differs from the cache (a split, a dividend, a correction): replaced
    REPAIRED = "repaired"
    #: already cached through the run's session; the vendor was not asked
    CURRENT = "current"
    #: the vendor was asked and had nothing newer than the cache (a halt, a late vendor)
    UNCHANGED = "unchanged"
    #: the vendor knows nothing about the code
    NO_DATA = "no_data"
    #: the vendor's history ends long before the run's session: delisted or suspended
    INACTIVE = "inactive"
    #: preliminary volumes replaced by the session's final ones (no other change)
    SETTLED = "settled"
    #: needs only a market table the vendor has not published yet: a later run appends it
    WAITING = "waiting"
    #: needs its history, but the run's history budget was spent: the next run fetches it
    DEFERRED = "deferred"


#: a ticker recorded as inactive (no data, delisted, suspended) is asked again after this long,
#: by the indexer's plan and by a reader's miss alike
INACTIVE_RECHECK = dt.timedelta(days=7)

#: outcomes in which the vendor served a history reaching past what the cache held
SERVED: frozenset[Status] = frozenset({Status.WRITTEN, Status.REPAIRED})
#: outcomes that leave nothing to index until the ticker is asked again
WITHOUT_DATA: frozenset[Status] = frozenset({Status.NO_DATA, Status.INACTIVE})
#: outcomes of a ticker left behind on purpose, for a later run: it lags, but has not failed
POSTPONED: frozenset[Status] = frozenset({Status.WAITING, Status.DEFERRED})


def is_current(last: dt.date | None, as_of: dt.date) -> bool:
    """Whether a ticker cached through ``last`` (None: not cached) needs nothing for a run as of ``as_of``."""
    return last is not None and last >= as_of
