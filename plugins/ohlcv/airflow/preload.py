"""Everything an ``ohlcv_indexer`` task needs, loaded once so that task processes inherit it.

Every task instance runs in a new process. Without this module each one imports pandas,
pandera, redis-py and FinanceDataReader again and loads the session table (together
several CPU-seconds) to index a single ticker. With the scheduler's
LocalExecutor set to the ``forkserver`` start method and this module preloaded,

    AIRFLOW__SCHEDULER__MP_START_METHOD=forkserver
    AIRFLOW__CORE__MP_FORKSERVER_PRELOAD=ohlcv.airflow.preload

the fork server imports it once, its workers are forked from it, and every task process
forked from a worker starts with all of it in memory (copy-on-write). docker-compose.yaml
sets both. Importing this module is the whole effect; it defines nothing to call.
"""

from __future__ import annotations

import datetime as dt
import gc

import airflow.dag_processing.dagbag
import airflow.sdk.execution_time.task_runner
import airflow.timetables.trigger  # noqa: F401
import jinja2.ext  # noqa: F401
import pandas as pd
from airflow.sdk import Asset, Param, dag, task

import ohlcv.airflow.hook
import ohlcv.airflow.notify
import ohlcv.airflow.plugin  # every task loads the plugins (for macros): the views' registration, not the views
import ohlcv.airflow.runtime
import ohlcv.airflow.tasks
import ohlcv.indexer.appending
import ohlcv.indexer.per_ticker
import ohlcv.indexer.planning
import ohlcv.indexer.summary
import ohlcv.reader.cache
import ohlcv.sources.csvdir
import ohlcv.sources.fdr
import ohlcv.sources.guard
import ohlcv.sources.synthetic
from ohlcv import calendar, validation

# The shipped session table (milliseconds); a task asked beyond it builds the calendar.
calendar.table()
# what dags/ohlcv_indexer.py uses (airflow.sdk loads these on first access)
_ = (Asset, Param, dag, task.sensor, task.python)
ohlcv.sources.fdr._fdr()  # FinanceDataReader and its Naver reader
# pandera is imported, and registers its backends, on the first validation
_days = pd.DatetimeIndex(["2025-01-02", "2025-01-03"], name="Date")
validation.validate(
    pd.DataFrame({"Open": [10, 11], "High": [12, 12], "Low": [9, 10], "Close": [11, 11], "Volume": [5, 7]}, _days),
    dt.date(2025, 1, 3),
)
# Everything loaded so far lives as long as the process: keep it out of the garbage
# collector's way, so task processes neither scan nor copy these pages.
gc.freeze()
