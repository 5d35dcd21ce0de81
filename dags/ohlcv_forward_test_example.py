"""
### Forward test on the OHLCV cache (example)

Runs whenever `ohlcv_indexer` advances the published cut (`getOHLCV_lastUpdateAt`): it is
scheduled on the Asset `ohlcv_cache`, whose event carries the new cut and its revision in its
`extra`. The task reads `tickers` through `OhlcvCache` pinned to that revision, so every ticker
of the report ends on the same session, all of them cache hits, and clearing and rerunning the
run next month reads the same values, also after a repair. Copy this DAG and replace the task
with your report.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, task

from ohlcv.airflow import forward_test
from ohlcv.airflow.assets import CACHE


@dag(
    schedule=[CACHE],
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["ohlcv", "example"],
    default_args={"owner": "ohlcv", "retries": 2, "retry_delay": dt.timedelta(minutes=1)},
    params={
        "tickers": Param(["KS11"], type="array", items={"type": "string"}, description="Codes the report reads."),
    },
)
def ohlcv_forward_test_example():
    task(forward_test.read_at_cut)()


ohlcv_forward_test_example()
