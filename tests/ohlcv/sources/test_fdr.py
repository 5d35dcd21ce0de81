"""FinanceDataReader's real request and parsing code, with Naver's HTTP answers intercepted."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import responses
from responses import matchers

from ohlcv.errors import BadOhlcvData, NoData, SourceBlocked, SourceUnavailable
from ohlcv.sources import FdrSource
from ohlcv.validation import validate

NAVER = "https://fchart.stock.naver.com/sise.nhn"

ROWS = [
    ("20240102", 78200, 79800, 78200, 79600, 17142847),
    ("20240103", 78500, 78800, 77000, 77000, 21753644),
    ("20240104", 76100, 77300, 76100, 76600, 15324439),
    ("20240105", 76700, 77100, 76400, 76600, 11304316),
    ("20240108", 77000, 77500, 76400, 76500, 11088724),
]


def naver_chart(code: str, rows=ROWS) -> str:
    """A chart answer as Naver sends it: EUC-KR XML with one <item data="..."/> per session."""
    items = "\n".join(f'\t\t<item data="{"|".join(str(value) for value in row)}" />' for row in rows)
    return (
        '<?xml version="1.0" encoding="EUC-KR" ?>\n<protocol>\n'
        f'\t<chartdata symbol="{code}" name="SAMPLE" count="{len(rows)}" timeframe="day" '
        'precision="0" origintime="19900103">\n'
        f"{items}\n\t</chartdata>\n</protocol>\n"
    )


def naver_query(code: str):
    return matchers.query_param_matcher({"timeframe": "day", "count": "6000", "requestType": "0", "symbol": code})


@responses.activate
def test_history_is_parsed_by_financedatareader_into_the_canonical_frame():
    responses.get(NAVER, body=naver_chart("005930"), match=[naver_query("005930")])
    frame = FdrSource().history("005930", None, dt.date(2024, 1, 8))
    assert list(frame.index.strftime("%Y-%m-%d")) == [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
        "2024-01-08",
    ]
    assert frame.loc["2024-01-02"].tolist()[:5] == [78200, 79800, 78200, 79600, 17142847]
    assert frame["Close"].dtype == np.int64
    assert np.isnan(frame["Change"].iloc[0])
    assert frame["Change"].iloc[1] == pytest.approx(77000 / 79600 - 1)
    assert len(responses.calls) == 1


@responses.activate
def test_history_is_cut_to_the_requested_window():
    responses.get(NAVER, body=naver_chart("005930"), match=[naver_query("005930")])
    frame = FdrSource().history("005930", dt.date(2024, 1, 3), dt.date(2024, 1, 5))
    assert list(frame.index.strftime("%Y-%m-%d")) == ["2024-01-03", "2024-01-04", "2024-01-05"]
    # Change is computed on the whole download, so the window's first row has one.
    assert frame["Change"].iloc[0] == pytest.approx(77000 / 79600 - 1)


@responses.activate
def test_letter_codes_from_the_2024_reform_go_to_naver():
    responses.get(NAVER, body=naver_chart("0126Z0"), match=[naver_query("0126Z0")])
    assert len(FdrSource().history("0126Z0", None, dt.date(2024, 1, 8))) == 5


@responses.activate
def test_a_code_naver_does_not_know_is_no_data():
    empty = (
        '<?xml version="1.0" encoding="EUC-KR" ?>\n<protocol>\n\t<chartdata symbol="999990" count="0" />\n</protocol>'
    )
    responses.get(NAVER, body=empty, match=[naver_query("999990")])
    with pytest.raises(NoData, match="999990"):
        FdrSource().history("999990", None, dt.date(2024, 1, 8))


@responses.activate
def test_an_unreachable_vendor_is_source_unavailable():
    responses.get(NAVER, body=requests.ConnectionError("connection refused"))
    with pytest.raises(SourceUnavailable, match="005930"):
        FdrSource().history("005930", None, dt.date(2024, 1, 8))


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        *((status, SourceUnavailable, str(status)) for status in (500, 502, 503, 504)),  # retried
        *((status, SourceBlocked, f"HTTP {status}") for status in (429, 403)),  # a refusal: never retried
    ],
)
@responses.activate
def test_an_http_error_is_an_outage_or_a_refusal_never_no_data(status, error, message):
    responses.get(NAVER, body="<html><body>Service Unavailable</body></html>", status=status)
    with pytest.raises(error, match=message):
        FdrSource().history("005930", None, dt.date(2024, 1, 8))


@responses.activate
def test_a_timeout_is_source_unavailable():
    responses.get(NAVER, body=requests.Timeout("read timed out"))
    with pytest.raises(SourceUnavailable, match="timed out"):
        FdrSource().history("005930", None, dt.date(2024, 1, 8))


INDEX_YEAR = (
    "https://raw.githubusercontent.com/FinanceData/fdr_krx_data_cache/refs/heads/master/data/index/year_{}/{}.csv"
)
INDEX_1998 = {"KS11": "ks11", "KQ11": "kq11", "KS200": "ks200"}


def index_years(mock, symbol: str, served: dict[int, object], last: int) -> None:
    """FinanceData's yearly index files from 1990 to ``last``: the ``served`` ones, 404 for the others."""
    for year in range(1990, last + 1):
        answer = served.get(year, {"status": 404, "body": "404: Not Found"})
        mock.get(INDEX_YEAR.format(symbol, year), **answer)


