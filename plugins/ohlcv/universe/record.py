"""The point-in-time universe: which codes were listed, on which market, on each session.

The market's daily table of a session lists every code traded that session, delisted ones
included until their last day. Each table the indexer reads is *recorded*: the session joins
the set of recorded sessions, and each code keeps its listed spans, ``(first, last, market)``,
rather than a 2,900-code list per session. A span runs over XKRX sessions; ``last`` None
means still listed (through the newest recorded session). A move to another market starts a
new span.

On a recorded session the answer is exact: it is that session's table. Between recorded
sessions (a table never read) and before the first one, spans are what is known: a code seen
on two recorded sessions is taken as listed between them; one seen only on the later (or
earlier) is taken as listed from (or through) the session it was seen. Spans before the first
recorded session come from the vendor's delisting listing (``ListingDate`` to the session
before ``DelistingDate``, ``ohlcv.universe.delistings``) and from a listed code's first cached
session; ``infer`` adds them without overriding what a recorded table says.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ohlcv import calendar


@dataclass(frozen=True)
class Span:
    """One stretch of sessions on which a code was listed on one market.

    :param last: the last session it was listed on; None while it is still listed
    """

    first: dt.date
    last: dt.date | None
    market: str

    def holds(self, session: dt.date) -> bool:
        return self.first <= session and (self.last is None or session <= self.last)

    def to_json(self) -> list:
        return [self.first.isoformat(), self.last.isoformat() if self.last else None, self.market]

    @classmethod
    def from_json(cls, item: list) -> Span:
        first, last, market = item
        return cls(dt.date.fromisoformat(first), dt.date.fromisoformat(last) if last else None, market)


def spans_to_json(spans: list[Span]) -> str:
    return json.dumps([span.to_json() for span in spans], separators=(",", ":"))


def spans_from_json(text: str | bytes) -> list[Span]:
    return [Span.from_json(item) for item in json.loads(text)]


class Record:
    """The recorded sessions and every code's listed spans, in memory (``ohlcv.store.universe``
    keeps them in Redis). ``record`` and ``infer`` return the codes whose spans changed."""

    def __init__(self, sessions: Iterable[dt.date] = (), spans: Mapping[str, list[Span]] | None = None) -> None:
        self.sessions: list[dt.date] = sorted(set(sessions))
        self.spans: dict[str, list[Span]] = {code: list(items) for code, items in (spans or {}).items()}

    # -- what is known ---------------------------------------------------------------------

    @property
    def newest(self) -> dt.date | None:
        return self.sessions[-1] if self.sessions else None

    @property
    def oldest(self) -> dt.date | None:
        return self.sessions[0] if self.sessions else None

    def is_recorded(self, session: dt.date) -> bool:
        position = bisect.bisect_left(self.sessions, session)
        return position < len(self.sessions) and self.sessions[position] == session

    def exact_from(self) -> dt.date | None:
        """The earliest session from which every XKRX session through the newest is recorded."""
        if not self.sessions:
            return None
        expected = [day.date() for day in calendar.sessions(self.sessions[0], self.sessions[-1])]
        recorded = set(self.sessions)
        start = self.sessions[-1]
        for day in reversed(expected):
            if day not in recorded:
                break
            start = day
        return start

    def gaps(self) -> list[dt.date]:
        """XKRX sessions between the oldest and the newest recorded one that are not recorded."""
        if not self.sessions:
            return []
        recorded = set(self.sessions)
        return [
            day.date() for day in calendar.sessions(self.sessions[0], self.sessions[-1]) if day.date() not in recorded
        ]

    def listed(self, session: dt.date, market: str = "KRX") -> dict[str, str]:
        """Code -> market of every code listed on ``session`` as far as the record knows
        (exact when ``is_recorded(session)``), on ``market`` (``KRX``: every market)."""
        found = {}
        for code, spans in self.spans.items():
            span = _holding(spans, session)
            if span is not None and (market == "KRX" or span.market == market):
                found[code] = span.market
        return dict(sorted(found.items()))

    # -- changes ---------------------------------------------------------------------------

    def record(self, session: dt.date, listing: Mapping[str, str]) -> set[str]:
        """Make the record say what ``session``'s table says: the codes of ``listing`` (code ->
        market) were listed on it, every other code was not. Returns the codes whose spans changed."""
        before = self._recorded_before(session)
        after = self._recorded_after(session)
        affected = set(listing) | {code for code, spans in self.spans.items() if _holding(spans, session)}
        changed = set()
        for code in affected:
            spans = self.spans.get(code, [])
            market = listing.get(code)
            held = _holding(spans, session)
            if held is not None and held.market == market:
                continue
            spans = list(spans)
            if held is not None:
                spans = _cut(spans, held, session, before, after)
            if market is not None:
                spans = _insert(spans, Span(session, None if after is None else session, market), before, after)
            self._set(code, spans)
            changed.add(code)
        if not self.is_recorded(session):
            bisect.insort(self.sessions, session)
        return changed

    def infer(self, code: str, first: dt.date, last: dt.date | None, market: str) -> bool:
        """Take ``code`` as listed on ``market`` from ``first`` to ``last`` (None: up to the
        oldest recorded session) where no recorded table says otherwise: only the part before
        the oldest recorded session is added. Returns whether the spans changed."""
        oldest = self.oldest
        if oldest is not None:
            limit = calendar.previous_session(oldest) if oldest > dt.date.fromisoformat(calendar.FIRST_DAY) else None
            last = limit if last is None or (limit is not None and last > limit) else last
            if last is None:
                return False
        if last is None or last < first:
            return False
        spans = list(self.spans.get(code, []))
        if any(span.first <= last and (span.last is None or span.last >= first) for span in spans):
            overlapping = [span for span in spans if span.first <= last and (span.last is None or span.last >= first)]
            if all(span.market == market for span in overlapping):
                return self._widen(code, spans, overlapping, first, last)
            return False  # another market claims those sessions: leave them
        spans.append(Span(first, last, market))
        spans.sort(key=lambda span: span.first)
        self._set(code, _joined(spans))
        return True

    def _widen(self, code: str, spans: list[Span], overlapping: list[Span], first: dt.date, last: dt.date) -> bool:
        """Widen ``overlapping`` (same market) to cover ``first``..``last`` as one span."""
        start = min(first, *(span.first for span in overlapping))
        ends = [span.last for span in overlapping]
        end = None if None in ends else max(last, *ends)
        merged = Span(start, end, overlapping[0].market)
        if len(overlapping) == 1 and merged == overlapping[0]:
            return False
        kept = [span for span in spans if span not in overlapping] + [merged]
        kept.sort(key=lambda span: span.first)
        self._set(code, _joined(kept))
        return True

    def _set(self, code: str, spans: list[Span]) -> None:
        if spans:
            self.spans[code] = spans
        else:
            self.spans.pop(code, None)

    def _recorded_before(self, session: dt.date) -> dt.date | None:
        position = bisect.bisect_left(self.sessions, session)
        return self.sessions[position - 1] if position > 0 else None

    def _recorded_after(self, session: dt.date) -> dt.date | None:
        position = bisect.bisect_right(self.sessions, session)
        return self.sessions[position] if position < len(self.sessions) else None


def _holding(spans: list[Span], session: dt.date) -> Span | None:
    for span in spans:
        if span.holds(session):
            return span
    return None


def _cut(spans: list[Span], held: Span, session: dt.date, before: dt.date | None, after: dt.date | None) -> list[Span]:
    """Take ``session`` out of ``held``: what stays is what the neighbouring recorded sessions
    (``before``, ``after``) still show, or the inferred part beyond them."""
    pieces = []
    if held.first < session:
        left_last = before if before is not None and before >= held.first else calendar.previous_session(session)
        pieces.append(Span(held.first, left_last, held.market))
    if held.last is None:
        if after is not None:  # still listed on the recorded sessions after this one
            pieces.append(Span(after, None, held.market))
    elif held.last > session:
        right_first = after if after is not None and after <= held.last else calendar.next_session(session)
        pieces.append(Span(right_first, held.last, held.market))
    kept = [span for span in spans if span is not held] + pieces
    return sorted(kept, key=lambda span: span.first)


def _insert(spans: list[Span], new: Span, before: dt.date | None, after: dt.date | None) -> list[Span]:
    """Add ``new`` (one session), joined to a neighbour of the same market it continues: one
    whose last session reaches the recorded session before, or whose first is the one after."""
    left = max((span for span in spans if span.first < new.first), key=lambda span: span.first, default=None)
    right = min((span for span in spans if span.first > new.first), key=lambda span: span.first, default=None)
    kept = [span for span in spans if span is not left and span is not right]
    merged = new
    if (
        left is not None
        and left.market == new.market
        and left.last is not None
        and _continues(left.last, new.first, before)
    ):
        merged = Span(left.first, merged.last, merged.market)
    elif left is not None:
        kept.append(left)
    if (
        right is not None
        and right.market == new.market
        and merged.last is not None
        and ((after is not None and right.first <= after) or right.first == calendar.next_session(merged.last))
    ):
        merged = Span(merged.first, right.last, merged.market)
    elif right is not None:
        kept.append(right)
    kept.append(merged)
    return sorted(kept, key=lambda span: span.first)


def _continues(last: dt.date, session: dt.date, before: dt.date | None) -> bool:
    """Whether a span ending on ``last`` runs on into ``session``: it reaches the recorded
    session before it, or the session right before it."""
    return (before is not None and last >= before) or last >= calendar.previous_session(session)


def _joined(spans: list[Span]) -> list[Span]:
    """Spans of one market that touch (one ends the session before the next begins) as one."""
    out: list[Span] = []
    for span in spans:
        previous = out[-1] if out else None
        if (
            previous is not None
            and previous.market == span.market
            and previous.last is not None
            and (previous.last >= span.first or calendar.next_session(previous.last) == span.first)
        ):
            last = None if span.last is None else max(previous.last, span.last)
            out[-1] = Span(previous.first, last, span.market)
            continue
        out.append(span)
    return out
