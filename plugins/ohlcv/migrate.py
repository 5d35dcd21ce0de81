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

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import redis

from ohlcv import calendar, codec
from ohlcv.errors import BadOhlcvData, ConfigurationError, InvalidTicker, OhlcvError
from ohlcv.keys import validate_ticker
from ohlcv.store import UNREADABLE_KEPT, WRITE_ATTEMPTS, OhlcvStore, RunLocked
from ohlcv.validation import NUMBER_COLUMNS, validate

log = logging.getLogger(__name__)

#: the old job used FinanceDataReader; the label written into each converted value's header
DEFAULT_SOURCE = "fdr"
#: how long a history that lost a conflict is kept under ``ohlcv:superseded:{code}``
SUPERSEDED_KEPT = UNREADABLE_KEPT
#: the run lock is extended after this many seconds of work
LOCK_EXTEND_EVERY = 60.0
_SOURCE_LABEL = re.compile(r"[a-z0-9_.-]{0,32}")
_EPOCH_LABEL = re.compile(r"-?[0-9]+")
_SEOUL = ZoneInfo("Asia/Seoul")


class Action(StrEnum):
    """What the migration did (or, in a dry run, would do) to one ticker."""

    CONVERTED = "converted"
    RENAMED = "renamed"
    CONFLICT = "conflict"
    CURRENT = "already current"
    DROPPED = "dropped"
    INVALID = "invalid"
    #: a key under ``ticker:``/``ticker_`` whose name is not one of this package's
    SKIPPED = "skipped"


#: actions that change Redis
WRITES: frozenset[Action] = frozenset({Action.CONVERTED, Action.RENAMED, Action.CONFLICT, Action.DROPPED})


@dataclass(frozen=True)
class TickerMigration:
    """One ticker's outcome (``ticker`` is the key's name for ``skipped``).

    :param detail: what was found and done, for the report line
    :param periods_deleted: the old reader's period keys deleted with it
    """

    ticker: str
    action: Action
    detail: str
    periods_deleted: int = 0

    def line(self) -> str:
        periods = f"; {self.periods_deleted} old period keys deleted" if self.periods_deleted else ""
        return f"{self.ticker}  {self.action}: {self.detail}{periods}"


@dataclass(frozen=True)
class MigrationReport:
    results: list[TickerMigration]
    dry_run: bool

    @property
    def counts(self) -> dict[Action, int]:
        counts = dict.fromkeys(Action, 0)
        for result in self.results:
            counts[result.action] += 1
        return counts

    @property
    def periods_deleted(self) -> int:
        return sum(result.periods_deleted for result in self.results)

    @property
    def changed(self) -> bool:
        return self.periods_deleted > 0 or any(result.action in WRITES for result in self.results)

    @property
    def failed(self) -> bool:
        return any(result.action == Action.INVALID for result in self.results)

    def totals(self) -> str:
        counts = ", ".join(f"{action} {count}" for action, count in self.counts.items())
        verb = "would delete" if self.dry_run else "deleted"
        return f"totals: {counts}; old period keys {verb} {self.periods_deleted}"


@dataclass(frozen=True)
class _Value:
    """One value read for a ticker: what it is and, when readable, its rows.

    :param kind: ``OHLCV_STR`` or ``pandas JSON``
    :param blob: the bytes to store under ``ticker:{code}`` (the original for OHLCV_STR)
    """

    key: str
    kind: str
    blob: bytes
    original: bytes
    last: dt.date
    rows: int

    def describe(self) -> str:
        return f"{self.key} ({self.kind}, {self.rows} rows through {self.last})"


def check_source(label: str) -> str:
    """The ``source`` label for converted values, or ``ConfigurationError``."""
    if not _SOURCE_LABEL.fullmatch(label):
        raise ConfigurationError(f"--source {label!r}: use up to 32 lower-case letters, digits, '_', '.', '-'")
    return label


