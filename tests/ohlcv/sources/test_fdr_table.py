"""``FdrSource.table`` and ``FdrSource.settles``: the public per-date KRX table files, with
KRX's and GitHub's HTTP answers intercepted (``responses``), as FinanceData publishes them.

The payloads are real rows of FinanceData's ``data/listing/krx/{date}.csv`` files, byte for
byte (see ``/work/shared/data/krx-table/README.md``): the 2026-03-13 file as last written on
that evening (preliminary volumes), and the 2026-03-14 file (a Saturday), which holds
2026-03-13's final table: same prices, higher volumes for 005935 and 950160.
"""

import datetime as dt

import pytest
import requests
import responses

from ohlcv.errors import BadOhlcvData, SourceUnavailable, TableMissing
from ohlcv.snapshot import COLUMNS, Snapshot
from ohlcv.sources import FdrSource
from ohlcv.sources.fdr import FINAL_FILE_FROM, FINAL_FILE_UNTIL

KRX_WORK_DATE = (
    "http://data.krx.co.kr/comm/bldAttendant/executeForResourceBundle.cmd?baseName=krx.mdc.i18n.component&key=B128.bld"
)
KRX_TABLE = "https://raw.githubusercontent.com/FinanceData/fdr_krx_data_cache/refs/heads/master/data/listing/krx/{}.csv"
KST = dt.timezone(dt.timedelta(hours=9))

THURSDAY, FRIDAY, SATURDAY = dt.date(2026, 3, 12), dt.date(2026, 3, 13), dt.date(2026, 3, 14)

