"""``python -m ohlcv migrate``: turn what the Jenkins job left in Redis (pandas JSON under
``ticker:{code}`` or ``ticker_{code}``) into OHLCV_STR, without asking the vendor.

Each ticker is converted, renamed, resolved as a conflict, found already current, dropped or
reported invalid (docs/cutover.md, "What `migrate` does to each ticker", says what each means); each ticker's
change is one MULTI/EXEC that WATCHes what it read, under the run lock (``RunLocked`` while an
indexer run holds it); ``dry_run`` writes nothing. ``legacy`` recognises and converts the old
values, ``migrator`` makes the changes, ``report`` prints them.
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
