"""``OhlcvCache``: cache-aside reads of daily OHLCV for forward tests, without Airflow.

``get(ticker, start, end)`` looks in Redis first: the period key
``ticker:{code}:{start}:{end}``, then a slice of the whole history ``ticker:{code}`` (written
back as a period key with a TTL), then the vendor. A miss fetches the whole history through the
newest complete session once, even when many processes miss together (single flight
behind a Redis lock), validates it, stores it with its ``ticker:lastUpdateAt`` entry
atomically and returns the slice.

Reads are consistent by default: an open-ended or future ``end`` is cut at the published
``getOHLCV_lastUpdateAt``, so every ticker of one report ends on the same session even
while the indexer is writing. The published session is read once and kept for
``cut_ttl`` (10 minutes; ``refresh()`` reads it again), so a report that runs while the
indexer publishes a new session still ends every ticker on the same one. ``latest=True``
reads the newest data instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Iterable

import numpy as np
import pandas as pd
import redis

from ohlcv import calendar, codec, indexer
from ohlcv.errors import InvalidDate, NoData, SourceUnavailable
from ohlcv.keys import DateLike, KeySpace, to_date, validate_ticker
from ohlcv.sources import Source, from_spec, spec_from_env
from ohlcv.sources.guard import GuardedSource
from ohlcv.status import Status
from ohlcv.store import OhlcvStore, client_from_url

log = logging.getLogger(__name__)

PERIOD_TTL = dt.timedelta(days=7)

# KEYS: series, period, registry. ARGV: sha1 of the series bytes the period was sliced from,
# the period's OHLCV_STR, ttl (ms). Stores the period only if the series is still those bytes,
# so a slice of a history repaired meanwhile is never kept.
_WRITE_PERIOD = """
local current = redis.call('GET', KEYS[1])
if not current or redis.sha1hex(current) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[3], KEYS[2])
return 1
"""
FILL_TIMEOUT = dt.timedelta(seconds=120)
#: after a miss found nothing newer at the vendor, readers do not ask again for this long
CHECKED_TTL = dt.timedelta(hours=1)
CUT_TTL = dt.timedelta(minutes=10)


class OhlcvCache:
    """Cache-aside reader of the OHLCV cache.

    :param source: the vendor for misses (default: ``OHLCV_SOURCE``, else FinanceDataReader)
    :param period_ttl: how long a period key written back by a read lives
    :param fill_timeout: how long a miss waits for another process fetching the same ticker
    :param cut_ttl: how long the published session that consistent reads are cut at is kept
    :param read_only: make no write and no vendor call: serve what is cached (for a read-only
        Redis user, or a report that must not touch production); a code not cached raises
        ``NoData``. A writing reader whose user turns out to lack write permission behaves the
        same for the rest of its life, after one warning.
    """

    def __init__(
        self,
        client: redis.Redis,
        source: Source | None = None,
        *,
        keys: KeySpace | None = None,
        period_ttl: dt.timedelta = PERIOD_TTL,
        fill_timeout: dt.timedelta = FILL_TIMEOUT,
        cut_ttl: dt.timedelta = CUT_TTL,
        read_only: bool = False,
    ) -> None:
        self.store = OhlcvStore(client, keys)
        self.client = client
        self.keys = self.store.keys
        self._source = source
        self.period_ttl = period_ttl
        self.fill_timeout = fill_timeout
        self.cut_ttl = cut_ttl
        self._cut: tuple[float, dt.date | None] | None = None
        self._write_period = client.register_script(_WRITE_PERIOD)
        self.read_only = read_only

    @classmethod
    def from_url(cls, url: str | None = None, source: Source | None = None, **options) -> OhlcvCache:
        """A cache on ``url`` (default ``OHLCV_REDIS_URL``, then ``redis://127.0.0.1:6379/0``)."""
        return cls(client_from_url(url), source, **options)

    @property
    def source(self) -> Source:
        """The vendor for misses, behind the shared breaker and the call gap."""
        if self._source is None:
            self._source = from_spec(spec_from_env())
        if not isinstance(self._source, GuardedSource):
            self._source = GuardedSource(self._source, self.store)
        return self._source

    # -- the window a read covers ---------------------------------------------------------

    def refresh(self) -> None:
        """Read ``getOHLCV_lastUpdateAt`` again at the next read."""
        self._cut = None

    def published(self) -> dt.date | None:
        """The published session consistent reads are cut at (kept for ``cut_ttl``)."""
        now = time.monotonic()
        if self._cut is None or now - self._cut[0] > self.cut_ttl.total_seconds():
            self._cut = (now, self.store.meta().last_update_at)
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
        self, ticker: str, start: DateLike | None = None, end: DateLike | None = None, *, latest: bool = False
    ) -> pd.DataFrame:
        """Daily OHLCV of ``ticker`` from ``start`` (None: the first session) to ``end``.

        Columns Open, High, Low, Close, Volume, Change on a ``Date`` index. Raises
        ``InvalidTicker`` / ``InvalidDate`` for bad input (no key is created), ``NoData``
        when the vendor has nothing, ``SourceUnavailable`` when it cannot be asked.
        """
        code = validate_ticker(ticker)
        first, last = self._window(start, end, latest)
        if first is not None and first > last:
            return _empty()
        if first is not None:
            blob = self.client.get(self.keys.period(code, first, last))
            if blob is not None:
                return codec.decode(blob)
        blob, frame = self._full(code, last)
        if first is None and frame.index[-1] <= pd.Timestamp(last):
            return frame  # the whole history: no slicing
        window = frame.loc[pd.Timestamp(first) if first else None : pd.Timestamp(last)]
        if first is not None and not window.empty and self._covers(frame.index[-1], last):
            self._write_back(
                lambda: self._write_period(
                    keys=self._period_keys(code, first, last), args=self._period_args(blob, window)
                )
            )
        return window

    def _write_back(self, write) -> None:
        """Keep a period key, unless this reader may not write (then once a warning, then never)."""
        if self.read_only:
            return
        try:
            write()
        except redis.exceptions.NoPermissionError as exc:
            self.read_only = True
            log.warning("the Redis user may not write (%s): reading without writing period keys back", exc)

    @staticmethod
    def _covers(cached_last: pd.Timestamp, last: dt.date) -> bool:
        """Whether a slice through ``last`` may be kept as a period key: only if the history
        reaches ``last``. A shorter history is served, but not frozen into a period key that
        later appends would not update."""
        return cached_last >= pd.Timestamp(last)

    def _period_keys(self, code: str, first: dt.date, last: dt.date) -> list[str]:
        return [self.keys.series(code), self.keys.period(code, first, last), self.keys.periods(code)]

    def _period_args(self, blob: bytes, window: pd.DataFrame) -> list:
        ttl = int(self.period_ttl.total_seconds() * 1000)
        return [hashlib.sha1(blob).hexdigest(), codec.encode(window, codec.source_of(blob)), ttl]

    def _full(self, code: str, last: dt.date) -> tuple[bytes, pd.DataFrame]:
        """The cached history of ``code`` covering ``last`` (its bytes and frame), filled from the
        vendor if needed."""
        blob = self.client.get(self.keys.series(code))
        if blob is not None:
            frame = codec.decode(blob)
            if frame.index[-1].date() >= last or self.read_only or self._settled(code, last):
                return blob, frame
        if self.read_only:
            raise NoData(f"{code} is not cached, and this reader is read-only: no vendor call")
        return self._fill(code, last)

    def _checked_key(self, code: str) -> str:
        return f"{self.keys.prefix}ohlcv:checked:{validate_ticker(code)}"

    def _settled(self, code: str, last: dt.date) -> bool:
        """Whether asking the vendor again cannot help now: the ticker was found without data
        (inactive) or a reader found nothing newer within ``CHECKED_TTL``."""
        _, inactive = self.store.state_of([code])
        record = inactive.get(code)
        if record is not None and dt.date.fromisoformat(record["checked"]) >= last:
            return True
        checked = self.client.get(self._checked_key(code))
        return checked is not None and dt.date.fromisoformat(checked.decode()) >= last

    def _fill(self, code: str, last: dt.date) -> tuple[bytes, pd.DataFrame]:
        """Fetch ``code`` from the vendor once, however many processes miss it at the same time."""
        self._raise_if_known_empty(code, last)
        lock = self.client.lock(
            f"{self.keys.prefix}ohlcv:fill:{code}",
            timeout=self.fill_timeout.total_seconds(),
            blocking_timeout=self.fill_timeout.total_seconds(),
        )
        if not lock.acquire():
            raise SourceUnavailable(f"{code}: another reader has been fetching it for {self.fill_timeout}")
        try:
            blob = self.client.get(self.keys.series(code))  # a reader ahead of us may have filled it
            if blob is not None:
                frame = codec.decode(blob)
                if frame.index[-1].date() >= last or self._settled(code, last):
                    return blob, frame
            self._raise_if_known_empty(code, last)
            # One fetch serves every later window: store through the newest complete session.
            newest = max(last, calendar.last_complete_session(pd.Timestamp.now(tz="UTC")))
            result = indexer.index_ticker(self.store, self.source, code, newest, full_refresh=True)
            log.info("%s cache miss filled from %s: %s", code, self.source.name, result.status)
            if result.status == Status.NO_DATA:
                raise NoData(f"{code}: {result.reason}")
            if result.last_date is not None and dt.date.fromisoformat(result.last_date) < newest:
                # the vendor has nothing newer (a halt): let readers stop asking for a while
                ttl = int(CHECKED_TTL.total_seconds() * 1000)
                self.client.set(self._checked_key(code), newest.isoformat(), px=ttl)
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:
                log.warning("%s: the fill lock expired before the fetch finished", code)
        blob = self.client.get(self.keys.series(code))
        if blob is None:
            raise NoData(f"{code}: nothing cached after fetching it")
        return blob, codec.decode(blob)

    def _raise_if_known_empty(self, code: str, last: dt.date) -> None:
        """A code recently found without any data is not asked for again (``NoData`` at once)."""
        if self.client.exists(self.keys.series(code)):
            return
        _, inactive = self.store.state_of([code])
        record = inactive.get(code)
        if record is not None and last - dt.date.fromisoformat(record["checked"]) < indexer.INACTIVE_RECHECK:
            raise NoData(f"{code}: {record['reason']} (checked {record['checked']})")

    # -- many tickers ----------------------------------------------------------------------

    def get_many(
        self,
        tickers: Iterable[str],
        start: DateLike | None = None,
        end: DateLike | None = None,
        *,
        latest: bool = False,
        as_frame: bool = False,
    ) -> dict[str, pd.DataFrame] | pd.DataFrame:
        """``get`` for many tickers: period keys in one MGET, whole histories in one more, misses filled.

        Returns a dict code -> frame, or with ``as_frame`` one long frame indexed by
        (``Ticker``, ``Date``).
        """
        codes = list(dict.fromkeys(validate_ticker(ticker) for ticker in tickers))
        first, last = self._window(start, end, latest)
        arrays: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {}
        if first is not None and first <= last and codes:
            blobs = self.client.mget([self.keys.period(code, first, last) for code in codes])
            arrays = {code: codec.decode_arrays(blob) for code, blob in zip(codes, blobs, strict=True) if blob}
        missing = [code for code in codes if code not in arrays]
        if missing and (first is None or first <= last):
            blobs = self.client.mget([self.keys.series(code) for code in missing])
            with self.client.pipeline(transaction=False) as writes:
                for code, blob in zip(missing, blobs, strict=True):
                    if blob is None:
                        continue
                    dates, columns = codec.decode_arrays(blob)
                    covered = dates[-1] >= np.datetime64(last)
                    if covered or self.read_only or self._settled(code, last):
                        arrays[code] = _slice(dates, columns, first, last)
                        if covered and first is not None and len(arrays[code][0]):
                            window = codec.frame_from_arrays(*arrays[code])
                            self._write_period(
                                keys=self._period_keys(code, first, last),
                                args=self._period_args(blob, window),
                                client=writes,
                            )
                self._write_back(writes.execute)
            for code in [code for code in missing if code not in arrays]:
                frame = self.get(code, first, last, latest=latest)
                arrays[code] = (frame.index.values, {name: frame[name].to_numpy() for name in codec.VALUE_COLUMNS})
        if as_frame:
            return _long_frame(codes, arrays)
        return {code: codec.frame_from_arrays(*arrays[code]) if code in arrays else _empty() for code in codes}


