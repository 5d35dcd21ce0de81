"""Redis persistence: every read and write of the cache's keys, one module per family of keys
(docs/keys.md): ``series`` (``ticker:{code}``, ``ticker:lastUpdateAt``, period keys),
``batches`` (many series from one table), ``runs`` (the run lock, meta keys, run records),
``vendor`` (breaker, listing, kept tables, rate windows), ``base`` (the client, key names,
``client_from_url``). ``OhlcvStore`` is all of them on one client; callers use it and the
names below. What each write makes atomic: docs/correct-data.md, "Atomicity and concurrency".
"""

from __future__ import annotations

from ohlcv.settings import DEFAULT_REDIS_URL
from ohlcv.store.base import RUN_METRICS_TTL, RUNS_KEPT, WRITE_ATTEMPTS, client_from_url
from ohlcv.store.batches import EXTEND_BATCH
from ohlcv.store.runs import RUN_LOCK_TTL, Meta, RunLocked, RunStart, RunStore, Watermark
from ohlcv.store.series import (
    UNREADABLE_KEPT,
    Damage,
    SeriesStore,
    WriteOutcome,
    readable,
    refuse_to_replace,
)
from ohlcv.store.vendor import VendorStore

__all__ = [
    "DEFAULT_REDIS_URL",
    "EXTEND_BATCH",
    "RUNS_KEPT",
    "RUN_LOCK_TTL",
    "RUN_METRICS_TTL",
    "UNREADABLE_KEPT",
    "WRITE_ATTEMPTS",
    "Damage",
    "Meta",
    "OhlcvStore",
    "RunLocked",
    "RunStart",
    "Watermark",
    "WriteOutcome",
    "client_from_url",
    "readable",
    "refuse_to_replace",
]


class OhlcvStore(SeriesStore, RunStore, VendorStore):
    """Reads and writes the cache's keys through one Redis client."""
