"""XKRX trading sessions: which days KRX trades, and when a session is final.

The sessions come from exchange-calendars (``ohlcv.xkrx``), with what it does not know added
through its own mechanism (a calendar subclass) in one place:

- **Saturday sessions.** KRX traded on Saturdays until 5 December 1998 (from 7 December
  Saturdays were closed). exchange-calendars declares this as a special weekmask, but under
  pandas 3 that weekmask yields no Saturday at all, and index histories from the 1990s hold
  them. Here the week is Monday to Saturday, and every Saturday from 12 December 1998 on is
  an ad-hoc holiday. exchange-calendars lists no holiday on a Saturday, so a holiday that
  fell on a Saturday before 1999 counts as a session: a vendor row on it is accepted.
- **Closures it does not know** (``EXTRA_CLOSED``, e.g. election days) and **days it lists as
  holidays on which KRX traded** (``TRADED``), both found by checking it against KRX's own
  index histories.

Building that calendar costs seconds, so every question here is answered from a
``SessionTable``: the sessions and their closes as two arrays. The indexer publishes its
table in Redis (``ohlcv:sessions``); a reader loads it from there in a millisecond
(``load_from``) and builds the calendar only when no usable table is published.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import msgpack
import numpy as np
import pandas as pd

from ohlcv.errors import InvalidDate

if TYPE_CHECKING:
    from ohlcv.xkrx import KrxCalendar

log = logging.getLogger(__name__)

# Naver's daily history reaches back to the early 1990s; the calendar must cover it.
FIRST_DAY = "1990-01-03"
#: the last Saturday KRX traded on
LAST_SATURDAY_SESSION = dt.date(1998, 12, 5)
#: KRX's after-hours single-price session runs until this long after the regular close
#: (16:00-18:00 KST after a 15:30 close); its trades count in the session's official volume
AFTER_HOURS = dt.timedelta(hours=2, minutes=30)
#: time for the vendors to publish the final figures once the after-hours session has ended
PUBLISH_MARGIN = dt.timedelta(minutes=15)
#: a session is complete this long after its close: 18:15 KST on a normal day. Before that a
#: run indexes through the previous session. The evening's table still lacks a few late
#: corrections to the volumes; the night run settles them (``ohlcv.indexer.settling``).
FINAL_AFTER_CLOSE = AFTER_HOURS + PUBLISH_MARGIN
# KRX closures exchange-calendars does not know yet (it treats them as sessions).
# Each checked against KRX's own index histories (FinanceData's yearly KS11, KQ11 and KOSPI 200
# files, 1990-2026): no index has a row on these days.
EXTRA_CLOSED: frozenset[dt.date] = frozenset(
    {
        dt.date(1995, 6, 27),  # local elections
        dt.date(1996, 4, 11),  # National Assembly election
        dt.date(1996, 11, 23),  # a Saturday without trading in every index
        dt.date(1996, 12, 28),  # the year's last Saturday, closed in every index
        dt.date(1998, 6, 4),  # local elections
        dt.date(2026, 6, 3),  # local elections
    }
)
#: days exchange-calendars lists as XKRX holidays on which KRX traded: KOSPI 200's history
#: holds a session of its own on each (its own close, a full day's volume)
TRADED: frozenset[dt.date] = frozenset(
    {
        dt.date(1992, 12, 28),
        dt.date(1993, 7, 7),
        dt.date(1994, 1, 3),
        dt.date(1994, 2, 14),
        dt.date(1994, 5, 20),
    }
)
#: how far past today a calendar is built; it is built again before anyone asks beyond it
AHEAD = dt.timedelta(days=400)


TABLE_FORMAT = "ohlcv-sessions"


def rules() -> str:
    """What a table's sessions depend on besides the dates: the exchange-calendars release and
    this module's corrections. A table built under other rules is not used."""
    facts = [
        metadata.version("exchange-calendars"),
        FIRST_DAY,
        LAST_SATURDAY_SESSION.isoformat(),
        *sorted(day.isoformat() for day in EXTRA_CLOSED),
        "traded",
        *sorted(day.isoformat() for day in TRADED),
    ]
    return hashlib.sha1(" ".join(facts).encode()).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class SessionTable:
    """XKRX sessions and their closes from ``FIRST_DAY`` to ``last``: all this package asks of
    the calendar, as two sorted arrays.

    :param days: the sessions, ``datetime64[D]``
    :param closes: each session's close, ``datetime64[s]`` in UTC
    :param rules: see ``rules()``
    """

    days: np.ndarray
    closes: np.ndarray
    rules: str

    @classmethod
    def from_calendar(cls, calendar: KrxCalendar) -> SessionTable:
        days = calendar.sessions.values.astype("datetime64[D]")
        closes = calendar.closes.dt.tz_convert("UTC").dt.tz_localize(None).values.astype("datetime64[s]")
        return cls(days, closes, rules())

    @property
    def last(self) -> dt.date:
        """The last session the table knows: it answers for any day up to this one."""
        return self.days[-1].astype(dt.date)

    def encode(self) -> bytes:
        """MessagePack: ``days`` as ``<i4`` days since 1970-01-01, ``closes`` as ``<i8`` seconds."""
        return msgpack.packb(
            {
                "format": TABLE_FORMAT,
                "version": 1,
                "rules": self.rules,
                "days": self.days.astype("<i4").tobytes(),
                "closes": self.closes.astype("<i8").tobytes(),
            }
        )

    @classmethod
    def decode(cls, blob: bytes) -> SessionTable | None:
        """The table in ``blob``, or None when it is not one or was built under other rules."""
        try:
            doc = msgpack.unpackb(blob)
            if doc.get("format") != TABLE_FORMAT or doc.get("version") != 1 or doc.get("rules") != rules():
                return None
            days = np.frombuffer(doc["days"], "<i4").astype("datetime64[D]")
            closes = np.frombuffer(doc["closes"], "<i8").astype("datetime64[s]")
        except (ValueError, TypeError, KeyError, AttributeError, msgpack.UnpackException):
            return None
        if not len(days) or len(days) != len(closes) or np.any(np.diff(days.astype("i8")) <= 0):
            return None
        return cls(days, closes, doc["rules"])

    def sessions(self, start: dt.date, end: dt.date) -> np.ndarray:
        lo = np.searchsorted(self.days, np.datetime64(start, "D"), side="left")
        hi = np.searchsorted(self.days, np.datetime64(end, "D"), side="right")
        return self.days[lo:hi]

    def last_closed_by(self, moment: np.datetime64) -> int:
        """The position of the last session closed at or before ``moment`` (-1: none)."""
        return int(np.searchsorted(self.closes, moment, side="right")) - 1


