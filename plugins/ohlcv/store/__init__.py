"""Redis persistence: every read and write of the cache's keys, one module per family of keys
(docs/keys.md): ``series`` (``ticker:{code}``, ``ticker:lastUpdateAt``, period keys),
``batches`` (many series from one table), ``runs`` (the run lock, meta keys, run records),
``vendor`` (breaker, listing, kept tables, rate windows), ``ledger`` (corporate actions and
repairs), ``revisions`` (revision ids, superseded values for pinned reads), ``universe``
(listed spans, recorded sessions, delisted marks), ``base`` (the client, key names,
``client_from_url``). ``OhlcvStore`` is all of them on one client; callers use it and the
names below. What each write makes atomic: docs/correct-data.md, "Atomicity and concurrency".
"""

from __future__ import annotations

import redis

from ohlcv.keys import KeySpace
from ohlcv.settings import DEFAULT_REDIS_URL, DEFAULT_REVISION_DAYS
from ohlcv.store.base import RUN_METRICS_TTL, RUNS_KEPT, WRITE_ATTEMPTS, client_from_url
from ohlcv.store.batches import EXTEND_BATCH
from ohlcv.store.revisions import Published, Revision
from ohlcv.store.runs import RUN_LOCK_TTL, Meta, RunLocked, RunStart, RunStore, Watermark
from ohlcv.store.series import (
    UNREADABLE_KEPT,
    Damage,
    SeriesStore,
    WriteOutcome,
    readable,
    refuse_to_replace,
)
from ohlcv.store.universe import Delisting, UniverseChange, UniverseStore
from ohlcv.store.vendor import VendorStore

__all__ = [
    "DEFAULT_REDIS_URL",
    "DEFAULT_REVISION_DAYS",
    "EXTEND_BATCH",
    "RUNS_KEPT",
    "RUN_LOCK_TTL",
    "RUN_METRICS_TTL",
    "UNREADABLE_KEPT",
    "WRITE_ATTEMPTS",
    "Damage",
    "Delisting",
    "Meta",
    "OhlcvStore",
    "Published",
    "Revision",
    "RunLocked",
    "RunStart",
    "UniverseChange",
    "Watermark",
    "WriteOutcome",
    "client_from_url",
    "readable",
    "refuse_to_replace",
]


class OhlcvStore(SeriesStore, RunStore, VendorStore, UniverseStore):
    """Reads and writes the cache's keys through one Redis client.

    :param revision_days: ``OHLCV_REVISION_DAYS``: how long the values a write replaces are kept
        for reads pinned to older revisions, and how long a revision can be read
    """

    def __init__(self, client: redis.Redis, keys: KeySpace, *, revision_days: int = DEFAULT_REVISION_DAYS) -> None:
        super().__init__(client, keys)
        self.revision_days = revision_days