#: the vendor's header: a byte-order mark, an unnamed index column, its own spelling ChagesRatio
HEADER = (
    "\ufeff,Code,ISU_CD,Name,Market,Dept,Close,ChangeCode,Changes,ChagesRatio,Open,High,Low,"
    "Volume,Amount,Marcap,Stocks,MarketId"
)
ROWS = {
    # 2026-03-12.csv as last written on 2026-03-12's evening
    THURSDAY: [
        "0,005930,KR7005930003,삼성전자,KOSPI,,187900,2,-2100,-1.11,186600,190000,185900,20440753,3832551376350,1112299965543800,5919637922,STK",
        "2,005935,KR7005931001,삼성전자우,KOSPI,,134000,2,-4900,-3.53,136300,139200,134000,4546491,617330804450,109340604976000,815974664,STK",
        "62,0126Z0,KR70126Z0002,삼성에피스홀딩스,KOSPI,,542000,1,1000,0.18,549000,552000,522000,121190,64645983000,13486612558000,24883049,STK",
        "80,950160,KR8840120008,코오롱티슈진,KOSDAQ,외국기업(소속부없음),101000,1,2200,2.23,97500,102200,96200,245346,24433313450,8408889835000,83256335,KSQ",
        "123,0009K0,KR70009K0001,에임드바이오,KOSDAQ,기술성장기업부,70300,1,5200,7.99,63400,71900,62600,4271978,296586367650,4546382618300,64671161,KSQ",
        "498,496320,KR7496320003,본시스템즈,KONEX,일반기업부,614000,0,0,0.0,0,0,0,0,0,614000000000,1000000,KNX",
        "690,035890,KR7035890003,서희건설,KOSDAQ,관리종목(소속부없음),1623,0,0,0.0,0,0,0,0,0,372979125711,229808457,KSQ",
    ],
    # 2026-03-13.csv as last written on 2026-03-13's evening: preliminary volumes
    FRIDAY: [
        "0,005930,KR7005930003,삼성전자,KOSPI,,183500,2,-4400,-2.34,180000,186200,179900,19566331,3585430274050,1086253558687000,5919637922,STK",
        "2,005935,KR7005931001,삼성전자우,KOSPI,,133900,2,-100,-0.07,128500,135000,128300,3042453,401635576650,109259007509600,815974664,STK",
        "61,0126Z0,KR70126Z0002,삼성에피스홀딩스,KOSPI,,532000,2,-10000,-1.85,524000,541000,523000,37493,19970634000,13237782068000,24883049,STK",
        "78,950160,KR8840120008,코오롱티슈진,KOSDAQ,외국기업(소속부없음),103200,1,2200,2.18,97700,104000,97700,316063,32129943250,8592053772000,83256335,KSQ",
        "124,0009K0,KR70009K0001,에임드바이오,KOSDAQ,기술성장기업부,69400,2,-900,-1.28,68200,71200,67400,1313637,91410112750,4488178573400,64671161,KSQ",
        "480,496320,KR7496320003,본시스템즈,KONEX,일반기업부,644000,1,30000,4.89,0,0,0,0,0,644000000000,1000000,KNX",
        "684,035890,KR7035890003,서희건설,KOSDAQ,관리종목(소속부없음),1623,0,0,0.0,0,0,0,0,0,372979125711,229808457,KSQ",
    ],
    # 2026-03-14.csv (a Saturday): 2026-03-13's final table, written at about 01:15 KST
    SATURDAY: [
        "0,005930,KR7005930003,삼성전자,KOSPI,,183500,2,-4400,-2.34,180000,186200,179900,19566331,3585430274050,1086253558687000,5919637922,STK",
        "2,005935,KR7005931001,삼성전자우,KOSPI,,133900,2,-100,-0.07,128500,135000,128300,3046954,402232409250,109259007509600,815974664,STK",
        "61,0126Z0,KR70126Z0002,삼성에피스홀딩스,KOSPI,,532000,2,-10000,-1.85,524000,541000,523000,37493,19970634000,13237782068000,24883049,STK",
        "78,950160,KR8840120008,코오롱티슈진,KOSDAQ,외국기업(소속부없음),103200,1,2200,2.18,97700,104000,97700,316178,32141776750,8592053772000,83256335,KSQ",
        "124,0009K0,KR70009K0001,에임드바이오,KOSDAQ,기술성장기업부,69400,2,-900,-1.28,68200,71200,67400,1313637,91410112750,4488178573400,64671161,KSQ",
        "480,496320,KR7496320003,본시스템즈,KONEX,일반기업부,644000,1,30000,4.89,0,0,0,0,0,644000000000,1000000,KNX",
        "684,035890,KR7035890003,서희건설,KOSDAQ,관리종목(소속부없음),1623,0,0,0.0,0,0,0,0,0,372979125711,229808457,KSQ",
    ],
}
CODES = ["005930", "005935", "0126Z0", "950160", "0009K0", "496320", "035890"]


def csv(rows: list[str]) -> bytes:
    """A table file as FinanceData serves it: UTF-8 with a BOM, LF line ends, a final newline."""
    return "\n".join([HEADER, *rows, ""]).encode()


def kst(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, second), KST)


def source_at(moment: dt.datetime) -> FdrSource:
    return FdrSource(clock=lambda: moment)


def serve_work_date(mock, day: dt.date) -> None:
    mock.get(KRX_WORK_DATE, json={"result": {"output": [{"max_work_dt": day.strftime("%Y%m%d")}]}})


def serve_file(mock, day: dt.date, **answer) -> None:
    mock.get(KRX_TABLE.format(day.isoformat()), **(answer or {"body": csv(ROWS[day])}))


def files_asked() -> list[str]:
    """The table files asked for, in order, by their date (the work-date call left out)."""
    return [
        call.request.url.rsplit("/", 1)[-1].removesuffix(".csv")
        for call in responses.calls
        if call.request.url.startswith(KRX_TABLE.format("").removesuffix(".csv"))
    ]