_built: list[KrxCalendar] = []
_table: list[SessionTable] = []
_published: list[Callable[[], bytes | None]] = []
_building = threading.Lock()


def xkrx(through: dt.date | None = None) -> KrxCalendar:
    """The exchange-calendars calendar from 1990 to at least ``through`` (default: today) plus
    ``AHEAD``.

    Built once per process (seconds) and built again when asked beyond its end, so a
    scheduler, worker or notebook that runs for years never falls off it.
    """
    from ohlcv.xkrx import KrxCalendar

    needed = pd.Timestamp(through or dt.date.today())
    with _building:
        if not _built or _built[0].last_session < needed:
            end = needed.normalize() + pd.Timedelta(AHEAD)
            _built[:] = [
                KrxCalendar(FIRST_DAY, end, last_saturday=LAST_SATURDAY_SESSION, closed=EXTRA_CLOSED, traded=TRADED)
            ]
        return _built[0]


def load_from(fetch: Callable[[], bytes | None]) -> None:
    """Look for a published table with ``fetch`` (e.g. a Redis GET of ``ohlcv:sessions``) before
    building the calendar. The last one given is used."""
    _published[:] = [fetch]


#: the session table shipped with the package (``scripts/build_sessions.py`` writes it): a reader
#: on a Redis no indexer has published one to answers without building the calendar
BUNDLED = Path(__file__).with_name("xkrx_sessions.msgpack")


