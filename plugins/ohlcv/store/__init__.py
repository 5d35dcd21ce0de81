"""Redis persistence: every read and write of the cache's keys, one module per family of keys.

- ``store.series``: ``ticker:{code}``, ``ticker:lastUpdateAt``, the period keys
  ``ticker:{code}:{start}:{end}`` and their registry ``ohlcv:periods:{code}``,
  ``ohlcv:unreadable:{code}`` (``SeriesStore``);
- ``store.runs``: the run lock ``ohlcv:lock:run`` and the ``getOHLCV_*`` meta keys, the
  published cut, ``ohlcv:sessions``, ``ohlcv:failures``, ``ohlcv:inactive``, the run's
  ``ohlcv:run:{run_id}:results`` and ``:metrics`` and the stream ``ohlcv:runs`` (``RunStore``);
- ``store.vendor``: the breaker ``ohlcv:breaker`` and ``ohlcv:breaker:log``, the market snapshot
  ``ohlcv:snapshot:{source}`` and the rate limit's ``ohlcv:rate:*`` (``VendorStore``);
- ``store.base``: the client and the ``KeySpace`` every family builds its key names with, and
  ``client_from_url``.

``OhlcvStore`` is all three families on one client; callers use it and the names below.

**What is atomic.** On the server, a reader sees either the old or the new state of:

- a series write (``write_series``): the series, its ``ticker:lastUpdateAt`` entry, its
  ``ohlcv:inactive`` entry, the copy of an unreadable value and, on a repair, the deletion of
  its period keys, in one MULTI/EXEC that WATCHes the series and its registry and merges again
  when another writer came first; so the series never disagrees with ``ticker:lastUpdateAt``,
  even when the writer dies half-way;
- one batch of ``extend_many`` (up to ``EXTEND_BATCH`` series with their entries, failures,
  results and ``rows_written``), one MULTI/EXEC; the batches one after another;
- a period key with its registry entry (``keep_period``, a Lua script);
- the run lock with ``getOHLCV_isUpdating`` (take, extend, release, clear a dead run's flag)
  and the two published meta keys, each a Lua script; a snapshot save, a Lua script;
- opening the breaker with its log entry (MULTI/EXEC); closing it (MULTI/EXEC, then the log).

Not atomic: the run's bookkeeping (``record_result``, ``count``, ``count_vendor_call``) is one
pipeline with ``transaction=False`` (one round trip; another client's commands may come between
its commands), and ``state_of`` reads its keys the same way. Everything else is one command.
No write moves a date backwards, so a late or older writer (a backfill) cannot roll the cache back.
"""

from __future__ import annotations

from ohlcv.settings import DEFAULT_REDIS_URL
from ohlcv.store.base import RUN_METRICS_TTL, RUNS_KEPT, client_from_url
from ohlcv.store.batches import EXTEND_BATCH, WRITE_ATTEMPTS
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