# --- the session's own file ----------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [kst(FRIDAY, 18, 30), kst(SATURDAY, 1, 29, 59)],
    ids=["the session's evening", "a second before 01:30 KST the next day"],
)
@responses.activate
def test_an_evening_read_parses_the_session_s_own_file_into_a_preliminary_snapshot(moment):
    serve_work_date(responses, FRIDAY)
    serve_file(responses, FRIDAY)
    table = source_at(moment).table(FRIDAY)
    assert isinstance(table, Snapshot)
    assert (table.session, table.source, table.final) == (FRIDAY, "fdr", False)
    assert files_asked() == ["2026-03-13"]
    assert list(table.frame.index) == CODES
    assert list(table.frame.columns) == list(COLUMNS)
    assert table.codes() == sorted(CODES)
    assert table.codes("KONEX") == ["496320"]
    # values as the vendor sent them: Market from MarketId, Changes = Close - base price
    assert table.frame.loc["005930"].tolist() == ["KOSPI", 180000, 186200, 179900, 183500, 19566331, -4400]
    assert table.frame.loc["005935"].tolist() == ["KOSPI", 128500, 135000, 128300, 133900, 3042453, -100]
    assert table.frame.loc["0126Z0"].tolist() == ["KOSPI", 524000, 541000, 523000, 532000, 37493, -10000]
    assert table.frame.loc["950160"].tolist() == ["KOSDAQ", 97700, 104000, 97700, 103200, 316063, 2200]
    assert table.frame.loc["0009K0", "Market"] == "KOSDAQ"
    # a halted code: no trades, Close carried over
    assert table.frame.loc["035890"].tolist() == ["KOSDAQ", 0, 0, 0, 1623, 0, 0]
    assert table.frame.index.map(type).unique().tolist() == [str]  # codes keep their leading zeros


# --- the next day's file, which holds the final table ---------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        kst(SATURDAY, 1, 30),
        kst(SATURDAY, 12, 0),
        kst(dt.date(2026, 3, 15), 23, 0),
        kst(FRIDAY, 16, 30).replace(tzinfo=dt.UTC),
    ],
    ids=["01:30 KST the next day", "noon on Saturday", "Sunday evening", "16:30 UTC, 01:30 KST"],
)
@responses.activate
def test_from_01_30_kst_the_next_day_the_next_day_s_file_is_read_as_the_final_table(moment):
    serve_work_date(responses, FRIDAY)
    serve_file(responses, SATURDAY)
    table = source_at(moment).table(FRIDAY)
    assert files_asked() == ["2026-03-14"]
    assert responses.calls[-1].request.url == KRX_TABLE.format("2026-03-14")
    assert (table.session, table.source, table.final) == (FRIDAY, "fdr", True)
    assert list(table.frame.index) == CODES
    # the final volumes, not the evening's (3042453 and 316063); prices are the same
    assert table.frame.loc["005935"].tolist() == ["KOSPI", 128500, 135000, 128300, 133900, 3046954, -100]
    assert table.frame.loc["950160", "Volume"] == 316178


@responses.activate
def test_before_09_00_kst_of_a_trading_day_its_file_still_holds_the_previous_session_s_final_table():
    serve_work_date(responses, THURSDAY)
    # what 2026-03-13.csv holds from 01:15 to 09:15 KST: 2026-03-12's table (its own rows stand in)
    serve_file(responses, FRIDAY, body=csv(ROWS[THURSDAY]))
    table = source_at(kst(FRIDAY, 8, 59, 59)).table(THURSDAY)
    assert files_asked() == ["2026-03-13"]
    assert (table.session, table.final) == (THURSDAY, True)
    assert table.frame.loc["005930", "Close"] == 187900


@responses.activate
def test_from_09_00_kst_of_a_trading_day_the_previous_session_is_read_from_its_own_file_again():
    serve_work_date(responses, FRIDAY)
    serve_file(responses, THURSDAY)
    serve_file(responses, FRIDAY)  # now the new session's own values: must not be read for Thursday
    table = source_at(kst(FRIDAY, 9, 0)).table(THURSDAY)
    assert files_asked() == ["2026-03-12"]
    assert (table.session, table.final) == (THURSDAY, False)
    assert table.frame.loc["005930"].tolist() == ["KOSPI", 186600, 190000, 185900, 187900, 20440753, -2100]