def bundled(path: Path = BUNDLED) -> SessionTable | None:
    """The shipped table, or None when it is missing or was built under other rules."""
    try:
        return SessionTable.decode(path.read_bytes())
    except OSError:
        return None


def table(through: dt.date | None = None) -> SessionTable:
    """The session table that answers for every day up to ``through`` (default: today).

    The one in hand if it reaches that far, else a published one that does, else the shipped
    one if it does, else one built from the calendar (seconds) — so a long-running process
    never runs past the table's end.
    """
    needed = through or dt.date.today()
    if _table and _table[0].last >= needed:
        return _table[0]
    found = _published_table(needed)
    if found is None:
        shipped = bundled()
        found = shipped if shipped is not None and shipped.last >= needed else None
    if found is None:
        found = SessionTable.from_calendar(xkrx(needed))
    _table[:] = [found]
    return found


def _published_table(needed: dt.date) -> SessionTable | None:
    if not _published:
        return None
    try:
        blob = _published[0]()
    except Exception as exc:  # the published table is a shortcut; building is always possible
        log.debug("no published session table (%s): building the calendar", exc)
        return None
    found = SessionTable.decode(blob) if blob else None
    return found if found is not None and found.last >= needed else None


def _utc(moment: dt.datetime | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        raise InvalidDate(f"moment {moment!r} has no time zone; pass an aware datetime")
    return stamp.tz_convert("UTC")


def last_complete_session(moment: dt.datetime | pd.Timestamp) -> dt.date:
    """The last XKRX session that is final at ``moment``: its close plus ``FINAL_AFTER_CLOSE``
    is at or before ``moment``."""
    at = _utc(moment) - FINAL_AFTER_CLOSE
    sessions_ = table(at.date() + dt.timedelta(days=1))
    position = sessions_.last_closed_by(np.datetime64(at.tz_localize(None).to_datetime64(), "s"))
    if position < 0:
        raise InvalidDate(f"{moment!r} is before the first XKRX session this package knows")
    return sessions_.days[position].astype(dt.date)


def check_as_of(day: dt.date, moment: dt.datetime | pd.Timestamp) -> dt.date:
    """``day`` if a run may index through it at ``moment``: not before the first XKRX session
    and not after the last final one (``last_complete_session``); ``InvalidDate`` with the
    reason otherwise. A later day would store unfinished or future rows and publish a cut no
    vendor can confirm."""
    first = dt.date.fromisoformat(FIRST_DAY)
    if day < first:
        raise InvalidDate(f"as of {day}: before {first}, the first XKRX session this package knows")
    final = last_complete_session(moment)
    if day > final:
        raise InvalidDate(
            f"as of {day}: after {final}, the last final XKRX session at {_utc(moment):%Y-%m-%d %H:%M} UTC "
            "(a session is final 2 h 45 min after its close, 18:15 KST on a normal day)"
        )
    return day


def sessions(start: dt.date, end: dt.date) -> pd.DatetimeIndex:
    """XKRX sessions from ``start`` to ``end``, both included, as a tz-naive index."""
    days = table(end).sessions(start, end)
    return pd.DatetimeIndex(days.astype("datetime64[ns]"), name="Date")


def previous_session(day: dt.date) -> dt.date:
    """The XKRX session before ``day``."""
    days = table(day).days
    position = int(np.searchsorted(days, np.datetime64(day, "D"), side="left")) - 1
    if position < 0:
        raise InvalidDate(f"no XKRX session this package knows before {day}")
    return days[position].astype(dt.date)


def next_session(day: dt.date) -> dt.date:
    """The XKRX session after ``day``."""
    sessions_ = table(day + dt.timedelta(days=AHEAD.days // 2))
    position = int(np.searchsorted(sessions_.days, np.datetime64(day, "D"), side="right"))
    return sessions_.days[position].astype(dt.date)


def is_session(day: dt.date) -> bool:
    """Whether ``day`` is an XKRX trading session."""
    days = table(day).days
    position = int(np.searchsorted(days, np.datetime64(day, "D")))
    return bool(position < len(days) and days[position] == np.datetime64(day, "D"))
