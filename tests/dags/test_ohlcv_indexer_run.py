"""Whole runs of ohlcv_indexer with dag.test(), asserting the Redis keys they leave."""

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

from ohlcv import calendar, codec
from ohlcv.keys import KeySpace
from ohlcv.sources import SyntheticSource
from ohlcv.store import OhlcvStore
from tests.support import keep_period, until

DAGS = Path(__file__).resolve().parents[2] / "dags"
LONDON = "Europe/London"
pytestmark = pytest.mark.dagrun


@pytest.fixture
def run_dag(airflow_db, redis_server, redis_client, monkeypatch):
    """Run the DAG once in-process against the session's Redis; return the finished DagRun."""
    monkeypatch.setenv("AIRFLOW_CONN_OHLCV_REDIS", redis_server.url)

    def run(source: str, run_after: dt.datetime, conf: dict | None = None, retries: int | None = None):
        monkeypatch.setenv("OHLCV_SOURCE", source)
        dag = DagBag(dag_folder=str(DAGS)).dags["ohlcv_indexer"]
        if retries is not None:  # retry delays would only slow the test down
            for task in dag.tasks:
                task.retries = retries
        return dag.test(run_after=run_after, logical_date=run_after, run_conf=conf)

    return run


def keys(client) -> set[str]:
    return {key.decode() for key in client.keys("*")}


def at(text: str) -> dt.datetime:
    """A trigger time in London, the schedule's time zone."""
    return pd.Timestamp(text, tz=LONDON).to_pydatetime()


def xcom(dag_run, task_id: str):
    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=dag_run.run_id, task_ids=task_id, key="return_value")).first()
        return XComModel.deserialize_value(row) if row is not None else None


def mapped(dag_run, task_id: str) -> int:
    """How many mapped instances of ``task_id`` the run created."""
    return sum(1 for ti in dag_run.get_task_instances() if ti.task_id == task_id and ti.map_index >= 0)


def vendor_calls(client, dag_run, kind: str = "vendor") -> int:
    """The run's vendor calls (``history``, ``snapshot`` or all), as its tasks counted them in Redis."""
    return int(OhlcvStore(client, KeySpace()).run_metrics(dag_run.run_id).get(f"{kind}_calls", 0))


def snapshot(client) -> dict[bytes, bytes]:
    """Every key's bytes, except the run log (``ohlcv:runs`` gains one entry per run by design)."""
    return {key: client.dump(key) for key in client.keys("*") if key != b"ohlcv:runs"}