def from_pandas_json(blob: bytes) -> pd.DataFrame:
    """The frame a value of the old job holds: ``DataFrame.to_json()`` in the columns orient,
    dates as epoch milliseconds (or ISO strings), Open, High, Low, Close, Volume[, Change].

    Whole numbers stay int64, anything else is float64, ``null`` is NaN; other columns
    (FinanceDataReader adds some for indices) are left out. Raises ``BadOhlcvData``.
    """
    try:
        doc = json.loads(blob)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadOhlcvData(f"neither OHLCV_STR nor JSON ({exc})") from None
    if not isinstance(doc, dict) or not doc or not all(isinstance(column, dict) for column in doc.values()):
        raise BadOhlcvData("JSON, but not a pandas frame in the columns orient (column -> {date: value})")
    missing = [name for name in NUMBER_COLUMNS if name not in doc]
    if missing:
        raise BadOhlcvData(f"pandas JSON without the columns {missing}")
    labels = list(doc["Close"])
    names = [name for name in codec.VALUE_COLUMNS if name in doc]
    for name in names:
        if list(doc[name]) != labels:
            raise BadOhlcvData(f"pandas JSON whose column {name} has other dates than Close")
    if not labels:
        raise BadOhlcvData("pandas JSON without rows")
    columns = {name: _column(name, [doc[name][label] for label in labels]) for name in names}
    return pd.DataFrame(columns, index=pd.DatetimeIndex(_dates(labels), name="Date"))


def _dates(labels: list[str]) -> np.ndarray:
    if all(_EPOCH_LABEL.fullmatch(label) for label in labels):
        try:
            return np.array([int(label) for label in labels], dtype="int64").astype("datetime64[ms]")
        except OverflowError:
            raise BadOhlcvData("pandas JSON with dates beyond any calendar") from None
    try:
        return pd.to_datetime(labels, format="ISO8601").values
    except (ValueError, TypeError) as exc:
        raise BadOhlcvData(f"pandas JSON whose dates are neither epoch milliseconds nor ISO dates ({exc})") from None


def _column(name: str, values: list) -> np.ndarray:
    for value in values:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise BadOhlcvData(f"pandas JSON whose {name} holds {value!r}, not a number")
    if all(isinstance(value, int) for value in values):
        try:
            return np.array(values, dtype="int64")
        except OverflowError:
            raise BadOhlcvData(f"pandas JSON whose {name} holds integers beyond int64") from None
    return np.array([np.nan if value is None else value for value in values], dtype="float64")


def _same_numbers(parsed: pd.DataFrame, back: pd.DataFrame) -> None:
    """Raise ``BadOhlcvData`` unless the decoded value holds exactly the parsed numbers: the same
    dates, integers as integers, every price and Volume equal, and every Change the old value
    held (a gap after the first row is filled from Close by ``validate``)."""
    if not pd.DatetimeIndex(parsed.index.normalize()).as_unit("ns").equals(back.index):
        raise BadOhlcvData("the dates do not survive encoding")
    for name in NUMBER_COLUMNS:
        old, new = parsed[name].to_numpy(), back[name].to_numpy()
        if old.dtype.kind == "i" and new.dtype.kind != "i":
            raise BadOhlcvData(f"{name}: integers would be stored as {new.dtype}")
        if not np.array_equal(old.astype("float64"), new.astype("float64")) or (
            old.dtype.kind == "i" and not np.array_equal(old, new)
        ):
            raise BadOhlcvData(f"{name} does not survive encoding exactly")
    if "Change" in parsed.columns:
        old, new = parsed["Change"].to_numpy("float64"), back["Change"].to_numpy("float64")
        held = ~np.isnan(old)
        if not np.array_equal(old[held], new[held]) or (len(old) and np.isnan(old[0]) != np.isnan(new[0])):
            raise BadOhlcvData("Change does not survive encoding exactly")


def convert(blob: bytes, source: str, as_of: dt.date) -> bytes:
    """The OHLCV_STR value for one of the old job's pandas JSON values.

    The frame must pass ``ohlcv.validation.validate`` through ``as_of`` and come back from
    ``codec.decode`` with exactly the numbers the JSON held; otherwise ``BadOhlcvData``.
    """
    parsed = from_pandas_json(blob)
    frame = validate(parsed, as_of)
    value = codec.encode(frame, source)
    _same_numbers(parsed, codec.decode(value))
    return value


def _read(key: str, blob: bytes | None, source: str, as_of: dt.date) -> _Value | None:
    """What one value is, converted when it is pandas JSON; ``BadOhlcvData`` when neither."""
    if blob is None:
        return None
    try:
        frame = codec.decode(blob)
    except BadOhlcvData as exc:
        if blob.lstrip()[:1] != b"{":
            raise BadOhlcvData(f"neither OHLCV_STR nor pandas JSON ({exc})") from None
    else:
        return _Value(key, "OHLCV_STR", blob, blob, frame.index[-1].date(), len(frame))
    converted = convert(blob, source, as_of)
    frame = codec.decode(converted)
    return _Value(key, "pandas JSON", converted, blob, frame.index[-1].date(), len(frame))