@pytest.mark.parametrize("code", ["KS11", "KQ11", "KS200"])
@responses.activate
def test_an_index_history_is_asked_from_1990_and_keeps_its_saturday_sessions(code):
    symbol = INDEX_1998[code]
    fixture = FIXTURES / "index" / f"year_{symbol}" / "1998.csv"
    index_years(responses, symbol, {1998: {"body": fixture.read_bytes()}}, 1998)
    frame = FdrSource().history(code, None, dt.date(1998, 12, 31))
    asked = [call.request.url.rsplit("/", 1)[-1] for call in responses.calls]
    assert asked == [f"{year}.csv" for year in range(1990, 1999)]  # not from 2010, FinanceDataReader's default
    vendor = pd.read_csv(fixture, index_col="Date", parse_dates=True)
    assert list(frame.index) == list(vendor.index)
    assert frame.loc["1998-12-05", "Close"] == vendor.loc["1998-12-05", "Close"]  # the last Saturday session
    assert pd.Timestamp("1998-12-12") not in frame.index
    validate(frame, dt.date(1998, 12, 31))  # real historical sessions are accepted


@responses.activate
def test_a_yearly_index_file_that_failed_is_an_outage_not_a_gap_in_history():
    fixture = (FIXTURES / "index" / "year_ks11" / "1998.csv").read_bytes()
    january = b"Date,Close,UpDown,Comp,Change,Open,High,Low,Volume,Amount,MarCap\n" + (
        b"2000-01-04,1059.04,1,30.97,0.0301,1028.33,1066.18,1016.59,195899000,3401717000000,\n"
    )
    index_years(
        responses, "ks11", {1998: {"body": fixture}, 1999: {"body": requests.Timeout("timed out")},
                            2000: {"body": january}}, 2000,
    )  # fmt: skip
    with pytest.raises(SourceUnavailable, match="no rows in 1999: a yearly file failed to download"):
        FdrSource().history("KS11", None, dt.date(2000, 1, 4))


@responses.activate
def test_a_window_before_the_first_session_is_no_data():
    responses.get(NAVER, body=naver_chart("005930"), match=[naver_query("005930")])
    with pytest.raises(NoData):
        FdrSource().history("005930", None, dt.date(2023, 12, 29))


def test_the_canonical_frame_matches_what_financedatareader_returns():
    """The adapter changes types and shape, never values."""
    with responses.RequestsMock() as mock:
        mock.get(NAVER, body=naver_chart("005930"), match=[naver_query("005930")])
        import FinanceDataReader as fdr

        raw = fdr.DataReader("005930", "2024-01-01", "2024-01-08")
    with responses.RequestsMock() as mock:
        mock.get(NAVER, body=naver_chart("005930"), match=[naver_query("005930")])
        frame = FdrSource().history("005930", dt.date(2024, 1, 1), dt.date(2024, 1, 8))
    pd.testing.assert_frame_equal(frame, raw, check_dtype=False, check_index_type=False, check_freq=False)


KRX_WORK_DATE = (
    "http://data.krx.co.kr/comm/bldAttendant/executeForResourceBundle.cmd?baseName=krx.mdc.i18n.component&key=B128.bld"
)
KRX_TABLE = "https://raw.githubusercontent.com/FinanceData/fdr_krx_data_cache/refs/heads/master/data/listing/krx/{}.csv"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "krx"


def krx_answers(mock, work_date: str = "20260310", table: str = "2026-03-10", **table_answer) -> None:
    """KRX's latest work date and FinanceData's cached table of that date, as they are served."""
    mock.get(KRX_WORK_DATE, json={"result": {"output": [{"max_work_dt": work_date}]}})
    answer = table_answer or {"body": (FIXTURES / f"{table}.csv").read_bytes()}
    mock.get(KRX_TABLE.format(f"{work_date[:4]}-{work_date[4:6]}-{work_date[6:]}"), **answer)


