"""ohlcv.airflow.celery_config: Airflow's Celery settings plus the preload, for every worker."""

import subprocess
import sys

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

from ohlcv.airflow.celery_config import CELERY_CONFIG, PRELOAD
from tests.e2e.stack import compose_settings

PROBE = """
import gc, sys
import ohlcv.airflow.celery_config
from celery.signals import worker_process_init
print("pandas" in sys.modules, gc.get_freeze_count())
worker_process_init.send(sender="celery@probe")
print(gc.get_freeze_count() > 0)
"""


def test_it_is_airflows_configuration_with_the_preload_imported_by_the_worker():
    assert CELERY_CONFIG["imports"][-1] == PRELOAD == "ohlcv.airflow.preload"
    assert {name: value for name, value in CELERY_CONFIG.items() if name != "imports"} == {
        name: value for name, value in DEFAULT_CELERY_CONFIG.items() if name != "imports"
    }


def test_the_compose_file_gives_it_to_every_airflow_service():
    name, _, attribute = compose_settings()["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"].rpartition(".")
    assert (name, attribute) == ("ohlcv.airflow.celery_config", "CELERY_CONFIG")


def test_reading_it_loads_nothing_heavy_and_a_new_pool_process_freezes_what_it_inherited():
    # the scheduler reads it to publish tasks: it must not pay for the preload
    done = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True)
    first, second = done.stdout.strip().splitlines()[-2:]  # after Airflow's log lines
    assert first.split() == ["False", "0"]
    assert second == "True"
