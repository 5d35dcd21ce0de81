"""The market snapshot: its rows judged one by one, and appended only where they continue the cache."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ohlcv import codec, snapshot
from ohlcv.errors import BadOhlcvData
from ohlcv.indexer import appending, planning
from ohlcv.keys import KeySpace
from ohlcv.snapshot import Snapshot
from ohlcv.status import Status
from ohlcv.store import OhlcvStore
from ohlcv.validation import validate_snapshot
from tests.support import TablesSource

KRX = Path(__file__).resolve().parents[2] / "fixtures" / "krx"
CORPORATE_ACTIONS = {"170900", "469880", "462020", "0068Y0"}


def krx(day: str) -> Snapshot:
    """A real KRX table, read as FinanceDataReader reads it."""
    table = pd.read_csv(KRX / f"{day}.csv", index_col=0, dtype=snapshot.KRX_TABLE_DTYPES)
    return snapshot.from_krx_table(table, dt.date.fromisoformat(day), "fdr")


def rows(**overrides) -> pd.DataFrame:
    """Three good rows (a halt among them), with single values replaced: ``code=(column, value)``."""
    frame = pd.DataFrame(
        {
            "Market": ["KOSPI", "KOSDAQ", "KOSDAQ"],
            "Open": [100, 0, 2000],
            "High": [110, 0, 2100],
            "Low": [95, 0, 1990],
            "Close": [105, 500, 2050],
            "Volume": [1000, 0, 20],
            "Changes": [5, 0, -50],
        },
        index=pd.Index(["000100", "000200", "000300"], name="Code", dtype=object),
    ).astype({"Open": object, "Close": object})
    for code, (column, value) in overrides.items():
        frame.loc[code.removeprefix("c"), column] = value
    return frame


def one_row_cache(store: OhlcvStore, table: Snapshot) -> None:
    """Cache every code of ``table`` as a one-session history ending on its session."""
    day = np.array([np.datetime64(table.session, "ns")])
    with store.client.pipeline(transaction=False) as pipe:
        for code, row in table.frame.iterrows():
            columns = {name: np.array([row[name]]) for name in ("Open", "High", "Low", "Close", "Volume")}
            columns["Change"] = np.array([np.nan])
            pipe.set(store.keys.series(code), codec.encode_arrays(day, columns, table.source))
            pipe.hset(store.keys.last_update_hash, code, table.session.isoformat())
        pipe.execute()


def plan_for(store: OhlcvStore, codes: list[str], as_of: dt.date) -> planning.Plan:
    return planning.plan(store, codes, as_of)


def test_every_row_of_a_real_krx_table_passes_halted_codes_included():
    table = krx("2026-03-10")
    good, bad = validate_snapshot(table.frame)
    assert bad == {}
    assert len(good) == 2881
    halted = good[good["Volume"] == 0]
    assert len(halted) == 113
    assert (halted[["Open", "High", "Low"]] == 0).all().all()


def test_a_real_day_appends_every_code_but_the_four_corporate_actions(store, redis_client):
    first, second = krx("2026-03-09"), krx("2026-03-10")
    one_row_cache(store, first)
    codes = first.codes()
    planned = plan_for(store, codes, second.session)
    assert planned.catchup == codes

    result = appending.apply_snapshot(store, TablesSource(second), planned, "run-1")

    assert set(result.handed_on) == CORPORATE_ACTIONS
    assert result.handed_on["170900"] == (
        "2026-03-10: base price 45,350 != cached close 47,550 (ratio 0.95): history refetched"
    )
    assert len(result.appended) == 2881 - 4
    samsung = codec.decode(redis_client.get("ticker:005930"))
    assert list(samsung.index.strftime("%Y-%m-%d")) == ["2026-03-09", "2026-03-10"]
    row = second.frame.loc["005930"]
    assert samsung.iloc[-1][["Open", "High", "Low", "Close", "Volume"]].tolist() == [
        row["Open"], row["High"], row["Low"], row["Close"], row["Volume"],
    ]  # fmt: skip
    assert samsung["Change"].iloc[-1] == row["Close"] / first.frame.loc["005930", "Close"] - 1
    assert redis_client.hget("ticker:lastUpdateAt", "005930") == b"2026-03-10"
    assert redis_client.hget("ticker:lastUpdateAt", "170900") == b"2026-03-09"  # left for its history fetch
    assert store.run_results("run-1")["005930"] == Status.APPENDED
    assert store.run_metrics("run-1")["rows_written"] == 2881 - 4


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"c000100": ("Close", "abc")}, "Close is not a number (value 'abc')"),
        ({"c000100": ("Open", -100)}, "price <= 0 (not a halt row)"),
        ({"c000100": ("High", 90)}, "High < max(Open, Close)"),
        ({"c000100": ("Volume", -1)}, "Volume < 0"),
        ({"c000100": ("Changes", 105)}, "base price (Close - Changes) <= 0"),
    ],
)
def test_a_bad_row_costs_only_its_own_code_with_the_reason(override, reason):
    good, bad = validate_snapshot(rows(**override))
    assert list(good.index) == ["000200", "000300"]
    assert reason in bad["000100"]


def test_a_code_listed_twice_is_handed_on_and_the_others_pass():
    frame = rows()
    twice = pd.concat([frame, frame.iloc[[2]]])
    good, bad = validate_snapshot(twice)
    assert list(good.index) == ["000100", "000200"]
    assert bad == {"000300": "listed 2 times in the snapshot"}


def test_a_column_of_strings_is_refused_as_a_whole_and_writes_nothing(store, redis_client):
    """Every row bad: the table is not applied and nobody's history is downloaded for it."""
    table = krx("2026-03-09")
    one_row_cache(store, table)
    second = krx("2026-03-10")
    broken = second.frame.assign(Close=second.frame["Close"].map("{:,}".format))  # "187,900"
    before = {key: redis_client.dump(key) for key in redis_client.keys("*")}
    result = appending.apply_snapshot(
        store, TablesSource(Snapshot(second.session, "fdr", broken)), plan_for(store, table.codes(), second.session),
        "run-1",
    )  # fmt: skip
    assert result.appended == []
    assert result.handed_on == {}
    assert len(result.waiting) == 2881
    assert "2881 of 2881 continuing codes are missing from it or have bad rows" in result.waiting["005930"]
    assert result.tables["2026-03-10"].startswith("refused: 2881 of 2881")
    unchanged = {key: redis_client.dump(key) for key in redis_client.keys("*") if b":run:" not in key}
    assert unchanged == before


