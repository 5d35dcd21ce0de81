"""The reads research asks of a price cache beyond prices: the universe as it was on a session
(delisted codes included), the corporate actions and repairs a ticker went through, and the
revision a report pins its reads to (the pinned reads themselves: ``ohlcv.reader.pinned``).
``ResearchReads`` is the part of ``OhlcvCache`` that answers them; none of them writes a key or
calls a vendor."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from ohlcv import calendar
from ohlcv.errors import InexactUniverse, NeverListed, NotASession, UnknownMarket, UnknownSession
from ohlcv.keys import DateLike, to_date, validate_ticker
from ohlcv.settings import MARKETS
from ohlcv.store import OhlcvStore, Revision


@dataclass(frozen=True)
class Universe(Sequence[str]):
    """The codes listed on one session, in code order; a sequence of codes.

    :param markets: code -> the market it was listed on that session
    :param exact: the session's market table is recorded: this is that table's listing. When
        false, ``note`` says what the answer is made of (an ``InexactUniverse`` warning says so too)
    :param exact_from: every session from this one through the record's newest is exact
    """

    session: dt.date
    market: str
    markets: Mapping[str, str]
    exact: bool
    exact_from: dt.date | None
    note: str = ""

    @property
    def codes(self) -> list[str]:
        return list(self.markets)

    def __len__(self) -> int:
        return len(self.markets)

    def __getitem__(self, position):
        return self.codes[position]

    def __iter__(self) -> Iterator[str]:
        return iter(self.markets)

    def __contains__(self, code: object) -> bool:
        return code in self.markets


class ResearchReads:
    """Universe, ledger and revision reads for ``OhlcvCache``."""

    #: the store reads go to (a replica's, or the primary's)
    reads: OhlcvStore

    def universe(self, session: DateLike, market: str = "KRX") -> Universe:
        """The codes listed on ``session`` on ``market`` (``KRX``: every board), delisted ones
        included: what that session's market table listed.

        Exact for a session whose table the indexer recorded; for one before the record's exact
        reach (or in a gap of it) the answer is what is known, ``exact`` is false and an
        ``InexactUniverse`` warning says why. Raises ``NotASession`` for a date that is not an
        XKRX session, ``UnknownSession`` for a session after the newest recorded one,
        ``UnknownMarket`` for another market.
        """
        day = to_date(session)
        if market not in MARKETS:
            raise UnknownMarket(f"unknown market {market!r}: give one of {', '.join(MARKETS)}")
        _require_session(day)
        record = self.reads.recorded()
        if record.newest is None:
            raise UnknownSession(
                "no market table is recorded yet: the indexer records each one it reads "
                "(python -m ohlcv universe --backfill records the sessions before it began)"
            )
        if day > record.newest:
            raise UnknownSession(f"the universe is recorded through {record.newest}; {day} is not recorded yet")
        exact = record.is_recorded(day)
        note = ""
        if not exact and day < record.oldest:
            note = (
                f"{day} lies before the first recorded market table ({record.oldest}): the codes known to be "
                "listed then (the vendor's delisting listing, listed codes' first cached sessions), not that "
                "session's table"
            )
        elif not exact:
            note = (
                f"the market table of {day} was never recorded: the codes listed on the recorded sessions on "
                "both sides of it"
            )
        if note:
            warnings.warn(note, InexactUniverse, stacklevel=2)
        return Universe(day, market, self.reads.listed_on(day, market), exact, record.exact_from(), note)

    def revision(self) -> Revision | None:
        """The revision the indexer published last (None: none yet): pass its ``id`` to
        ``get(..., revision=)`` / ``get_many(..., revision=)`` to read exactly what it saw, also
        after later repairs, for ``OHLCV_REVISION_DAYS`` (its ``expires``)."""
        return self.reads.current_revision()

    def actions(self, code: str) -> pd.DataFrame:
        """The ledger of ``code``, oldest first: every continuity break the indexer's snapshot
        step found in it and every repair it made, one row each.

        Columns: ``recorded_at``, ``session`` (of the break, or the first session whose history
        changed), ``action`` (``repaired``, ``refetched``: the vendor's history agreed with the
        cache; ``failed``, ``deferred``, ``waiting``: the fetch did not happen or failed),
        ``found_by`` (``table`` or ``history``), ``cached_close``, ``base_price`` (the table's
        Close minus Changes), ``ratio`` (base price / cached close, or the vendor's / the
        cached close), ``run_id``, ``revision``, ``digest_before``, ``digest_after`` (SHA-1 of
        the series value), ``reason``. Empty for a code without any; ``NeverListed`` for a code
        the cache knows nothing of.
        """
        code = validate_ticker(code)
        frame = self.reads.actions(code)
        if frame.empty and not self.reads.known(code):
            raise NeverListed(f"{code} was never in a recorded market table and is not cached: no ledger")
        return frame


def _require_session(day: dt.date) -> None:
    first = dt.date.fromisoformat(calendar.FIRST_DAY)
    if day < first:
        raise NotASession(f"{day} lies before {first}, the first XKRX session this package knows")
    if not calendar.is_session(day):
        raise NotASession(
            f"{day} is not an XKRX session; the sessions around it are {calendar.previous_session(day)} "
            f"and {calendar.next_session(day)}"
        )
