"""python -m ohlcv migrate against the session's real redis-server, with the old job's values
made the way it made them: FinanceDataReader's frame (HTTP intercepted) through ``to_json()``."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import responses

from ohlcv import OhlcvCache, codec
from ohlcv.errors import ConfigurationError, SourceUnavailable
from ohlcv.indexer import per_ticker
from ohlcv.keys import KeySpace
from ohlcv.migrate import Action, Migrator, from_pandas_json
from ohlcv.sources import SyntheticSource
from ohlcv.status import Status
from ohlcv.store import OhlcvStore, RunLocked
from tests.ohlcv.sources.test_fdr import NAVER, naver_chart

# the old job's pandas JSON dates rows in epoch milliseconds, a format pandas now deprecates
pytestmark = pytest.mark.filterwarnings("ignore:'epoch' date format is deprecated")

AS_OF = dt.date(2026, 11, 24)
LAST = dt.date(2026, 11, 20)
SYNTHETIC = SyntheticSource(5)


def fdr_frame(code: str, end: dt.date = LAST) -> pd.DataFrame:
    """What the old job's ``fdr.DataReader(code, "1900", today)`` returned: FinanceDataReader's own
    frame, parsed from a Naver answer serving the synthetic source's rows."""
    import FinanceDataReader as fdr

    history = SYNTHETIC.history(code, None, end)
    prices = history[["Open", "High", "Low", "Close", "Volume"]].to_numpy()
    rows = [
        (day.strftime("%Y%m%d"), *(int(value) for value in row)) for day, row in zip(history.index, prices, strict=True)
    ]
    with responses.RequestsMock() as mock:
        mock.get(NAVER, body=naver_chart(code, rows))
        return fdr.DataReader(code, "1900", end.isoformat())


def old_job_value(frame: pd.DataFrame) -> bytes:
    """``df.to_json()`` as the old job wrote it (pandas then dated rows in epoch milliseconds)."""
    return frame.to_json(date_format="epoch").encode()


def migrator(store: OhlcvStore, **options) -> Migrator:
    return Migrator(store, as_of=AS_OF, **options)


def dump(client) -> dict[bytes, tuple[bytes, int]]:
    """Every key of the database with its DUMP and whether it expires."""
    return {key: (client.dump(key), client.ttl(key) > 0) for key in client.scan_iter(count=1000)}


def test_pandas_json_under_ticker_code_becomes_ohlcv_str_with_exactly_the_same_numbers(store, redis_client):
    raw = fdr_frame("000100")
    legacy = old_job_value(raw)
    redis_client.set("ticker:000100", legacy)

    report = migrator(store).run()

    [result] = report.results
    assert result.action == Action.CONVERTED
    assert result.line().startswith("000100  converted: ticker:000100 (pandas JSON, 3301 rows through 2026-11-20)")
    blob = redis_client.get("ticker:000100")
    assert codec.source_of(blob) == "fdr"
    frame = codec.decode(blob)
    # prices and volumes are FinanceDataReader's to the last digit, and stay integers
    pd.testing.assert_frame_equal(frame.drop(columns="Change"), raw.drop(columns="Change"), check_index_type=False)
    assert list(frame.index) == list(raw.index)
    assert all(frame[name].dtype == np.int64 for name in ("Open", "High", "Low", "Close", "Volume"))
    # Change is what the JSON held, bit for bit: NaN on the first row, then to_json's 10 decimals
    held = np.array([np.nan if value is None else value for value in json.loads(legacy)["Change"].values()])
    assert np.isnan(frame["Change"].iloc[0])
    assert np.array_equal(frame["Change"].to_numpy(), held, equal_nan=True)
    np.testing.assert_allclose(frame["Change"].to_numpy()[1:], raw["Change"].to_numpy()[1:], rtol=0, atol=1e-10)
    assert redis_client.hget("ticker:lastUpdateAt", "000100") == b"2026-11-20"


