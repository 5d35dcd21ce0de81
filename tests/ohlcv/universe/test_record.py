"""The point-in-time universe record: exact on every recorded session, compact, and the same
whatever order the tables arrive in; inferred spans never override a recorded table."""

import datetime as dt
import itertools
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ohlcv import calendar
from ohlcv.snapshot import KRX_TABLE_DTYPES, from_krx_table
from ohlcv.universe import Record, Span, spans_from_json, spans_to_json

KRX = Path(__file__).resolve().parents[2] / "fixtures" / "krx"
#: the real KRX tables in tests/fixtures/krx (2026-03-14 is a Saturday)
REAL = [dt.date(2026, 3, day) for day in (9, 10, 11, 12, 13, 16)]


def listing(session: dt.date) -> dict[str, str]:
    """Code -> market of one real KRX table, read the way FinanceDataReader reads it."""
    table = pd.read_csv(KRX / f"{session}.csv", index_col=0, dtype=KRX_TABLE_DTYPES).reset_index(drop=True)
    frame = from_krx_table(table, session, "fdr").frame
    return dict(zip(frame.index, frame["Market"], strict=True))


@pytest.fixture(scope="module")
def tables() -> dict[dt.date, dict[str, str]]:
    return {session: listing(session) for session in REAL}


def recorded(tables, order) -> Record:
    record = Record()
    for session in order:
        record.record(session, tables[session])
    return record


def test_real_tables_give_one_span_a_code_and_close_the_two_delisted_on_march_16(tables):
    record = recorded(tables, REAL)
    assert record.listed(REAL[-2]) == tables[REAL[-2]]
    assert record.listed(REAL[-1]) == tables[REAL[-1]]
    assert "457940" in record.listed(REAL[0])
    assert "457940" not in record.listed(REAL[-1])
    assert record.spans["457940"] == [Span(REAL[0], dt.date(2026, 3, 13), "KOSDAQ")]
    assert record.spans["222810"] == [Span(REAL[0], dt.date(2026, 3, 13), "KOSDAQ")]
    assert record.spans["0082N0"] == [Span(REAL[-1], None, tables[REAL[-1]]["0082N0"])]
    assert record.spans["005930"] == [Span(REAL[0], None, "KOSPI")]
    # compact: one span for each of the 2,882 codes that were ever listed, not one list a session
    assert len(record.spans) == len(set(tables[REAL[0]]) | set(tables[REAL[-1]])) == 2882
    assert sum(len(spans) for spans in record.spans.values()) == len(record.spans)
    assert record.exact_from() == REAL[0]
    assert record.gaps() == []


def test_the_markets_are_the_boards_of_the_table(tables):
    record = recorded(tables, REAL)
    kospi, kosdaq, konex = (record.listed(REAL[0], market) for market in ("KOSPI", "KOSDAQ", "KONEX"))
    assert (len(kospi), len(kosdaq), len(konex)) == (951, 1820, 110)
    assert kospi.keys() | kosdaq.keys() | konex.keys() == record.listed(REAL[0]).keys()


@pytest.mark.parametrize(
    "order",
    [
        [REAL[0], REAL[1], REAL[5], REAL[2], REAL[3], REAL[4]],  # late tables of 11-13 after the 16th
        list(reversed(REAL)),  # a backfill walking back from the newest
        [REAL[3], REAL[0], REAL[5], REAL[1], REAL[4], REAL[2]],
    ],
)
def test_the_record_is_the_same_whatever_order_the_tables_come_in(tables, order):
    assert recorded(tables, order).spans == recorded(tables, REAL).spans


def test_a_session_never_recorded_is_answered_from_the_sessions_around_it(tables):
    record = recorded(tables, [REAL[0], REAL[1], REAL[2], REAL[5]])  # no tables of the 12th and 13th
    assert record.gaps() == [REAL[3], REAL[4]]
    assert record.exact_from() == REAL[5]
    gap = record.listed(REAL[3])
    # seen on the 11th, gone on the 16th: last seen on the 11th, so not counted on the 12th
    assert "457940" not in gap
    assert record.spans["457940"] == [Span(REAL[0], REAL[2], "KOSDAQ")]
    assert gap.keys() == set(tables[REAL[2]]) & set(tables[REAL[5]])
    record.record(REAL[4], tables[REAL[4]])  # the 13th arrives: seen through the 13th
    assert record.spans["457940"] == [Span(REAL[0], REAL[4], "KOSDAQ")]
    assert "457940" in record.listed(REAL[3])


