"""The universe record the indexer keeps: every table a run reads is recorded, delisted codes are
marked (and explained by the delisting listing), leave the cut and keep their history; the
backfill records what lies before the first run."""

import datetime as dt
import warnings
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from ohlcv import OhlcvCache, calendar, snapshot
from ohlcv.errors import InexactUniverse, SourceUnavailable, TableMissing
from ohlcv.indexer import listings
from ohlcv.indexer.runner import run_once
from ohlcv.settings import Settings
from ohlcv.snapshot import Snapshot
from ohlcv.sources import SyntheticSource
from ohlcv.universe import Span, from_krx_delisting

KRX = Path(__file__).resolve().parents[2] / "fixtures" / "krx"
REAL = [dt.date(2026, 3, day) for day in (9, 10, 11, 12, 13, 16)]


def krx(day: dt.date) -> Snapshot:
    table = pd.read_csv(KRX / f"{day}.csv", index_col=0, dtype=snapshot.KRX_TABLE_DTYPES).reset_index(drop=True)
    return snapshot.from_krx_table(table, day, "fdr")


def real_delistings():
    frame = pd.read_csv(KRX / "delisting" / "2026-03-20.csv", index_col=0, dtype={"Symbol": str, "ToSymbol": str})
    return from_krx_delisting(frame)


class Listing:
    """A vendor of the real delisting listing only, counting its calls."""

    name = "fdr"

    def __init__(self):
        self.calls = 0

    def delistings(self):
        self.calls += 1
        return real_delistings()


def test_the_real_tables_mark_the_two_codes_that_left_on_march_16(store):
    listings.record(store, [krx(day) for day in REAL[:-1]])
    assert store.delisted() == {}
    change = listings.record(store, [krx(REAL[-1])])
    assert change.delisted == ["222810", "457940"]
    marks = store.delisted()
    assert marks["457940"] == {"last": "2026-03-13", "market": "KOSDAQ", "seen_missing": "2026-03-16"}
    assert store.listing_spans("0082N0") == [Span(REAL[-1], None, "KOSDAQ")]
    assert store.recorded_sessions() == (REAL[0], REAL[-1], 6)
    # the delisting listing gives the date and the reason, asked once a session
    vendor = Listing()
    assert listings.explain_delisted(store, vendor, REAL[-1]) == ["222810", "457940"]
    assert listings.explain_delisted(store, vendor, REAL[-1]) == []
    assert vendor.calls == 1
    mark = store.delisted(["457940"])["457940"]
    assert (mark["last"], mark["delisted"], mark["listed"]) == ("2026-03-13", "2026-03-16", "2023-08-11")
    assert mark["reason"].startswith("합병상장예비심사신청서 미제출")
    assert mark["name"] == "에스케이증권제10호스팩"


def test_a_code_listed_again_is_no_longer_delisted(store):
    listings.record(store, [krx(day) for day in REAL])
    back = krx(REAL[-1])
    extra = krx(REAL[-2]).frame.loc[["457940"]]
    relisted = Snapshot(dt.date(2026, 3, 17), "fdr", pd.concat([back.frame, extra]))
    change = listings.record(store, [relisted])
    assert change.relisted == ["457940"]
    assert "457940" not in store.delisted()
    assert store.listing_spans("457940") == [
        Span(REAL[0], dt.date(2026, 3, 13), "KOSDAQ"), Span(dt.date(2026, 3, 17), None, "KOSDAQ")
    ]  # fmt: skip


DAYS = [day.date() for day in calendar.sessions(dt.date(2026, 10, 26), dt.date(2026, 11, 6))]
GONE, NEW = "000300", "000500"


def vendor() -> SyntheticSource:
    return SyntheticSource(6, delisted={GONE: DAYS[4]}, listed={NEW: DAYS[6]})


class CountingVendor(SyntheticSource):
    """The synthetic vendor, counting each kind of call."""

    def __init__(self):
        super().__init__(6, delisted={GONE: DAYS[4]}, listed={NEW: DAYS[6]})
        self.calls = []

    def history(self, code, start, end):
        self.calls.append(("history", code))
        return super().history(code, start, end)

    def delistings(self):
        self.calls.append(("delistings", None))
        return super().delistings()


def evening(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(10, 23), ZoneInfo("Europe/London"))


def test_daily_runs_record_each_session_and_a_delisted_code_keeps_its_history(redis_client, store):
    source = CountingVendor()
    cache = OhlcvCache(redis_client, source, settings=Settings(client_cache_mb=0))
    for day in DAYS:
        before = len(source.calls)
        outcome = run_once(store, source, day, run_id=f"run-{day}", settings=Settings(), now=evening(day))
        assert outcome.still_failing == []
        universe = cache.universe(day)
        assert universe.exact
        assert universe.codes == source.snapshot(day).codes()
        asked = [kind for kind, _ in source.calls[before:]]
        # the delisting listing is asked once, by the first run that finds the code gone
        assert asked.count("delistings") == (1 if day == DAYS[5] else 0), day
    assert GONE in cache.universe(DAYS[4])
    assert GONE not in cache.universe(DAYS[5])
    assert NEW not in cache.universe(DAYS[5])
    assert NEW in cache.universe(DAYS[6], "KRX")
    mark = store.delisted([GONE])[GONE]
    assert (mark["last"], mark["delisted"], mark["reason"]) == (
        DAYS[4].isoformat(),
        DAYS[5].isoformat(),
        "synthetic delisting",
    )
    # the cut moved on without it, and its history stayed as the last table left it
    assert store.meta().last_update_at == DAYS[-1]
    assert store.read_series(GONE).index[-1].date() == DAYS[4]
    before = len(source.calls)
    frame = cache.get(GONE)
    assert frame.index[-1].date() == DAYS[4]
    assert source.calls[before:] == []
    assert list(cache.get_many([GONE, "000100"])[GONE].index) == list(frame.index)
    assert source.calls[before:] == []


