"""Error classes: the DAG and callers decide what to do from the class, never the text."""

from __future__ import annotations


class OhlcvError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidTicker(OhlcvError, ValueError):
    """A ticker code that cannot safely become part of a Redis key."""


class InvalidDate(OhlcvError, ValueError):
    """A date that cannot be read, or a start that lies after its end."""


class NotASession(InvalidDate):
    """A date that is not an XKRX session (a weekend, a holiday, before the calendar)."""


class UnknownSession(OhlcvError, LookupError):
    """A session the universe record does not reach yet: after its newest recorded session, or
    nothing recorded at all."""


class UnknownMarket(OhlcvError, ValueError):
    """A market that is not one of ``KRX``, ``KOSPI``, ``KOSDAQ``, ``KONEX``."""


class NeverListed(OhlcvError, LookupError):
    """A code the cache knows nothing of: never in a recorded table, never cached."""


class UnknownRevision(OhlcvError, LookupError):
    """A revision id no run published (or not an id at all)."""


class RevisionExpired(UnknownRevision):
    """A revision older than ``OHLCV_REVISION_DAYS``: the superseded series it would need are gone.

    :param expired: when it expired
    """

    def __init__(self, message: str, expired) -> None:
        super().__init__(message)
        self.expired = expired


class InexactUniverse(UserWarning):
    """A universe answered for a session whose market table is not recorded (before the record's
    exact reach, or a gap in it): what is known, not the session's table. A warning, so the
    answer still comes; ``warnings.simplefilter("error", InexactUniverse)`` makes it an error."""


class UnknownFormat(OhlcvError, ValueError):
    """An ``as_=`` that names no format readers build (``pandas``, ``polars``, ``arrow``)."""


class FormatUnavailable(OhlcvError, ImportError):
    """The library an ``as_=`` format needs (pyarrow, polars) is not installed."""


class BadOhlcvData(OhlcvError):
    """A frame (from a vendor or from Redis) that is not a valid OHLCV series."""


class SourceUnavailable(OhlcvError):
    """The vendor could not be reached or answered with an error; worth retrying later."""


class SourceBlocked(OhlcvError):
    """The vendor refused us (HTTP 403/429, a block page): asking again makes it worse.

    Not retried; the shared breaker opens so no task calls the vendor until it closes.
    """


class TableMissing(SourceUnavailable):
    """The vendor has not published the market's table of a session (yet): the tickers that
    need only the table wait for a later run instead of downloading their histories."""


class HistoryBudgetSpent(OhlcvError):
    """The run has made its ``OHLCV_HISTORY_BUDGET`` history calls: the ticker is deferred to
    the next run, not failed."""


class TickerDeadline(OhlcvError):
    """The vendor has not answered for a ticker within the time its tries may take in a run
    (``OHLCV_TICKER_DEADLINE``): it fails, and is not asked again in this run."""


class BreakerOpen(OhlcvError):
    """The vendor breaker is open after a block answer; no vendor call is made until it closes."""


class NoData(OhlcvError):
    """The vendor knows nothing about this code (unknown, delisted, or never traded)."""


class ConfigurationError(OhlcvError, ValueError):
    """A setting (source spec, Redis URL, connection) that cannot be used as given."""


class InvalidKeyPrefix(ConfigurationError):
    """An ``OHLCV_KEY_PREFIX`` that would inject unsafe characters into every key."""


class SourceMismatch(ConfigurationError):
    """A reader's vendor is not the one the cached series came from: it may not write to it."""


class ReplicasBehind(OhlcvError):
    """Fewer replicas than ``OHLCV_MIN_REPLICAS`` hold a run's writes within
    ``OHLCV_REPLICA_ACK_TIMEOUT``: the run does not publish its cut, which a failover could
    otherwise leave ahead of what the new primary holds."""


class HistoryDisagrees(OhlcvError):
    """The vendor's history differs from the cached one (a split, a correction). Only the
    indexer replaces a cached history; a reader leaves it as it is.

    :param first_difference: the first session on which they differ
    :param ratio: vendor Close / cached Close on that session
    """

    def __init__(self, message: str, first_difference, ratio: float | None) -> None:
        super().__init__(message)
        self.first_difference = first_difference
        self.ratio = ratio