def test_a_move_to_another_market_starts_a_new_span():
    days = [day.date() for day in calendar.sessions(dt.date(2026, 3, 2), dt.date(2026, 3, 6))]
    record = Record()
    for day in days:
        record.record(day, {"000100": "KOSDAQ" if day < days[3] else "KOSPI", "000200": "KOSPI"})
    assert record.spans["000100"] == [Span(days[0], days[2], "KOSDAQ"), Span(days[3], None, "KOSPI")]
    assert record.listed(days[2], "KOSDAQ") == {"000100": "KOSDAQ"}
    assert record.listed(days[3], "KOSDAQ") == {}


def test_a_code_missing_from_one_table_has_two_spans():
    days = [day.date() for day in calendar.sessions(dt.date(2026, 3, 2), dt.date(2026, 3, 6))]
    record = Record()
    for day in days:
        record.record(day, {"000100": "KOSPI"} if day != days[2] else {})
    assert record.spans["000100"] == [Span(days[0], days[1], "KOSPI"), Span(days[3], None, "KOSPI")]
    record.record(days[2], {"000100": "KOSPI"})  # the table of that day is replaced by one that lists it
    assert record.spans["000100"] == [Span(days[0], None, "KOSPI")]


def test_inferred_spans_fill_only_what_lies_before_the_first_recorded_table(tables):
    record = recorded(tables, REAL)
    # a code delisted in 2024 (the delisting listing): all of it lies before the record
    assert record.infer("123450", dt.date(2015, 6, 1), dt.date(2024, 5, 31), "KOSDAQ")
    assert record.spans["123450"] == [Span(dt.date(2015, 6, 1), dt.date(2024, 5, 31), "KOSDAQ")]
    assert "123450" in record.listed(dt.date(2020, 1, 2))
    assert "123450" not in record.listed(REAL[0])
    # a listed code's earlier years join its recorded span
    assert record.infer("005930", dt.date(1990, 1, 3), None, "KOSPI")
    assert record.spans["005930"] == [Span(dt.date(1990, 1, 3), None, "KOSPI")]
    # a claim reaching into the recorded sessions is cut at the first of them: the tables say
    # 457940 left after the 13th, whatever the claim says
    assert record.infer("457940", dt.date(2023, 8, 11), dt.date(2026, 3, 20), "KOSDAQ")
    assert record.spans["457940"] == [Span(dt.date(2023, 8, 11), dt.date(2026, 3, 13), "KOSDAQ")]
    # asked twice, nothing changes; another market's claim on the same sessions is left out
    assert not record.infer("457940", dt.date(2023, 8, 11), dt.date(2026, 3, 13), "KOSDAQ")
    assert not record.infer("457940", dt.date(2024, 1, 2), dt.date(2024, 6, 28), "KOSPI")
    # a recorded session before the claims still decides: a table of 2024-05-02 without 005930
    record.record(dt.date(2024, 5, 2), {})
    assert "005930" not in record.listed(dt.date(2024, 5, 2))
    assert "005930" in record.listed(dt.date(2024, 4, 30))
    assert "005930" in record.listed(REAL[0])


def test_spans_travel_as_json():
    spans = [Span(dt.date(2020, 1, 2), dt.date(2021, 3, 4), "KOSDAQ"), Span(dt.date(2021, 3, 5), None, "KOSPI")]
    text = spans_to_json(spans)
    assert text == '[["2020-01-02","2021-03-04","KOSDAQ"],["2021-03-05",null,"KOSPI"]]'
    assert spans_from_json(text) == spans


SESSIONS = [day.date() for day in calendar.sessions(dt.date(2026, 3, 2), dt.date(2026, 3, 13))]
CODES = ["000100", "000200", "000300", "000400"]


@settings(max_examples=150, deadline=None)
@given(
    truth=st.lists(
        st.fixed_dictionaries({code: st.sampled_from([None, "KOSPI", "KOSDAQ"]) for code in CODES}),
        min_size=len(SESSIONS),
        max_size=len(SESSIONS),
    ),
    order=st.permutations(range(len(SESSIONS))),
    kept=st.integers(min_value=1, max_value=len(SESSIONS)),
)
def test_every_recorded_session_answers_exactly_its_table(truth, order, kept):
    listings = [{code: market for code, market in day.items() if market} for day in truth]
    record = Record()
    for position in order[:kept]:
        record.record(SESSIONS[position], listings[position])
    for position in order[:kept]:
        assert record.listed(SESSIONS[position]) == dict(sorted(listings[position].items()))
    for spans in record.spans.values():  # ordered, disjoint, never an empty span
        assert all(span.last is None or span.first <= span.last for span in spans)
        assert all(a.last is not None and a.last < b.first for a, b in itertools.pairwise(spans))