def test_a_delisted_code_named_in_a_run_is_not_indexed_and_does_not_hold_the_cut(redis_client, store):
    source = vendor()
    for day in DAYS[:6]:
        run_once(store, source, day, run_id=f"run-{day}", settings=Settings(), now=evening(day))
    outcome = run_once(
        store, source, DAYS[6], run_id="named", tickers=[GONE, "000100"], settings=Settings(), now=evening(DAYS[6])
    )
    assert outcome.still_failing == []
    assert outcome.record["planned"] == 2
    assert GONE not in store.run_results("named")
    # the rest of the market is cached through DAYS[5]; the delisted code (through DAYS[4]) does
    # not hold the cut back
    assert store.meta().last_update_at == DAYS[5]


class Archive(SyntheticSource):
    """The synthetic vendor whose tables reach back to ``first`` only, counting table calls;
    ``down`` makes the table of that session an outage."""

    def __init__(self, first: dt.date, down: dt.date | None = None, **switches):
        super().__init__(6, **switches)
        self.first, self.down, self.asked = first, down, []

    def table(self, session):
        self.asked.append(session)
        if session == self.down:
            raise SourceUnavailable("the vendor is down")
        if session < self.first:
            raise TableMissing(f"no table of {session} (HTTP 404)")
        return super().table(session)


def test_backfill_records_back_to_the_archive_then_what_the_delisting_listing_knows(store, capsys):
    archive_from, newest = DAYS[3], DAYS[-1]
    old_gone = "000600"
    source = Archive(archive_from, delisted={old_gone: dt.date(2026, 6, 30)})
    for code in source.list_universe("KRX"):  # listed codes cached through the newest session
        if code != old_gone:
            store.write_series(code, source.history(code, None, newest), source.name)
    listings.record(store, [source.table(newest)])  # the indexer's first run
    report = listings.backfill(store, source, newest, progress=print)
    assert report.archive_from == archive_from
    assert report.exact_from == archive_from
    assert report.oldest == archive_from
    assert report.newest == newest
    assert sorted(report.recorded) == [day.isoformat() for day in DAYS[3:-1]]
    # it stopped after ARCHIVE_END_AFTER sessions in a row without a table
    assert len([day for day in source.asked if day < archive_from]) == listings.ARCHIVE_END_AFTER
    cache = OhlcvCache(store.client, source)
    assert cache.universe(archive_from).exact
    with pytest.warns(InexactUniverse, match="before the first recorded market table"):
        early = cache.universe(dt.date(2026, 6, 30))
    # before the archive: the delisted code from the delisting listing, the listed codes from
    # their first cached sessions
    assert not early.exact
    assert old_gone in early
    assert set(early) == {code for code in source.codes if source.listing_date(code) <= dt.date(2026, 6, 30)}
    assert report.delisted_named == 1
    assert report.unknown_start == []
    mark = store.delisted([old_gone])[old_gone]
    assert (mark["last"], mark["reason"]) == ("2026-06-30", "synthetic delisting")
    assert "exact from" in capsys.readouterr().out.join(report.lines())
    # asked again, it asks only what is still missing, and changes nothing
    spans = store.universe_record().spans
    listings.backfill(store, Archive(archive_from, delisted={old_gone: dt.date(2026, 6, 30)}), newest, progress=print)
    assert store.universe_record().spans == spans


def test_an_outage_stops_the_backfill_and_keeps_what_it_recorded(store):
    newest = DAYS[-1]
    source = Archive(DAYS[0], down=DAYS[2])
    with pytest.raises(SourceUnavailable):
        listings.backfill(store, source, newest, progress=lambda line: None)
    assert store.recorded_sessions() == (DAYS[3], newest, len(DAYS) - 3)
    report = listings.backfill(store, Archive(DAYS[0]), newest, since=DAYS[0], progress=lambda line: None)
    assert report.exact_from == DAYS[0]
    assert sorted(report.recorded) == [day.isoformat() for day in DAYS[:3]]


def test_a_gap_in_the_record_is_answered_from_the_sessions_around_it(store):
    source = vendor()
    listings.record(store, [source.table(day) for day in DAYS if day != DAYS[5]])
    cache = OhlcvCache(store.client, source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gap = cache.universe(DAYS[5])
    assert not gap.exact
    assert "never recorded" in gap.note
    assert [warning.category for warning in caught] == [InexactUniverse]
    assert GONE not in gap
    assert set(gap) == set(source.table(DAYS[4]).codes()) & set(source.table(DAYS[6]).codes())
