"""XKRX trading sessions, from exchange-calendars."""

from __future__ import annotations

import datetime as dt
import functools

import exchange_calendars as xcals
import pandas as pd

from ohlcv.errors import InvalidDate

EXCHANGE = "XKRX"
# Naver's daily history reaches back to the early 1990s; the calendar must cover it.
FIRST_DAY = "1990-01-03"
#: KRX's after-hours single-price session runs until this long after the regular close
#: (16:00-18:00 KST after a 15:30 close); its trades count in the session's official volume
AFTER_HOURS = dt.timedelta(hours=2, minutes=30)
#: time for the vendors to publish the final figures once the after-hours session has ended
PUBLISH_MARGIN = dt.timedelta(minutes=15)
#: a session is final this long after its close: 18:15 KST on a normal day. Before that a
#: run indexes through the previous session, so no preliminary volume is ever stored.
FINAL_AFTER_CLOSE = AFTER_HOURS + PUBLISH_MARGIN
# KRX closures exchange-calendars does not know yet (it treats them as sessions).
EXTRA_CLOSED: frozenset[dt.date] = frozenset(
    {
        dt.date(2026, 6, 3),  # local elections
    }
)


@functools.cache
def xkrx() -> xcals.ExchangeCalendar:
    """The XKRX calendar from 1990 to a year ahead (built once per process, about 2 s)."""
    return xcals.get_calendar(EXCHANGE, start=FIRST_DAY)


def _utc(moment: dt.datetime | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        raise InvalidDate(f"moment {moment!r} has no time zone; pass an aware datetime")
    return stamp.tz_convert("UTC")


def last_complete_session(moment: dt.datetime | pd.Timestamp) -> dt.date:
    """The last XKRX session that is final at ``moment``: its close plus ``FINAL_AFTER_CLOSE``
    is at or before ``moment``."""
    calendar = xkrx()
    at = _utc(moment) - FINAL_AFTER_CLOSE
    if at < calendar.first_minute:
        raise InvalidDate(f"{moment!r} is before the first XKRX session this package knows")
    if at > calendar.last_minute:
        raise InvalidDate(f"{moment!r} is beyond the XKRX calendar's last session")
    session = calendar.minute_to_session(at, direction="previous")
    if at < calendar.session_close(session):
        # ``at`` is inside a session that is still trading: the previous one is complete.
        session = calendar.previous_session(session)
    while session.date() in EXTRA_CLOSED:
        session = calendar.previous_session(session)
    return session.date()


def sessions(start: dt.date, end: dt.date) -> pd.DatetimeIndex:
    """XKRX sessions from ``start`` to ``end``, both included, as a tz-naive index."""
    calendar = xkrx()
    first = max(pd.Timestamp(start), calendar.first_session)
    last = min(pd.Timestamp(end), calendar.last_session)
    if first > last:
        return pd.DatetimeIndex([], dtype="datetime64[ns]", name="Date")
    days = pd.DatetimeIndex(calendar.sessions_in_range(first, last).values.astype("datetime64[ns]"), name="Date")
    closed = [day for day in EXTRA_CLOSED if first <= pd.Timestamp(day) <= last]
    return days.drop(pd.DatetimeIndex(closed)) if closed else days


def previous_session(day: dt.date) -> dt.date:
    """The XKRX session before ``day``."""
    earlier = sessions(day - dt.timedelta(days=40), day - dt.timedelta(days=1))
    if earlier.empty:
        raise InvalidDate(f"no XKRX session this package knows before {day}")
    return earlier[-1].date()


def is_session(day: dt.date) -> bool:
    """Whether ``day`` is an XKRX trading session."""
    return day not in EXTRA_CLOSED and bool(xkrx().is_session(pd.Timestamp(day)))
