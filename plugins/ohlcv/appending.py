"""The snapshot step: append the market's daily table to every ticker it continues (no
history fetched) and hand the rest on to ``index_ticker``, each with why."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from ohlcv import calendar
from ohlcv.keys import is_index
from ohlcv.planning import Plan
from ohlcv.snapshot import Snapshot, extender
from ohlcv.status import Status
from ohlcv.store import OhlcvStore
from ohlcv.validation import validate_snapshot

log = logging.getLogger(__name__)

#: handed-on tickers named one per log line; the rest are counted
LOGGED_PER_REASON = 50


@dataclass(frozen=True)
class SnapshotResult:
    """What the market snapshot did for a run's tickers.

    :param session: the session of the snapshot that was applied (None: none was)
    :param appended: tickers moved forward by their snapshot row
    :param handed_on: every other ticker of the plan's ``to_index``, with why its history is fetched
    """

    session: str | None
    appended: list[str]
    handed_on: dict[str, str]

    @property
    def to_fetch(self) -> list[str]:
        return list(self.handed_on)


def _why_fetched(plan: Plan, code: str) -> str:
    """Why a ticker the snapshot cannot be asked about needs its history."""
    last = plan.last.get(code)
    if last is None:
        return "not cached yet (a new listing, or the first fill): history fetched"
    if is_index(code):
        return "an index symbol (not in the market snapshot): history fetched"
    return f"cached through {last}, more than one session behind: history fetched"


def apply_snapshot(
    store: OhlcvStore, snapshot: Snapshot | None, plan: Plan, run_id: str, *, use: bool = True
) -> SnapshotResult:
    """Append the snapshot's row to every ticker of the plan it continues; hand on the rest.

    A row is appended when the ticker is cached through exactly the session before the
    snapshot's, the snapshot is of the run's ``as_of``, and its base price equals the cached
    last Close (see ``ohlcv.snapshot``). Rows are validated as one table first: a bad row
    hands on only its ticker, with the reason; a snapshot of the wrong session is not used
    at all. Writes go in batches, each one transaction with the tickers' ``lastUpdateAt``
    entries and results (``OhlcvStore.extend_many``).
    """
    as_of = dt.date.fromisoformat(plan.as_of)
    candidates = set(plan.one_behind)
    handed_on = {code: _why_fetched(plan, code) for code in plan.to_index if code not in candidates}
    if not candidates:
        return SnapshotResult(None, [], handed_on)
    unusable = _unusable(snapshot, as_of, use)
    if unusable:
        return SnapshotResult(None, [], {**handed_on, **dict.fromkeys(plan.one_behind, unusable)})
    good, bad = validate_snapshot(snapshot.frame)
    eligible = []
    for code in plan.one_behind:
        if code in bad:
            handed_on[code] = f"bad snapshot row: {bad[code]}: history fetched"
        elif code not in good.index:
            handed_on[code] = f"not in the snapshot of {snapshot.session}: history fetched"
        else:
            eligible.append(code)
    extend = extender(good, snapshot.session, calendar.previous_session(snapshot.session), snapshot.source)
    appended = []
    for outcome in store.extend_many(eligible, extend, run_id=run_id, status=Status.APPENDED):
        if outcome.blob is None:
            handed_on[outcome.code] = outcome.reason
        else:
            appended.append(outcome.code)
    return SnapshotResult(
        snapshot.session.isoformat(), appended, {code: handed_on[code] for code in plan.to_index if code in handed_on}
    )


def _unusable(snapshot: Snapshot | None, as_of: dt.date, use: bool) -> str:
    """Why no row of ``snapshot`` may be appended in a run as of ``as_of`` ("" when they may)."""
    if not use:
        return "the snapshot is turned off for this run: history fetched"
    if snapshot is None:
        return "no market snapshot could be read: history fetched"
    if not calendar.is_session(snapshot.session):
        return f"the snapshot says it is of {snapshot.session}, not an XKRX session: history fetched"
    if snapshot.session != as_of:
        return f"the vendor's latest snapshot is of {snapshot.session}, not {as_of}: history fetched"
    return ""


def log_handed_on(result: SnapshotResult) -> None:
    """One line per handed-on ticker with its reason; the common reasons as one line each."""
    by_reason: dict[str, list[str]] = {}
    for code, reason in result.handed_on.items():
        by_reason.setdefault(reason, []).append(code)
    for reason, codes in by_reason.items():
        if len(codes) == 1:
            log.info("%s: %s", codes[0], reason)
            continue
        shown = ", ".join(codes[:LOGGED_PER_REASON])
        more = f" and {len(codes) - LOGGED_PER_REASON} more" if len(codes) > LOGGED_PER_REASON else ""
        log.info("%d tickers %s: %s%s", len(codes), reason.removesuffix(": history fetched"), shown, more)