def test_a_run_writes_the_original_key_layout(run_dag, redis_client):
    # Friday 20 November 2026, 09:23 in London = 18:23 in Seoul: that day's session is final.
    dag_run = run_dag("synthetic:8", pd.Timestamp("2026-11-20 09:23", tz=LONDON).to_pydatetime())
    assert dag_run.state == "success"

    source = SyntheticSource(8)
    codes = [*source.list_universe("KRX"), "KS11"]
    assert keys(redis_client) == {
        *(f"ticker:{code}" for code in codes),
        "ticker:lastUpdateAt",
        "getOHLCV_isUpdating",
        "getOHLCV_lastUpdateAt",
        "getOHLCV_lastUpdateCount",
        "ohlcv:snapshot:synthetic",  # the market snapshot (also the listing), asked once per session
        "ohlcv:table:synthetic:2026-11-20",  # that session's market table, kept to catch up later runs
        "ohlcv:runs",  # the run log
        "ohlcv:sessions",  # the XKRX session table readers load instead of building the calendar
        "ohlcv:universe",  # each code's listed spans, from the session's table (the first fill applies none)
        "ohlcv:universe:sessions",  # the sessions whose table is recorded
        "ohlcv:revision",  # the revision published with the cut, which reads can pin
        "ohlcv:revisions",  # what each revision published
        "ohlcv:run:manual__2026-11-20T09_23_00+00_00:metrics",  # this run's counters, expiring
        "ohlcv:run:manual__2026-11-20T09_23_00+00_00:results",  # what each ticker's task did, expiring
        "ohlcv:run:manual__2026-11-20T09_23_00+00_00:waited",  # each ticker's time with the vendor, expiring
        "ohlcv:run:manual__2026-11-20T09_23_00+00_00:handed_on",  # why each ticker's history was fetched, expiring
    }
    assert calendar.SessionTable.decode(redis_client.get("ohlcv:sessions")).last > dt.date(2027, 11, 20)
    assert redis_client.zrange("ohlcv:universe:sessions", 0, -1) == [b"2026-11-20"]
    assert {key.decode() for key in redis_client.hkeys("ohlcv:universe")} == set(source.list_universe("KRX"))
    assert redis_client.get("ohlcv:revision") == b"1"
    revision = json.loads(redis_client.hget("ohlcv:revisions", 1))
    assert (revision["cut"], revision["count"], revision["run_id"]) == ("2026-11-20", 9, dag_run.run_id)
    assert xcom(dag_run, "publish_cut")["revision"] == 1  # the Asset event's extra names it too
    handed_on = redis_client.hgetall("ohlcv:run:manual__2026-11-20T09_23_00+00_00:handed_on")
    assert set(handed_on) == {code.encode() for code in codes}  # the first fill fetches every history
    assert redis_client.hgetall("ohlcv:run:manual__2026-11-20T09_23_00+00_00:results") == {
        code.encode(): b"written" for code in codes
    }
    last_updates = {key.decode(): value.decode() for key, value in redis_client.hgetall("ticker:lastUpdateAt").items()}
    assert set(last_updates) == set(codes)
    for code in codes:
        cached = codec.decode(redis_client.get(f"ticker:{code}"))
        pd.testing.assert_frame_equal(cached, source.history(code, None, dt.date(2026, 11, 20)))
        assert last_updates[code] == cached.index[-1].date().isoformat() == "2026-11-20"
        assert codec.source_of(redis_client.get(f"ticker:{code}")) == "synthetic"
    assert redis_client.get("getOHLCV_isUpdating") == b"0"
    assert redis_client.get("getOHLCV_lastUpdateAt") == b"2026-11-20"
    assert redis_client.get("getOHLCV_lastUpdateCount") == b"9"


def test_a_run_on_sunday_indexes_through_friday(run_dag, redis_client):
    dag_run = run_dag(
        "synthetic:3", pd.Timestamp("2026-11-22 09:23", tz=LONDON).to_pydatetime(), conf={"tickers": ["000100"]}
    )
    assert dag_run.state == "success"
    assert redis_client.hgetall("ticker:lastUpdateAt") == {b"000100": b"2026-11-20", b"KS11": b"2026-11-20"}
    assert redis_client.get("getOHLCV_lastUpdateAt") == b"2026-11-20"


def test_a_ticker_that_keeps_failing_turns_the_run_red_and_frees_the_lock(run_dag, redis_client, tmp_path):
    good = "Date,Open,High,Low,Close,Volume\n2026-11-19,100,110,95,105,1000\n2026-11-20,105,108,101,102,900\n"
    (tmp_path / "000100.csv").write_text(good)
    (tmp_path / "000200.csv").write_text(good)
    (tmp_path / "000300.csv").write_text("Date,Open,High,Low,Close,Volume\n2026-11-20,abc,1,1,1,1\n")
    dag_run = run_dag(
        f"csv:{tmp_path}",
        pd.Timestamp("2026-11-20 10:23", tz=LONDON).to_pydatetime(),
        conf={"benchmark": []},
        retries=0,
    )
    assert dag_run.state == "failed"
    states = {(ti.task_id, ti.map_index): ti.state for ti in dag_run.get_task_instances()}
    assert states[("finish_run", -1)] == "failed"
    assert states[("summarize", -1)] == "success"
    assert set(redis_client.hkeys("ticker:lastUpdateAt")) == {b"000100", b"000200"}
    assert redis_client.exists("ticker:000300") == 0
    assert redis_client.get("getOHLCV_isUpdating") == b"0"
    assert redis_client.exists("ohlcv:lock:run") == 0
    assert redis_client.get("getOHLCV_lastUpdateCount") == b"2"


