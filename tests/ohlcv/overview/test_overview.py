"""The documents the cache page, the ticker and run views and ``status --json`` show: every
ticker counted once by market and state, the reasons and dates an operator needs, a ticker's
candles and ledger, and what one run did per ticker."""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from ohlcv import calendar, cli
from ohlcv.errors import InvalidTicker, NeverListed
from ohlcv.indexer.runner import run_once
from ohlcv.overview import cache, run, ticker
from ohlcv.settings import Settings
from ohlcv.sources import SyntheticSource
from ohlcv.sources.testing import FaultySource

DAYS = [day.date() for day in calendar.sessions(dt.date(2026, 11, 2), dt.date(2026, 11, 9))]
GONE, SPLIT, NEW, QUIET = "000300", "000200", "000500", "000600"


def vendor() -> SyntheticSource:
    return SyntheticSource(8, delisted={GONE: DAYS[2]}, splits={SPLIT: (DAYS[5], 10)}, listed={NEW: DAYS[5]})


def evening(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(10, 23), ZoneInfo("Europe/London"))


@pytest.fixture
def indexed(store):
    """Six days of runs: a delisting, then a day on which a split is repaired and a new listing
    fails to download; one ticker recorded without data."""
    for day in DAYS[:5]:
        run_once(store, vendor(), day, run_id=f"run-{day}", settings=Settings(), now=evening(day))
    store.mark_inactive(QUIET, DAYS[5], "the vendor's last session is 2026-10-01: delisted or halted")
    failing = FaultySource(vendor(), fail={NEW})
    run_once(store, failing, DAYS[5], run_id="the-run", settings=Settings(), now=evening(DAYS[5]))
    return store


def test_every_ticker_is_counted_once_by_market_and_state(indexed):
    doc = cache.state(indexed)
    json.dumps(doc)  # a JSON document as it is
    assert doc["version"] == 1
    assert doc["cut"]["last_update_at"] == DAYS[5].isoformat()
    by_state = doc["tickers"]["by_state"]
    assert by_state == {"delisted": 1, "current": 6, "inactive": 1, "failing": 1, "lagging": 0}
    assert doc["tickers"]["total"] == 9  # seven listed stocks, the new listing and KS11
    by_market = doc["tickers"]["by_market"]
    assert set(by_market) <= {"KOSPI", "KOSDAQ", "KONEX", "INDEX"}
    assert by_market["INDEX"] == {"delisted": 0, "current": 1, "inactive": 0, "failing": 0, "lagging": 0}
    assert {name: sum(counts[name] for counts in by_market.values()) for name in cache.STATES} == by_state
    rows = {row["code"]: row for row in doc["not_current"]}
    assert set(rows) == {GONE, NEW, QUIET}
    assert rows[GONE]["state"] == "delisted"
    assert rows[GONE]["last"] == DAYS[2].isoformat()
    assert rows[GONE]["since"] == DAYS[3].isoformat()
    assert rows[GONE]["reason"] == "synthetic delisting"
    assert rows[NEW]["state"] == "failing"
    assert rows[NEW]["last"] is None
    assert rows[NEW]["reason"].startswith("SourceUnavailable")
    assert rows[NEW]["since"] == DAYS[5].isoformat()
    assert rows[QUIET]["state"] == "inactive"
    assert "delisted or halted" in rows[QUIET]["reason"]
    assert doc["revision"]["cut"] == DAYS[5].isoformat()
    assert doc["universe"]["exact_from"] == DAYS[0].isoformat()
    assert doc["damaged"] == []
    assert [entry["run_id"] for entry in doc["runs"]][:2] == ["the-run", f"run-{DAYS[4]}"]
    assert doc["runs"][0]["state"] == "failed"
    assert isinstance(doc["runs"][0]["vendor_calls"], int)
    assert isinstance(doc["runs"][0]["duration_seconds"], float)
    assert doc["breaker"] == {"open": False, "reason": None, "closes_in_seconds": None, "log": []}


