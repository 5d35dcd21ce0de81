"""FinanceDataReader: KRX stocks from Naver's chart endpoint, KRX indices from FDR's cache."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import requests

from ohlcv.errors import BadOhlcvData, ConfigurationError, NoData, SourceUnavailable
from ohlcv.keys import validate_ticker
from ohlcv.sources.base import MARKETS
from ohlcv.validation import canonical

log = logging.getLogger(__name__)


class FdrSource:
    """Production source: ``FinanceDataReader.DataReader`` and ``StockListing``."""

    name = "fdr"

    def list_universe(self, market: str) -> list[str]:
        import FinanceDataReader as fdr

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
        import FinanceDataReader as fdr

        code = validate_ticker(code)
        try:
            frame = fdr.DataReader(code, start.isoformat() if start else None, end.isoformat())
        except requests.RequestException as exc:
            raise SourceUnavailable(f"FinanceDataReader could not fetch {code}: {exc}") from exc
        except (ValueError, KeyError, IndexError, pd.errors.ParserError) as exc:
            raise BadOhlcvData(f"FinanceDataReader returned an unreadable answer for {code}: {exc}") from exc
        if frame is None or frame.empty:
            raise NoData(f"FinanceDataReader has no data for {code} up to {end.isoformat()}")
        return canonical(frame)
