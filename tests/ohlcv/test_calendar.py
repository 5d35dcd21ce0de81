import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from ohlcv import calendar
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


@pytest.mark.parametrize("day", ["2026-11-24", "2026-07-14"])  # a Tuesday in GMT and in BST
def test_the_evening_runs_append_the_session_and_the_night_run_settles_it(day):
    """The evening runs read the session's own table (preliminary volumes); only the 18:23 London
    run falls in the window in which the next calendar day's file holds the final table."""
    from ohlcv.sources.fdr import final_file_holds

    session = dt.date.fromisoformat(day)
    runs = {hour: london(f"{day} {hour:02d}:23") for hour in (8, 9, 10, 11, 12, 18)}
    indexing = [hour for hour, moment in runs.items() if last_complete_session(moment) == session]
    settling = [hour for hour, moment in runs.items() if final_file_holds(session, moment)]
    assert indexing == ([9, 10, 11, 12, 18] if day.endswith("11-24") else [10, 11, 12, 18])
    assert settling == [18]
    # the next morning's runs are past 09:00 KST: that file then holds the next session's values
    assert not final_file_holds(session, london(f"{day} 08:23") + dt.timedelta(days=1))
    # a Friday's final table stays in Saturday's file all weekend
    friday = dt.date(2026, 11, 27)
    assert final_file_holds(friday, london("2026-11-28 12:23"))
    assert final_file_holds(friday, london("2026-11-29 18:23"))


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


# -- the session table --------------------------------------------------------------------------


def test_the_session_table_answers_as_exchange_calendars_does():
    """Every session since 1990 and its close, including late opens and the exam-day close."""
    built = calendar.xkrx(dt.date(2027, 6, 30))
    table = calendar.SessionTable.from_calendar(built)
    assert len(table.days) == len(built.sessions)
    moments = pd.date_range("1990-01-05", "2027-06-30", freq="7h13min", tz="UTC")
    for moment in moments[::7]:
        at = moment - calendar.FINAL_AFTER_CLOSE
        session = built.minute_to_session(at, direction="previous")
        if at < built.session_close(session):
            session = built.previous_session(session)
        assert last_complete_session(moment) == session.date(), moment
    closes = built.closes.dt.tz_convert("Asia/Seoul").dt.time.astype(str)
    assert {"15:00:00", "15:30:00", "16:30:00"} <= set(closes)  # the table holds every kind of close


def test_the_session_table_travels_through_bytes_and_refuses_other_rules(monkeypatch):
    table = calendar.table(dt.date(2026, 12, 31))
    again = calendar.SessionTable.decode(table.encode())
    assert (again.days == table.days).all()
    assert (again.closes == table.closes).all()
    assert calendar.SessionTable.decode(b"not a table") is None
    monkeypatch.setattr(calendar, "rules", lambda: "other-rules")
    assert calendar.SessionTable.decode(table.encode()) is None


def test_a_published_table_is_used_without_building_the_calendar(monkeypatch):
    blob = calendar.table(dt.date(2026, 12, 31)).encode()
    monkeypatch.setattr(calendar, "_table", [])
    monkeypatch.setattr(calendar, "_published", [])
    monkeypatch.setattr(calendar, "xkrx", lambda through=None: pytest.fail("built the calendar"))
    calendar.load_from(lambda: blob)
    assert last_complete_session(utc("2026-11-24 09:15")) == dt.date(2026, 11, 24)
    assert previous_session(dt.date(2026, 9, 28)) == dt.date(2026, 9, 23)


def test_a_table_that_ends_too_early_is_not_used_and_one_that_reaches_is_found(monkeypatch):
    short = calendar.SessionTable.from_calendar(calendar.xkrx(dt.date(2026, 1, 1)))
    short = calendar.SessionTable(short.days[:-300], short.closes[:-300], short.rules)
    monkeypatch.setattr(calendar, "_table", [short])
    monkeypatch.setattr(calendar, "_published", [lambda: short.encode()])
    far = short.last + dt.timedelta(days=30)
    assert calendar.is_session(far) == bool(calendar.xkrx(far).is_session(pd.Timestamp(far)))
    assert calendar.table().last >= far  # the process now holds a table reaching past the question


READER = """
import sys, time
started = time.perf_counter()
from ohlcv import OhlcvCache
cache = OhlcvCache.from_url(sys.argv[1])
assert len(cache.get("000100")) > 1000
assert len(cache.get("000100", latest=True)) > 1000
print("exchange_calendars" in sys.modules, "pandera" in sys.modules, "FinanceDataReader" in sys.modules)
"""


def test_a_new_reader_process_builds_no_calendar_and_loads_no_vendor(redis_server, store):
    """With the indexer's table published, a hit (and a read of the newest data) needs neither."""
    import subprocess
    import sys

    from ohlcv.sources import SyntheticSource

    newest = last_complete_session(pd.Timestamp.now(tz="UTC"))
    store.write_series("000100", SyntheticSource(3).history("000100", None, newest), "synthetic")
    store.publish(newest, 1)
    store.publish_sessions(calendar.table())
    done = subprocess.run(
        [sys.executable, "-c", READER, f"redis://127.0.0.1:{redis_server.port}/0"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["False", "False", "False"]


def test_a_new_reader_process_on_a_redis_no_indexer_ran_on_builds_no_calendar(redis_server, store):
    """A cache filled by readers only (cache-aside without the batch job): the shipped table answers."""
    import subprocess
    import sys

    from ohlcv.sources import SyntheticSource

    newest = last_complete_session(pd.Timestamp.now(tz="UTC"))
    store.write_series("000100", SyntheticSource(3).history("000100", None, newest), "synthetic")
    store.publish(newest, 1)
    assert store.published_sessions() is None
    done = subprocess.run(
        [sys.executable, "-c", READER, f"redis://127.0.0.1:{redis_server.port}/0"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["False", "False", "False"]


def test_the_shipped_table_is_what_the_calendar_builds_under_the_same_rules():
    """Fails after a change of exchange-calendars or of a correction until
    scripts/build_sessions.py writes the table again."""
    shipped = calendar.bundled()
    assert shipped is not None, (
        "xkrx_sessions.msgpack is missing or built under other rules: run scripts/build_sessions.py"
    )
    built = calendar.SessionTable.from_calendar(calendar.xkrx(shipped.last))
    reach = min(len(shipped.days), len(built.days))
    assert (shipped.days[:reach] == built.days[:reach]).all()
    assert (shipped.closes[:reach] == built.closes[:reach]).all()
    assert shipped.last >= dt.date(2027, 12, 31)


def test_a_shipped_table_under_other_rules_or_missing_is_not_used(tmp_path, monkeypatch):
    assert calendar.bundled(tmp_path / "absent.msgpack") is None
    other = tmp_path / "other.msgpack"
    other.write_bytes(calendar.bundled().encode().replace(calendar.rules().encode(), b"0" * 16))
    assert calendar.bundled(other) is None
