"""The KRX Open API as the second table source: the ``krx-openapi`` client's real request and
parsing code, with urllib intercepted (tests/krx_openapi_stub.py) and answers in the API's JSON
format built from real KRX tables (tests/fixtures/krx)."""

import datetime as dt
from pathlib import Path

import limits
import pandas as pd
import pytest

from ohlcv.errors import BadOhlcvData, ConfigurationError, SourceUnavailable, TableMissing
from ohlcv.settings import Settings
from ohlcv.snapshot import KRX_TABLE_DTYPES, from_krx_table
from ohlcv.sources import second_tables
from ohlcv.sources.guard import GuardedSource
from ohlcv.sources.krx_openapi import KrxOpenApiSource
from ohlcv.sources.synthetic import SyntheticSource
from tests import krx_openapi_stub

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "krx"
SESSION = dt.date(2026, 3, 10)
KEY = "0123456789ABCDEF0123456789ABCDEF01234567"
LATER = dt.datetime(2026, 3, 11, 0, 0, tzinfo=dt.UTC)  # 09:00 KST the next day


def real_table(day: dt.date = SESSION):
    frame = pd.read_csv(FIXTURES / f"{day}.csv", index_col=0, dtype=KRX_TABLE_DTYPES)
    return from_krx_table(frame.reset_index(drop=True), day, "fdr")


@pytest.fixture
def api(monkeypatch):
    return krx_openapi_stub.install(monkeypatch)


def source() -> KrxOpenApiSource:
    return KrxOpenApiSource(KEY, clock=lambda: LATER)


def test_a_session_s_table_is_the_three_markets_rows_with_the_public_file_s_values(api):
    public = real_table()
    api.serve(public)
    table = source().table(SESSION)
    assert (table.session, table.source, table.final) == (SESSION, "krx_openapi", True)
    assert [call[0] for call in api.calls] == ["stk_bydd_trd", "ksq_bydd_trd", "knx_bydd_trd"]
    assert {call[1] for call in api.calls} == {"20260310"}
    assert {call[2] for call in api.calls} == {KEY}  # the key rides the AUTH_KEY header
    expected = public.frame[public.frame["Market"].isin(["KOSPI", "KOSDAQ", "KONEX"])]
    assert sorted(table.frame.index) == sorted(expected.index)
    columns = ["Market", "Open", "High", "Low", "Close", "Volume", "Changes"]
    pd.testing.assert_frame_equal(
        table.frame.loc[sorted(expected.index), columns], expected.loc[sorted(expected.index), columns],
        check_dtype=False, check_names=False,
    )  # fmt: skip
    assert table.frame.loc["005930", "Close"] == 187900


def test_the_key_is_never_shown():
    vendor = source()
    settings = Settings.from_env({"OHLCV_KRX_OPENAPI_KEY": KEY})
    assert KEY not in repr(vendor) + repr(vendor._krx) + repr(settings)
    assert settings.krx_openapi_key == KEY


def test_a_rejected_key_is_a_missing_table_that_says_why_without_the_key(api):
    api.answer("stk_bydd_trd", SESSION, body={"respCode": "401", "respMsg": f"Unauthorized Key {KEY}"})
    with pytest.raises(TableMissing, match="KRX refused the key") as caught:
        source().table(SESSION)
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (429, b"", SourceUnavailable, "quota"),
        (503, b"", SourceUnavailable, "HTTP 503"),
        (200, "<html><body>점검 중</body></html>".encode(), SourceUnavailable, "non-JSON"),
    ],
)
def test_the_quota_an_outage_and_an_html_page_are_outages(api, status, body, error, message):
    api.answer("stk_bydd_trd", SESSION, status=status, body=body)
    with pytest.raises(error, match=message):
        source().table(SESSION)


def test_rows_of_another_session_duplicate_codes_and_missing_fields_are_bad_data(api):
    public = real_table()
    rows = krx_openapi_stub.rows_of(public, "KOSPI")
    api.answer("stk_bydd_trd", SESSION, body={"OutBlock_1": [{**rows[0], "BAS_DD": "20260309"}, *rows[1:]]})
    with pytest.raises(BadOhlcvData, match="holds rows of 20260309"):
        source().table(SESSION)
    api.answer("stk_bydd_trd", SESSION, body={"OutBlock_1": [*rows, rows[0]]})
    with pytest.raises(BadOhlcvData, match="lists 005930 more than once"):
        source().table(SESSION)
    api.answer("stk_bydd_trd", SESSION, body={"OutBlock_1": [{"BAS_DD": "20260310", "ISU_CD": "005930"}]})
    with pytest.raises(BadOhlcvData, match="lacks the fields"):
        source().table(SESSION)


def test_no_rows_for_any_market_is_a_missing_table(api):
    with pytest.raises(TableMissing, match="no table of 2026-03-10"):
        source().table(SESSION)


def test_the_current_kst_day_is_never_asked(api):
    evening = dt.datetime(2026, 3, 10, 10, 0, tzinfo=dt.UTC)  # 19:00 KST on the session's day
    with pytest.raises(TableMissing, match="next KST day"):
        KrxOpenApiSource(KEY, clock=lambda: evening).table(SESSION)
    assert api.calls == []


def test_an_empty_key_is_refused_and_no_key_means_no_second_source():
    with pytest.raises(ConfigurationError, match="empty"):
        KrxOpenApiSource("  ")
    assert second_tables(None) is None
    assert second_tables("") is None


def test_its_calls_have_their_own_rate_limit(store):
    settings = Settings(vendor_rate="5/second")
    guarded = GuardedSource(SyntheticSource(3), store, settings=settings, second=source())
    assert guarded.rate == limits.parse("5/second")
    assert guarded.second.rate == limits.parse("10000/day")
    assert Settings(krx_openapi_rate="500/day").rate_for("krx_openapi") == limits.parse("500/day")
    with pytest.raises(ConfigurationError, match="OHLCV_KRX_OPENAPI_RATE"):
        Settings.from_env({"OHLCV_KRX_OPENAPI_RATE": "lots"})
