"""ohlcv.airflow.preload: what the LocalExecutor's fork server loads for every task process."""

import subprocess
import sys

from tests.e2e.stack import compose_settings

PROBE = """
import gc, sys
before = set(sys.modules)
import ohlcv.airflow.preload
from ohlcv import calendar, validation
loaded = set(sys.modules) - before
print(",".join(sorted(name for name in loaded if "." not in name)))
print(len(calendar._table), len(calendar._built), gc.get_freeze_count())
"""


def test_preloading_loads_what_a_task_needs_and_the_session_table_and_freezes_it():
    done = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True)
    top_level, counts = done.stdout.strip().splitlines()[-2:]
    assert {"pandas", "pandera", "FinanceDataReader", "redis", "ohlcv"} <= set(top_level.split(","))
    tables, calendars, frozen = (int(value) for value in counts.split())
    assert tables == 1  # the session table is loaded in the fork server, not in each task
    assert calendars == 0  # from the shipped table: no task builds the XKRX calendar
    assert frozen > 100_000  # and kept out of the children's garbage collections


def test_the_compose_file_preloads_it_in_a_fork_server():
    settings = compose_settings()
    assert settings["AIRFLOW__SCHEDULER__MP_START_METHOD"] == "forkserver"
    assert settings["AIRFLOW__CORE__MP_FORKSERVER_PRELOAD"] == "ohlcv.airflow.preload"
