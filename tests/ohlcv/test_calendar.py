import datetime as dt

import pandas as pd
import pytest

from ohlcv.calendar import is_session, last_complete_session, sessions
from ohlcv.errors import InvalidDate


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc("2026-11-24 06:00"), dt.date(2026, 11, 23)),  # Tuesday 15:00 KST: still trading
        (utc("2026-11-24 06:59"), dt.date(2026, 11, 23)),  # closed at 15:30 KST, not yet settled
        (utc("2026-11-24 07:00"), dt.date(2026, 11, 24)),  # 16:00 KST: settled
        (utc("2026-11-23 00:00"), dt.date(2026, 11, 20)),  # Monday 09:00 KST: Friday
        (utc("2026-11-22 12:00"), dt.date(2026, 11, 20)),  # Sunday
        (pd.Timestamp("2026-11-24 08:23", tz="Europe/London"), dt.date(2026, 11, 24)),  # the schedule
        (utc("2026-09-26 12:00"), dt.date(2026, 9, 23)),  # Chuseok: 24-26 September 2026
        (utc("2026-01-02 03:00"), dt.date(2025, 12, 30)),  # 31 Dec and 1 Jan are closed
    ],
)
def test_last_complete_session(moment, expected):
    assert last_complete_session(moment) == expected


def test_naive_moment_is_refused():
    with pytest.raises(InvalidDate, match="no time zone"):
        last_complete_session(dt.datetime(2026, 11, 24, 8))


def test_sessions_skip_weekends_and_krx_holidays():
    days = sessions(dt.date(2026, 9, 21), dt.date(2026, 10, 12))
    assert [day.date().isoformat() for day in days] == [
        "2026-09-21", "2026-09-22", "2026-09-23", "2026-09-28", "2026-09-29", "2026-09-30",
        "2026-10-01", "2026-10-02", "2026-10-06", "2026-10-07", "2026-10-08", "2026-10-12",
    ]  # fmt: skip
    assert days.name == "Date"


def test_is_session():
    assert is_session(dt.date(2026, 11, 23))
    assert not is_session(dt.date(2026, 11, 22))
    assert not is_session(dt.date(2026, 10, 9))  # Hangul Day