def default_as_of() -> dt.date:
    """The latest day a migrated row may carry: today in Korea. The old job ran after the close
    (17:00-21:00 KST), so its last row may be today's session; validation still rejects any
    row that is not an XKRX session."""
    return dt.datetime.now(_SEOUL).date()


class Migrator:
    """Migrates the old job's values through one ``OhlcvStore`` (its key prefix applies).

    :param source: the ``source`` label written into converted values
    :param as_of: no row may be later (default: today in Korea)
    """

    def __init__(
        self, store: OhlcvStore, *, source: str = DEFAULT_SOURCE, as_of: dt.date | None = None, dry_run: bool = False
    ) -> None:
        self.store, self.keys, self.client = store, store.keys, store.client
        self.source = check_source(source)
        self.as_of = as_of or default_as_of()
        self.dry_run = dry_run
        calendar.xkrx(self.as_of)  # build the calendar before taking the lock

    def run(self, tickers: Iterable[str] = ()) -> MigrationReport:
        """Migrate every ticker found (only ``tickers`` if given), under the run lock unless ``dry_run``."""
        wanted = {validate_ticker(code) for code in tickers}
        found, skipped = self._scan(wanted)
        if self.dry_run:
            return MigrationReport(skipped + [self.migrate_ticker(code, found[code]) for code in sorted(found)], True)
        token = f"migrate__{uuid.uuid4().hex}"
        self.store.begin_run(token)
        results, extended = list(skipped), time.monotonic()
        try:
            for code in sorted(found):
                results.append(self.migrate_ticker(code, found[code]))
                if time.monotonic() - extended > LOCK_EXTEND_EVERY:
                    if not self.store.extend_run(token):
                        raise RunLocked("the run lock expired while migrating; run python -m ohlcv migrate again")
                    extended = time.monotonic()
        finally:
            self.store.release_run(token)
        return MigrationReport(results, False)

    def _scan(self, wanted: set[str]) -> tuple[dict[str, list[bytes]], list[TickerMigration]]:
        """Every ticker with a value or entry under the old or new names, with its period keys
        (SCAN and HSCAN, never KEYS)."""
        prefix = self.keys.prefix
        found: dict[str, list[bytes]] = {}
        skipped = []
        hashes = {self.keys.last_update_hash, self.keys.legacy_last_update_hash}
        for raw in self.client.scan_iter(match=f"{prefix}ticker*", count=1000):
            key = raw.decode()
            if key in hashes:
                continue
            code, period = _parse(key[len(prefix) :])
            if code is None:
                if not wanted:
                    skipped.append(TickerMigration(key, Action.SKIPPED, "not a key this package knows; left as it is"))
                continue
            if wanted and code not in wanted:
                continue
            periods = found.setdefault(code, [])
            if period:
                periods.append(raw)
        for raw, _ in self.client.hscan_iter(self.keys.legacy_last_update_hash, count=1000):
            code = _code(raw.decode())
            if code is not None and (not wanted or code in wanted):
                found.setdefault(code, [])  # an entry alone is something to migrate
        for code in wanted:
            found.setdefault(code, [])  # asked for by name: say what is there, even if nothing
        return dict(found), sorted(skipped, key=lambda result: result.ticker)

    def migrate_ticker(self, code: str, periods: Iterable[bytes | str] = ()) -> TickerMigration:
        """Migrate one ticker in one transaction, examined again if a watched key changes.

        :param periods: its period keys (``ticker:{code}:{start}:{end}``) to look at
        """
        code = validate_ticker(code)
        periods = list(periods)
        series_key, legacy_key = self.keys.series(code), self.keys.legacy_series(code)
        watched = [series_key, legacy_key, self.keys.legacy_last_update_hash, *periods]
        for _ in range(WRITE_ATTEMPTS):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(*watched)
                    result, writes = self._plan(pipe, code, periods)
                    if self.dry_run or not writes:
                        pipe.unwatch()
                        return result
                    pipe.multi()
                    for write in writes:
                        write(pipe)
                    pipe.execute()
                    log.info("%s", result.line())
                    return result
                except redis.WatchError:
                    continue
        raise OhlcvError(f"{code}: gave up after {WRITE_ATTEMPTS} concurrent writes to its keys")

    def _plan(self, pipe, code: str, periods: list[bytes | str]) -> tuple[TickerMigration, list]:
        """The outcome for ``code`` and the writes that make it, from what is on the server now."""
        keys = self.keys
        series_key, legacy_key, legacy_hash = keys.series(code), keys.legacy_series(code), keys.legacy_last_update_hash
        stale = [key for key in periods if not _is_ohlcv_str(pipe.get(key))]
        entry = pipe.hget(legacy_hash, code)
        try:
            current = _read(series_key, pipe.get(series_key), self.source, self.as_of)
        except BadOhlcvData as exc:
            return TickerMigration(code, Action.INVALID, f"{series_key}: {exc}; left as it is"), []
        try:
            legacy = _read(legacy_key, pipe.get(legacy_key), self.source, self.as_of)
        except BadOhlcvData as exc:
            kept = f" ({series_key} left as it is)" if current else ""
            return TickerMigration(code, Action.INVALID, f"{legacy_key}: {exc}; left as it is{kept}"), []
        writes = [lambda p: p.delete(*stale)] if stale else []
        if entry is not None:
            writes.append(lambda p: p.hdel(legacy_hash, code))
        removed = f"; its {legacy_hash} entry ({entry.decode()}) removed" if entry is not None else ""

        def keep(value: _Value) -> None:
            writes.append(lambda p: p.set(series_key, value.blob))
            writes.append(lambda p: p.hset(keys.last_update_hash, code, value.last.isoformat()))

        if current is None and legacy is None:
            if entry is None and not stale:
                return TickerMigration(code, Action.CURRENT, f"nothing under {series_key} or {legacy_key}"), []
            detail = f"no whole history under {series_key} or {legacy_key}{removed}"
            return TickerMigration(code, Action.DROPPED, detail, len(stale)), writes
        if legacy is None:
            if current.kind == "OHLCV_STR":
                return TickerMigration(code, Action.CURRENT, f"{current.describe()}{removed}", len(stale)), writes
            keep(current)
            detail = f"{current.describe()} stored as OHLCV_STR (source {self.source!r}){removed}"
            return TickerMigration(code, Action.CONVERTED, detail, len(stale)), writes
        writes.append(lambda p: p.delete(legacy_key))
        if current is None:
            keep(legacy)
            how = f"converted (source {self.source!r})" if legacy.kind == "pandas JSON" else "moved as it is"
            detail = f"{legacy.describe()} -> {series_key}, {how}{removed}"
            return TickerMigration(code, Action.RENAMED, detail, len(stale)), writes
        winner, loser = (legacy, current) if legacy.last > current.last else (current, legacy)
        if winner is legacy or winner.kind != "OHLCV_STR":
            keep(winner)
        aside = keys.superseded(code)
        writes.append(lambda p: p.set(aside, loser.original, ex=SUPERSEDED_KEPT))
        why = "its last session is later" if winner.last > loser.last else "same last session; the new name wins"
        detail = (
            f"kept {winner.describe()} as {series_key} ({why}); "
            f"{loser.describe()} moved to {aside} for {SUPERSEDED_KEPT // 86_400} days{removed}"
        )
        return TickerMigration(code, Action.CONFLICT, detail, len(stale)), writes


def _parse(name: str) -> tuple[str | None, bool]:
    """The code a key name (without the prefix) belongs to, or None, and whether it is a period key."""
    if name.startswith("ticker:"):
        parts = name[len("ticker:") :].split(":")
        if len(parts) == 1:
            return _code(parts[0]), False
        return (_code(parts[0]) if len(parts) == 3 else None), True
    if name.startswith("ticker_"):
        return _code(name[len("ticker_") :]), False
    return None, False


def _code(text: str) -> str | None:
    """``text`` if it is a ticker code exactly as this package writes it in keys."""
    try:
        return text if validate_ticker(text) == text else None
    except InvalidTicker:
        return None


def _is_ohlcv_str(blob: bytes | None) -> bool:
    if blob is None:
        return True  # expired meanwhile: nothing to delete
    try:
        codec.decode(blob)
    except BadOhlcvData:
        return False
    return True
