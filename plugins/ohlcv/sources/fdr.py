"""FinanceDataReader: KRX stocks from Naver's chart endpoint, KRX indices from FDR's cache.

FinanceDataReader's Naver reader calls ``requests.get`` without a timeout and without
looking at the HTTP status: an error page parses as "no rows". Its module is therefore
given a ``requests`` stand-in whose ``get`` sets a timeout and raises on HTTP errors, so
an outage is ``SourceUnavailable`` (retried), never ``NoData``. FinanceDataReader's own
parsing code still reads every answer.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import types

import pandas as pd
import requests

from ohlcv import calendar
from ohlcv.errors import BadOhlcvData, ConfigurationError, NoData, SourceBlocked, SourceUnavailable
from ohlcv.keys import is_index, validate_ticker
from ohlcv.sources.base import MARKETS
from ohlcv.validation import canonical

log = logging.getLogger(__name__)

#: seconds to connect to and to read from the vendor
TIMEOUT = (10, 60)
#: HTTP statuses with which KRX and Naver refuse a client that asked too much
BLOCKED = frozenset({403, 429})


def _checked_get(url: str, *args, **kwargs) -> requests.Response:
    kwargs.setdefault("timeout", TIMEOUT)
    response = requests.get(url, *args, **kwargs)
    response.raise_for_status()
    return response


@functools.cache
def _fdr():
    """FinanceDataReader, with its Naver reader's HTTP calls checked (once per process)."""
    import FinanceDataReader as fdr
    from FinanceDataReader.naver import data as naver_data

    naver_data.requests = types.SimpleNamespace(get=_checked_get)
    return fdr


class FdrSource:
    """Production source: ``FinanceDataReader.DataReader`` and ``StockListing``."""

    name = "fdr"

    def list_universe(self, market: str) -> list[str]:
        fdr = _fdr()
        if market not in MARKETS:
            raise ConfigurationError(f"unknown market {market!r}; expected one of {list(MARKETS)}")
        try:
            listing = fdr.StockListing(market)
        except (requests.RequestException, OSError, ValueError) as exc:
            raise SourceUnavailable(f"could not list {market} from FinanceDataReader: {exc}") from exc
        codes = []
        for code in listing["Code"].astype(str):
            try:
                codes.append(validate_ticker(code))
            except ValueError:
                log.warning("skipping listed code %r: not a valid KRX code", code)
        return sorted(set(codes))

    def history(self, code: str, start: dt.date | None, end: dt.date) -> pd.DataFrame:
        fdr = _fdr()
        code = validate_ticker(code)
        try:
            frame = fdr.DataReader(code, start.isoformat() if start else None, end.isoformat())
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status in BLOCKED:
                raise SourceBlocked(f"the vendor refused {code} with HTTP {status}: {exc}") from exc
            raise SourceUnavailable(f"FinanceDataReader could not fetch {code}: {exc}") from exc
        except requests.RequestException as exc:
            raise SourceUnavailable(f"FinanceDataReader could not fetch {code}: {exc}") from exc
        except (ValueError, KeyError, IndexError, pd.errors.ParserError) as exc:
            raise BadOhlcvData(f"FinanceDataReader returned an unreadable answer for {code}: {exc}") from exc
        if frame is None or frame.empty:
            raise NoData(f"FinanceDataReader has no data for {code} up to {end.isoformat()}")
        frame = canonical(frame)
        if is_index(code):
            _require_every_session(code, frame)
        return frame


def _require_every_session(code: str, frame: pd.DataFrame) -> None:
    """Index levels come from one cache file per year, and FinanceDataReader skips a file it
    cannot read: a gap means a failed download, not a market holiday."""
    expected = calendar.sessions(frame.index[0].date(), frame.index[-1].date())
    missing = expected.difference(frame.index)
    if len(missing):
        raise SourceUnavailable(
            f"FinanceDataReader's answer for {code} lacks {len(missing)} sessions, first {missing[0].date()}"
        )
