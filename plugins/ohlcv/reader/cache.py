"""``OhlcvCache``: cache-aside reads of daily OHLCV for forward tests, without Airflow.

``get(ticker, start, end)`` looks in Redis first: the period key
``ticker:{code}:{start}:{end}``, then a slice of the whole history ``ticker:{code}`` (written
back as a period key with a TTL), then the vendor. A miss fetches the whole history through the
newest complete session once, even when many processes miss together (single flight
behind a Redis lock, ``ohlcv.reader.miss``), validates it, stores it with its ``ticker:lastUpdateAt``
entry atomically and returns the slice.

Reads are consistent by default: an open-ended or future ``end`` is cut at the published
``getOHLCV_lastUpdateAt``, so every ticker of one report ends on the same session even
while the indexer is writing. The published session is read once and kept for
``cut_ttl`` (10 minutes; ``refresh()`` reads it again), so a report that runs while the
indexer publishes a new session still ends every ticker on the same one. ``latest=True``
reads the newest data instead.

A reader never rewrites history: on a miss it may add a ticker the cache does not hold or
append sessions the vendor agrees with (``ohlcv.reader.fill``); repairs are the indexer's. A reader
keeps the values it read in the process until Redis says they changed (``ohlcv.reader.tracking``),
so a repeated read makes no round trip.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pandas as pd
import redis

from ohlcv import calendar, codec
from ohlcv.errors import ConfigurationError, InvalidDate
from ohlcv.keys import DateLike, KeySpace, to_date, validate_ticker
from ohlcv.reader import frames, pinned, tables
from ohlcv.reader.miss import MissPath
from ohlcv.reader.research import ResearchReads
from ohlcv.reader.tracking import TrackedReads
from ohlcv.settings import Settings
from ohlcv.store import OhlcvStore, Revision, client_from_url, sentinel

if TYPE_CHECKING:  # the vendors, validation and the indexer load on the first miss only
    from ohlcv.sources import Source

log = logging.getLogger(__name__)

PERIOD_TTL = dt.timedelta(days=7)
FILL_TIMEOUT = dt.timedelta(seconds=120)
CUT_TTL = dt.timedelta(minutes=10)
#: how often a reader on replicas asks the primary whether its replica is still fit
REPLICA_CHECK = dt.timedelta(seconds=5)


class OhlcvCache(MissPath, ResearchReads):
    """Cache-aside reader of the OHLCV cache.

    :param source: the vendor for misses (default: the settings' ``OHLCV_SOURCE``, else FinanceDataReader)
    :param period_ttl: how long a period key written back by a read lives
    :param fill_timeout: how long a miss waits for another process fetching the same ticker
    :param cut_ttl: how long the published session that consistent reads are cut at is kept
    :param settings: the deployment settings (default: ``Settings.from_env()``, read once here):
        the vendor, the key prefix, the megabytes of values kept in the process until Redis
        says they changed (``client_cache_mb``; 0 turns it off), the vendor's rate limit
    :param read_only: make no write and no vendor call: serve what is cached (for a read-only
        Redis user, or a report that must not touch production); a code not cached raises
        ``NoData``. A writing reader whose user turns out to lack write permission behaves the
        same for the rest of its life, after one warning.
    :param read_client: where reads go, when not to ``client``: a client of one replica. With
        ``OHLCV_READ_FROM=replica`` and a Sentinel client (``redis+sentinel://``) the reader
        chooses a replica itself (``ohlcv.store.sentinel.fit_replicas``) and asks the primary
        every ``REPLICA_CHECK`` whether it is still fit, moving to another or to the primary
        when not, and to the primary at once when the replica fails. Writes (a miss's fill,
        period keys) always go to ``client``, and so does a miss's read: a replica that has
        not yet received a session the cut promises sends the read down the miss path, which
        finds it on the primary.
    """

    def __init__(
        self,
        client: redis.Redis,
        source: Source | None = None,
        *,
        period_ttl: dt.timedelta = PERIOD_TTL,
        fill_timeout: dt.timedelta = FILL_TIMEOUT,
        cut_ttl: dt.timedelta = CUT_TTL,
        read_only: bool = False,
        settings: Settings | None = None,
        read_client: redis.Redis | None = None,
    ) -> None:
        for name, value in (("period_ttl", period_ttl), ("fill_timeout", fill_timeout), ("cut_ttl", cut_ttl)):
            if not isinstance(value, dt.timedelta) or value <= dt.timedelta(0):
                raise ConfigurationError(f"{name}={value!r}: give a datetime.timedelta above zero")
        self.settings = settings if settings is not None else Settings.from_env()
        self.store = OhlcvStore(client, KeySpace(self.settings.key_prefix), revision_days=self.settings.revision_days)
        self.client = client
        self.keys = self.store.keys
        self.read_client = read_client or client
        self.reads = self.store if read_client is None else OhlcvStore(read_client, self.keys)
        # OHLCV_READ_FROM=replica under Sentinel: a fit replica, chosen again every REPLICA_CHECK
        self._replicas = read_client is None and self.settings.read_from == "replica"
        self._replica_checked = -math.inf
        self._checking_client: redis.Redis | None = None
        self._warned_no_replica = False
        self._source = source
        self.period_ttl = period_ttl
        self.fill_timeout = fill_timeout
        self.cut_ttl = cut_ttl
        self._cut: tuple[float, dt.date | None] | None = None
        self.read_only = read_only
        megabytes = self.settings.client_cache_mb
        self.tracked = (
            TrackedReads(self.read_client, megabytes * 2**20, fall_back=self.read_client is client)
            if megabytes > 0
            else None
        )
        # the indexer's session table answers calendar questions in a millisecond
        if self._replicas and _replica_reads_possible(client):
            self._choose_reads()
        else:
            self._replicas = False
        calendar.load_from(self.reads.published_sessions)

    @classmethod
    def from_url(
        cls, url: str | None = None, source: Source | None = None, settings: Settings | None = None, **options
    ) -> OhlcvCache:
        """A cache on ``url`` (default: the settings' ``OHLCV_REDIS_URL``, then ``redis://127.0.0.1:6379/0``)."""
        settings = settings if settings is not None else Settings.from_env()
        client = client_from_url(url or settings.redis_url, failover_wait=settings.failover_wait)
        return cls(client, source, settings=settings, **options)

    def _get(self, key: str) -> bytes | None:
        return self._mget([key])[0]

    def _mget(self, keys: list[str], *, again: bool = False) -> list[bytes | None]:
        if self._replicas and time.monotonic() - self._replica_checked > REPLICA_CHECK.total_seconds():
            self._choose_reads()
        try:
            return self.tracked.mget(keys) if self.tracked is not None else self.read_client.mget(keys)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            if self.read_client is self.client:
                raise
            if isinstance(exc, redis.exceptions.ConnectionError) and not again:
                # a replica that closed its connections (Sentinel does when it reconfigures one)
                # answers a new one; a replica that does not answer (a timeout) is not asked again
                return self._mget(keys, again=True)
            log.warning(
                "the replica %s failed (%s): reading from the primary until a replica is fit again",
                sentinel.address_of(self.read_client), exc,
            )  # fmt: skip
            self._read_from(self.client)
            return self._mget(keys)

    def _choose_reads(self) -> None:
        """Read from the best fit replica (``ohlcv.store.sentinel.fit_replicas``), or from the
        primary when none is fit; keep reading where reads go when the primary or the Sentinels
        cannot be asked (a failover: the replica still holds everything published)."""
        self._replica_checked = time.monotonic()
        try:
            fit = [replica.address for replica in sentinel.fit_replicas(self._checker, self.settings.replica_max_lag)]
        except redis.exceptions.RedisError as exc:
            log.debug("cannot ask the primary about its replicas (%s): reading where reads go", exc)
            return
        current = None if self.read_client is self.client else sentinel.address_of(self.read_client)
        if current in fit:
            return
        if fit:
            log.info("reading from the replica %s", fit[0])
            self._read_from(sentinel.pinned_client(self.client, fit[0]))
        elif current is not None:
            log.warning(
                "the replica %s is not online within OHLCV_REPLICA_MAX_LAG=%g s, nor is another: reading from the "
                "primary", current, self.settings.replica_max_lag,
            )  # fmt: skip
            self._read_from(self.client)
        elif not self._warned_no_replica:
            log.warning(
                "no replica is online within OHLCV_REPLICA_MAX_LAG=%g s: reading from the primary",
                self.settings.replica_max_lag,
            )
            self._warned_no_replica = True

    @property
    def _checker(self) -> redis.Redis:
        if self._checking_client is None:
            self._checking_client = sentinel.checking_client(self.client)
        return self._checking_client

    def _read_from(self, client: redis.Redis) -> None:
        """Send reads to ``client`` from now on (tracked values are dropped with the old one)."""
        if self.tracked is not None:
            self.tracked.close()
            self.tracked = TrackedReads(client, self.tracked.max_bytes, fall_back=client is self.client)
        self.read_client = client
        self.reads = self.store if client is self.client else OhlcvStore(client, self.keys)

    @property
    def source(self) -> Source:
        """The vendor for misses, behind the shared breaker and the call gap."""
        from ohlcv.sources import from_spec
        from ohlcv.sources.guard import GuardedSource

        if self._source is None:
            self._source = from_spec(self.settings.source)
        if not isinstance(self._source, GuardedSource):
            self._source = GuardedSource(self._source, self.store, settings=self.settings)
        return self._source

    # -- the window a read covers ---------------------------------------------------------

    def refresh(self) -> None:
        """Read ``getOHLCV_lastUpdateAt`` again at the next read."""
        self._cut = None

    def published(self) -> dt.date | None:
        """The published session consistent reads are cut at (kept for ``cut_ttl``)."""
        now = time.monotonic()
        if self._cut is None or now - self._cut[0] > self.cut_ttl.total_seconds():
            self._cut = (now, self.reads.meta().last_update_at)
        return self._cut[1]

    def read_end(self, end: DateLike | None, *, latest: bool = False) -> dt.date:
        """The last session a read returns: ``end``, cut at the published session unless ``latest``."""
        wanted = to_date(end) if end is not None else None
        newest = None if latest else self.published()
        if newest is None:  # nothing published yet, or the newest data asked for
            newest = calendar.last_complete_session(pd.Timestamp.now(tz="UTC"))
        return min(wanted, newest) if wanted is not None else newest

    def _window(self, start: DateLike | None, end: DateLike | None, latest: bool) -> tuple[dt.date | None, dt.date]:
        first = to_date(start) if start is not None else None
        if end is not None:
            to_date(end)  # a malformed end is an error even when it would be cut
        last = self.read_end(end, latest=latest)
        if first is not None and end is not None and first > to_date(end):
            raise InvalidDate(f"start {first.isoformat()} is after end {to_date(end).isoformat()}")
        return first, last

    # -- one ticker ------------------------------------------------------------------------

    def get(
        self,
        ticker: str,
        start: DateLike | None = None,
        end: DateLike | None = None,
        *,
        latest: bool = False,
        as_: str = "pandas",
        revision: int | Revision | None = None,
    ):
        """Daily OHLCV of ``ticker`` from ``start`` (None: the first session) to ``end``.

        Columns Open, High, Low, Close, Volume, Change on a ``Date`` index; with ``as_="arrow"``
        a ``pyarrow.Table`` and with ``as_="polars"`` a Polars frame, ``Date`` their first
        column (``ohlcv.reader.tables``). With ``revision`` (an id ``revision()`` returned) the
        rows as that revision saw them, ending at its cut, also after later repairs
        (``ohlcv.reader.pinned``; no vendor call). Raises ``InvalidTicker`` / ``InvalidDate`` /
        ``UnknownFormat`` for bad input (no key is created), ``UnknownRevision`` /
        ``RevisionExpired`` for a revision that cannot be read, ``NoData`` when the vendor has
        nothing, ``SourceUnavailable`` when it cannot be asked.
        """
        code = validate_ticker(ticker)
        as_ = tables.check(as_)
        if revision is not None:
            return tables.build(self._pinned([code], start, end, latest, revision)[code], as_)
        return tables.build(self._columns(code, *self._window(start, end, latest)), as_)

    def _pinned(self, codes: list[str], start, end, latest: bool, revision) -> dict[str, codec.Columns]:
        """The rows of ``codes`` as ``revision`` saw them, ending at its cut (``end`` earlier)."""
        if latest:
            raise ValueError("latest=True reads past the published cut; a read pinned to a revision ends at its cut")
        first = to_date(start) if start is not None else None
        wanted = to_date(end) if end is not None else None
        if first is not None and wanted is not None and first > wanted:
            raise InvalidDate(f"start {first.isoformat()} is after end {wanted.isoformat()}")
        record = pinned.resolve(self.reads, revision)
        last = min(wanted, record.cut) if wanted is not None else record.cut
        if first is not None and first > last:
            return dict.fromkeys(codes, frames.empty_columns())
        return pinned.columns(self, codes, record, first, last)

    def _columns(self, code: str, first: dt.date | None, last: dt.date) -> codec.Columns:
        """The rows of ``code`` from ``first`` to ``last``: a period key, else a slice of the
        whole history (kept as a period key), filled from the vendor on a miss."""
        if first is not None and first > last:
            return frames.empty_columns()
        if first is not None:
            blob = self._get(self.keys.period(code, first, last))
            if blob is not None:
                return codec.decode_columns(blob)
        blob, whole = self._full(code, last)
        window = whole.window(first, last)
        if first is not None and window.rows and self._covers(whole, last):
            self._write_back(lambda: self._keep_period(code, first, last, blob, window))
        return window

    def _keep_period(self, code, first, last, blob, window, client=None) -> None:
        encoded = codec.encode_columns(window, codec.source_of(blob))
        self.store.keep_period(code, first, last, blob, encoded, self.period_ttl, client=client)

    def _write_back(self, write) -> None:
        """Keep a period key, unless this reader may not write (then once a warning, then never),
        or the primary cannot take it now (a failover: skipped with a warning, the read served)."""
        if self.read_only:
            return
        try:
            write()
        except redis.exceptions.NoPermissionError as exc:
            self.read_only = True
            log.warning("the Redis user may not write (%s): reading without writing period keys back", exc)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ReadOnlyError) as exc:
            log.warning("a period key was not kept: the primary cannot take writes now (%s)", exc)

    @staticmethod
    def _covers(whole: codec.Columns, last: dt.date) -> bool:
        """Whether a slice through ``last`` may be kept as a period key: only if the history
        reaches ``last``. A shorter history is served, but not frozen into a period key that
        later appends would not update."""
        return whole.last_date() >= last

    # -- many tickers ----------------------------------------------------------------------

    def get_many(
        self,
        tickers: Iterable[str],
        start: DateLike | None = None,
        end: DateLike | None = None,
        *,
        latest: bool = False,
        as_frame: bool = False,
        as_: str = "pandas",
        revision: int | Revision | None = None,
    ):
        """``get`` for many tickers: period keys in one MGET, whole histories in one more, misses filled.

        Returns a dict code -> frame, or with ``as_frame`` one long frame indexed by
        (``Ticker``, ``Date``); with ``as_="arrow"`` / ``"polars"`` the same as Arrow tables /
        Polars frames, the long one with ``Ticker`` and ``Date`` as its first columns. With
        ``revision``, every ticker as that revision saw it (see ``get``).
        """
        codes = list(dict.fromkeys(validate_ticker(ticker) for ticker in tickers))
        as_ = tables.check(as_)
        if revision is not None:
            return tables.build_many(codes, self._pinned(codes, start, end, latest, revision), as_, as_frame)
        first, last = self._window(start, end, latest)
        parts: dict[str, codec.Columns] = {}
        if first is not None and first <= last and codes:
            blobs = self._mget([self.keys.period(code, first, last) for code in codes])
            parts = {code: codec.decode_columns(blob) for code, blob in zip(codes, blobs, strict=True) if blob}
        missing = [code for code in codes if code not in parts]
        if missing and (first is None or first <= last):
            blobs = self._mget([self.keys.series(code) for code in missing])
            with self.client.pipeline(transaction=False) as writes:
                for code, blob in zip(missing, blobs, strict=True):
                    if blob is None:
                        continue
                    whole = frames.columns_from_cached(code, blob)
                    covered = self._covers(whole, last)
                    if covered or self.read_only or self._settled(code, last, whole.last_date()):
                        parts[code] = whole.window(first, last)
                        if covered and first is not None and parts[code].rows:
                            self._keep_period(code, first, last, blob, parts[code], client=writes)
                self._write_back(writes.execute)
            for code in [code for code in missing if code not in parts]:
                parts[code] = self._columns(code, first, last)
        return tables.build_many(codes, parts, as_, as_frame)


def _replica_reads_possible(client: redis.Redis) -> bool:
    if sentinel.is_sentinel_client(client):
        return True
    log.warning("OHLCV_READ_FROM=replica needs a Sentinel URL (redis+sentinel://): reading from the one server")
    return False
