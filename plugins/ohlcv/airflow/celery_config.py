"""The Celery configuration of ``ohlcv_indexer``'s workers: Airflow's own, plus the preload.

Airflow reads it through

    AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=ohlcv.airflow.celery_config.CELERY_CONFIG

which docker-compose.yaml sets for every Airflow service (the scheduler publishes tasks with
it, each ``airflow celery worker`` consumes them with it).

Every task instance runs in a process that the worker's pool process forks for it (Airflow's
supervisor), and every pool process is forked from the worker's parent process (Celery's
``prefork`` pool). Celery imports the modules listed in ``imports`` in that parent before it
forks the pool, so naming ``ohlcv.airflow.preload`` there gives each task process pandas,
pandera, the XKRX calendar and the vendor already loaded, as the LocalExecutor's fork server
does. Without it every task imports them again: several CPU-seconds to index one ticker.

Importing this module costs nothing beyond Airflow's Celery provider: the scheduler imports
it too, and must not load the preload.
"""

from __future__ import annotations

import gc
from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import worker_process_init

#: imported by each worker's parent process before it forks its pool (Celery's ``imports``)
PRELOAD = "ohlcv.airflow.preload"

CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (*DEFAULT_CELERY_CONFIG.get("imports", ()), PRELOAD),
}


@worker_process_init.connect
def _freeze_inherited_objects(**_: Any) -> None:
    """Keep what a pool process inherited out of its garbage collections.

    The preload freezes it in the parent, but Airflow's provider unfreezes the parent once the
    worker is ready, so a pool process forked later (a replacement for one that died) would
    otherwise scan, and so copy, every inherited page; task processes forked from it too.
    """
    gc.freeze()