def test_a_lagging_ticker_says_since_when_and_a_damaged_one_is_listed(indexed):
    indexed.client.hset("ticker:lastUpdateAt", "000100", DAYS[3].isoformat())  # the series says DAYS[5]
    source = SyntheticSource(9)  # a ninth ticker, cached by a reader through DAYS[3]
    indexed.write_series("000900", source.history("000900", None, DAYS[3]), source.name)
    doc = cache.state(indexed)
    rows = {row["code"]: row for row in doc["not_current"]}
    assert rows["000900"]["state"] == "lagging"
    assert rows["000900"]["since"] == DAYS[4].isoformat()
    assert rows["000900"]["reason"] == f"cached through {DAYS[3]}"
    assert [(row["code"], row["kind"]) for row in doc["damaged"]] == [("000100", "mismatched")]
    assert cache.state(indexed, damage=False)["damaged"] is None


def test_status_json_is_the_document_the_cache_page_shows(indexed, redis_server, capsys):
    assert cli.main(["--redis-url", redis_server.url, "status", "--json", "--runs", "3"]) == cli.EXIT_OK
    printed = json.loads(capsys.readouterr().out)
    expected = cache.state(indexed, runs=3)
    assert printed.pop("redis") == {"mode": "single", "primary": f"127.0.0.1:{redis_server.port}", "role": "master",
                                    "replicas": []}  # fmt: skip
    for doc in (printed, expected):
        doc.pop("generated_at")
    expected.pop("redis")  # the same server, named as the test's own client names it
    assert printed == expected
    assert len(printed["runs"]) == 3


def test_the_ticker_view_has_the_candles_the_ledger_and_the_standing(indexed):
    doc = ticker.document(indexed, SPLIT)
    series = indexed.read_series(SPLIT)
    assert doc["rows"] == len(series)
    assert doc["candles"]["time"][-1] == DAYS[5].isoformat()
    assert doc["candles"]["close"] == series["Close"].tolist()
    assert doc["candles"]["volume"][-1] == series["Volume"].iloc[-1]
    assert [entry["action"] for entry in doc["actions"]] == ["repaired"]
    assert doc["actions"][0]["session"] == DAYS[5].isoformat()
    assert doc["actions"][0]["ratio"] == pytest.approx(0.1, rel=0.05)
    assert (doc["state"], doc["source"], doc["last_update_at"]) == ("current", "synthetic", DAYS[5].isoformat())
    recent = ticker.document(indexed, SPLIT, first=DAYS[3])
    assert recent["candles"]["time"] == [day.isoformat() for day in DAYS[3:6]]
    gone = ticker.document(indexed, GONE)
    assert gone["state"] == "delisted"
    assert gone["delisted"]["last"] == DAYS[2].isoformat()
    failing = ticker.document(indexed, NEW)
    assert (failing["state"], failing["rows"]) == ("failing", 0)
    json.dumps(gone)
    with pytest.raises(NeverListed):
        ticker.document(indexed, "999990")
    with pytest.raises(InvalidTicker):
        ticker.document(indexed, "00:*")


def test_the_run_view_says_what_the_run_did_per_ticker(indexed):
    doc = run.document(indexed, "the-run")
    json.dumps(doc)
    rows = {row["code"]: row for row in doc["tickers"]}
    assert rows[NEW]["outcome"] == "failed"
    assert rows[NEW]["reason"].startswith("SourceUnavailable")
    assert "not cached yet" in rows[NEW]["handed_on"]
    assert rows[SPLIT]["outcome"] == "repaired"
    assert "base price" in rows[SPLIT]["handed_on"]
    assert rows["000100"]["outcome"] == "appended"
    assert rows["KS11"]["outcome"] == "written"
    assert doc["tickers"][0]["code"] == NEW  # failures first
    assert doc["outcomes"]["appended"] == 4
    assert doc["record"]["state"] == "failed"
    assert doc["tables"][DAYS[5].isoformat()].startswith("applied to")
    assert doc["expired"] is False
    gone = run.document(indexed, "a-run-long-ago")
    assert (gone["expired"], gone["record"], gone["tickers"]) == (True, None, [])
