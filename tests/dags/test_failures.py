"""Failures you can see and recover from: whole runs with the synthetic vendor's failure switches."""

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from airflow.dag_processing.dagbag import DagBag

from ohlcv.keys import KeySpace
from ohlcv.reader.cache import OhlcvCache
from ohlcv.sources import SyntheticSource
from ohlcv.sources.testing import FaultySource, share
from ohlcv.store import OhlcvStore
from tests.dags import probe

DAGS = Path(__file__).resolve().parents[2] / "dags"
TRIGGER = pd.Timestamp("2026-11-20 09:23", tz="Europe/London").to_pydatetime()
AS_OF = b"2026-11-20"
pytestmark = pytest.mark.dagrun


@pytest.fixture
def run_dag(airflow_db, redis_server, redis_client, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OHLCV_REDIS", redis_server.url)
    text = "{{ ohlcv.event }} in {{ dag.dag_id }}: {{ ohlcv.message }}"
    recorder = {"class": "tests.dags.probe.Recorder", "kwargs": {"text": text}}
    monkeypatch.setenv("AIRFLOW_VAR_OHLCV_NOTIFIERS", json.dumps([recorder]))
    monkeypatch.setenv("OHLCV_RETRY_DELAY_SECONDS", "1")  # read when the DAG file is parsed
    monkeypatch.setenv("OHLCV_SOURCE_POKE_SECONDS", "1")
    probe.CALLS.clear()

    def run(source: str, retries: int | None = None, moment: dt.datetime = TRIGGER, conf: dict | None = None):
        monkeypatch.setenv("OHLCV_SOURCE", source)
        dag = DagBag(dag_folder=str(DAGS)).dags["ohlcv_indexer"]
        if retries is not None:
            for task in dag.tasks:
                task.retries = retries
        return dag.test(run_after=moment, logical_date=moment, run_conf=conf)

    return run


def mapped_codes(dag_run) -> list[str]:
    """The tickers of the run's mapped index_ticker instances, by their labels."""
    return sorted(ti.rendered_map_index for ti in dag_run.get_task_instances() if ti.task_id == "index_ticker")


def vendor_calls(redis_client, dag_run, kind: str = "vendor") -> int:
    """The run's vendor calls (``history``, ``snapshot`` or all), as its tasks counted them in Redis."""
    return int(OhlcvStore(redis_client, KeySpace()).run_metrics(dag_run.run_id).get(f"{kind}_calls", 0))


def last_run(redis_client) -> dict[str, str]:
    return OhlcvStore(redis_client, KeySpace()).recent_runs(1)[0]


def current(redis_client) -> set[str]:
    return {code.decode() for code, day in redis_client.hgetall("ticker:lastUpdateAt").items() if day == AS_OF}


def test_transient_failures_are_retried_and_the_run_ends_green(run_dag, redis_client, monkeypatch):
    from airflow.sdk.observability.stats import Stats

    emitted = {}
    monkeypatch.setattr(Stats, "gauge", lambda name, value, *args, **kwargs: emitted.__setitem__(name, value))
    flaky = [code for code in [*SyntheticSource(10).list_universe("KRX"), "KS11"] if share(code) < 0.3]
    dag_run = run_dag("synthetic:10?transient=0.3")
    assert dag_run.state == "success"
    assert len(current(redis_client)) == 11
    record = last_run(redis_client)
    assert int(record["retries"]) == len(flaky) >= 2
    assert int(record["vendor_calls"]) == 1 + 11 + len(flaky)  # the listing, every ticker, each retry
    assert (record["state"], record["failed"]) == ("success", "0")
    assert probe.CALLS == []
    assert emitted["ohlcv.run.retries"] == len(flaky)  # also sent through Airflow's metrics
    assert emitted["ohlcv.run.written"] == 11  # Airflow retried the flaky ones inside index_ticker


def test_a_vendor_that_is_down_for_a_while_is_waited_for_then_every_failed_ticker_is_filled(run_dag, redis_client):
    dag_run = run_dag("synthetic:5?down=8", retries=0)  # the first 8 history calls fail
    assert dag_run.state == "success"
    assert len(current(redis_client)) == 6
    # 6 first attempts fail, the sensor's canary fails twice and succeeds once, then 6 retries
    assert vendor_calls(redis_client, dag_run, "history") == 6 + 3 + 6
    record = last_run(redis_client)
    assert (record["failed_first_pass"], record["failed"]) == ("6", "0")


def test_a_block_answer_opens_the_breaker_stops_all_vendor_calls_and_turns_the_run_red(run_dag, redis_client):
    dag_run = run_dag("synthetic:5?block=000300")
    assert dag_run.state == "failed"
    blocked_at = vendor_calls(redis_client, dag_run)  # the listing, the tickers before 000300, and 000300
    failed = {
        ti.rendered_map_index
        for ti in dag_run.get_task_instances()
        if ti.task_id == "index_ticker" and ti.state == "failed"
    }
    assert "000300" in failed
    assert len(failed) == 6 - (blocked_at - 2)  # the blocked one and all after it, without a call
    assert redis_client.get("ohlcv:breaker").startswith(b"synthetic vendor: HTTP 429")
    assert redis_client.pttl("ohlcv:breaker") > 11 * 3_600_000
    assert redis_client.get("getOHLCV_isUpdating") == b"0"
    assert redis_client.exists("ohlcv:lock:run") == 0
    assert len(probe.CALLS) == 1
    assert "HTTP 429" in probe.CALLS[0]["message"]
    assert OhlcvStore(redis_client, KeySpace()).failures(["000300"])["000300"]["reason"].startswith("SourceBlocked")


def test_a_ticker_that_keeps_failing_turns_the_run_red_naming_it_and_notifies_once(run_dag, redis_client):
    dag_run = run_dag("synthetic:4?fail=000200", retries=0)
    assert dag_run.state == "failed"
    assert current(redis_client) == {"000100", "000300", "000400", "KS11"}
    assert len(probe.CALLS) == 1
    assert probe.CALLS[0]["event"] == "run_failed"
    assert "000200" in probe.CALLS[0]["message"]
    assert probe.CALLS[0]["failed"] == ["000200"]
    assert probe.CALLS[0]["text"].startswith("run_failed in ohlcv_indexer: 1 tickers still failing")  # rendered
    assert probe.CALLS[0]["task_id"] == "finish_run"
    assert last_run(redis_client)["failed"] == "1"
    assert redis_client.get("getOHLCV_isUpdating") == b"0"


def test_a_delisted_ticker_leaves_the_listing_and_named_by_hand_is_skipped_with_its_reason(run_dag, redis_client):
    listed = run_dag("synthetic:4?delisted=000300:2026-10-30")
    assert listed.state == "success"
    assert mapped_codes(listed) == ["000100", "000200", "000400", "KS11"]  # the market snapshot no longer lists it
    named = {"tickers": ["000100", "000200", "000300", "000400"]}
    dag_run = run_dag("synthetic:4?delisted=000300:2026-10-30", moment=TRIGGER + dt.timedelta(hours=1), conf=named)
    assert dag_run.state == "success"
    states = {ti.map_index: ti.state for ti in dag_run.get_task_instances() if ti.task_id == "index_ticker"}
    assert sorted(states.values()).count("skipped") == 1
    inactive = OhlcvStore(redis_client, KeySpace()).state_of(["000300"])[1]["000300"]
    assert "delisted or halted" in inactive["reason"]
    assert last_run(redis_client)["skipped_no_data"] == "1"
    assert probe.CALLS == []


def test_a_stale_cache_is_reported_when_the_next_run_starts(run_dag, redis_client):
    redis_client.set("getOHLCV_lastUpdateAt", (dt.date(2026, 11, 20) - dt.timedelta(days=14)).isoformat())
    run_dag("synthetic:2")
    assert [call["event"] for call in probe.CALLS] == ["cache_stale"]
    assert probe.CALLS[0]["sessions_behind"] == 10


def test_a_red_run_never_publishes_a_cut_a_failing_ticker_has_not_reached(run_dag, redis_client):
    assert run_dag("synthetic:4", moment=TRIGGER - dt.timedelta(days=1)).state == "success"  # through the 19th
    # a split sends 000200 to its history, which the vendor keeps failing
    dag_run = run_dag("synthetic:4?split=000200:2026-11-20:2&fail=000200", retries=0)
    assert dag_run.state == "failed"
    assert redis_client.hget("ticker:lastUpdateAt", "000200") == b"2026-11-19"
    assert redis_client.mget("getOHLCV_lastUpdateAt", "getOHLCV_lastUpdateCount") == [b"2026-11-19", b"5"]
    # so a consistent read of the lagging ticker is still a hit while the vendor is down
    down = FaultySource(SyntheticSource(4), down=10_000)
    frame = OhlcvCache(redis_client, down).get("000200", "2026-11-02")
    assert frame.index[-1] == pd.Timestamp("2026-11-19")
    assert down.calls.total() == 0
    record = last_run(redis_client)
    assert (record["published"], record["state"]) == ("2026-11-19", "failed")
    assert float(record["duration_seconds"]) > 0


def test_when_the_vendor_lags_the_cut_is_what_every_ticker_holds_not_the_last_cut(run_dag, redis_client, tmp_path):
    rows = "Date,Open,High,Low,Close,Volume\n" + "".join(
        f"2026-11-{day},100,130,95,{100 + day},1000\n" for day in (16, 17, 18, 19)
    )
    for code in ("000100", "000200"):
        (tmp_path / f"{code}.csv").write_text(rows)
    first = run_dag(f"csv:{tmp_path}", moment=TRIGGER - dt.timedelta(days=2), conf={"benchmark": []})
    assert first.state == "success"
    assert redis_client.get("getOHLCV_lastUpdateAt") == b"2026-11-18"
    # the vendor has nothing for the 20th yet: every ticker is cached through the 19th
    dag_run = run_dag(f"csv:{tmp_path}", conf={"benchmark": []})
    assert dag_run.state == "success"
    assert redis_client.mget("getOHLCV_lastUpdateAt", "getOHLCV_lastUpdateCount") == [b"2026-11-19", b"2"]
    assert last_run(redis_client)["unchanged"] == "0"  # the 19th was new to the cache
    published = [ti.state for ti in dag_run.get_task_instances() if ti.task_id == "publish_cut"]
    assert published == ["success"]  # the cut advanced: downstream DAGs are told


def test_a_try_killed_by_its_timeout_still_records_why(redis_server, redis_client, monkeypatch):
    """Airflow's AirflowTaskTimeout is a BaseException: it must not slip past the failure record."""
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowTaskTimeout

    from ohlcv.airflow import tasks
    from ohlcv.indexer import per_ticker

    monkeypatch.setenv("AIRFLOW_CONN_OHLCV_REDIS", redis_server.url)

    def hangs(*args, **kwargs):
        raise AirflowTaskTimeout("Timeout, PID: 4242")

    monkeypatch.setattr(per_ticker, "index_ticker", hangs)
    OhlcvStore(redis_client, KeySpace()).begin_run("run-lock")
    run = {"as_of": "2026-11-20", "lock_token": "run-lock", "source": "synthetic:3"}
    context = {"run_id": "run-1", "ti": SimpleNamespace(try_number=1), "params": {"full_refresh": False}}
    with pytest.raises(AirflowTaskTimeout):
        tasks.index_ticker("000100", run, **context)
    record = OhlcvStore(redis_client, KeySpace()).failures(["000100"], run_id="run-1")["000100"]
    assert (record["reason"], record["retry"]) == ("AirflowTaskTimeout: Timeout, PID: 4242", True)


@pytest.mark.parametrize(
    ("notifiers", "why"),
    [
        ('[{"class": "tests.dags.probe.NoSuchNotifier"}]', "AttributeError"),
        ('[{"class": "tests.dags.probe.Recorder", "kwargs": {"colour": "red"}}]', "TypeError"),
        ('{"class": "tests.dags.probe.Recorder"}', "expected a JSON list"),
        (
            '[{"class": "tests.dags.probe.Recorder", "kwargs": {"text": "{{ ohlcv.nope.deeper }}"}}]',
            "could not be sent",
        ),
    ],
)
def test_a_broken_notifier_turns_the_run_red_instead_of_failing_silently(
    run_dag, redis_client, monkeypatch, caplog, notifiers, why
):
    monkeypatch.setenv("AIRFLOW_VAR_OHLCV_NOTIFIERS", notifiers)
    redis_client.set("getOHLCV_lastUpdateAt", "2026-11-02")  # stale: the run wants to tell people
    dag_run = run_dag("synthetic:2")
    assert dag_run.state == "failed"
    assert redis_client.hget("ticker:lastUpdateAt", "000100") == b"2026-11-20"  # the indexing still happened
    assert redis_client.get("getOHLCV_lastUpdateAt") == b"2026-11-20"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances() if ti.map_index < 0}
    assert (states["start_run"], states["finish_run"]) == ("success", "failed")
    assert why in caplog.text
    assert "the run goes on and ends red" in caplog.text


