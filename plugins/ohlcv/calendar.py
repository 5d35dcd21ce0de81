"""XKRX trading sessions, from exchange-calendars, with what it does not know added through
its own mechanism (a calendar subclass) in one place:

- **Saturday sessions.** KRX traded on Saturdays until 5 December 1998 (from 7 December
  Saturdays were closed). exchange-calendars declares this as a special weekmask, but under
  pandas 3 that weekmask yields no Saturday at all, and index histories from the 1990s hold
  them. Here the week is Monday to Saturday, and every Saturday from 12 December 1998 on is
  an ad-hoc holiday. exchange-calendars lists no holiday on a Saturday, so a holiday that
  fell on a Saturday before 1999 counts as a session: a vendor row on it is accepted, and
  ``weekday_sessions`` leaves Saturdays out where a missing row must mean a failed download.
- **Closures it does not know** (``EXTRA_CLOSED``, e.g. election days) and **days it lists as
  holidays on which KRX traded** (``TRADED``), both found by checking it against KRX's own
  index histories.
"""

from __future__ import annotations

import datetime as dt
import threading

import pandas as pd
from exchange_calendars.exchange_calendar_xkrx import XKRXExchangeCalendar

from ohlcv.errors import InvalidDate

# Naver's daily history reaches back to the early 1990s; the calendar must cover it.
FIRST_DAY = "1990-01-03"
#: the last Saturday KRX traded on
LAST_SATURDAY_SESSION = dt.date(1998, 12, 5)
#: KRX's after-hours single-price session runs until this long after the regular close
#: (16:00-18:00 KST after a 15:30 close); its trades count in the session's official volume
AFTER_HOURS = dt.timedelta(hours=2, minutes=30)
#: time for the vendors to publish the final figures once the after-hours session has ended
PUBLISH_MARGIN = dt.timedelta(minutes=15)
#: a session is final this long after its close: 18:15 KST on a normal day. Before that a
#: run indexes through the previous session, so no preliminary volume is ever stored.
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


class KrxCalendar(XKRXExchangeCalendar):
    """XKRX with Saturday sessions until 1998-12-05 and the closures in ``EXTRA_CLOSED``."""

    weekmask = "1111110"

    @property
    def special_weekmasks(self) -> list:
        return []

    @property
    def adhoc_holidays(self) -> list[pd.Timestamp]:
        traded = {pd.Timestamp(day) for day in TRADED}
        listed = [day for day in super().adhoc_holidays if pd.Timestamp(day) not in traded]
        saturdays = pd.date_range(LAST_SATURDAY_SESSION + dt.timedelta(days=7), self._end_bound, freq="W-SAT")
        return [*listed, *saturdays, *(pd.Timestamp(day) for day in sorted(EXTRA_CLOSED))]

    def __init__(self, start: str, end: pd.Timestamp) -> None:
        self._end_bound = end  # adhoc_holidays is read while the base class builds
        super().__init__(start=start, end=end)


_built: list[KrxCalendar] = []
_building = threading.Lock()


def xkrx(through: dt.date | None = None) -> KrxCalendar:
    """The calendar from 1990 to at least ``through`` (default: today) plus ``AHEAD``.

    Built once per process (about 1 s) and built again when asked beyond its end, so a
    scheduler, worker or notebook that runs for years never falls off it.
    """
    needed = pd.Timestamp(through or dt.date.today())
    with _building:
        if not _built or _built[0].last_session < needed:
            _built[:] = [KrxCalendar(FIRST_DAY, needed.normalize() + pd.Timedelta(AHEAD))]
        return _built[0]


def _utc(moment: dt.datetime | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        raise InvalidDate(f"moment {moment!r} has no time zone; pass an aware datetime")
    return stamp.tz_convert("UTC")


def last_complete_session(moment: dt.datetime | pd.Timestamp) -> dt.date:
    """The last XKRX session that is final at ``moment``: its close plus ``FINAL_AFTER_CLOSE``
    is at or before ``moment``."""
    at = _utc(moment) - FINAL_AFTER_CLOSE
    calendar = xkrx(at.date() + dt.timedelta(days=1))
    if at < calendar.first_minute:
        raise InvalidDate(f"{moment!r} is before the first XKRX session this package knows")
    session = calendar.minute_to_session(at, direction="previous")
    if at < calendar.session_close(session):
        # ``at`` is inside a session that is still trading: the previous one is complete.
        session = calendar.previous_session(session)
    return session.date()


def sessions(start: dt.date, end: dt.date) -> pd.DatetimeIndex:
    """XKRX sessions from ``start`` to ``end``, both included, as a tz-naive index."""
    calendar = xkrx(end)
    first = max(pd.Timestamp(start), calendar.first_session)
    last = min(pd.Timestamp(end), calendar.last_session)
    if first > last:
        return pd.DatetimeIndex([], dtype="datetime64[ns]", name="Date")
    return pd.DatetimeIndex(calendar.sessions_in_range(first, last).values.astype("datetime64[ns]"), name="Date")


def weekday_sessions(start: dt.date, end: dt.date) -> pd.DatetimeIndex:
    """``sessions`` without Saturdays: the sessions every complete history holds (a Saturday
    before 1999 may have been a holiday exchange-calendars does not list)."""
    days = sessions(start, end)
    return days[days.day_of_week < 5]


def previous_session(day: dt.date) -> dt.date:
    """The XKRX session before ``day``."""
    earlier = sessions(day - dt.timedelta(days=40), day - dt.timedelta(days=1))
    if earlier.empty:
        raise InvalidDate(f"no XKRX session this package knows before {day}")
    return earlier[-1].date()


def is_session(day: dt.date) -> bool:
    """Whether ``day`` is an XKRX trading session."""
    return bool(xkrx(day).is_session(pd.Timestamp(day)))
