"""The KRX Open API as the second table source in whole runs: a session whose public table is
missing is caught up from it, every final table is cross-checked against it once (the codes
that differ kept in ohlcv:quality with both values), and a key KRX rejects leaves the cache as
it was, with the reason in the run's notes. The Open API is intercepted at urllib
(tests/krx_openapi_stub.py), its answers built from the synthetic vendor's own tables."""

import dataclasses

import pytest

from ohlcv.keys import KeySpace
from ohlcv.sources import SyntheticSource
from ohlcv.sources.testing import FaultySource
from ohlcv.store import OhlcvStore
from tests import krx_openapi_stub
from tests.ohlcv.indexer import test_vendor_gaps as gaps
from tests.ohlcv.indexer.test_vendor_gaps import DAYS, TICKERS, evening, night, run, series

reference = gaps.reference  # the fixture: the same days' cache kept by fetching every history

KEY = "FEDCBA9876543210FEDCBA9876543210FEDCBA98"


@pytest.fixture
def api(monkeypatch):
    return krx_openapi_stub.install(monkeypatch)


def test_a_missing_public_table_is_taken_from_the_open_api_and_no_history_is_fetched(redis_client, reference, api):
    store = OhlcvStore(redis_client, KeySpace("gap:"))
    plain = SyntheticSource(TICKERS)
    run(store, plain, DAYS[0], evening(DAYS[0]))
    api.serve(plain.table(DAYS[1]))
    missing = FaultySource(plain, table_missing={DAYS[1]})  # the public file answers 404
    outcome = run(store, missing, DAYS[2], evening(DAYS[2]), krx_openapi_key=KEY)
    run_id = f"{DAYS[2]}@1023"
    assert outcome.still_failing == []
    assert outcome.summary.appended == TICKERS
    assert store.run_metrics(run_id)["history_calls"] == 1  # the index only
    note = store.run_tables(run_id)[DAYS[1].isoformat()]
    assert note.startswith(f"applied to {TICKERS} tickers (final); second: from krx_openapi, synthetic's missing")
    assert outcome.record["table_missing"] == ""
    assert store.cross_checked()[DAYS[1].isoformat()]["served"] is True
    assert series(redis_client, "gap:") == reference(DAYS[2])


def test_without_a_key_the_open_api_is_never_asked(redis_client, api):
    store = OhlcvStore(redis_client, KeySpace("gap:"))
    plain = SyntheticSource(TICKERS)
    run(store, plain, DAYS[0], evening(DAYS[0]))
    outcome = run(store, FaultySource(plain, table_missing={DAYS[1]}), DAYS[2], evening(DAYS[2]))
    assert outcome.summary.waiting == TICKERS
    assert api.calls == []


def test_final_tables_are_cross_checked_once_and_every_differing_code_is_kept_with_both_values(redis_client, api):
    store = OhlcvStore(redis_client, KeySpace("gap:"))
    plain = SyntheticSource(TICKERS)
    run(store, plain, DAYS[0], night(DAYS[0]), krx_openapi_key=KEY)
    api.serve(plain.table(DAYS[0]))
    table = plain.table(DAYS[1])
    frame = table.frame.copy()
    frame.loc["000200", "Volume"] += 1234  # the Open API's final volume differs from the file's
    api.serve(dataclasses.replace(table, frame=frame))
    run(store, plain, DAYS[1], night(DAYS[1]), krx_openapi_key=KEY)
    checked = store.cross_checked()
    assert checked[DAYS[0].isoformat()]["differing"] == 0
    assert checked[DAYS[1].isoformat()]["differing"] == 1
    assert checked[DAYS[1].isoformat()]["codes"] == TICKERS
    [row] = store.disagreements(session=DAYS[1])
    assert (row["code"], row["first"], row["second"]) == ("000200", "synthetic", "krx_openapi")
    volume = int(table.frame.loc["000200", "Volume"])
    assert (row["first_values"], row["second_values"]) == ({"Volume": volume}, {"Volume": volume + 1234})
    asked = len(api.calls)
    run(store, plain, DAYS[1], night(DAYS[1]).replace(minute=53), krx_openapi_key=KEY)
    assert len(api.calls) == asked  # each session is compared once


def test_a_key_krx_rejects_leaves_the_cache_as_it_was_and_the_run_says_why(redis_client, api):
    store = OhlcvStore(redis_client, KeySpace("gap:"))
    plain = SyntheticSource(TICKERS)
    run(store, plain, DAYS[0], evening(DAYS[0]))
    before = series(redis_client, "gap:")
    api.answer("stk_bydd_trd", DAYS[1], body={"respCode": "401", "respMsg": "Unauthorized Key"})
    outcome = run(store, FaultySource(plain, table_missing={DAYS[1]}), DAYS[2], evening(DAYS[2]), krx_openapi_key=KEY)
    note = store.run_tables(f"{DAYS[2]}@1023")[DAYS[1].isoformat()]
    assert note.startswith("missing: synthetic vendor: the table of")
    assert "krx_openapi: the KRX Open API's KOSPI table of" in note
    assert "KRX refused the key" in note
    assert KEY not in note
    assert outcome.summary.waiting == TICKERS
    assert outcome.record["table_missing"] == DAYS[1].isoformat()
    stocks = [key for key in before if key.startswith(b"ticker:0")]
    after = series(redis_client, "gap:")
    assert len(stocks) == TICKERS
    assert {key: after[key] for key in stocks} == {key: before[key] for key in stocks}  # only KS11 moved
