"""A directory of CSV files, one per ticker: for air-gapped machines and replays."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from ohlcv.errors import BadOhlcvData, ConfigurationError, NoData
from ohlcv.keys import validate_ticker
from ohlcv.sources.base import MARKETS
from ohlcv.validation import canonical


class CsvDirSource:
    """Reads ``{dir}/{code}.csv`` with columns Date, Open, High, Low, Close, Volume[, Change].

    The universe is every such file, or, when ``{dir}/universe.csv`` exists, its ``Code``
    column filtered by its ``Market`` column.
    """

    name = "csv"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ConfigurationError(f"CSV source directory {self.directory} does not exist")

    def list_universe(self, market: str) -> list[str]:
        if market not in MARKETS:
            raise ConfigurationError(f"unknown market {market!r}; expected one of {list(MARKETS)}")
        listing = self.directory / "universe.csv"
        if listing.exists():
            table = pd.read_csv(listing, dtype=str)
            if market != "KRX" and "Market" in table.columns:
                table = table[table["Market"] == market]
            codes = table["Code"]
        else:
            codes = [path.stem for path in self.directory.glob("*.csv")]
        return sorted({validate_ticker(code) for code in codes})

    def history(self, code: str, start: dt.date | None, end: dt.date) -> pd.DataFrame:
        code = validate_ticker(code)
        path = self.directory / f"{code}.csv"
        if not path.exists():
            raise NoData(f"no file {path.name} in {self.directory}")
        try:
            raw = pd.read_csv(path, parse_dates=["Date"])
        except (ValueError, pd.errors.ParserError) as exc:
            raise BadOhlcvData(f"{path} is not a readable OHLCV CSV: {exc}") from exc
        frame = canonical(raw)
        frame = frame.loc[pd.Timestamp(start) if start else None : pd.Timestamp(end)]
        if frame.empty:
            raise NoData(f"{path.name} has no rows up to {end.isoformat()}")
        return frame