def test_a_repeat_run_makes_no_vendor_call_and_maps_no_ticker(run_dag, redis_client):
    first = run_dag("synthetic:6", at("2026-11-20 09:23"))
    assert mapped(first, "index_ticker") == 7
    assert vendor_calls(redis_client, first) == 8  # one listing, seven histories
    before = snapshot(redis_client)
    again = run_dag("synthetic:6", at("2026-11-20 10:23"))
    assert again.state == "success"
    assert vendor_calls(redis_client, again) == 0
    assert mapped(again, "index_ticker") == 0
    assert snapshot(redis_client) == before
    assert xcom(again, "summarize")["current"] == 7


def test_runs_on_a_krx_holiday_or_a_saturday_make_no_vendor_call(run_dag, redis_client):
    assert run_dag("synthetic:4", at("2026-09-23 10:23")).state == "success"  # the eve of Chuseok (BST)
    for moment in ("2026-09-24 08:23", "2026-09-25 11:23", "2026-09-26 12:23"):  # Chuseok, then Saturday
        dag_run = run_dag("synthetic:4", at(moment))
        assert dag_run.state == "success"
        assert vendor_calls(redis_client, dag_run) == 0, moment
        assert mapped(dag_run, "index_ticker") == 0
    assert redis_client.get("getOHLCV_lastUpdateAt") == b"2026-09-23"


def test_a_split_is_repaired_in_one_run_and_other_tickers_are_untouched(run_dag, redis_client):
    plain = SyntheticSource(4)
    assert run_dag("synthetic:4", at("2026-11-13 09:23")).state == "success"
    store = OhlcvStore(redis_client, KeySpace())
    for code in ("000100", "000200"):
        keep_period(store, code, "2026-01-02", "2026-06-30", dt.timedelta(days=1))
    dag_run = run_dag("synthetic:4?split=000100:2026-11-16:50", at("2026-11-20 09:23"))
    assert dag_run.state == "success"
    split = SyntheticSource(4, splits={"000100": (dt.date(2026, 11, 16), 50)})
    cached = codec.decode(redis_client.get("ticker:000100"))
    pd.testing.assert_frame_equal(cached, split.history("000100", None, dt.date(2026, 11, 20)))
    assert redis_client.exists("ticker:000100:2026-01-02:2026-06-30", "ohlcv:periods:000100") == 0
    summary = xcom(dag_run, "summarize")
    # Four sessions behind: the split ticker is repaired from its history, the index fetched, the
    # other three caught up from the four market tables.
    assert (summary["repaired"], summary["written"], summary["appended"], summary["failed"]) == (1, 1, 3, [])
    for code in ("000200", "000300", "000400"):
        cached = codec.decode(redis_client.get(f"ticker:{code}"))
        pd.testing.assert_frame_equal(cached, plain.history(code, None, dt.date(2026, 11, 20)))
    assert redis_client.exists("ticker:000200:2026-01-02:2026-06-30") == 1


def test_a_backfill_for_an_older_date_leaves_every_key_byte_identical(run_dag, redis_client):
    assert run_dag("synthetic:4", at("2026-11-20 09:23")).state == "success"
    before = snapshot(redis_client)
    backfill = run_dag("synthetic:4", at("2026-11-13 09:23"))
    assert backfill.state == "success"
    assert vendor_calls(redis_client, backfill) == 0
    assert snapshot(redis_client) == before


