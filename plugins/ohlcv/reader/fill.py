"""What a reader may store on a miss: a ticker the cache does not hold yet, or sessions after
the cached ones when the vendor agrees with every cached row.

Replacing a cached history (a repair), deleting period keys and marking a ticker inactive are
the indexer's alone: a forward test run with the wrong ``OHLCV_SOURCE`` against a production
Redis must not be able to rewrite it.
"""

from __future__ import annotations

import datetime as dt
import logging

from ohlcv.keys import validate_ticker
from ohlcv.sources.base import Source
from ohlcv.store import OhlcvStore, WriteOutcome, readable, refuse_to_replace
from ohlcv.validation import against_cache

log = logging.getLogger(__name__)


def fill(store: OhlcvStore, source: Source, code: str, through: dt.date) -> WriteOutcome:
    """Fetch ``code``'s history through ``through`` and store it if a reader may.

    Raises ``SourceMismatch`` (before any vendor call) when the cached series came from
    another vendor, ``HistoryDisagrees`` when the vendor's answer differs from the cached
    rows (the cache is left as it is), ``NoData`` when the vendor knows nothing of a code the
    cache does not hold, and ``SourceUnavailable`` for an empty or truncated answer about a
    cached one.
    """
    code = validate_ticker(code)
    blob = store.client.get(store.keys.series(code))
    cached, unreadable = readable(blob)
    refuse_to_replace(code, blob, unreadable, source.name)
    last = cached.index[-1].date() if cached is not None else None
    fresh = against_cache(code, lambda: source.history(code, None, through), through, last)
    outcome = store.write_series(code, fresh, source.name, repair=False)
    log.info(
        "%s cache miss filled from %s: %s, %d new sessions, %d rows through %s",
        code, source.name, outcome.status, outcome.new_rows, outcome.rows, outcome.last_date,
    )  # fmt: skip
    return outcome