@responses.activate
def test_a_next_day_s_file_not_yet_published_falls_back_to_the_session_s_own_file():
    serve_work_date(responses, FRIDAY)
    serve_file(responses, SATURDAY, status=404, body="404: Not Found")
    serve_file(responses, FRIDAY)
    table = source_at(kst(SATURDAY, 1, 30)).table(FRIDAY)
    assert files_asked() == ["2026-03-14", "2026-03-13"]
    assert (table.session, table.final) == (FRIDAY, False)
    assert table.frame.loc["005935", "Volume"] == 3042453


# --- missing and unusable files -------------------------------------------------------------


@responses.activate
def test_a_file_that_is_not_published_is_a_missing_table_naming_the_session_and_the_404():
    serve_work_date(responses, FRIDAY)
    serve_file(responses, FRIDAY, status=404, body="404: Not Found")
    with pytest.raises(TableMissing, match=r"2026-03-13.*HTTP 404"):
        source_at(kst(FRIDAY, 18, 30)).table(FRIDAY)
    assert files_asked() == ["2026-03-13"]


@responses.activate
def test_neither_file_published_after_01_30_is_a_missing_table_of_the_session():
    serve_work_date(responses, FRIDAY)
    serve_file(responses, SATURDAY, status=404, body="404: Not Found")
    serve_file(responses, FRIDAY, status=404, body="404: Not Found")
    with pytest.raises(TableMissing, match=r"2026-03-13.*HTTP 404"):
        source_at(kst(SATURDAY, 2, 0)).table(FRIDAY)
    assert files_asked() == ["2026-03-14", "2026-03-13"]


@responses.activate
def test_a_session_after_krx_s_latest_work_date_is_missing_without_asking_for_a_file():
    serve_work_date(responses, THURSDAY)
    with pytest.raises(TableMissing, match=r"latest work date is 2026-03-12: no KRX table of 2026-03-13"):
        source_at(kst(FRIDAY, 18, 30)).table(FRIDAY)
    assert files_asked() == []


@responses.activate
def test_a_file_download_that_fails_is_an_outage_not_a_missing_table():
    serve_work_date(responses, FRIDAY)
    serve_file(responses, FRIDAY, body=requests.Timeout("read timed out"))
    with pytest.raises(SourceUnavailable, match="KRX table of 2026-03-13") as raised:
        source_at(kst(FRIDAY, 18, 30)).table(FRIDAY)
    assert not isinstance(raised.value, TableMissing)


#: what a proxy, captive portal or GitHub's rate limiter serves with HTTP 200 instead of the file
HTML_PAGES = {
    "a plain page": "<!DOCTYPE html>\n<html>\n<head><title>Error</title></head>\n<body>Unicorn!</body>\n</html>\n",
    "a page with a comma": (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta name="viewport" content="width=device-width, '
        'initial-scale=1">\n<title>Too Many Requests</title>\n</head>\n<body>Slow down</body>\n</html>\n'
    ),
}


@pytest.mark.parametrize("page", HTML_PAGES.values(), ids=HTML_PAGES.keys())
@responses.activate
def test_an_html_page_served_with_200_is_refused_naming_the_session(page):
    """Bad data, never a snapshot, whether or not pandas could tokenize the page."""
    serve_work_date(responses, FRIDAY)
    serve_file(responses, FRIDAY, body=page, content_type="text/html")
    with pytest.raises(BadOhlcvData, match="KRX table file of 2026-03-13 is an HTML page"):
        source_at(kst(FRIDAY, 18, 30)).table(FRIDAY)


def _cut_in_a_row() -> bytes:
    whole = csv(ROWS[FRIDAY])
    return whole[: whole.index(b",13237782068000")]  # 0126Z0's row ends after its Amount


