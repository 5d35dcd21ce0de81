"""The market's table of each session: asked from the vendor once, kept in Redis, and judged
as a whole before any of its rows is appended.

A session's table is kept in ``ohlcv:table:{source}:{session}`` for ``TABLE_KEPT``, so every run
of the session and every later catch-up reads it from Redis. A kept table that is preliminary
(read on the session's evening) is asked again only when the vendor says a final one can be
had now (``Source.settles``: for FinanceDataReader, the next day's file between 01:30 and 09:00
KST); a final one is never asked again. Within one run a session is asked at most once: what
came of it (kept, missing, refused) is noted in ``ohlcv:run:{run_id}:tables``.

The public table files carry no date column, so a file is trusted only as far as its data
shows it describes the session: ``judge`` refuses a table in which more than ``REFUSE_SHARE``
of the continuing codes (at least ``REFUSE_MIN``) break continuity, are missing or have bad rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from contextvars import ContextVar

from ohlcv.errors import BadOhlcvData, SourceUnavailable, TableMissing
from ohlcv.snapshot import Snapshot
from ohlcv.sources.base import Source
from ohlcv.store import OhlcvStore

log = logging.getLogger(__name__)

#: a table is refused as a whole when more than this share of the continuing codes cannot use it
#: (real KRX days: at most 7 corporate actions and 2 delistings among 2,900 codes, 0.3 %) ...
REFUSE_SHARE = 0.05
#: ... and at least this many: a few named tickers that break are handed on one by one instead
REFUSE_MIN = 5


#: whether an outage of a table call is raised for the caller to retry (an Airflow task with
#: tries left) rather than counted as a missing table the tickers wait for
_RETRYING: ContextVar[bool] = ContextVar("retrying_outages", default=False)


@contextlib.contextmanager
def retrying_outages(retry: bool = True) -> Iterator[None]:
    """Within the block, ``get`` lets an outage through (``SourceUnavailable``) when ``retry``."""
    token = _RETRYING.set(retry)
    try:
        yield
    finally:
        _RETRYING.reset(token)


class TableRefused(BadOhlcvData):
    """A table whose data shows it does not describe its session (or is truncated): not applied."""


def too_many(unusable: int, continuing: int) -> bool:
    """Whether ``unusable`` of ``continuing`` codes are enough to refuse a table as a whole."""
    return unusable >= REFUSE_MIN and unusable > REFUSE_SHARE * continuing


def get(store: OhlcvStore, source: Source, session: dt.date, now: dt.datetime, run_id: str) -> Snapshot:
    """The best table of ``session`` to be had now: the kept one, unless it is preliminary and
    the vendor would give the final one now; raises ``TableMissing`` (also for an outage or an
    unreadable answer, with the reason) when there is none; inside ``retrying_outages`` an
    outage is let through (``SourceUnavailable``) for the task to be retried.

    Keeps what the vendor answered (the listing is the caller's: ``planning.listing``, and
    a table applied by the snapshot step).
    """
    kept = store.saved_table(source.name, session)
    if kept is not None and (kept.final or not source.settles(session, now)):
        return kept
    noted = store.run_tables(run_id).get(session.isoformat(), "")
    if noted.startswith(("missing", "refused")):
        if kept is not None:
            return kept
        raise TableMissing(noted.partition(": ")[2] or noted)
    try:
        fetched = source.table(session)
        if fetched.session != session:
            raise BadOhlcvData(f"asked for the table of {session}, the vendor's says it is of {fetched.session}")
    except (SourceUnavailable, BadOhlcvData) as exc:
        if kept is not None:
            log.info("the final table of %s is not to be had yet (%s); using the evening's", session, exc)
            return kept
        if _RETRYING.get() and not isinstance(exc, (TableMissing, BadOhlcvData)):
            raise  # an outage, with tries left: asked again before any ticker is made to wait
        store.note_table(run_id, session, f"missing: {exc}")
        if isinstance(exc, TableMissing):
            raise
        raise TableMissing(f"{type(exc).__name__}: {exc}") from exc
    store.save_table(fetched)
    log.info(
        "%s table of %s: %d codes, %s", source.name, session, len(fetched.frame),
        "final" if fetched.final else "preliminary (volumes before the after-hours session)",
    )  # fmt: skip
    return fetched


def refuse(store: OhlcvStore, table: Snapshot, run_id: str, reason: str) -> None:
    """Forget a table whose data contradicts its session, so later runs ask for it again."""
    store.drop_table(table.source, table.session)
    store.note_table(run_id, table.session, f"refused: {reason}")
    log.warning("the %s table of %s is not applied: %s", table.source, table.session, reason)


def deadline(session: dt.date, at: dt.time, timezone: str) -> dt.datetime:
    """When a missing table of ``session`` turns a run red: ``at`` on the session's day in ``timezone``."""
    from zoneinfo import ZoneInfo

    return dt.datetime.combine(session, at, ZoneInfo(timezone))


def overdue(notes: dict[str, str], moment: dt.datetime, at: dt.time, timezone: str) -> list[str]:
    """The sessions whose table a run found missing or refused and whose deadline has passed."""
    return sorted(
        day
        for day, note in notes.items()
        if note.startswith(("missing", "refused")) and moment >= deadline(dt.date.fromisoformat(day), at, timezone)
    )
