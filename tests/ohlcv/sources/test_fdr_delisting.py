"""``FdrSource.delistings``: FinanceDataReader's own ``StockListing('KRX-DELISTING')`` reading
the public delisting file of KRX's latest work date, with KRX's and GitHub's HTTP answers
intercepted (``responses``).

The payload is FinanceData's ``data/listing/delisting/2026-03-20.csv``, byte for byte (see
``tests/fixtures/krx/delisting``): 4,104 securities delisted since 1956, warrants, rights and
funds with eight-character symbols among them.
"""

import datetime as dt
from pathlib import Path

import pytest
import responses

from ohlcv.errors import BadOhlcvData, SourceUnavailable, TableMissing
from ohlcv.sources import FdrSource
from ohlcv.universe import Delisting

KRX_WORK_DATE = (
    "http://data.krx.co.kr/comm/bldAttendant/executeForResourceBundle.cmd?baseName=krx.mdc.i18n.component&key=B128.bld"
)
DELISTING_FILE = (
    "https://raw.githubusercontent.com/FinanceData/fdr_krx_data_cache/refs/heads/master/data/listing/delisting/{}.csv"
)
FILE = Path(__file__).resolve().parents[2] / "fixtures" / "krx" / "delisting" / "2026-03-20.csv"
WORK_DATE = dt.date(2026, 3, 20)


def serve_work_date(day: dt.date = WORK_DATE) -> None:
    responses.get(KRX_WORK_DATE, json={"result": {"output": [{"max_work_dt": day.strftime("%Y%m%d")}]}})


@responses.activate
def test_the_delisting_listing_is_read_through_finance_data_reader():
    serve_work_date()
    responses.get(DELISTING_FILE.format(WORK_DATE), body=FILE.read_bytes())
    found = FdrSource().delistings()
    assert [call.request.url for call in responses.calls][-1] == DELISTING_FILE.format(WORK_DATE)
    codes = {item.code for item in found}
    # six-character stock codes only: the warrants and funds with longer symbols are left out
    assert len(found) == 2308
    assert all(len(code) == 6 for code in codes)
    march = [item for item in found if item.delisted >= dt.date(2026, 3, 16)]
    assert [(item.code, item.delisted.isoformat()) for item in march] == [
        ("222810", "2026-03-16"), ("457940", "2026-03-16"), ("036180", "2026-03-17"), ("204630", "2026-03-18")
    ]  # fmt: skip
    assert march[1] == Delisting(
        "457940", "에스케이증권제10호스팩", "KOSDAQ", dt.date(2023, 8, 11), dt.date(2026, 3, 16),
        "합병상장예비심사신청서 미제출 등으로 관리종목으로 지정된 날(2026.02.04)부터 1개월 이내 동 사유 미해소",
    )  # fmt: skip
    assert march[1].last == dt.date(2026, 3, 13)  # the session before its delisting date
    # a code listed and delisted twice keeps both stretches; one delisting on two rows is one
    assert [(item.listed.year, item.delisted.year) for item in found if item.code == "004481"] == [
        (1996, 1996), (1997, 1997)
    ]  # fmt: skip
    (twice,) = [item for item in found if item.code == "028855"]
    assert twice.reason == "종목별 상장폐지신청; 해산 사유 발생"


@responses.activate
def test_a_delisting_file_not_published_is_missing_not_empty():
    """FinanceDataReader answers an empty frame when the file's download fails."""
    serve_work_date()
    responses.get(DELISTING_FILE.format(WORK_DATE), status=404, body="404: Not Found")
    with pytest.raises(TableMissing, match="not published"):
        FdrSource().delistings()


@responses.activate
def test_an_outage_of_the_delisting_file_is_worth_retrying():
    serve_work_date()
    responses.get(DELISTING_FILE.format(WORK_DATE), status=503, body="unavailable")
    with pytest.raises(SourceUnavailable) as raised:
        FdrSource().delistings()
    assert not isinstance(raised.value, TableMissing)


@responses.activate
def test_an_html_page_instead_of_the_listing_is_bad_data():
    serve_work_date()
    responses.get(DELISTING_FILE.format(WORK_DATE), body=b"<!DOCTYPE html><html><body>rate limited</body></html>")
    with pytest.raises(BadOhlcvData):
        FdrSource().delistings()


@responses.activate
def test_krx_unreachable_for_its_work_date_is_an_outage():
    responses.get(KRX_WORK_DATE, status=502)
    with pytest.raises(SourceUnavailable):
        FdrSource().delistings()
