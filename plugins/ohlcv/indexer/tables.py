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

With a second table source (the KRX Open API, when a key is configured), a session the first
has no table of is asked from the second, and every final table the first gave is compared
with the second's once (``cross_check``): the codes whose values differ are kept in
``ohlcv:quality`` with both values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import math
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from ohlcv.errors import BadOhlcvData, SourceUnavailable, TableMissing
from ohlcv.snapshot import COLUMNS, Snapshot
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


def refusing(kind: str, reason: Callable[[int, int], str]) -> Callable[[list], None]:
    """A guard for a batch of extensions from one table: ``TableRefused`` with ``reason(count,
    total)`` when too many of the outcomes are of ``kind`` for the table to be the session's."""

    def guard(outcomes: list) -> None:
        count = sum(1 for outcome in outcomes if outcome.kind == kind)
        if too_many(count, len(outcomes)):
            raise TableRefused(reason(count, len(outcomes)))

    return guard


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
        fetched = _ask(source, session)
    except (SourceUnavailable, BadOhlcvData) as exc:
        if kept is not None:
            log.info("the final table of %s is not to be had yet (%s); using the evening's", session, exc)
            return kept
        if _RETRYING.get() and not isinstance(exc, (TableMissing, BadOhlcvData)):
            raise  # an outage, with tries left: asked again before any ticker is made to wait
        fetched, why = _from_second(store, source, session, run_id, exc)
        if fetched is None:
            store.note_table(run_id, session, f"missing: {why}")
            if isinstance(exc, TableMissing) and why == str(exc):
                raise
            raise TableMissing(why) from exc
    store.save_table(fetched)
    log.info(
        "%s table of %s: %d codes, %s", source.name, session, len(fetched.frame),
        "final" if fetched.final else "preliminary (volumes before the after-hours session)",
    )  # fmt: skip
    return fetched


def _ask(source: Source, session: dt.date) -> Snapshot:
    fetched = source.table(session)
    if fetched.session != session:
        raise BadOhlcvData(f"asked for the table of {session}, the vendor's says it is of {fetched.session}")
    return fetched


def _from_second(
    store: OhlcvStore, source: Source, session: dt.date, run_id: str, failure: Exception
) -> tuple[Snapshot | None, str]:
    """The table of ``session`` from the second table source when the first has none (kept under
    the first's name, as the first's would be), or None with both reasons."""
    why = str(failure) if isinstance(failure, TableMissing) else f"{type(failure).__name__}: {failure}"
    second = getattr(source, "second", None)
    if second is None:
        return None, why
    try:
        table = _ask(second, session)
    except (SourceUnavailable, BadOhlcvData) as exc:
        log.info("no table of %s from %s either: %s", session, second.name, exc)
        return None, f"{why}; {second.name}: {exc}"
    log.warning("the %s table of %s is missing (%s): using %s's", source.name, session, why, second.name)
    store.note_table(run_id, session, f"second: from {second.name}, {source.name}'s missing: {why}")
    store.note_cross_check(session, {"second": second.name, "served": True, "codes": len(table.frame)})
    return dataclasses.replace(table, source=source.name), why


def cross_check(store: OhlcvStore, source: Source, sessions: list[dt.date]) -> dict[str, int]:
    """Compare the kept final tables of ``sessions`` with the second table source's, once per
    session, recording every code whose values differ (or that only one lists) in
    ``ohlcv:quality`` with both values. Returns session -> differing codes, for the sessions
    compared now; a session the second source has no table of yet is compared by a later run.
    Never fails the caller: a failed comparison is logged and tried again later."""
    second = getattr(source, "second", None)
    if second is None:
        return {}
    checked = store.cross_checked()
    compared = {}
    for session in sessions:
        kept = store.saved_table(source.name, session)
        if session.isoformat() in checked or kept is None or not kept.final:
            continue
        try:
            other = _ask(second, session)
        except (SourceUnavailable, BadOhlcvData) as exc:
            log.info("the %s table of %s is not cross-checked yet: %s", second.name, session, exc)
            continue
        differing = disagreements(kept, other)
        store.record_disagreements(session, source.name, second.name, differing)
        store.note_cross_check(session, {"second": second.name, "codes": len(kept.frame), "differing": len(differing)})
        if differing:
            log.warning(
                "the %s and %s tables of %s differ for %d codes (ohlcv:quality), e.g. %s",
                source.name, second.name, session, len(differing), ", ".join(row["code"] for row in differing[:5]),
            )  # fmt: skip
        compared[session.isoformat()] = len(differing)
    return compared


def disagreements(first: Snapshot, second: Snapshot) -> list[dict]:
    """Every code whose values differ between two tables of one session, with both values
    (None for a code only one lists), in code order."""
    columns = [name for name in COLUMNS if name != "Market"]
    a, b = first.frame[columns], second.frame[columns]
    rows = []
    for code in sorted(set(a.index) | set(b.index)):
        left = a.loc[code].to_dict() if code in a.index else None
        right = b.loc[code].to_dict() if code in b.index else None
        if left is not None and right is not None:
            fields = [name for name in columns if not _same(left[name], right[name])]
            if not fields:
                continue
            left, right = {name: left[name] for name in fields}, {name: right[name] for name in fields}
        rows.append({"code": str(code), "first": _plain(left), "second": _plain(right)})
    return rows


def _same(x, y) -> bool:
    try:
        return float(x) == float(y) or (math.isnan(float(x)) and math.isnan(float(y)))
    except (TypeError, ValueError):
        return str(x) == str(y)


def _plain(values: dict | None) -> dict | None:
    if values is None:
        return None
    return {name: (value.item() if hasattr(value, "item") else value) for name, value in values.items()}


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