def test_a_bad_payload_fails_the_run_with_its_reason_and_keeps_the_old_cache(run_dag, redis_client):
    assert run_dag("synthetic:3", at("2026-11-13 09:23")).state == "success"
    before = redis_client.get("ticker:000200")
    # the tables turned off: every ticker's history is fetched, the bad one among them
    conf = {"snapshot": False}
    dag_run = run_dag("synthetic:3?bad=000200:high_below_low", at("2026-11-20 09:23"), conf=conf, retries=0)
    assert dag_run.state == "failed"
    # one history call per ticker (three and KS11): bad data is not fetched again in the run
    assert vendor_calls(redis_client, dag_run, "history") == 4
    assert redis_client.get("ticker:000200") == before
    assert xcom(dag_run, "summarize")["reasons"]["000200"].startswith("bad data: High < max(Open, Close)")
    assert redis_client.hget("ticker:lastUpdateAt", "000100") == b"2026-11-20"
    assert redis_client.get("getOHLCV_isUpdating") == b"0"


def test_a_failure_before_summarize_still_frees_the_lock(run_dag, redis_client):
    dag_run = run_dag("synthetic:3", at("2026-11-20 09:23"), conf={"tickers": ["1:*"]}, retries=0)
    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances() if ti.map_index < 0}
    assert states["list_universe"] == "failed"
    assert states["finish_run"] == "failed"
    assert redis_client.get("getOHLCV_isUpdating") == b"0"
    assert redis_client.exists("ohlcv:lock:run") == 0
    assert redis_client.exists("ticker:lastUpdateAt", "getOHLCV_lastUpdateAt") == 0


def test_tasks_after_a_failed_start_fail_at_once_without_retries(airflow_db, redis_server, monkeypatch):
    """Under the scheduler, a failed start_run hands summarize and finish_run no run at all."""
    from airflow.sdk.exceptions import AirflowFailException

    from ohlcv.airflow import tasks

    monkeypatch.setenv("AIRFLOW_CONN_OHLCV_REDIS", redis_server.url)
    with pytest.raises(AirflowFailException, match="start_run did not finish"):
        tasks.summarize(None, None, None, ti=None)
    with pytest.raises(AirflowFailException, match="start_run did not finish"):
        tasks.finish_run(None, None, None, ti=None, run_id="r")