def test_the_underscore_names_move_to_the_new_ones_with_the_last_session_not_the_run_date(store, redis_client):
    redis_client.set("ticker_000200", old_job_value(fdr_frame("000200")))
    redis_client.hset("ticker_lastUpdateAt", mapping={"000200": "2026-11-22"})  # the old job's run date, a Sunday

    [result] = migrator(store).run().results

    assert result.action == Action.RENAMED
    assert "ticker_000200 (pandas JSON, 7950 rows through 2026-11-20) -> ticker:000200" in result.detail
    assert "its ticker_lastUpdateAt entry (2026-11-22) removed" in result.detail
    assert redis_client.exists("ticker_000200", "ticker_lastUpdateAt") == 0
    assert codec.decode(redis_client.get("ticker:000200")).index[-1] == pd.Timestamp(LAST)
    assert redis_client.hget("ticker:lastUpdateAt", "000200") == b"2026-11-20"


def test_an_ohlcv_str_value_under_the_underscore_name_is_moved_byte_for_byte(store, redis_client):
    value = codec.encode(SYNTHETIC.history("000300", None, LAST), "synthetic")
    redis_client.set("ticker_000300", value)

    [result] = migrator(store).run().results

    assert result.action == Action.RENAMED
    assert "moved as it is" in result.detail
    assert redis_client.get("ticker:000300") == value
    assert redis_client.exists("ticker_000300") == 0


def test_when_both_names_hold_a_history_the_later_one_is_kept_and_the_other_set_aside(store, redis_client):
    older = codec.encode(SYNTHETIC.history("000100", None, dt.date(2026, 11, 13)), "synthetic")
    redis_client.set("ticker:000100", older)  # e.g. written by the indexer before the old job stopped
    redis_client.set("ticker_000100", old_job_value(fdr_frame("000100")))  # through 2026-11-20

    [result] = migrator(store).run().results

    assert result.action == Action.CONFLICT
    assert result.detail.startswith(
        "kept ticker_000100 (pandas JSON, 3301 rows through 2026-11-20) as ticker:000100 (its last session is later); "
        "ticker:000100 (OHLCV_STR, 3296 rows through 2026-11-13) moved to ohlcv:superseded:000100 for 30 days"
    )
    assert codec.decode(redis_client.get("ticker:000100")).index[-1] == pd.Timestamp(LAST)
    assert redis_client.get("ohlcv:superseded:000100") == older
    assert 29 * 86_400 < redis_client.ttl("ohlcv:superseded:000100") <= 30 * 86_400
    assert redis_client.exists("ticker_000100") == 0
    assert redis_client.hget("ticker:lastUpdateAt", "000100") == b"2026-11-20"


def test_on_a_tie_the_value_under_the_new_name_is_kept(store, redis_client):
    current = codec.encode(SYNTHETIC.history("000100", None, LAST), "synthetic")
    legacy = old_job_value(fdr_frame("000100"))
    redis_client.set("ticker:000100", current)
    redis_client.set("ticker_000100", legacy)

    [result] = migrator(store).run().results

    assert result.action == Action.CONFLICT
    assert "same last session; the new name wins" in result.detail
    assert redis_client.get("ticker:000100") == current
    assert redis_client.get("ohlcv:superseded:000100") == legacy


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\x00\x01 not a value", "neither OHLCV_STR nor pandas JSON"),
        (b'{"Open": {"1704153600000": 78200}', "neither OHLCV_STR nor JSON"),  # cut off
        (b'{"Open": [1, 2]}', "not a pandas frame in the columns orient"),
        (b'{"Open": {"1704153600000": 1}, "Close": {"1704153600000": 1}}', "without the columns ['High', 'Low'"),
    ],
)
def test_a_value_that_is_neither_format_is_left_as_it_is_and_reported(store, redis_client, value, reason):
    redis_client.set("ticker:000100", value)
    redis_client.set("ticker:000200", old_job_value(fdr_frame("000200")))

    report = migrator(store).run()

    by_code = {result.ticker: result for result in report.results}
    assert by_code["000100"].action == Action.INVALID
    assert reason in by_code["000100"].detail
    assert by_code["000100"].detail.endswith("left as it is")
    assert redis_client.get("ticker:000100") == value
    assert by_code["000200"].action == Action.CONVERTED  # the others are migrated all the same
    assert report.failed


