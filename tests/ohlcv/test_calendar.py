import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from ohlcv.calendar import is_session, last_complete_session, previous_session, sessions
from ohlcv.errors import InvalidDate


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def london(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="Europe/London")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc("2026-11-24 06:00"), dt.date(2026, 11, 23)),  # Tuesday 15:00 KST: still trading
        (utc("2026-11-24 07:00"), dt.date(2026, 11, 23)),  # 16:00 KST: the after-hours session begins
        (utc("2026-11-24 09:14:59"), dt.date(2026, 11, 23)),  # 18:14:59 KST: volumes not yet final
        (utc("2026-11-24 09:15"), dt.date(2026, 11, 24)),  # 18:15 KST: final
        (utc("2026-11-23 00:00"), dt.date(2026, 11, 20)),  # Monday 09:00 KST: Friday
        (utc("2026-11-22 12:00"), dt.date(2026, 11, 20)),  # Sunday
        (utc("2026-09-26 12:00"), dt.date(2026, 9, 23)),  # Chuseok: 24-26 September 2026
        (utc("2026-01-02 03:00"), dt.date(2025, 12, 30)),  # 31 Dec and 1 Jan are closed
    ],
)
def test_last_complete_session(moment, expected):
    assert last_complete_session(moment) == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # winter, London on GMT (KST - 9 h): the 09:23 run is the first to index the day
        (london("2026-11-24 08:23"), dt.date(2026, 11, 23)),  # 17:23 KST
        (london("2026-11-24 09:14"), dt.date(2026, 11, 23)),  # 18:14 KST
        (london("2026-11-24 09:15"), dt.date(2026, 11, 24)),  # 18:15 KST
        (london("2026-11-24 09:23"), dt.date(2026, 11, 24)),  # 18:23 KST
        # summer, London on BST (KST - 8 h): the 10:23 run is the first to index the day
        (london("2026-07-14 09:23"), dt.date(2026, 7, 13)),  # 17:23 KST
        (london("2026-07-14 10:14"), dt.date(2026, 7, 13)),  # 18:14 KST
        (london("2026-07-14 10:15"), dt.date(2026, 7, 14)),  # 18:15 KST
        (london("2026-07-14 10:23"), dt.date(2026, 7, 14)),  # 18:23 KST
    ],
)
def test_a_session_is_final_after_the_after_hours_session_in_either_london_offset(moment, expected):
    assert last_complete_session(moment) == expected


def test_which_of_the_five_daily_runs_indexes_the_day():
    """The schedule's runs (23 past 08-12 London) on a Tuesday in winter and in summer."""
    winter = [last_complete_session(london(f"2026-11-24 {hour:02d}:23")) for hour in range(8, 13)]
    summer = [last_complete_session(london(f"2026-07-14 {hour:02d}:23")) for hour in range(8, 13)]
    assert winter == [dt.date(2026, 11, 23)] + [dt.date(2026, 11, 24)] * 4
    assert summer == [dt.date(2026, 7, 13)] * 2 + [dt.date(2026, 7, 14)] * 3


def test_previous_session_skips_weekends_and_holidays():
    assert previous_session(dt.date(2026, 11, 23)) == dt.date(2026, 11, 20)
    assert previous_session(dt.date(2026, 9, 28)) == dt.date(2026, 9, 23)  # after Chuseok


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


def test_every_day_krx_s_own_index_histories_hold_is_a_session():
    """KOSPI 200 from 1990, KOSDAQ from 1996, KS11: a row on a day the calendar calls closed
    would make validation refuse the whole history."""
    traded = Path(__file__).resolve().parents[1] / "fixtures" / "krx" / "index" / "trading-days.txt"
    days = pd.DatetimeIndex(traded.read_text().split())
    assert len(days) > 6_500
    assert days.difference(sessions(days[0].date(), days[-1].date())).empty


@pytest.mark.parametrize(
    ("day", "session"),
    [
        (dt.date(1998, 12, 5), True),  # the last Saturday session
        (dt.date(1998, 12, 12), False),  # Saturdays closed from 7 December 1998
        (dt.date(1998, 6, 4), False),  # local elections, unknown to exchange-calendars
        (dt.date(1996, 4, 11), False),  # National Assembly election
        (dt.date(1994, 1, 3), True),  # listed as a holiday by exchange-calendars, but traded
        (dt.date(2026, 6, 3), False),
    ],
)
def test_what_the_calendar_adds_to_exchange_calendars(day, session):
    assert is_session(day) is session
