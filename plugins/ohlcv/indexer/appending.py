"""The snapshot step: bring every ticker the market's daily tables continue forward from them
(no history fetched), settle preliminary volumes from final tables, and hand the rest on to
``index_ticker``, each with why, within the run's history budget.

A ticker cached through session s and k sessions behind (k up to ``OHLCV_CATCHUP_SESSIONS``)
gets the tables of the k sessions since, in session order, each row appended only when it
continues the cache (``ohlcv.snapshot.extender``: base price == cached close). A break in any
of them hands the ticker on with that session and the reason. A table that is not published
yet holds its tickers where they are (``waiting``): a later run appends it; only continuity
breaks, new listings, tickers too far behind and index symbols fetch their histories, and at
most ``OHLCV_HISTORY_BUDGET`` of those outside the first fill and ``full_refresh``: the rest are
``deferred`` to the next run, in a stable order. With a second table source, the newest
sessions' final tables are then cross-checked against it (``tables.cross_check``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from ohlcv import calendar
from ohlcv.errors import TableMissing
from ohlcv.indexer import listings, settling, tables
from ohlcv.indexer.planning import Plan
from ohlcv.keys import is_index
from ohlcv.snapshot import Snapshot, extender
from ohlcv.sources.base import Source
from ohlcv.status import Status
from ohlcv.store import OhlcvStore
from ohlcv.validation import validate_snapshot

log = logging.getLogger(__name__)

#: handed-on tickers named one per log line; the rest are counted
LOGGED_PER_REASON = 50
#: the newest sessions whose kept final table is compared with a second table source's
#: (``tables.cross_check``), once each: the next morning's runs find the night's tables there
CROSS_CHECKED = 5


@dataclass(frozen=True)
class SnapshotResult:
    """What the market's tables did for a run's tickers.

    :param session: the newest session whose table was applied (None: none was)
    :param appended: tickers moved forward by table rows
    :param handed_on: the tickers whose history is fetched, with why, in the order they are fetched
    :param waiting: tickers that need only a table not published yet, with which
    :param deferred: tickers that need their history beyond the run's history budget
    :param tables: session -> what was done with its table (``applied``, ``missing: ...``, ``refused: ...``)
    :param settled: rows whose preliminary volume a final table replaced
    """

    session: str | None
    appended: list[str]
    handed_on: dict[str, str]
    waiting: dict[str, str] = field(default_factory=dict)
    deferred: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    settled: int = 0

    @property
    def to_fetch(self) -> list[str]:
        return list(self.handed_on)


def _why_fetched(plan: Plan, code: str) -> str:
    """Why a ticker the tables cannot bring forward needs its history."""
    last = plan.last.get(code)
    if last is None:
        return "not cached yet (a new listing, or the first fill): history fetched"
    if is_index(code):
        return "an index symbol (not in the market's table): history fetched"
    return f"cached through {last}, too many sessions behind for the tables: history fetched"


def apply_snapshot(
    store: OhlcvStore,
    source: Source,
    plan: Plan,
    run_id: str,
    *,
    use: bool = True,
    now: dt.datetime | None = None,
    budget: int | None = None,
) -> SnapshotResult:
    """Bring the plan's ``catchup`` tickers forward from the tables of the sessions they lack,
    settle preliminary rows of the universe where a final table can be had, and hand the rest
    on (see the module docstring).

    :param use: whether the tables are used at all (false: every ticker behind fetches its history)
    :param now: when the tables are asked for (which file holds a final table depends on it)
    :param budget: history calls allowed outside the first fill and ``full_refresh`` (None: no limit)
    """
    now = now or dt.datetime.now(dt.UTC)
    as_of = dt.date.fromisoformat(plan.as_of)
    catchup = set(plan.catchup) if use else set()
    handed_on = {code: _why_fetched(plan, code) for code in plan.to_index if code not in catchup}
    if not use:
        handed_on.update(dict.fromkeys(plan.catchup, "the tables are turned off for this run: history fetched"))
    position = {code: dt.date.fromisoformat(plan.last[code]) for code in plan.to_index if code in catchup}
    waiting: dict[str, str] = {}
    appended: set[str] = set()
    newest = None
    applied: list[Snapshot] = []
    for session in _sessions_needed(position, as_of):
        previous = calendar.previous_session(session)
        candidates = sorted(code for code, day in position.items() if day == previous)
        if not candidates:
            continue
        try:
            table = tables.get(store, source, session, now, run_id)
        except TableMissing as exc:
            waiting.update(dict.fromkeys(candidates, f"the table of {session} is not published yet ({exc}): waiting"))
            _stop(position, candidates)
            continue
        moved, broke, refused = _apply(store, table, candidates, run_id)
        if refused:
            tables.refuse(store, table, run_id, refused)
            waiting.update(dict.fromkeys(candidates, f"the table of {session} was refused ({refused}): waiting"))
            _stop(position, candidates)
            continue
        served = store.run_tables(run_id).get(session.isoformat(), "")
        store.note_table(
            run_id, session, f"applied to {len(moved)} tickers ({'final' if table.final else 'preliminary'})"
            + (f"; {served}" if served.startswith("second:") else ""),
        )  # fmt: skip
        store.save_snapshot(table, asked=session)  # the newest table applied is the market's listing
        applied.append(table)
        newest = session
        for code in moved:
            position[code] = session
        appended.update(moved)
        handed_on.update(broke)
        _stop(position, list(broke))
    for code, day in position.items():
        if day is not None and day < as_of and code not in waiting:
            waiting[code] = f"cached through {day}: waiting for a later table"
    listings.record(store, _recorded(store, source.name, applied, as_of, run_id))
    settled = settling.settle(store, source, plan.universe, as_of, now, run_id)
    if use:
        recent = [day.date() for day in calendar.sessions(as_of - dt.timedelta(days=14), as_of)][-CROSS_CHECKED:]
        tables.cross_check(store, source, recent)
    ordered = _by_priority(plan, handed_on)
    fetch = ordered if budget is None else ordered[:budget]
    deferred = {
        code: f"the run's history budget of {budget} calls is spent: deferred to the next run"
        for code in ordered[len(fetch) :]
    }
    _record_left_behind(store, run_id, waiting, deferred)
    store.record_handed_on(run_id, {code: handed_on[code] for code in fetch})
    return SnapshotResult(
        newest.isoformat() if newest else None, sorted(appended - set(waiting)),
        {code: handed_on[code] for code in fetch}, waiting, deferred, store.run_tables(run_id), settled,
    )  # fmt: skip


def _recorded(store: OhlcvStore, source_name: str, applied: list[Snapshot], as_of: dt.date, run_id: str):
    """The tables whose listing the universe records: those applied, and the listing's table
    (read by the plan, also when no ticker needed it), unless this run refused it."""
    listed = store.saved_snapshot(source_name)
    if listed is None or listed.session > as_of or any(table.session == listed.session for table in applied):
        return applied
    if store.run_tables(run_id).get(listed.session.isoformat(), "").startswith("refused"):
        return applied
    return [*applied, listed]


def _sessions_needed(position: dict[str, dt.date | None], as_of: dt.date) -> list[dt.date]:
    held = [day for day in position.values() if day is not None]
    if not held:
        return []
    return [day.date() for day in calendar.sessions(calendar.next_session(min(held)), as_of)]


def _stop(position: dict[str, dt.date | None], codes: list[str]) -> None:
    """These tickers get no later table in this run."""
    for code in codes:
        position[code] = None


def _apply(store: OhlcvStore, table: Snapshot, candidates: list[str], run_id: str):
    """Append ``table``'s rows to the ``candidates`` it continues; return (appended, handed on
    with why, why the table is refused as a whole or "")."""
    session = table.session
    good, bad = validate_snapshot(table.frame)
    unusable = {
        code: f"bad row in the table of {session}: {bad[code]}: history fetched" for code in candidates if code in bad
    }
    unusable.update(
        {
            code: f"not in the table of {session}: history fetched"
            for code in candidates
            if code not in bad and code not in good.index
        }
    )
    if tables.too_many(len(unusable), len(candidates)):
        return [], {}, f"{len(unusable)} of {len(candidates)} continuing codes are missing from it or have bad rows"
    previous = calendar.previous_session(session)
    extend = extender(good, session, previous, table.source)

    guard = tables.refusing(
        "break",
        lambda breaks, total: (
            f"{breaks} of {total} continuing codes break continuity ({breaks / total:.0%}): "
            f"it most likely describes another session than {session}"
        ),
    )

    eligible = [code for code in candidates if code in good.index]
    marks = None if table.final else (lambda held: sorted({*held, session.isoformat()}))
    try:
        outcomes = store.extend_many(eligible, extend, run_id=run_id, status=Status.APPENDED, marks=marks, guard=guard)
    except tables.TableRefused as exc:
        return [], {}, str(exc)
    moved = [outcome.code for outcome in outcomes if outcome.blob is not None]
    broke = {outcome.code: f"{session}: {outcome.reason}" for outcome in outcomes if outcome.blob is None}
    # the ledger enters each break once the run's history fetch says what it was
    store.note_breaks(run_id, {item.code: item.noted_break(session) for item in outcomes if item.kind == "break"})
    return moved, {**unusable, **broke}, ""


def _by_priority(plan: Plan, handed_on: dict[str, str]) -> list[str]:
    """The handed-on tickers in the order a history budget serves them: index symbols, then the
    tickers the tables found a break in, new listings, the rest; by code within each."""

    def rank(code: str) -> tuple[int, str]:
        reason = handed_on[code]
        if is_index(code):
            return 0, code
        if "base price" in reason or "cannot be read" in reason:
            return 1, code
        return (2 if plan.last.get(code) is None else 3), code

    return sorted(handed_on, key=rank)


def _record_left_behind(store: OhlcvStore, run_id: str, waiting: dict[str, str], deferred: dict[str, str]) -> None:
    statuses = {**dict.fromkeys(waiting, str(Status.WAITING)), **dict.fromkeys(deferred, str(Status.DEFERRED))}
    store.record_postponed(run_id, statuses, {**waiting, **deferred})


def log_handed_on(result: SnapshotResult) -> None:
    """One line per handed-on, waiting or deferred ticker with its reason; the common reasons
    as one line each."""
    by_reason: dict[str, list[str]] = {}
    for code, reason in (*result.handed_on.items(), *result.waiting.items(), *result.deferred.items()):
        by_reason.setdefault(reason, []).append(code)
    for reason, codes in by_reason.items():
        if len(codes) == 1:
            log.info("%s: %s", codes[0], reason)
            continue
        shown = ", ".join(codes[:LOGGED_PER_REASON])
        more = f" and {len(codes) - LOGGED_PER_REASON} more" if len(codes) > LOGGED_PER_REASON else ""
        log.info("%d tickers %s: %s%s", len(codes), reason.removesuffix(": history fetched"), shown, more)
    for day, note in sorted(result.tables.items()):
        log.info("table of %s: %s", day, note)