def test_a_frame_that_fails_validation_is_not_half_converted(store, redis_client):
    raw = fdr_frame("000200")
    raw.loc[raw.index[10], "High"] = raw["Low"].iloc[10] - 100  # High below Low
    legacy = old_job_value(raw)
    redis_client.set("ticker_000200", legacy)
    redis_client.hset("ticker_lastUpdateAt", "000200", "2026-11-20")

    [result] = migrator(store).run().results

    assert result.action == Action.INVALID
    assert "High < Low" in result.detail
    assert redis_client.get("ticker_000200") == legacy
    assert redis_client.hget("ticker_lastUpdateAt", "000200") == b"2026-11-20"
    assert redis_client.exists("ticker:000200", "ticker:lastUpdateAt") == 0


def test_the_key_prefix_applies_to_the_old_names_too(redis_client):
    store = OhlcvStore(redis_client, KeySpace("staging:"))
    legacy = old_job_value(fdr_frame("000100"))
    redis_client.set("staging:ticker_000100", legacy)
    redis_client.hset("staging:ticker_lastUpdateAt", "000100", "2026-11-20")
    redis_client.set("ticker:000200", legacy)  # another environment's: not this one's to touch

    [result] = migrator(store).run().results

    assert (result.ticker, result.action) == ("000100", Action.RENAMED)
    assert codec.decode(redis_client.get("staging:ticker:000100")).index[-1] == pd.Timestamp(LAST)
    assert redis_client.hget("staging:ticker:lastUpdateAt", "000100") == b"2026-11-20"
    assert redis_client.get("ticker:000200") == legacy
    assert redis_client.exists("staging:ticker_000100", "staging:ticker_lastUpdateAt") == 0


@pytest.fixture
def old_keyspace(redis_client):
    """What the old job's deployments left: every legacy form, a corrupt value and period keys."""
    redis_client.set("ticker:000100", old_job_value(fdr_frame("000100")))
    redis_client.set("ticker_000200", old_job_value(fdr_frame("000200")))
    redis_client.hset("ticker_lastUpdateAt", mapping={"000200": "2026-11-20", "000400": "2026-11-20"})
    redis_client.set("ticker:000300", b"garbage")
    redis_client.set("ticker:000100:2026-01-02:2026-06-30", old_job_value(fdr_frame("000100").loc["2026"]), ex=432000)
    redis_client.set("ticker:KS11", codec.encode(SYNTHETIC.history("KS11", None, LAST), "synthetic"))
    redis_client.set("ticker:^KS11", b"{}")
    redis_client.set("getOHLCV_lastUpdateAt", "2026-11-20")
    return redis_client


def test_a_dry_run_reports_the_same_and_writes_nothing(store, old_keyspace):
    before = dump(old_keyspace)
    dry = migrator(store, dry_run=True).run()
    assert dump(old_keyspace) == before

    real = migrator(store).run()

    assert [result.line() for result in dry.results] == [result.line() for result in real.results]
    assert dry.totals() == real.totals().replace("deleted", "would delete")
    assert {result.ticker: result.action for result in real.results} == {
        "ticker:^KS11": Action.SKIPPED,
        "000100": Action.CONVERTED,
        "000200": Action.RENAMED,
        "000300": Action.INVALID,
        "000400": Action.DROPPED,
        "KS11": Action.CURRENT,
    }
    assert real.periods_deleted == 1
    assert old_keyspace.exists("ticker:000100:2026-01-02:2026-06-30") == 0
    assert real.totals() == (
        "totals: converted 1, renamed 1, conflict 0, already current 1, dropped 1, invalid 1, skipped 1; "
        "old period keys deleted 1"
    )