def test_a_lost_run_lock_is_taken_again_unless_another_run_holds_it(redis_server, redis_client, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from ohlcv.airflow import runtime

    store = OhlcvStore(redis_client, KeySpace())
    store.begin_run("run-a")
    redis_client.pexpire(store.keys.run_lock, 1)  # its time runs out now
    assert until(lambda: not redis_client.exists(store.keys.run_lock))
    runtime.hold_lock(store, {"lock_token": "run-a"})  # expired: taken again
    assert redis_client.get("ohlcv:lock:run") == b"run-a"
    store.release_run("run-a")
    store.begin_run("run-b")
    with pytest.raises(AirflowFailException, match="lost its lock"):
        runtime.hold_lock(store, {"lock_token": "run-a"})


def test_a_run_keeps_the_vendor_start_run_chose(redis_client, monkeypatch):
    """The mapped tasks use the vendor fixed in start_run's result, whatever the configuration
    says meanwhile: a run never mixes vendors, and tasks do not look the Variable up."""
    from ohlcv.airflow import runtime

    store = OhlcvStore(redis_client, KeySpace())
    monkeypatch.setenv("OHLCV_SOURCE", "csv:/nonexistent")
    source = runtime.run_source(store, runtime.settings({"source": "synthetic:2"}), "run-a")
    assert source.name == "synthetic"
    assert source.snapshot(dt.date(2026, 11, 20)).codes() == SyntheticSource(2).list_universe("KRX")


def mapped_codes(dag_run, task_id: str = "index_ticker") -> list[str]:
    """The tickers of the run's mapped instances of ``task_id``, by their labels in the UI."""
    return sorted(ti.rendered_map_index for ti in dag_run.get_task_instances() if ti.task_id == task_id)


def last_run(client) -> dict[str, str]:
    return OhlcvStore(client, KeySpace()).recent_runs(1)[0]


def test_a_normal_day_appends_the_snapshot_and_fetches_only_histories_that_changed(run_dag, redis_client, caplog):
    assert run_dag("synthetic:20", at("2026-11-19 10:23")).state == "success"
    caplog.clear()
    dag_run = run_dag("synthetic:20?split=000100:2026-11-20:50", at("2026-11-20 10:23"))
    assert dag_run.state == "success"
    assert mapped_codes(dag_run) == ["000100", "KS11"]  # the split (base price moved) and the index
    record = last_run(redis_client)
    assert (record["appended"], record["handed_on"], record["written"], record["repaired"]) == ("19", "2", "1", "1")
    assert (record["snapshot_calls"], record["history_calls"]) == ("1", "2")
    assert any(
        message.startswith("000100: 2026-11-20: base price ") and "(ratio 0.02): history refetched" in message
        for message in caplog.messages
    )
    assert "19 tickers appended from the tables (the newest 2026-11-20), 0 rows settled, 2 handed on" in " ".join(
        caplog.messages
    )
    split = SyntheticSource(20, splits={"000100": (dt.date(2026, 11, 20), 50)})
    for code in [*split.list_universe("KRX"), "KS11"]:  # the same series a full history fetch would store
        assert redis_client.get(f"ticker:{code}") == codec.encode(
            split.history(code, None, dt.date(2026, 11, 20)), "synthetic"
        ), code
    assert redis_client.get("getOHLCV_lastUpdateAt") == b"2026-11-20"


def test_with_the_tables_turned_off_every_ticker_fetches_its_history(run_dag, redis_client, caplog):
    assert run_dag("synthetic:5", at("2026-11-19 10:23")).state == "success"
    caplog.clear()
    dag_run = run_dag("synthetic:5", at("2026-11-20 10:23"), conf={"snapshot": False})
    assert dag_run.state == "success"
    assert len(mapped_codes(dag_run)) == 6
    assert last_run(redis_client)["appended"] == "0"
    assert any("5 tickers the tables are turned off for this run: " in message for message in caplog.messages)
    assert redis_client.get("getOHLCV_lastUpdateAt") == b"2026-11-20"


def test_a_table_not_yet_published_is_waited_for_and_the_next_run_catches_up(run_dag, redis_client):
    assert run_dag("synthetic:5", at("2026-11-19 10:23")).state == "success"
    before = redis_client.get("ticker:000100")
    # 10:23 London on the 20th, before the 12:23 deadline: the table of the 20th is missing
    waiting = run_dag("synthetic:5?table_missing=2026-11-20", at("2026-11-20 10:23"))
    assert waiting.state == "success"
    assert mapped_codes(waiting) == ["KS11"]  # no stock's whole history instead of one missing row
    record = last_run(redis_client)
    assert (record["waiting"], record["appended"], record["history_calls"]) == ("5", "0", "1")
    assert redis_client.get("ticker:000100") == before
    assert redis_client.get("getOHLCV_lastUpdateAt") == b"2026-11-19"
    # Monday evening: both tables are there; the two sessions are appended from them
    monday = run_dag("synthetic:5", at("2026-11-23 10:23"))
    assert monday.state == "success"
    assert mapped_codes(monday) == ["KS11"]  # the index alone: it is never in a table
    assert vendor_calls(redis_client, monday, "history") == 1
    plain = SyntheticSource(5)
    for code in [*plain.list_universe("KRX"), "KS11"]:
        assert redis_client.get(f"ticker:{code}") == codec.encode(
            plain.history(code, None, dt.date(2026, 11, 23)), "synthetic"
        ), code
    assert last_run(redis_client)["appended"] == "5"


def test_a_table_still_missing_at_the_deadline_turns_the_run_red(run_dag, redis_client):
    assert run_dag("synthetic:5", at("2026-11-19 10:23")).state == "success"
    late = run_dag("synthetic:5?table_missing=2026-11-20", at("2026-11-20 12:23"))
    assert late.state == "failed"
    record = last_run(redis_client)
    assert (record["state"], record["waiting"], record["table_missing"]) == ("failed", "5", "2026-11-20")
    assert redis_client.get("getOHLCV_lastUpdateAt") == b"2026-11-19"


def test_full_refresh_fetches_every_history_even_on_a_normal_day(run_dag, redis_client):
    assert run_dag("synthetic:5", at("2026-11-19 10:23")).state == "success"
    dag_run = run_dag("synthetic:5", at("2026-11-20 10:23"), conf={"full_refresh": True})
    assert dag_run.state == "success"
    assert len(mapped_codes(dag_run)) == 6
    assert last_run(redis_client)["appended"] == "0"


def test_an_outage_of_the_snapshot_call_is_retried_and_marks_no_ticker_inactive(run_dag, redis_client, monkeypatch):
    monkeypatch.setenv("OHLCV_RETRY_DELAY_SECONDS", "1")  # read when the DAG file is parsed
    assert run_dag("synthetic:5", at("2026-11-19 10:23")).state == "success"
    dag_run = run_dag("synthetic:5?snapshot_down=1", at("2026-11-20 10:23"))
    assert dag_run.state == "success"
    tries = {ti.task_id: ti.try_number for ti in dag_run.get_task_instances() if ti.map_index < 0}
    assert tries["list_universe"] == 2
    assert mapped_codes(dag_run) == ["KS11"]
    assert redis_client.hlen("ohlcv:inactive") == 0


def test_a_table_call_down_past_its_retries_leaves_the_stocks_waiting_and_moves_the_index(
    run_dag, redis_client, monkeypatch
):
    monkeypatch.setenv("OHLCV_RETRY_DELAY_SECONDS", "1")  # read when the DAG file is parsed
    assert run_dag("synthetic:5", at("2026-11-19 10:23")).state == "success"
    dag_run = run_dag("synthetic:5?snapshot_down=99", at("2026-11-20 10:23"))
    assert dag_run.state == "success"  # before the deadline: a later run of the day picks the table up
    tries = {ti.task_id: ti.try_number for ti in dag_run.get_task_instances() if ti.map_index < 0}
    # list_universe spends its three tries on the table; its last notes it missing for the run,
    # and apply_snapshot asks no more
    assert (tries["list_universe"], tries["apply_snapshot"]) == (3, 1)
    assert mapped_codes(dag_run) == ["KS11"]
    record = last_run(redis_client)
    assert (record["waiting"], record["table_missing"]) == ("5", "2026-11-20")
    assert redis_client.hget("ticker:lastUpdateAt", "KS11") == b"2026-11-20"
    assert redis_client.hget("ticker:lastUpdateAt", "000100") == b"2026-11-19"


#: what names the run or the moment in the research keys, not part of what the cache holds
RUN_FIELDS = ("published", "expires", "run_id", "recorded_at")


def cache_keys(client) -> dict[str, object]:
    """Every key's value but the run's own bookkeeping (named by its run id, or the run log);
    hashes as their fields (the order fields were set in is not part of the value), sorted sets
    as their members and scores, streams as their entries, each without the run's id or time."""
    values = {}
    for key in client.keys("*"):
        if key.startswith(b"ohlcv:run:") or key == b"ohlcv:runs":
            continue
        kind = client.type(key)
        if kind == b"hash":
            value = client.hgetall(key)
        elif kind == b"zset":  # a kept value's member starts with the time it was replaced
            value = {member.rpartition(b":")[2]: score for member, score in client.zrange(key, 0, -1, withscores=True)}
        elif kind == b"stream":
            value = [
                {k: v for k, v in fields.items() if k.decode() not in RUN_FIELDS} for _, fields in client.xrange(key)
            ]
        else:
            value = client.get(key)
        if key.startswith(b"ohlcv:table:"):
            del value[b"fetched"]  # when the vendor was asked: not part of the table
        if key == b"ohlcv:revisions":
            value = {
                rid: {k: v for k, v in json.loads(doc).items() if k not in RUN_FIELDS} for rid, doc in value.items()
            }
        values[key.decode()] = value
    return values


def test_python_m_ohlcv_index_leaves_the_same_keys_as_a_dag_run(run_dag, redis_server, redis_client, capsys):
    from ohlcv import cli

    assert run_dag("synthetic:5?split=000200:2026-11-20:2", at("2026-11-19 10:23")).state == "success"
    assert run_dag("synthetic:5?split=000200:2026-11-20:2", at("2026-11-20 10:23")).state == "success"
    by_airflow = cache_keys(redis_client)
    dag_runs = OhlcvStore(redis_client, KeySpace()).recent_runs(1)

    redis_server.flush()
    for day in ("2026-11-19", "2026-11-20"):
        argv = [
            "--redis-url",
            redis_server.url,
            "index",
            "--as-of",
            day,
            "--source",
            "synthetic:5?split=000200:2026-11-20:2",
        ]
        assert cli.main(argv) == cli.EXIT_OK

    assert cache_keys(redis_client) == by_airflow  # series, lastUpdateAt, meta keys, snapshot: byte for byte
    record = OhlcvStore(redis_client, KeySpace()).recent_runs(1)[0]
    fields = ("as_of", "state", "planned", "appended", "handed_on", "written", "repaired", "published", "vendor_calls")
    assert {name: record[name] for name in fields} == {name: dag_runs[0][name] for name in fields}
    assert "as of 2026-11-20: success; 4 appended from the tables, 1 written, 1 repaired" in capsys.readouterr().out


def test_python_m_ohlcv_index_says_what_still_fails_and_when_another_run_holds_the_lock(
    redis_server, redis_client, capsys
):
    from ohlcv import cli

    argv = ["--redis-url", redis_server.url, "index", "--as-of", "2026-11-20", "--source", "synthetic:3?fail=000200"]
    assert cli.main(argv) == cli.EXIT_MISSING
    assert "still failing: 000200: SourceUnavailable" in capsys.readouterr().err
    assert redis_client.get("getOHLCV_isUpdating") == b"0"
    OhlcvStore(redis_client, KeySpace()).begin_run("scheduled__2026-11-20")
    assert cli.main(argv) == cli.EXIT_LOCKED
    assert "another indexer run holds ohlcv:lock:run" in capsys.readouterr().err


# the old job's pandas JSON dates rows in epoch milliseconds, a format pandas now deprecates
@pytest.mark.filterwarnings("ignore:'epoch' date format is deprecated")
def test_a_value_the_old_job_left_heals_in_one_run(run_dag, redis_client):
    assert run_dag("synthetic:4", at("2026-11-19 10:23")).state == "success"
    old = codec.decode(redis_client.get("ticker:000300"))
    redis_client.set("ticker:000300", old.to_json(date_format="epoch"))  # pandas JSON, as the Jenkins job wrote it
    dag_run = run_dag("synthetic:4", at("2026-11-20 10:23"))
    assert dag_run.state == "success"
    assert "000300" in mapped_codes(dag_run)  # handed on by the snapshot step, its history fetched
    assert codec.decode(redis_client.get("ticker:000300")).index[-1] == pd.Timestamp("2026-11-20")
    assert redis_client.exists("ohlcv:unreadable:000300") == 1
    assert redis_client.hget("ohlcv:run:manual__2026-11-20T10_23_00+00_00:results", "000300") == b"repaired"
