"""The andon cord: tell people when a run ends red or the cache goes stale.

The Airflow Variable ``ohlcv_notifier`` chooses how: ``log`` (default) writes a warning to
the task log; ``package.module:function`` calls ``function(event=..., message=...,
**details)``, e.g. a function that posts to Slack through an Airflow notifier.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

log = logging.getLogger(__name__)

RUN_FAILED = "run_failed"
CACHE_STALE = "cache_stale"


def notify(event: str, message: str, **details: Any) -> None:
    """Send one notification; a broken notifier is logged, never raised."""
    from airflow.sdk import Variable

    spec = Variable.get("ohlcv_notifier", default="log") or "log"
    if spec == "log":
        log.warning("[ohlcv %s] %s", event, message)
        return
    module, _, name = spec.partition(":")
    try:
        function = getattr(importlib.import_module(module), name)
        function(event=event, message=message, **details)
    except Exception:
        log.exception("notifier %s failed for %s: %s", spec, event, message)