@pytest.mark.parametrize("session", [dt.date(2026, 3, 7), dt.date(2026, 3, 9)])
def test_a_table_that_says_it_is_of_another_session_is_not_used_at_all(store, redis_client, session):
    table = krx("2026-03-09")
    one_row_cache(store, table)
    before = redis_client.dump("ticker:005930")

    class Mislabelled(TablesSource):
        def table(self, asked):
            return Snapshot(session, "fdr", krx("2026-03-10").frame)

    result = appending.apply_snapshot(
        store, Mislabelled(), plan_for(store, table.codes(), dt.date(2026, 3, 10)), "run-1"
    )
    assert (result.appended, result.handed_on) == ([], {})
    assert f"asked for the table of 2026-03-10, the vendor's says it is of {session}" in result.waiting["005930"]
    assert redis_client.dump("ticker:005930") == before


def test_tickers_the_snapshot_cannot_continue_are_handed_on_with_why(store):
    table = krx("2026-03-09")
    one_row_cache(store, Snapshot(table.session, "fdr", table.frame.loc[["005930"]]))
    store.write_series(
        "000660", codec.decode(codec.encode(pd.DataFrame(
            {"Open": [1], "High": [1], "Low": [1], "Close": [1], "Volume": [1], "Change": [np.nan]},
            index=pd.DatetimeIndex(["2026-03-06"], name="Date"),
        ))), "fdr",
    )  # fmt: skip
    codes = ["005930", "000660", "000100", "KS11"]
    vendor = TablesSource(krx("2026-03-09"), krx("2026-03-10"))
    result = appending.apply_snapshot(store, vendor, plan_for(store, codes, dt.date(2026, 3, 10)), "r")
    assert result.appended == ["005930"]
    assert result.handed_on == {  # in the order a history budget serves them
        "KS11": "not cached yet (a new listing, or the first fill): history fetched",
        "000660": "2026-03-09: base price 924,000 != cached close 1 (ratio 9.2e+05): history refetched",
        "000100": "not cached yet (a new listing, or the first fill): history fetched",
    }
    assert vendor.asked == [dt.date(2026, 3, 9), dt.date(2026, 3, 10)]