def _slice(dates: np.ndarray, columns: dict[str, np.ndarray], first: dt.date | None, last: dt.date):
    lo = 0 if first is None else int(np.searchsorted(dates, np.datetime64(first, "ns"), side="left"))
    hi = int(np.searchsorted(dates, np.datetime64(last, "ns"), side="right"))
    return dates[lo:hi], {name: values[lo:hi] for name, values in columns.items()}


def _long_frame(codes: list[str], arrays: dict) -> pd.DataFrame:
    """One frame for many tickers, built once: (Ticker, Date) index, the usual columns."""
    present = [code for code in codes if code in arrays]
    if not present:
        return _empty().set_index(pd.MultiIndex.from_arrays([[], []], names=["Ticker", "Date"]))
    lengths = [len(arrays[code][0]) for code in present]
    dates = np.concatenate([arrays[code][0] for code in present])
    # numpy widens a column to float64 when some tickers have decimal prices
    columns = {name: np.concatenate([arrays[code][1][name] for code in present]) for name in codec.VALUE_COLUMNS}
    tickers = pd.Categorical(np.repeat(np.array(present, dtype=object), lengths), categories=present)
    index = pd.MultiIndex.from_arrays([tickers, pd.DatetimeIndex(dates)], names=["Ticker", "Date"])
    return pd.DataFrame(columns, index=index)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {name: pd.Series(dtype="float64" if name == "Change" else "int64") for name in codec.VALUE_COLUMNS},
        index=pd.DatetimeIndex([], dtype="datetime64[ns]", name="Date"),
    )
