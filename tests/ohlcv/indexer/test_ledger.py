"""The corporate-action ledger: every break the snapshot step finds and every repair the indexer
makes is entered once, with what was done, the run and the series' digest before and after."""

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from ohlcv import OhlcvCache, calendar, cli
from ohlcv.errors import InvalidTicker, NeverListed
from ohlcv.indexer.runner import run_once
from ohlcv.settings import Settings
from ohlcv.sources import SyntheticSource
from ohlcv.sources.testing import FaultySource

DAYS = [day.date() for day in calendar.sessions(dt.date(2026, 11, 2), dt.date(2026, 11, 13))]
SPLIT = "000200"
SPLIT_DAY = DAYS[3]


def vendor() -> SyntheticSource:
    return SyntheticSource(5, splits={SPLIT: (SPLIT_DAY, 20)})


def evening(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(10, 23), ZoneInfo("Europe/London"))


def run(store, source, day, run_id=None, **options):
    return run_once(store, source, day, run_id=run_id or f"run-{day}", settings=options.pop("settings", Settings()),
                    now=evening(day), **options)  # fmt: skip


def sha1(blob: bytes) -> str:
    return hashlib.sha1(blob).hexdigest()


@pytest.fixture
def cache(redis_client):
    return OhlcvCache(redis_client, vendor(), settings=Settings(client_cache_mb=0))


def test_a_split_found_in_the_table_is_entered_once_as_repaired(store, redis_client, cache):
    source = vendor()
    for day in DAYS[:3]:
        run(store, source, day)
    before = redis_client.get(f"ticker:{SPLIT}")
    cached_close = int(store.read_series(SPLIT)["Close"].iloc[-1])
    outcome = run(store, source, SPLIT_DAY)
    after = redis_client.get(f"ticker:{SPLIT}")
    assert outcome.record["repaired"] == 1
    assert outcome.record["actions"] == 1
    for day in DAYS[4:6]:  # later days continue the repaired history: nothing more entered
        assert run(store, source, day).record["actions"] == 0
    ledger = cache.actions(SPLIT)
    assert len(ledger) == 1
    entry = ledger.iloc[0]
    table = source.table(SPLIT_DAY).frame.loc[SPLIT]
    assert entry["session"] == SPLIT_DAY
    assert (entry["action"], entry["found_by"], entry["run_id"]) == ("repaired", "table", f"run-{SPLIT_DAY}")
    assert entry["cached_close"] == cached_close
    assert entry["base_price"] == table["Close"] - table["Changes"]
    assert entry["ratio"] == pytest.approx(entry["base_price"] / cached_close)
    assert entry["ratio"] == pytest.approx(1 / 20, rel=0.02)  # a 1:20 split
    assert (entry["digest_before"], entry["digest_after"]) == (sha1(before), sha1(after))
    assert "base price" in entry["reason"]
    assert "history changed" in entry["reason"]
    assert isinstance(entry["recorded_at"], pd.Timestamp)
    assert cache.actions("000100").empty  # a listed code without any: an empty frame, typed
    assert list(cache.actions("000100").columns) == list(ledger.columns)


def test_a_break_whose_fetch_fails_is_entered_failed_and_again_when_it_is_repaired(store, cache):
    source = vendor()
    for day in DAYS[:3]:
        run(store, source, day)
    failing = FaultySource(vendor(), fail={SPLIT})
    outcome = run(store, failing, SPLIT_DAY)
    assert outcome.still_failing == [SPLIT]
    assert outcome.record["actions"] == 1
    run(store, source, DAYS[4])  # the vendor answers again: the break of SPLIT_DAY is found again and repaired
    ledger = cache.actions(SPLIT)
    assert ledger["action"].tolist() == ["failed", "repaired"]
    assert ledger["session"].tolist() == [SPLIT_DAY, SPLIT_DAY]
    assert ledger["digest_after"].tolist()[0] == ""
    assert ledger["digest_before"].nunique() == 1  # the same unrepaired history both times


def test_a_break_beyond_the_history_budget_is_entered_deferred(store, cache):
    source = vendor()
    for day in DAYS[:3]:
        run(store, source, day)
    outcome = run(store, source, SPLIT_DAY, settings=Settings(history_budget=1))  # KS11 takes the one call
    assert outcome.record["deferred"] == 1
    assert cache.actions(SPLIT)["action"].tolist() == ["deferred"]


def test_a_repair_found_by_a_history_fetch_is_entered_too(store, redis_client, cache):
    source = vendor()
    for day in DAYS[:3]:
        run(store, source, day)
    cached = store.read_series(SPLIT)
    outcome = run(store, source, SPLIT_DAY, snapshot=False)  # no tables: every ticker's history is fetched
    assert outcome.record["repaired"] == 1
    (entry,) = cache.actions(SPLIT).to_dict("records")
    assert (entry["action"], entry["found_by"]) == ("repaired", "history")
    assert entry["session"] == cached.index[0].date()  # the split adjusts the whole history
    assert entry["cached_close"] == cached["Close"].iloc[0]
    assert entry["ratio"] == pytest.approx(1 / 20, rel=0.05)
    assert pd.isna(entry["base_price"])
    assert entry["digest_after"] == sha1(redis_client.get(f"ticker:{SPLIT}"))


def test_bad_codes_are_refused_and_unknown_ones_named(cache, store):
    run(store, vendor(), DAYS[0])
    with pytest.raises(InvalidTicker):
        cache.actions("00:*")
    with pytest.raises(NeverListed, match="999990 was never in a recorded market table"):
        cache.actions("999990")


def test_the_command_line_prints_a_code_s_ledger(store, redis_server, capsys):
    source = vendor()
    for day in DAYS[:4]:
        run(store, source, day)
    assert cli.main(["--redis-url", redis_server.url, "actions", SPLIT]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "repaired" in out
    assert f"{SPLIT}: 1 ledger entries" in out
    assert "digest_before" not in out
    assert cli.main(["--redis-url", redis_server.url, "actions", "000100"]) == cli.EXIT_OK
    assert "no continuity break or repair recorded" in capsys.readouterr().out
    assert cli.main(["--redis-url", redis_server.url, "actions", "999990"]) == cli.EXIT_MISSING


def test_a_run_that_dies_after_finding_a_break_still_enters_it(store, cache, monkeypatch):
    from ohlcv.indexer import runner

    source = vendor()
    for day in DAYS[:3]:
        run(store, source, day)

    def dies(*args, **kwargs):
        raise ConnectionError("summarize died")

    monkeypatch.setattr(runner, "summarize", dies)  # after the snapshot step noted the break, before the end
    with pytest.raises(ConnectionError):
        run(store, FaultySource(vendor(), fail={SPLIT}), SPLIT_DAY)
    assert cache.actions(SPLIT)["action"].tolist() == ["failed"]  # the run's cleanup entered it
    assert store.client.get("getOHLCV_isUpdating") == b"0"