TRUNCATED = {
    "cut inside a row": _cut_in_a_row(),
    "only the header": csv([]),
}


@pytest.mark.parametrize("body", TRUNCATED.values(), ids=TRUNCATED.keys())
@responses.activate
def test_a_truncated_file_is_bad_data_not_a_table(body):
    """Expected behaviour: a file that stops in the middle of a row, or holds no row at all,
    is refused as ``BadOhlcvData``; no snapshot with the missing values (or no codes) is returned."""
    serve_work_date(responses, FRIDAY)
    serve_file(responses, FRIDAY, body=body)
    with pytest.raises(BadOhlcvData, match="2026-03-13"):
        source_at(kst(FRIDAY, 18, 30)).table(FRIDAY)


@responses.activate
def test_a_file_listing_a_code_twice_is_bad_data_not_a_table():
    """Expected behaviour: a file with a code listed twice is refused as ``BadOhlcvData``."""
    serve_work_date(responses, FRIDAY)
    rows = ROWS[FRIDAY]
    twice = [*rows, "685," + rows[1].split(",", 1)[1].replace(",3042453,", ",3042454,")]  # 005935 again
    serve_file(responses, FRIDAY, body=csv(twice))
    with pytest.raises(BadOhlcvData, match="005935"):
        source_at(kst(FRIDAY, 18, 30)).table(FRIDAY)


# --- settles --------------------------------------------------------------------------------


def test_the_boundaries_are_01_30_and_09_00_kst():
    assert (dt.time(1, 30), dt.time(9, 0)) == (FINAL_FILE_FROM, FINAL_FILE_UNTIL)


@pytest.mark.parametrize(
    ("session", "moment", "settled"),
    [
        # Friday: the next day is a Saturday, whose file keeps the final table
        (FRIDAY, kst(FRIDAY, 18, 30), False),
        (FRIDAY, kst(SATURDAY, 1, 29, 59), False),
        (FRIDAY, kst(SATURDAY, 1, 30), True),
        (FRIDAY, kst(SATURDAY, 9, 0), True),
        (FRIDAY, kst(dt.date(2026, 3, 16), 10, 0), True),
        (FRIDAY, dt.datetime(2026, 3, 13, 16, 29, 59, tzinfo=dt.UTC), False),  # 01:29:59 KST
        (FRIDAY, dt.datetime(2026, 3, 13, 16, 30, tzinfo=dt.UTC), True),  # 01:30 KST
        # Thursday: the next day is a session, whose file holds its own values from 09:00 KST
        (THURSDAY, kst(FRIDAY, 1, 29, 59), False),
        (THURSDAY, kst(FRIDAY, 1, 30), True),
        (THURSDAY, kst(FRIDAY, 8, 59, 59), True),
        (THURSDAY, kst(FRIDAY, 9, 0), False),
        (THURSDAY, kst(SATURDAY, 2, 0), False),
        (THURSDAY, dt.datetime(2026, 3, 13, 0, 0, tzinfo=dt.UTC), False),  # 09:00 KST
    ],
)
def test_settles_while_the_next_day_s_file_holds_the_final_table(session, moment, settled):
    assert FdrSource().settles(session, moment) is settled


@responses.activate
def test_settles_agrees_with_the_file_table_reads():
    """Where ``settles`` is true the table read is final, and where it is false it is not."""
    serve_work_date(responses, THURSDAY)
    serve_file(responses, THURSDAY)
    serve_file(responses, FRIDAY, body=csv(ROWS[THURSDAY]))  # the 2026-03-13 file before 09:15
    for moment in (kst(FRIDAY, 1, 29), kst(FRIDAY, 1, 30), kst(FRIDAY, 8, 59), kst(FRIDAY, 9, 0)):
        source = source_at(moment)
        assert source.table(THURSDAY).final is source.settles(THURSDAY, moment), moment
