"""Redis key names and the validation of everything that becomes part of a key.

The layout is the original indexer's, so existing readers keep working:

- ``ticker:lastUpdateAt`` (hash) code -> ISO date of the last session in ``ticker:{code}``
- ``ticker:{code}`` (string) the whole history of one ticker, OHLCV_STR
- ``ticker:{code}:{start}:{end}`` (string) one period of one ticker, OHLCV_STR
- ``getOHLCV_isUpdating``, ``getOHLCV_lastUpdateAt``, ``getOHLCV_lastUpdateCount`` (strings)

Some deployments of the old job used ``ticker_{code}`` and the hash ``ticker_lastUpdateAt``
instead; ``python -m ohlcv migrate`` moves them to the names above (``ohlcv.migrate``).

``OHLCV_KEY_PREFIX`` (default empty) is put in front of every key so two environments can
share one Redis.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pandas as pd

from ohlcv.errors import InvalidDate, InvalidKeyPrefix, InvalidTicker
from ohlcv.settings import KEY_PREFIX_PATTERN

# Index symbols are not KRX codes; they are allowed by name only.
INDEX_SYMBOLS: frozenset[str] = frozenset({"KS11", "KQ11", "KS200"})

# KRX short codes: four digits, then since the 2024 code reform a digit or a capital letter
# (not I, O, U) and a digit or a preferred-share letter K-N: 005930, 0126Z0, 00680K.
# The same rule FinanceDataReader uses to route a code to Naver.
_KRX_CODE = re.compile(r"[0-9]{4}[0-9A-HJ-NP-TV-Z][0-9KLMN]")
_LOOSE_DATE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
_COMPACT_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
_DIGEST = re.compile(r"[0-9a-f]{40}")

DateLike = str | dt.date | dt.datetime | pd.Timestamp


def validate_ticker(code: object) -> str:
    """Return ``code`` as it is used in keys, or raise ``InvalidTicker``.

    Lower-case letters are accepted and upper-cased; nothing else is rewritten.
    """
    if not isinstance(code, str):
        raise InvalidTicker(f"ticker must be a string, got {type(code).__name__}")
    upper = code.upper()
    if upper in INDEX_SYMBOLS or _KRX_CODE.fullmatch(upper):
        return upper
    shown = code if len(code) <= 20 else code[:20] + "..."
    raise InvalidTicker(
        f"invalid ticker {shown!r}: expected a 6-character KRX code such as 005930 or 0126Z0, "
        f"or one of the index symbols {sorted(INDEX_SYMBOLS)}"
    )


def is_index(code: str) -> bool:
    """Whether ``code`` is one of the allowed index symbols rather than a KRX stock code."""
    return code in INDEX_SYMBOLS


def to_date(value: DateLike) -> dt.date:
    """Read a date given as ``2022-9-12``, ``2022-09-12``, ``20220912``, date, datetime or Timestamp."""
    if value is pd.NaT:
        raise InvalidDate("invalid date: NaT")
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        match = _LOOSE_DATE.fullmatch(text) or _COMPACT_DATE.fullmatch(text)
        if match:
            try:
                return dt.date(*(int(part) for part in match.groups()))
            except ValueError as exc:
                raise InvalidDate(f"invalid date {value!r}: {exc}") from None
        if re.fullmatch(r"[0-9]{4}(-[0-9]{1,2})?", text):
            raise InvalidDate(
                f"invalid date {value!r}: give a whole date such as {text[:4]}-01-02 (only getOHLCV, like "
                "FinanceDataReader, reads a bare year or month as its first day)"
            )
        raise InvalidDate(f"invalid date {value!r}: expected YYYY-MM-DD (2022-9-12 is fine too)")
    raise InvalidDate(f"invalid date {value!r}: expected a string, date, datetime or Timestamp")


def validate_period(start: DateLike, end: DateLike) -> tuple[dt.date, dt.date]:
    """Both ends of a period as dates; raise ``InvalidDate`` when start is after end."""
    first, last = to_date(start), to_date(end)
    if first > last:
        raise InvalidDate(f"start {first.isoformat()} is after end {last.isoformat()}")
    return first, last


def code_as_written(text: str) -> str | None:
    """``text`` if it is a ticker code exactly as this package writes it in keys, else None."""
    try:
        return text if validate_ticker(text) == text else None
    except InvalidTicker:
        return None


def _safe_id(run_id: str) -> str:
    """An Airflow run id inside a key: anything but letters, digits, '_', '.', '+', '-' becomes '_'."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", run_id)[:200]


