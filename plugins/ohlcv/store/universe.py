"""The universe family: ``ohlcv:universe`` (code -> listed spans), ``ohlcv:universe:sessions``
(the sessions whose table is recorded) and ``ohlcv:delisted`` (codes no longer listed).

Recording a table is one optimistic transaction over the three keys: the spans, the session
and the delisted marks change together, so a reader never sees a session recorded whose
spans are not. A code is delisted when its last span is closed: it was missing from a later
recorded table (or the vendor's delisting listing says so); it stops being delisted when a
later table lists it again.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from ohlcv.keys import validate_ticker
from ohlcv.store.base import StoreBase, optimistic, text
from ohlcv.universe import Delisting, Record, spans_from_json, spans_to_json

_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class UniverseChange:
    """What recording tables (or inferring spans) changed.

    :param delisted: codes whose last span closed: no longer listed
    :param relisted: codes listed again after being marked delisted
    """

    sessions: list[str]
    changed: int
    delisted: list[str] = field(default_factory=list)
    relisted: list[str] = field(default_factory=list)


class UniverseStore(StoreBase):
    """The universe record and the delisted marks."""

    def universe_record(self) -> Record:
        """The whole record (one round trip)."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.zrange(self.keys.universe_sessions, 0, -1)
            pipe.hgetall(self.keys.universe)
            sessions, spans = pipe.execute()
        return _record(sessions, spans)

    def recorded(self) -> Record:
        """The recorded sessions alone (a record without spans): which sessions are exact."""
        sessions = self.client.zrange(self.keys.universe_sessions, 0, -1)
        return Record(dt.date.fromisoformat(text(day)) for day in sessions)

    def listed_on(self, session: dt.date, market: str = "KRX") -> dict[str, str]:
        """Code -> market of every code the record has listed on ``session`` (``Record.listed``),
        read without building the record: ISO dates compare as strings."""
        day, found = session.isoformat(), {}
        for code, value in self.client.hgetall(self.keys.universe).items():
            for first, last, board in json.loads(value):
                if first <= day and (last is None or day <= last):
                    if market == "KRX" or board == market:
                        found[text(code)] = board
                    break
        return dict(sorted(found.items()))

    def listing_spans(self, code: str):
        """The listed spans of one code (empty: it is not in the record)."""
        value = self.client.hget(self.keys.universe, validate_ticker(code))
        return spans_from_json(value) if value else []

    def known(self, code: str) -> bool:
        """Whether the cache knows ``code`` at all: in the universe record, cached, or in the ledger."""
        code = validate_ticker(code)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hexists(self.keys.universe, code)
            pipe.exists(self.keys.series(code), self.keys.actions(code))
            listed, stored = pipe.execute()
        return bool(listed or stored)

    def recorded_sessions(self) -> tuple[dt.date | None, dt.date | None, int]:
        """The oldest and newest recorded session and how many are recorded (one round trip)."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.zrange(self.keys.universe_sessions, 0, 0)
            pipe.zrange(self.keys.universe_sessions, -1, -1)
            pipe.zcard(self.keys.universe_sessions)
            oldest, newest, count = pipe.execute()
        day = lambda found: dt.date.fromisoformat(text(found[0])) if found else None  # noqa: E731
        return day(oldest), day(newest), int(count)

    def record_tables(self, listings: Iterable[tuple[dt.date, dict[str, str]]]) -> UniverseChange:
        """Record the listing (code -> market) of each session's table, in one transaction."""
        listings = list(listings)

        def change(record: Record) -> set[str]:
            changed: set[str] = set()
            for session, listing in listings:
                changed |= record.record(session, listing)
            return changed

        return self._update(change, [session for session, _ in listings])

    def infer_listings(self, claims: Iterable[tuple[str, dt.date, dt.date | None, str]], details=()) -> UniverseChange:
        """Add what is known of the sessions before the first recorded table: each claim
        ``(code, first, last, market)`` (``Record.infer``); ``details`` (``Delisting``) fill the
        delisted marks of the codes they name."""
        claims = list(claims)

        def change(record: Record) -> set[str]:
            return {code for code, first, last, market in claims if record.infer(code, first, last, market)}

        return self._update(change, [], {item.code: item for item in details})

    def _update(self, change, sessions: list[dt.date], details: dict[str, Delisting] | None = None) -> UniverseChange:
        details = details or {}
        watched = [self.keys.universe, self.keys.universe_sessions, self.keys.delisted]

        def attempt(pipe) -> UniverseChange:
            # a watching pipeline runs each command at once
            record = _record(pipe.zrange(self.keys.universe_sessions, 0, -1), pipe.hgetall(self.keys.universe))
            changed = change(record)
            touched = sorted(changed | set(details))
            marks = dict(zip(touched, pipe.hmget(self.keys.delisted, touched), strict=True)) if touched else {}
            newest = record.newest
            put, gone, relisted = {}, [], []
            for code in touched:
                spans = record.spans.get(code, [])
                mark = json.loads(marks[code]) if marks[code] else None
                if spans and spans[-1].last is None:
                    if mark is not None:
                        gone.append(code)
                        relisted.append(code)
                    continue
                if not spans:
                    continue
                known = details.get(code)
                updated = {**(mark or {}), "last": spans[-1].last.isoformat(), "market": spans[-1].market}
                if known is not None:
                    updated.update(_details(known))
                if newest is not None and spans[-1].last < newest:
                    updated.setdefault("seen_missing", _first_after(record.sessions, spans[-1].last))
                if updated != mark:
                    put[code] = json.dumps(updated, sort_keys=True)
            fresh = [code for code in put if not marks.get(code)]
            pipe.multi()
            if changed:
                values = {code: spans_to_json(record.spans[code]) for code in changed if code in record.spans}
                if values:
                    pipe.hset(self.keys.universe, mapping=values)
                dropped = [code for code in changed if code not in record.spans]
                if dropped:
                    pipe.hdel(self.keys.universe, *dropped)
            if sessions:
                pipe.zadd(self.keys.universe_sessions, {day.isoformat(): (day - _EPOCH).days for day in sessions})
            if put:
                pipe.hset(self.keys.delisted, mapping=put)
            if gone:
                pipe.hdel(self.keys.delisted, *gone)
            pipe.execute()
            return UniverseChange([day.isoformat() for day in sessions], len(changed), sorted(fresh), relisted)

        return optimistic(self.client, watched, attempt, "gave up recording the universe after concurrent changes")

    def delisted(self, codes: list[str] | None = None) -> dict[str, dict]:
        """Code -> its delisted mark (``last``, ``market``, and from the delisting listing
        ``delisted``, ``reason``, ``name``, ``to``), for ``codes`` or every delisted code."""
        if codes is None:
            found = self.client.hgetall(self.keys.delisted)
            return {text(code): json.loads(value) for code, value in found.items()}
        codes = [validate_ticker(code) for code in codes]
        if not codes:
            return {}
        values = self.client.hmget(self.keys.delisted, codes)
        return {code: json.loads(value) for code, value in zip(codes, values, strict=True) if value}

    def pending_delistings(self) -> list[str]:
        """Delisted codes whose reason the delisting listing has not given yet."""
        return sorted(code for code, mark in self.delisted().items() if "delisted" not in mark)

    def note_delistings(self, details: Iterable[Delisting], checked: dt.date) -> list[str]:
        """Fill the delisted marks of the codes ``details`` name (date, reason, name, the code it
        moved to), and note on the others still without a reason that the listing was asked as of
        ``checked``. Returns the codes filled."""
        known = {item.code: item for item in details}

        def attempt(pipe) -> list[str]:
            marks = {text(code): json.loads(value) for code, value in pipe.hgetall(self.keys.delisted).items()}
            put, filled = {}, []
            for code, mark in marks.items():
                if "delisted" in mark:
                    continue
                if code in known:
                    put[code] = {**mark, **_details(known[code])}
                    filled.append(code)
                else:
                    put[code] = {**mark, "checked": checked.isoformat()}
            pipe.multi()
            if put:
                pipe.hset(
                    self.keys.delisted, mapping={code: json.dumps(mark, sort_keys=True) for code, mark in put.items()}
                )
            pipe.execute()
            return sorted(filled)

        return optimistic(
            self.client, [self.keys.delisted], attempt, "gave up noting delistings after concurrent changes"
        )


def _record(sessions: list, spans: dict) -> Record:
    return Record(
        [dt.date.fromisoformat(text(day)) for day in sessions],
        {text(code): spans_from_json(value) for code, value in spans.items()},
    )


def _details(item: Delisting) -> dict:
    found = asdict(item)
    found.pop("code")
    found["listed"], found["delisted"] = item.listed.isoformat(), item.delisted.isoformat()
    return {name: value for name, value in found.items() if value not in ("", None)}


def _first_after(sessions: list[dt.date], day: dt.date) -> str | None:
    later = [session for session in sessions if session > day]
    return later[0].isoformat() if later else None
