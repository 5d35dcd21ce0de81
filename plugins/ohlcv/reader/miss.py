"""A reader's miss: the cached history is missing or ends before the read, so the vendor may
be asked, once per ticker however many processes miss it together.

The one reader holding ``ohlcv:fill:{code}`` (a redis-py ``Lock``) fetches and stores through
``ohlcv.reader.fill``; the others wait for it and read what it stored. A ticker the vendor had nothing
newer for is marked in ``ohlcv:checked:{code}`` for ``CHECKED_TTL``, and one the indexer found
without data stays in ``ohlcv:inactive``, so readers stop asking. ``MissPath`` is the part of
``ohlcv.reader.cache.OhlcvCache`` that does this.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import TYPE_CHECKING

import pandas as pd
import redis

from ohlcv import calendar, codec
from ohlcv.errors import HistoryDisagrees, NoData, SourceUnavailable
from ohlcv.keys import KeySpace
from ohlcv.reader import frames
from ohlcv.store import OhlcvStore
from ohlcv.store.base import ms

if TYPE_CHECKING:  # the vendors, validation and the indexer load on the first miss only
    from ohlcv.sources import Source

# the reader's lines keep the logger name deployments know the reader by
log = logging.getLogger("ohlcv.reader.cache")

#: after a miss found nothing newer at the vendor, readers do not ask again for this long
CHECKED_TTL = dt.timedelta(hours=1)


class MissPath:
    """Whole histories for ``OhlcvCache``: from Redis (its ``_get``), filled from the vendor on a miss."""

    store: OhlcvStore
    client: redis.Redis
    read_client: redis.Redis
    keys: KeySpace
    source: Source
    read_only: bool
    fill_timeout: dt.timedelta

    def _full(self, code: str, last: dt.date) -> tuple[bytes, codec.Columns]:
        """The cached history of ``code`` covering ``last`` (its bytes and columns), filled from
        the vendor if needed."""
        blob = self._get(self.keys.series(code))
        if blob is not None:
            columns = frames.columns_from_cached(code, blob)
            if columns.last_date() >= last or self.read_only or self._settled(code, last, columns.last_date()):
                return blob, columns
        if self.read_only:
            raise NoData(f"{code} is not cached, and this reader is read-only: no vendor call")
        return self._fill(code, last)

    def _settled(self, code: str, last: dt.date, held: dt.date) -> bool:
        """Whether asking the vendor again cannot help now: the ticker is delisted and cached
        through its last session (``held``: the cached last session), was found without data
        (inactive), or a reader found nothing newer within ``CHECKED_TTL`` (one round trip)."""
        with self.read_client.pipeline(transaction=False) as pipe:
            pipe.hget(self.keys.delisted, code)
            pipe.hget(self.keys.inactive, code)
            pipe.get(self.keys.checked(code))
            delisted, inactive, checked = pipe.execute()
        if delisted is not None and held.isoformat() >= json.loads(delisted)["last"]:
            return True
        if inactive is not None and dt.date.fromisoformat(json.loads(inactive)["checked"]) >= last:
            return True
        return checked is not None and dt.date.fromisoformat(checked.decode()) >= last

    def _fill(self, code: str, last: dt.date) -> tuple[bytes, codec.Columns]:
        """Fetch ``code`` from the vendor once, however many processes miss it at the same time."""
        self._raise_if_known_empty(code, last)
        lock = self.client.lock(
            self.keys.fill_lock(code),
            timeout=self.fill_timeout.total_seconds(),
            blocking_timeout=self.fill_timeout.total_seconds(),
        )
        if not lock.acquire():
            raise SourceUnavailable(f"{code}: another reader has been fetching it for {self.fill_timeout}")
        try:
            blob = self.client.get(self.keys.series(code))  # a reader ahead of us may have filled it
            if blob is not None:
                columns = frames.columns_from_cached(code, blob)
                if columns.last_date() >= last or self._settled(code, last, columns.last_date()):
                    return blob, columns
            self._raise_if_known_empty(code, last)
            from ohlcv.reader.fill import fill

            # One fetch serves every later window: store through the newest complete session.
            newest = max(last, calendar.last_complete_session(pd.Timestamp.now(tz="UTC")))
            try:
                outcome = fill(self.store, self.source, code, newest)
            except NoData:
                self._checked(code, newest)
                raise
            except HistoryDisagrees as exc:
                if blob is None:
                    raise
                log.warning(
                    "%s: %s; returning the cached rows through %s: the indexer's next run replaces the history",
                    code, exc, columns.last_date(),
                )  # fmt: skip
                self._checked(code, newest)
                return blob, columns
            if outcome.last_date < newest:  # the vendor has nothing newer (a halt)
                self._checked(code, newest)
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:
                log.warning("%s: the fill lock expired before the fetch finished", code)
        blob = self.client.get(self.keys.series(code))
        if blob is None:
            raise NoData(f"{code}: nothing cached after fetching it")
        return blob, codec.decode_columns(blob)

    def _checked(self, code: str, newest: dt.date) -> None:
        """Let readers stop asking the vendor about ``code`` for ``CHECKED_TTL``."""
        self.client.set(self.keys.checked(code), newest.isoformat(), px=ms(CHECKED_TTL))

    def _raise_if_known_empty(self, code: str, last: dt.date) -> None:
        """A code recently found without any data is not asked for again (``NoData`` at once):
        for ``INACTIVE_RECHECK`` after the indexer found it so, ``CHECKED_TTL`` after a reader did."""
        from ohlcv.status import INACTIVE_RECHECK

        if self.client.exists(self.keys.series(code)):
            return
        _, inactive = self.store.state_of([code])
        record = inactive.get(code)
        if record is not None and last - dt.date.fromisoformat(record["checked"]) < INACTIVE_RECHECK:
            raise NoData(f"{code}: {record['reason']} (checked {record['checked']})")
        checked = self.client.get(self.keys.checked(code))
        if checked is not None and dt.date.fromisoformat(checked.decode()) >= last:
            raise NoData(f"{code}: the vendor had no data for it when a reader asked, within the last {CHECKED_TTL}")