@dataclass(frozen=True)
class KeySpace:
    """Every key name the package uses, with an optional prefix for shared Redis servers."""

    prefix: str = ""

    def __post_init__(self) -> None:
        if not KEY_PREFIX_PATTERN.fullmatch(self.prefix):
            raise InvalidKeyPrefix(f"invalid key prefix {self.prefix!r}: use letters, digits, '_', '.', '-' and ':'")

    @property
    def last_update_hash(self) -> str:
        return f"{self.prefix}ticker:lastUpdateAt"

    @property
    def is_updating(self) -> str:
        return f"{self.prefix}getOHLCV_isUpdating"

    @property
    def last_update_at(self) -> str:
        return f"{self.prefix}getOHLCV_lastUpdateAt"

    @property
    def last_update_count(self) -> str:
        return f"{self.prefix}getOHLCV_lastUpdateCount"

    @property
    def run_lock(self) -> str:
        return f"{self.prefix}ohlcv:lock:run"

    @property
    def rate_limit(self) -> str:
        """Prefix of the ``limits`` library's moving windows: one per vendor, shared by every process."""
        return f"{self.prefix}ohlcv:rate"

    @property
    def breaker(self) -> str:
        """String with an expiry: why the vendor breaker is open; absent while it is closed."""
        return f"{self.prefix}ohlcv:breaker"

    @property
    def breaker_log(self) -> str:
        """Stream: every opening and closing of the breaker, by whom and why (the newest 200)."""
        return f"{self.prefix}ohlcv:breaker:log"

    def run_metrics(self, run_id: str) -> str:
        """Hash: counters of one run (vendor calls, their seconds, rows written), expiring."""
        return f"{self.prefix}ohlcv:run:{_safe_id(run_id)}:metrics"

    def run_results(self, run_id: str) -> str:
        """Hash: ticker → what its task did in one run (written, repaired, fresh, ...), expiring."""
        return f"{self.prefix}ohlcv:run:{_safe_id(run_id)}:results"

    @property
    def runs(self) -> str:
        """Stream: one entry per finished run with its counts, the newest 200 kept."""
        return f"{self.prefix}ohlcv:runs"

    @property
    def inactive(self) -> str:
        """Hash: code -> JSON record of a ticker with no new data (delisted, halted, unknown)."""
        return f"{self.prefix}ohlcv:inactive"

    @property
    def failures(self) -> str:
        """Hash: code -> JSON record of the ticker's latest failure, removed when it next succeeds."""
        return f"{self.prefix}ohlcv:failures"

    def snapshot(self, source: str) -> str:
        """Hash: ``session``, ``data``: the newest market snapshot from ``source`` (every listed
        code's OHLCV for one session), asked once per session and serving as the listing."""
        return f"{self.prefix}ohlcv:snapshot:{source}"

    def table(self, source: str, session: dt.date) -> str:
        """Hash: ``data``, ``final``, ``fetched``: the market's table of one session from ``source``,
        kept for ``TABLE_KEPT`` so every run of the session and later catch-ups ask once."""
        return f"{self.prefix}ohlcv:table:{source}:{session.isoformat()}"

    @property
    def quality(self) -> str:
        """Stream: one entry per code whose values differ between two sources' tables of a
        session (``session``, ``code``, ``first``, ``second`` and both values as JSON), the newest
        ``QUALITY_KEPT`` kept."""
        return f"{self.prefix}ohlcv:quality"

    @property
    def quality_checked(self) -> str:
        """Hash: session -> JSON of its cross-check (the second source, codes, differing codes)."""
        return f"{self.prefix}ohlcv:quality:checked"

    @property
    def preliminary(self) -> str:
        """Hash: code -> JSON list of the sessions whose cached row holds a preliminary table's
        volume (read on the session's evening), until a final table or a history fetch settles it."""
        return f"{self.prefix}ohlcv:preliminary"

    def run_waited(self, run_id: str) -> str:
        """Hash: ticker -> seconds its tries in one run have spent on the vendor (the ticker deadline), expiring."""
        return f"{self.prefix}ohlcv:run:{_safe_id(run_id)}:waited"

    def run_behind(self, run_id: str) -> str:
        """Hash: ticker -> why one run left it behind on purpose (waiting for a table, deferred), expiring."""
        return f"{self.prefix}ohlcv:run:{_safe_id(run_id)}:behind"

    def run_tables(self, run_id: str) -> str:
        """Hash: session -> what one run did with that session's table (applied, missing, refused), expiring."""
        return f"{self.prefix}ohlcv:run:{_safe_id(run_id)}:tables"

    @property
    def universe(self) -> str:
        """Hash: code -> JSON list of its listed spans ``[first, last or null, market]``
        (``ohlcv.universe``), from the market tables the indexer read."""
        return f"{self.prefix}ohlcv:universe"

    @property
    def universe_sessions(self) -> str:
        """Sorted set: the sessions whose market table is recorded in ``universe`` (member the ISO
        session, score its days since 1970-01-01): on these the universe is exact."""
        return f"{self.prefix}ohlcv:universe:sessions"

    @property
    def delisted(self) -> str:
        """Hash: code -> JSON of a code no longer listed: its last session and, once the vendor's
        delisting listing names it, the delisting date and reason."""
        return f"{self.prefix}ohlcv:delisted"

    def actions(self, code: str) -> str:
        """Stream: the ledger of ``code``: every continuity break found in it and every repair
        made to it, with what was done, the run and the series' digest before and after."""
        return f"{self.prefix}ohlcv:actions:{validate_ticker(code)}"

    def run_handed_on(self, run_id: str) -> str:
        """Hash: ticker -> why one run's snapshot step handed it on to a history fetch, expiring."""
        return f"{self.prefix}ohlcv:run:{_safe_id(run_id)}:handed_on"

    def run_breaks(self, run_id: str) -> str:
        """Hash: code -> JSON of a continuity break one run found and has not resolved yet, expiring."""
        return f"{self.prefix}ohlcv:run:{_safe_id(run_id)}:breaks"

    @property
    def revision(self) -> str:
        """String: the current revision id, published with the cut (``ohlcv.store.revisions``)."""
        return f"{self.prefix}ohlcv:revision"

    @property
    def replication_probe(self) -> str:
        """String with an expiry: written just before a run waits for its writes to reach the
        replicas (``WAIT`` covers what its connection wrote last, and everything before)."""
        return f"{self.prefix}ohlcv:replication:probe"

    @property
    def revisions(self) -> str:
        """Hash: revision id -> JSON of what it published (cut, count, when, run, expiry,
        sessions still preliminary)."""
        return f"{self.prefix}ohlcv:revisions"

    @property
    def revision_changed(self) -> str:
        """String: present when a history was rewritten since the current revision, so the next
        publish makes a new one even if the cut stays."""
        return f"{self.prefix}ohlcv:revision:changed"

    def version(self, code: str, digest: str) -> str:
        """String with an expiry: a value of ``ticker:{code}`` a write replaced, by its SHA-1,
        kept for the revisions that saw it."""
        if not _DIGEST.fullmatch(digest):
            raise ValueError(f"not a SHA-1 digest: {digest[:50]!r}")
        return f"{self.prefix}ohlcv:version:{validate_ticker(code)}:{digest}"

    def versions(self, code: str) -> str:
        """Sorted set: the values of ``code`` kept by ``version``, as ``{time}:{sha1}`` scored by
        the revision current when each was replaced."""
        return f"{self.prefix}ohlcv:versions:{validate_ticker(code)}"

    def settled(self, session: dt.date) -> str:
        """Hash with an expiry: code -> ``{volume} {revision}``, the preliminary Volume of the
        code's row of ``session`` that settling replaced, and the revision current then."""
        return f"{self.prefix}ohlcv:settled:{session.isoformat()}"

    @property
    def sessions(self) -> str:
        """String: the XKRX session table the indexer built (``ohlcv.calendar.SessionTable``),
        so a reader answers calendar questions without building the calendar."""
        return f"{self.prefix}ohlcv:sessions"

    def checked(self, code: str) -> str:
        """String with an expiry: the session through which a reader found nothing newer at the
        vendor, so other readers do not ask again for a while."""
        return f"{self.prefix}ohlcv:checked:{validate_ticker(code)}"

    def fill_lock(self, code: str) -> str:
        """Lock (redis-py): held by the one reader fetching ``code`` on a miss."""
        return f"{self.prefix}ohlcv:fill:{validate_ticker(code)}"

    def periods(self, code: str) -> str:
        """Set: the period keys written for ``code``, so a repair deletes them without SCAN."""
        return f"{self.prefix}ohlcv:periods:{validate_ticker(code)}"

    def unreadable(self, code: str) -> str:
        """String: a value of ``ticker:{code}`` that could not be read as OHLCV_STR (the old job's
        pandas JSON, or damage), kept for 30 days after the vendor's history replaced it."""
        return f"{self.prefix}ohlcv:unreadable:{validate_ticker(code)}"

    def superseded(self, code: str) -> str:
        """String: the old job's value that ``python -m ohlcv migrate`` did not keep because the
        ticker's other name held a later history; kept for 30 days."""
        return f"{self.prefix}ohlcv:superseded:{validate_ticker(code)}"

    def series(self, code: str) -> str:
        return f"{self.prefix}ticker:{validate_ticker(code)}"

    def legacy_series(self, code: str) -> str:
        """String: the old job's whole history of ``code`` under the underscore name some of its
        deployments used (pandas JSON); ``python -m ohlcv migrate`` moves it to ``series``."""
        return f"{self.prefix}ticker_{validate_ticker(code)}"

    @property
    def legacy_last_update_hash(self) -> str:
        """Hash: code -> date, the old job's ``ticker_lastUpdateAt`` (the date of the run that wrote
        the ticker, not its last session); ``python -m ohlcv migrate`` moves it to ``last_update_hash``."""
        return f"{self.prefix}ticker_lastUpdateAt"

    def period(self, code: str, start: DateLike, end: DateLike) -> str:
        first, last = validate_period(start, end)
        return f"{self.prefix}ticker:{validate_ticker(code)}:{first.isoformat()}:{last.isoformat()}"

    @property
    def ticker_pattern(self) -> str:
        """SCAN pattern of every key under ``ticker:`` and ``ticker_``: the series, their period
        keys, the old job's names and both ``lastUpdateAt`` hashes."""
        return f"{self.prefix}ticker*"

    def code_in(self, key: str) -> tuple[str | None, bool]:
        """The code a key matched by ``ticker_pattern`` belongs to (None: not a name ``series``,
        ``period`` or ``legacy_series`` gives), and whether it is a period key."""
        name = key[len(self.prefix) :]
        if name.startswith("ticker:"):
            parts = name[len("ticker:") :].split(":")
            if len(parts) == 1:
                return code_as_written(parts[0]), False
            return (code_as_written(parts[0]) if len(parts) == 3 else None), True
        if name.startswith("ticker_"):
            return code_as_written(name[len("ticker_") :]), False
        return None, False
