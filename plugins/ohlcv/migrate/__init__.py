"""``python -m ohlcv migrate``: turn what the Jenkins job left in Redis into OHLCV_STR, without
asking the vendor.

The old job stored each ticker's whole history as pandas JSON (``DataFrame.to_json()`` of a
FinanceDataReader frame: the columns orient, dates as epoch milliseconds) under
``ticker:{code}``, or in some deployments under ``ticker_{code}`` with the hash
``ticker_lastUpdateAt``. For every ticker (``OHLCV_KEY_PREFIX`` applies to every name):

- **converted**: pandas JSON under ``ticker:{code}`` is replaced by the same rows as OHLCV_STR.
- **renamed**: the value of ``ticker_{code}`` (pandas JSON, converted; or OHLCV_STR, moved
  byte for byte) becomes ``ticker:{code}`` and ``ticker_{code}`` is deleted.
- **conflict**: both names hold a history. The one whose last session is later is kept under
  ``ticker:{code}`` (on a tie, the one already there); the other's bytes go to
  ``ohlcv:superseded:{code}`` for 30 days, and the line says which was kept and why.
- **already current**: ``ticker:{code}`` is OHLCV_STR and nothing legacy is left.
- **dropped**: a ``ticker_lastUpdateAt`` entry names a ticker with no value under either name;
  the entry is removed.
- **invalid**: a value that is neither OHLCV_STR nor pandas JSON this package accepts (the
  pandera schema and sanity rules of ``ohlcv.validation``, and prices that survive encoding
  exactly). Nothing of that ticker is changed; the indexer heals a damaged ``ticker:{code}``
  itself (``ohlcv:unreadable:{code}``).

Every change of one ticker is one MULTI/EXEC: the value, its ``ticker:lastUpdateAt`` entry
(the last session the value holds; the old hash held the date of the run), the removal of the
legacy name and hash entry. The transaction WATCHes every key it read, so a value a reader
or the indexer writes meanwhile is examined again, never overwritten.

**Period keys.** A ``ticker:{code}:{start}:{end}`` that is not OHLCV_STR (the old reader's
pandas JSON, with its 5-day TTL) is deleted, not converted: a new reader would fail on it,
the old job's period keys were never registered in ``ohlcv:periods:{code}`` (so a repair
could not remove them), and a new reader cuts the same window from the migrated history
without a vendor call. OHLCV_STR period keys are left as they are.

**The run lock.** The migration takes the run lock (``ohlcv:lock:run``, which also sets
``getOHLCV_isUpdating`` to 1) for as long as it writes, and stops with ``RunLocked`` when an
indexer run holds it. Merely refusing to start while the lock is held would leave a window in
which an indexer run starts after the check and writes alongside; holding the lock closes it,
and tells old readers that a batch is writing. ``dry_run`` writes nothing, the lock included.
"""

from ohlcv.migrate.legacy import check_source, convert, from_pandas_json
from ohlcv.migrate.migrator import DEFAULT_SOURCE, LOCK_EXTEND_EVERY, SUPERSEDED_KEPT, Migrator, default_as_of
from ohlcv.migrate.report import WRITES, Action, MigrationReport, TickerMigration

__all__ = [
    "DEFAULT_SOURCE",
    "LOCK_EXTEND_EVERY",
    "SUPERSEDED_KEPT",
    "WRITES",
    "Action",
    "MigrationReport",
    "Migrator",
    "TickerMigration",
    "check_source",
    "convert",
    "default_as_of",
    "from_pandas_json",
]