@responses.activate
def test_the_snapshot_is_krx_s_table_of_its_latest_work_date_read_by_financedatareader():
    krx_answers(responses)
    table = FdrSource().snapshot(dt.date(2026, 3, 10))
    assert (table.session, table.source, len(table.frame)) == (dt.date(2026, 3, 10), "fdr", 2881)
    assert table.frame.loc["005930"].tolist() == ["KOSPI", 187600, 191500, 184300, 187900, 33530170, 14400]
    assert table.frame.loc["0009K0", "Market"] == "KOSDAQ"
    assert [call.request.url.split("?")[0] for call in responses.calls][-1].endswith("/krx/2026-03-10.csv")


@responses.activate
def test_the_session_comes_from_krx_not_from_the_clock_or_the_question():
    krx_answers(responses, work_date="20260309", table="2026-03-09")
    assert FdrSource().snapshot(dt.date(2026, 3, 10)).session == dt.date(2026, 3, 9)


@responses.activate
def test_an_answer_without_krx_s_work_date_is_asked_again():
    responses.get(KRX_WORK_DATE, json={"result": {"output": [{}]}})
    with pytest.raises(SourceUnavailable, match="could not read its answer for the KRX table"):
        FdrSource().snapshot(dt.date(2026, 3, 10))


def test_a_table_whose_session_cannot_be_established_is_refused():
    from ohlcv.sources.fdr import _work_date

    table = KRX_TABLE.format("2026-03-09")
    with pytest.raises(BadOhlcvData, match="KRX gave no latest work date"):
        _work_date([(table, None)])
    work_date = requests.Response()
    work_date.status_code, work_date._content = 200, b'{"result": {"output": [{"max_work_dt": "20260310"}]}}'
    with pytest.raises(BadOhlcvData, match="latest work date is 2026-03-10, but the table read was 2026-03-09's"):
        _work_date([(KRX_WORK_DATE, work_date), (table, None)])


@pytest.mark.parametrize(
    ("where", "answer", "error"),
    [
        ("table", {"status": 404, "body": "404: Not Found"}, SourceUnavailable),  # not yet written
        ("table", {"body": requests.Timeout("read timed out")}, SourceUnavailable),
        ("work date", {"status": 503, "body": "<html>busy</html>"}, SourceUnavailable),
        ("work date", {"status": 403, "body": "<html>denied</html>"}, SourceBlocked),
        ("work date", {"body": requests.ConnectionError("refused")}, SourceUnavailable),
    ],
)
@responses.activate
def test_a_failed_table_download_is_an_outage_or_a_refusal(where, answer, error):
    if where == "table":
        krx_answers(responses, **answer)
    else:
        responses.get(KRX_WORK_DATE, **answer)
    with pytest.raises(error, match="KRX table"):
        FdrSource().snapshot(dt.date(2026, 3, 10))


def test_financedatareader_still_reaches_the_network_through_the_names_that_are_patched():
    """If FinanceDataReader changes how it imports requests or pandas, the timeouts and status
    checks would silently stop applying: this fails first."""
    from FinanceDataReader.krx import data as krx_data
    from FinanceDataReader.krx import listing
    from FinanceDataReader.naver import data as naver_data

    from ohlcv.sources import fdr as adapter

    adapter._fdr()
    assert {"requests"} <= set(naver_data._naver_data_reader.__code__.co_names)
    assert {"requests", "pd"} <= set(listing.KrxMarcapListingCache.read.__code__.co_names)
    assert {"pd"} <= set(krx_data.KrxIndexReaderCache.read.__code__.co_names)
    for module, names in ((naver_data, ["requests"]), (listing, ["requests", "pd"]), (krx_data, ["requests", "pd"])):
        for name in names:
            assert getattr(module, name) is adapter._STAND_INS[name], (module.__name__, name)


def test_a_module_without_the_patched_name_fails_loudly(monkeypatch):
    from FinanceDataReader.naver import data as naver_data

    from ohlcv.errors import ConfigurationError
    from ohlcv.sources import fdr as adapter

    monkeypatch.delattr(naver_data, "requests")
    adapter._fdr.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="FinanceDataReader changed how it reaches the network"):
            adapter._fdr()
    finally:
        monkeypatch.undo()
        adapter._fdr.cache_clear()
        adapter._fdr()


@responses.activate
def test_a_naver_answer_cut_off_in_the_middle_is_an_outage_not_a_shorter_history():
    whole = naver_chart("005930")
    responses.get(NAVER, body=whole[: whole.index("20240105")])  # the transfer broke off
    with pytest.raises(SourceUnavailable, match="ends before </protocol>"):
        FdrSource().history("005930", None, dt.date(2024, 1, 8))


@responses.activate
def test_an_answer_the_parser_cannot_read_is_asked_again_not_recorded_as_bad_data():
    responses.get(KRX_WORK_DATE, body="<html><body>점검 중</body></html>")  # a 200 page that is not JSON
    with pytest.raises(SourceUnavailable, match="could not"):
        FdrSource().snapshot(dt.date(2026, 3, 10))
