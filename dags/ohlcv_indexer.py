"""
### OHLCV indexer

Keeps the daily OHLCV history of every KRX ticker (plus the benchmark index) in Redis, in
the original indexer's key layout, so forward tests read prices from the cache instead of
downloading them again.

`start_run` → `list_universe` → `apply_snapshot` (the market's daily table appended to every
ticker it continues) → `index_ticker` (one task per ticker whose history is fetched, labelled
with its code) → `summarize` → `wait_for_source` → `retry_ticker` (failed tickers only) → `publish_cut`
(the watermark, and the Asset `ohlcv_cache` when it advances) → `finish_run`.

* **Schedule**: hourly at :23 from 08:00 to 12:00 Europe/London (the old Jenkins trigger
  `H H(8-12)/1 * * *`), and at 18:23, the night run that settles the evening's volumes from
  the final table. Each run indexes through the last complete XKRX session at its trigger
  time (`as_of`, from 18:15 KST, after KRX's after-hours session), catching tickers up from
  the market's per-session tables; a table still missing at 12:23 turns the run red.
* **Params**: `tickers` (non-empty replaces the universe), `universe` (KRX, KOSPI, KOSDAQ,
  KONEX), `benchmark` (index symbols, default KS11), `full_refresh`, `snapshot`.
* **Configuration**: Redis connection `ohlcv_redis`; vendor from the Variable
  `ohlcv_source` or `OHLCV_SOURCE` (`fdr`, `synthetic[:N]`, `csv:<dir>`).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from ohlcv.airflow import tasks
from ohlcv.airflow.assets import CACHE
from ohlcv.settings import DEFAULT_BENCHMARK, MARKETS, Settings

#: the Airflow pool that limits concurrent vendor calls (created by `make demo` and the compose init)
VENDOR_POOL = "ohlcv_vendor"
#: deployment settings, read when the file is parsed (see ohlcv/settings.py): the schedule (by
#: default the Jenkins trigger it replaces; OHLCV_SCHEDULE=none for triggered runs only), the
#: retry delay, the vendor sensor's timing and the per-ticker tasks' timeout
SETTINGS = Settings.from_env()
SCHEDULE = CronTriggerTimetable(SETTINGS.schedule, timezone=SETTINGS.schedule_timezone) if SETTINGS.schedule else None
#: the mapped per-ticker tasks: labelled with the ticker, in the vendor pool, reporting through
#: Redis (ohlcv:run:{run_id}:results) rather than XCom, an api-server request each; a try ends
#: at the ticker deadline (TickerDeadline, not retried) before Airflow's own timeout would kill
#: it (and retry it), with a minute to write what came
PER_TICKER = {
    "map_index_template": "{{ ticker }}",
    "pool": VENDOR_POOL,
    "do_xcom_push": False,
    "execution_timeout": dt.timedelta(seconds=SETTINGS.ticker_deadline_seconds + 60),
}


@dag(
    schedule=SCHEDULE,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["ohlcv", "redis", "krx"],
    default_args={
        "owner": "ohlcv",
        "retries": 2,
        "retry_delay": SETTINGS.retry_delay,
        "retry_exponential_backoff": True,
        "execution_timeout": dt.timedelta(minutes=10),
    },
    params={
        "tickers": Param(
            [], type="array", items={"type": "string"}, description="Codes to index; non-empty replaces the universe."
        ),
        "universe": Param(MARKETS[0], enum=list(MARKETS), description="Market whose listing is indexed."),
        "benchmark": Param(
            list(DEFAULT_BENCHMARK),
            type="array",
            items={"type": "string"},
            description="Index symbols indexed with the universe.",
        ),
        "full_refresh": Param(
            False, type="boolean", description="Fetch every ticker again, even those already current."
        ),
        "snapshot": Param(
            True,
            type="boolean",
            description="Append the market's daily table (one vendor call) to the tickers it continues; "
            "false fetches the history of every ticker that is behind.",
        ),
    },
)
def ohlcv_indexer():
    # A returned dict is one XCom: Airflow would otherwise push every key as an XCom of its own.
    run = task(tasks.start_run, multiple_outputs=False)()
    plan = task(tasks.list_universe, multiple_outputs=False)(run)
    handed_on = task(tasks.apply_snapshot)(run, plan)
    results = task(tasks.index_ticker, **PER_TICKER).partial(run=run).expand(ticker=handed_on)
    summary = task(tasks.summarize, trigger_rule="all_done", multiple_outputs=False)(run, plan, handed_on)
    results >> summary
    to_retry = task.sensor(
        tasks.wait_for_source,
        pool=VENDOR_POOL,
        mode="poke",
        poke_interval=SETTINGS.source_poke_seconds,
        exponential_backoff=True,
        max_wait=dt.timedelta(minutes=15),
        timeout=SETTINGS.source_wait_seconds,
        execution_timeout=None,
    )(run, summary)
    # the same callable as index_ticker, mapped again over the tickers worth retrying
    retried = task(tasks.index_ticker, task_id="retry_ticker", **PER_TICKER).partial(run=run).expand(ticker=to_retry)
    published = task(tasks.publish_cut, trigger_rule="all_done", outlets=[CACHE], multiple_outputs=False)(run, plan)
    retried >> published
    published >> task(tasks.finish_run, trigger_rule="all_done", multiple_outputs=False)(run, plan, summary)


ohlcv_indexer()