def test_a_series_written_meanwhile_is_never_overwritten(store, redis_client):
    """The batch WATCHes its keys: a writer that gets in first makes it start again from the new bytes."""
    table = krx("2026-03-09")
    one_row_cache(store, Snapshot(table.session, "fdr", table.frame.loc[["005930", "000660"]]))
    second = krx("2026-03-10")
    good, _ = validate_snapshot(second.frame)
    extend = snapshot.extender(good, second.session, table.session, "fdr")
    other = OhlcvStore(redis_client.__class__(connection_pool=redis_client.connection_pool), KeySpace())
    raced = []

    def racing(code, blob):
        if not raced:  # another writer appends 000660's row between the batch's read and its write
            raced.append(code)
            other.extend_many(["000660"], extend, run_id="other", status=Status.APPENDED)
        return extend(code, blob)

    outcomes = store.extend_many(["005930", "000660"], racing, run_id="run-1", status=Status.APPENDED)
    assert [outcome.blob is not None for outcome in outcomes] == [True, False]
    assert outcomes[1].reason == "cached through 2026-03-10, not 2026-03-09: history fetched"
    assert len(codec.decode(redis_client.get("ticker:000660"))) == 2  # appended once, not twice
    assert store.run_results("run-1") == {"005930": "appended"}


def test_a_snapshot_survives_redis_byte_for_byte():
    table = krx("2026-03-10")
    again = Snapshot.from_bytes(table.to_bytes())
    assert (again.session, again.source) == (table.session, "fdr")
    pd.testing.assert_frame_equal(again.frame, table.frame, check_dtype=False)
    with pytest.raises(BadOhlcvData, match="not a stored snapshot"):
        Snapshot.from_bytes(b"\x81\xa1a\x01")


def test_the_listing_is_the_snapshot_filtered_by_market():
    table = krx("2026-03-10")
    assert len(table.codes()) == 2881
    assert len(table.codes("KOSPI")) == 951
    assert len(table.codes("KOSDAQ")) == 1820  # KOSDAQ GLOBAL included, as KRX's MarketId says
    assert len(table.codes("KONEX")) == 110
    assert "0126Z0" in table.codes("KOSPI")


def test_a_cached_value_that_cannot_be_read_is_handed_on_and_the_batch_goes_on(store, redis_client):
    table = krx("2026-03-09")
    one_row_cache(store, Snapshot(table.session, "fdr", table.frame.loc[["005930", "000660"]]))
    redis_client.set("ticker:000660", b'{"Open":{"1741478400000":201000}}')  # the old job's pandas JSON
    planned = plan_for(store, ["005930", "000660"], dt.date(2026, 3, 10))
    result = appending.apply_snapshot(store, TablesSource(krx("2026-03-10")), planned, "run-1")
    assert result.appended == ["005930"]
    assert result.handed_on["000660"].startswith("2026-03-10: the cached value cannot be read (not an OHLCV_STR value")
