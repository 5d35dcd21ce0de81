"""A directory of CSV files, one per ticker: for air-gapped machines and replays."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from ohlcv import snapshot
from ohlcv.errors import BadOhlcvData, ConfigurationError, NoData, TableMissing
from ohlcv.keys import validate_ticker
from ohlcv.snapshot import Snapshot
from ohlcv.sources.base import MARKETS
from ohlcv.validation import canonical


class CsvDirSource:
    """Reads ``{dir}/{code}.csv`` with columns Date, Open, High, Low, Close, Volume[, Change].

    The universe is every such file, or, when ``{dir}/universe.csv`` exists, its ``Code``
    column filtered by its ``Market`` column. The snapshot of a session is
    ``{dir}/snapshots/{YYYY-MM-DD}.csv`` when it exists, a KRX daily table in the format
    FinanceDataReader downloads (a replay of the real tables); otherwise it is built from the
    per-ticker files: each listed code's row of the newest session they hold up to the one
    asked for, with ``Changes`` against the row before it (no prices for a code whose file
    has no row for that session).
    """

    name = "csv"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ConfigurationError(f"CSV source directory {self.directory} does not exist")

    def list_universe(self, market: str) -> list[str]:
        return sorted(self._listing(market))

    def _listing(self, market: str) -> dict[str, str]:
        """Code -> market of every listed code on ``market`` (``KRX``: all of them)."""
        if market not in MARKETS:
            raise ConfigurationError(f"unknown market {market!r}; expected one of {list(MARKETS)}")
        listing = self.directory / "universe.csv"
        if listing.exists():
            table = pd.read_csv(listing, dtype=str)
            markets = table["Market"] if "Market" in table.columns else pd.Series("KRX", index=table.index)
            pairs = zip(table["Code"], markets, strict=True)
        else:
            pairs = ((path.stem, "KRX") for path in self.directory.glob("*.csv") if path.stem != "universe")
        return {validate_ticker(code): where for code, where in pairs if market in ("KRX", where)}

    def snapshot(self, session: dt.date) -> Snapshot:
        replay = self.directory / "snapshots" / f"{session.isoformat()}.csv"
        if replay.exists():
            table = pd.read_csv(replay, index_col=0, dtype=snapshot.KRX_TABLE_DTYPES)
            return snapshot.from_krx_table(table, session, self.name)
        listing = self._listing("KRX")
        histories = {}
        for code in listing:
            try:
                histories[code] = self.history(code, None, session)
            except (NoData, BadOhlcvData):
                continue
        if not histories:
            raise NoData(f"no file in {self.directory} has a session up to {session}")
        day = max(frame.index[-1] for frame in histories.values())
        rows: dict[str, list] = {name: [] for name in snapshot.COLUMNS}
        for code, market in listing.items():
            frame = histories.get(code)
            held = frame is not None and frame.index[-1] == day
            # a listed code without a row for the day stays listed, with no prices
            last = frame.iloc[-1] if held else pd.Series(float("nan"), index=["Open", "High", "Low", "Close", "Volume"])
            for name in ("Open", "High", "Low", "Close", "Volume"):
                rows[name].append(last[name])
            closes = pd.to_numeric(frame["Close"].iloc[-2:], errors="coerce") if held else pd.Series([float("nan")])
            base = closes.iloc[0] if len(closes) > 1 else pd.to_numeric(last["Open"], errors="coerce")
            rows["Changes"].append(closes.iloc[-1] - base)
            rows["Market"].append(market)
        return Snapshot(day.date(), self.name, snapshot.frame(rows, list(listing)))

    def table(self, session: dt.date) -> Snapshot:
        found = self.snapshot(session)
        if found.session != session:
            raise TableMissing(
                f"{self.directory} has no table of {session}; its latest up to then is {found.session}'s"
            )
        return found

    def settles(self, session: dt.date, now: dt.datetime) -> bool:
        return True  # a replay's files are as final as they will get

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