def test_a_second_run_converts_nothing(store, old_keyspace):
    first = migrator(store).run()
    assert first.changed
    after_first = dump(old_keyspace)

    second = migrator(store).run()

    assert not second.changed
    assert dump(old_keyspace) == after_first
    assert {result.action for result in second.results} == {Action.CURRENT, Action.INVALID, Action.SKIPPED}


def test_after_migration_readers_and_the_indexer_use_the_values_without_a_vendor_call(store, old_keyspace):
    migrator(store).run()

    class NoVendor(SyntheticSource):
        def history(self, code, start, end):
            raise AssertionError(f"the vendor was asked for {code}")

    cache = OhlcvCache(old_keyspace, NoVendor(5))
    frame = cache.get("000100", "2026-1-2", "2026-06-30")
    assert frame.index[0] == pd.Timestamp("2026-01-02")
    assert frame.index[-1] == pd.Timestamp("2026-06-30")
    assert cache.get("000200").index[-1] == pd.Timestamp(LAST)
    for code in ("000100", "000200"):
        assert per_ticker.index_ticker(store, NoVendor(5), code, LAST).status == Status.CURRENT


def test_a_value_written_while_a_ticker_is_examined_is_examined_again_not_clobbered(store, redis_client):
    redis_client.set("ticker:000100", old_job_value(fdr_frame("000100")))
    written = codec.encode(SYNTHETIC.history("000100", None, LAST), "synthetic")

    class Racing(Migrator):
        raced = False

        def _plan(self, pipe, code, periods):
            planned = super()._plan(pipe, code, periods)
            if not self.raced:  # the indexer writes between the migration's read and its write
                self.raced = True
                redis_client.set("ticker:000100", written)
            return planned

    [result] = Racing(store, as_of=AS_OF).run().results

    assert result.action == Action.CURRENT
    assert redis_client.get("ticker:000100") == written


def test_the_run_lock_is_taken_while_migrating_and_a_held_lock_stops_it(store, redis_client):
    redis_client.set("ticker:000100", old_job_value(fdr_frame("000100")))
    seen = []

    class Watching(Migrator):
        def migrate_ticker(self, code, periods=()):
            seen.append((redis_client.get("getOHLCV_isUpdating"), redis_client.exists("ohlcv:lock:run")))
            return super().migrate_ticker(code, periods)

    Watching(store, as_of=AS_OF).run()
    assert seen == [(b"1", 1)]
    assert redis_client.get("getOHLCV_isUpdating") == b"0"
    assert redis_client.exists("ohlcv:lock:run") == 0

    store.begin_run("scheduled__2026-11-24")
    redis_client.set("ticker:000200", old_job_value(fdr_frame("000200")))
    with pytest.raises(RunLocked):
        migrator(store).run()
    assert redis_client.get("ticker:000200").startswith(b"{")


def test_tickers_limit_what_is_migrated(store, old_keyspace):
    report = migrator(store).run(["000200", "000500"])
    assert [result.line() for result in report.results][1] == (
        "000500  already current: nothing under ticker:000500 or ticker_000500"
    )
    assert [result.ticker for result in report.results] == ["000200", "000500"]
    assert old_keyspace.get("ticker:000100").startswith(b"{")


def test_dates_written_as_iso_strings_are_read_too():
    frame = fdr_frame("000100").iloc[:5]
    parsed = from_pandas_json(frame.to_json(date_format="iso").encode())
    assert list(parsed.index) == list(frame.index)
    assert parsed["Volume"].dtype == np.int64


def test_a_source_label_is_checked(store):
    with pytest.raises(ConfigurationError):
        Migrator(store, source="FDR; DROP")


def test_the_migration_never_asks_the_vendor(store, redis_client, monkeypatch):
    redis_client.set("ticker_000100", old_job_value(fdr_frame("000100")))

    def refuse(*args, **kwargs):
        raise SourceUnavailable("no vendor during a migration")

    monkeypatch.setattr("ohlcv.sources.fdr.FdrSource.history", refuse)
    with responses.RequestsMock():  # any HTTP request fails the test
        assert migrator(store).run().results[0].action == Action.RENAMED