def test_a_table_still_missing_at_the_deadline_notifies_once_and_keeps_the_cache(run_dag, redis_client):
    eve = pd.Timestamp("2026-11-19 09:23", tz="Europe/London").to_pydatetime()
    assert run_dag("synthetic:4", moment=eve).state == "success"
    before = {code: redis_client.get(f"ticker:{code}") for code in ("000100", "000200", "000300", "000400")}
    probe.CALLS.clear()
    deadline = pd.Timestamp("2026-11-20 12:23", tz="Europe/London").to_pydatetime()
    dag_run = run_dag("synthetic:4?table_missing=2026-11-20", moment=deadline)
    assert dag_run.state == "failed"
    assert [call["event"] for call in probe.CALLS] == ["table_missing"]
    assert probe.CALLS[0]["sessions"] == ["2026-11-20"]
    assert probe.CALLS[0]["text"] == (
        "table_missing in ohlcv_indexer: KRX table for 2026-11-20 not published by 12:23 Europe/London"
    )
    assert {code: redis_client.get(f"ticker:{code}") for code in before} == before
    assert redis_client.get("getOHLCV_lastUpdateAt") == b"2026-11-19"
    assert redis_client.get("getOHLCV_isUpdating") == b"0"


def test_a_vendor_that_never_answers_for_one_ticker_ends_the_run_red_at_its_deadline(
    run_dag, redis_client, monkeypatch
):
    monkeypatch.setenv("OHLCV_TICKER_DEADLINE", "3")
    dag_run = run_dag("synthetic:4?hang=000200&fail=000300&fail=000100")  # 2 retries per task
    assert dag_run.state == "failed"
    tries = {
        (ti.task_id, ti.rendered_map_index): ti.try_number
        for ti in dag_run.get_task_instances()
        if ti.task_id in ("index_ticker", "retry_ticker")
    }
    assert tries[("index_ticker", "000200")] == 1  # its deadline passed in its first try: no Airflow retry
    assert ("retry_ticker", "000200") not in tries  # nor a second pass
    assert tries[("retry_ticker", "000300")] == 3  # a failure that answers is retried as before
    store = OhlcvStore(redis_client, KeySpace())
    waited = {code.decode(): float(seconds) for code, seconds in redis_client.hgetall(
        store.keys.run_waited(dag_run.run_id)).items()}  # fmt: skip
    assert 3 <= waited["000200"] < 10
    reason = store.failures(["000200"])["000200"]
    assert reason["retry"] is False
    assert "ticker deadline (3 s" in reason["reason"]
    assert current(redis_client) == {"000400", "KS11"}  # the other tickers were written
    assert probe.CALLS[0]["event"] == "run_failed"
    assert probe.CALLS[0]["failed"] == ["000100", "000200", "000300"]
    assert "000200 (TickerDeadline: 000200: no answer from the vendor" in probe.CALLS[0]["message"]


def test_a_cut_no_replica_holds_is_not_published_and_the_run_ends_red(run_dag, redis_client, monkeypatch):
    # a Redis without replicas, told a run's writes must be held by one before the cut moves
    monkeypatch.setenv("OHLCV_MIN_REPLICAS", "1")
    monkeypatch.setenv("OHLCV_REPLICA_ACK_TIMEOUT", "0.2")
    redis_client.set("getOHLCV_lastUpdateAt", "2026-11-19")
    probe.CALLS.clear()
    dag_run = run_dag("synthetic:2", retries=0)
    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances() if ti.map_index < 0}
    assert (states["publish_cut"], states["finish_run"]) == ("failed", "failed")
    assert redis_client.get("getOHLCV_lastUpdateAt") == b"2026-11-19"  # the cut stays
    assert redis_client.hget("ticker:lastUpdateAt", "000100") == AS_OF  # the data is written
    record = last_run(redis_client)
    assert record["state"] == "failed"
    assert record["unpublished"].startswith("the run's writes are held by 0 of the 1 replicas required")
    assert [call["event"] for call in probe.CALLS] == ["run_failed"]
    assert "held by 0 of the 1 replicas" in probe.CALLS[0]["message"]
