"""The universe record kept by the indexer (``ohlcv.universe``): every market table a run reads
is recorded, a code that leaves the table is marked delisted, and the vendor's delisting listing
gives the date and reason; ``backfill`` records the sessions before the indexer began.

Recording costs no vendor call: the tables are the ones the run reads anyway. The delisting
listing is one call, made only by a run that has delisted codes without a reason yet, at most
once per session.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ohlcv import calendar, codec
from ohlcv.errors import BadOhlcvData, OhlcvError, SourceUnavailable, TableMissing
from ohlcv.snapshot import Snapshot
from ohlcv.store import OhlcvStore, UniverseChange
from ohlcv.universe import Delisting

log = logging.getLogger(__name__)

#: a delisted code whose reason the delisting listing has not given this many days after its
#: last session is not asked about again
EXPLAINED_WITHIN = dt.timedelta(days=30)
#: ``backfill`` stops going back after this many sessions in a row without a table
ARCHIVE_END_AFTER = 10
#: tables recorded per transaction by ``backfill`` (and one progress line each)
BACKFILL_BATCH = 20
#: series read per round trip when ``backfill`` looks for listed codes' first sessions
FIRST_SESSIONS_BATCH = 200


def listing_of(table: Snapshot) -> dict[str, str]:
    """Code -> market of every valid code a table lists."""
    markets = dict(zip(table.frame.index, table.frame["Market"], strict=True))
    return {code: str(markets[code]) for code in table.codes()}


def record(store: OhlcvStore, tables: list[Snapshot]) -> UniverseChange | None:
    """Record the listing of each table (one transaction); log the codes that left or came back."""
    if not tables:
        return None
    change = store.record_tables([(table.session, listing_of(table)) for table in tables])
    for code in change.delisted:
        log.info("%s is no longer listed: marked delisted (its cached history stays as it is)", code)
    for code in change.relisted:
        log.info("%s is listed again: no longer marked delisted", code)
    return change


def explain_delisted(store: OhlcvStore, source, session: dt.date) -> list[str]:
    """Ask the vendor's delisting listing once for the delisted codes without a reason (at most
    once per session); return the codes it explained. Never fails the caller."""
    marks = store.delisted()
    pending = [
        code
        for code, mark in marks.items()
        if "delisted" not in mark
        and mark.get("checked", "") < session.isoformat()
        and session - dt.date.fromisoformat(mark["last"]) <= EXPLAINED_WITHIN
    ]
    if not pending or not hasattr(source, "delistings"):
        return []
    try:
        details = source.delistings()
        wanted = set(pending)
        latest: dict[str, Delisting] = {item.code: item for item in details if item.code in wanted}
        explained = store.note_delistings(latest.values(), session)
    except (OhlcvError, NotImplementedError) as exc:
        log.info("the delisting listing is not to be had now (%s); %d delisted codes wait for it", exc, len(pending))
        return []
    except Exception:  # what the listing says is a detail: it never fails the run
        log.warning(
            "the delisting listing could not be used; %d delisted codes wait for it", len(pending), exc_info=True
        )
        return []
    for code in explained:
        item = latest[code]
        log.info("%s delisted on %s (%s): %s", code, item.delisted, item.market, item.reason or "no reason given")
    return explained


@dataclass(frozen=True)
class BackfillReport:
    """What ``backfill`` recorded, and how far back the record is exact.

    :param exact_from: every session from this one through the newest recorded is recorded
    :param archive_from: the oldest session whose table the vendor gave (None: none)
    :param missing: sessions inside the record the vendor had no readable table of: gaps, answered
        from the recorded sessions around them
    :param inferred: codes given spans before the first recorded session (the delisting listing,
        listed codes' first cached sessions)
    :param unknown_start: listed codes whose first session before the record is unknown (not cached)
    """

    recorded: list[str]
    missing: list[str]
    exact_from: dt.date | None
    oldest: dt.date | None
    newest: dt.date | None
    archive_from: dt.date | None
    delisted_named: int = 0
    inferred: int = 0
    unknown_start: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if self.oldest is None:
            return ["no session is recorded: the vendor gave no table"]
        lines = [
            f"recorded {len(self.recorded)} sessions now; the record holds {self.oldest} to {self.newest}",
            f"exact from {self.exact_from}: every session from then on is its market table",
        ]
        if self.missing:
            shown = " ".join(self.missing[:10]) + (" ..." if len(self.missing) > 10 else "")
            lines.append(f"{len(self.missing)} sessions inside the record without a table (gaps): {shown}")
        lines.append(
            f"before {self.oldest}: {self.delisted_named} delisted codes from the delisting listing and "
            f"{self.inferred} codes in all with spans from it or from their first cached session (not exact); "
            f"{len(self.unknown_start)} listed codes of unknown start are left out there"
        )
        return lines


def backfill(
    store: OhlcvStore,
    source,
    newest: dt.date,
    *,
    since: dt.date | None = None,
    progress: Callable[[str], None] = log.info,
    bar: Callable[[list, int, str], Iterable] | None = None,
) -> BackfillReport:
    """Record every session from ``newest`` back to ``since`` (None: as far as the vendor's
    archive reaches) that is not recorded yet, newest first, ``BACKFILL_BATCH`` tables a
    transaction; then take the vendor's delisting listing and listed codes' first cached
    sessions for what lies before the first recorded session.

    An outage stops it (``SourceUnavailable``) with every batch before it kept; asked again,
    it goes on where it stopped. Going back past the oldest recorded session, it stops after
    ``ARCHIVE_END_AFTER`` sessions in a row without a table. ``progress`` says where it is, a
    line every batch; ``bar(sessions, total, what)`` wraps the sessions, for a progress bar.
    """
    first = since or dt.date.fromisoformat(calendar.FIRST_DAY)
    recorded = store.universe_record()
    wanted = [day.date() for day in reversed(calendar.sessions(first, newest)) if not recorded.is_recorded(day.date())]
    oldest = recorded.oldest
    done, batch, without = [], [], 0
    archive_from = oldest
    shown = wanted if bar is None else bar(wanted, len(wanted), "sessions")
    for position, session in enumerate(shown, 1):
        try:
            table = _table(source, session)
        except TableMissing as exc:
            without += 1
            log.info("no table of %s: %s", session, exc)
            if (oldest is None or session < oldest) and without >= ARCHIVE_END_AFTER:
                progress(f"the vendor has no table of the {without} sessions before {session + dt.timedelta(days=1)}: "
                         "its archive ends there")  # fmt: skip
                break
            continue
        except SourceUnavailable:
            _flush(store, batch, done)
            raise
        without = 0
        archive_from = session if archive_from is None else min(archive_from, session)
        batch.append(table)
        if len(batch) == BACKFILL_BATCH:
            _flush(store, batch, done)
            progress(f"recorded {len(done)} sessions, back to {session} ({position} of {len(wanted)} asked)")
    _flush(store, batch, done)
    named, inferred, unknown = _before_the_record(store, source, progress)
    after = store.universe_record()
    gaps = [day.isoformat() for day in after.gaps()]
    return BackfillReport(
        done, gaps, after.exact_from(), after.oldest, after.newest, archive_from, named, inferred, unknown
    )


def _table(source, session: dt.date) -> Snapshot:
    """The table of ``session`` from the vendor, else from its second table source; a table
    that cannot be read is missing."""
    sources = [source, *([source.second] if getattr(source, "second", None) is not None else [])]
    reasons = []
    for vendor in sources:
        try:
            table = vendor.table(session)
        except (TableMissing, BadOhlcvData) as exc:
            reasons.append(f"{vendor.name}: {exc}")
            continue
        if table.session != session:
            reasons.append(f"{vendor.name}: its table is of {table.session}")
            continue
        return table
    raise TableMissing("; ".join(reasons))


def _flush(store: OhlcvStore, batch: list[Snapshot], done: list[str]) -> None:
    if batch:
        record(store, batch)
        done.extend(table.session.isoformat() for table in batch)
        batch.clear()


def _before_the_record(store: OhlcvStore, source, progress) -> tuple[int, int, list[str]]:
    """Spans before the first recorded session: delisted codes from the delisting listing,
    listed codes from their first cached session. Returns (delisted codes named, codes given
    spans, listed codes of unknown start)."""
    claims, details = [], []
    if hasattr(source, "delistings"):
        try:
            details = source.delistings()
        except NotImplementedError:
            details = []
        except TableMissing as exc:
            progress(f"no delisting listing: {exc}")
        for item in details:
            claims.append((item.code, item.listed, item.last, item.market))
    record_ = store.universe_record()
    oldest = record_.oldest
    unknown = []
    if oldest is not None:
        starting = [code for code, spans in record_.spans.items() if spans[0].first == oldest]
        firsts = _first_sessions(store, starting)
        for code in starting:
            if code in firsts and firsts[code] < oldest:
                claims.append((code, firsts[code], None, record_.spans[code][0].market))
            elif code not in firsts:
                unknown.append(code)
    latest = {}
    for item in details:
        latest[item.code] = item  # oldest first: the latest delisting of a code wins
    change = store.infer_listings(claims, details=latest.values())
    progress(f"before the record: {len(latest)} delisted codes from the delisting listing, {change.changed} codes "
             f"given spans, {len(unknown)} listed codes of unknown start")  # fmt: skip
    return len(latest), change.changed, sorted(unknown)


def _first_sessions(store: OhlcvStore, codes: list[str]) -> dict[str, dt.date]:
    """The first cached session of each of ``codes`` that is cached and readable."""
    firsts = {}
    for start in range(0, len(codes), FIRST_SESSIONS_BATCH):
        chunk = codes[start : start + FIRST_SESSIONS_BATCH]
        for code, blob in zip(chunk, store.client.mget([store.keys.series(code) for code in chunk]), strict=True):
            if blob is None:
                continue
            try:
                days = codec.decode_columns(blob).days
            except BadOhlcvData:
                continue
            firsts[code] = dt.date(1970, 1, 1) + dt.timedelta(days=int(days[0]))
    return firsts
