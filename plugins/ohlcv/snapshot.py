"""The market's daily snapshot: every listed code's OHLCV for one session, as the exchange
publishes it (KRX's daily table; FinanceDataReader's ``StockListing('KRX')``).

A normal trading day moves every ticker forward by one row of this table instead of one
full-history download per ticker. The row of a code is appended to its cached history only
when it continues that history:

- the history is cached through exactly the session before the snapshot's session, and
- the snapshot's base price (``Close - Changes``, the previous close as the exchange sees
  it today) equals the cached last Close.

A corporate action (split, reverse split, rights issue, merger) re-bases the price, so the
base price no longer equals the cached close: that ticker's whole history is fetched again
instead, and repaired. So is every ticker the snapshot cannot continue (new listings,
tickers further behind, codes missing from it, index symbols).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import msgpack
import numpy as np
import pandas as pd

from ohlcv import codec
from ohlcv.errors import BadOhlcvData
from ohlcv.keys import validate_ticker

#: the columns of a snapshot frame (index ``Code``); ``Changes`` is Close minus the base price
COLUMNS: tuple[str, ...] = ("Market", "Open", "High", "Low", "Close", "Volume", "Changes")
_NUMBERS = COLUMNS[1:]
_FORMAT = "OHLCV_SNAPSHOT"


@dataclass(frozen=True)
class Snapshot:
    """One session's row for every listed code, and the session the vendor says it describes.

    :param frame: index ``Code`` (str); columns ``COLUMNS``, values as the vendor sent them
        (judged by ``ohlcv.validation.validate_snapshot`` before use)
    :param final: published after the session ended, so its volumes include the after-hours
        session; a table read on the session's own evening is preliminary (prices are final
        at the close, Volume is not)
    """

    session: dt.date
    source: str
    frame: pd.DataFrame
    final: bool = True

    def codes(self, market: str = "KRX") -> list[str]:
        """The valid codes listed on ``market`` (``KRX``: every market), sorted."""
        listed = self.frame.index if market == "KRX" else self.frame.index[self.frame["Market"] == market]
        codes = set()
        for code in listed:
            try:
                codes.add(validate_ticker(code))
            except ValueError:
                continue
        return sorted(codes)

    def to_bytes(self) -> bytes:
        """MessagePack for Redis: the session, the codes and markets, and each column's values."""
        return msgpack.packb(
            {
                "format": _FORMAT,
                "session": self.session.isoformat(),
                "source": self.source,
                "final": self.final,
                "codes": [str(code) for code in self.frame.index],
                "columns": {name: self.frame[name].tolist() for name in COLUMNS},
            },
            use_bin_type=True,
        )

    @classmethod
    def from_bytes(cls, blob: bytes) -> Snapshot:
        try:
            doc = msgpack.unpackb(blob, raw=False)
            if doc.get("format") != _FORMAT:
                raise ValueError("missing format marker")
            frame = pd.DataFrame(doc["columns"], index=pd.Index(doc["codes"], name="Code", dtype=object))
            final = bool(doc.get("final", True))
            return cls(dt.date.fromisoformat(doc["session"]), doc["source"], frame[list(COLUMNS)], final)
        except (ValueError, KeyError, TypeError, AttributeError, msgpack.UnpackException) as exc:
            raise BadOhlcvData(f"not a stored snapshot: {exc}") from None


def frame(rows: dict[str, list], codes: list[str]) -> pd.DataFrame:
    """A snapshot frame from columns named as in ``COLUMNS``."""
    return pd.DataFrame({name: rows[name] for name in COLUMNS}, index=pd.Index(codes, name="Code", dtype=object))


#: the KRX table's market ids (``MarketId``) and the markets they name
MARKET_IDS = {"STK": "KOSPI", "KSQ": "KOSDAQ", "KNX": "KONEX"}
#: how FinanceDataReader reads a KRX table file; a replayed file is read the same way
KRX_TABLE_DTYPES = {"Code": str, "Dept": str, "ChangeCode": str, "MarketId": str}


def from_krx_table(table: pd.DataFrame, session: dt.date, source: str, *, final: bool = True) -> Snapshot:
    """A snapshot from KRX's daily table as FinanceDataReader returns it (``Code``, ``MarketId``,
    Open, High, Low, Close, Volume, ``Changes`` among its columns)."""
    missing = [name for name in ("Code", "MarketId", *_NUMBERS) if name not in table.columns]
    if missing:
        raise BadOhlcvData(f"the KRX table of {session} lacks the columns {missing}")
    if table.empty:
        raise BadOhlcvData(f"the KRX table of {session} has no rows")
    codes = table["Code"].astype(str)
    twice = sorted(set(codes[codes.duplicated()]))
    if twice:
        raise BadOhlcvData(f"the KRX table of {session} lists {', '.join(twice[:5])} more than once")
    if table.iloc[-1][["MarketId", *_NUMBERS]].isna().any():  # MarketId is the file's last column
        raise BadOhlcvData(f"the KRX table of {session} ends in a cut row ({codes.iloc[-1]}): a truncated file")
    rows = table.set_index(pd.Index(table["Code"].astype(str).tolist(), name="Code", dtype=object))
    rows = rows.assign(Market=rows["MarketId"].map(MARKET_IDS).fillna(rows["MarketId"]))
    return Snapshot(session, source, rows[list(COLUMNS)], final)


@dataclass(frozen=True)
class Extension:
    """A new value for one cached series, or why the snapshot cannot extend it.

    :param blob: the new OHLCV_STR value; None when refused
    :param reason: why it was refused (the ticker's history is fetched instead)
    :param kind: what refused it: ``break`` (the table's base price is not the cached close),
        ``unreadable``, ``behind`` (not cached through the session before), ``uncached``,
        ``changed`` (a settled row whose prices differ)
    """

    code: str
    blob: bytes | None
    reason: str = ""
    kind: str = ""
    #: a ``break``: the table's base price, the cached last close, the SHA-1 of the cached value
    base: float | None = None
    close: float | None = None
    digest: str = ""
    #: a settled row: the preliminary Volume the new value replaces
    previous: float | None = None

    def noted_break(self, session: dt.date) -> dict:
        """A ``break`` as the ledger notes it for the run (``LedgerStore.note_breaks``)."""
        return {
            "session": session.isoformat(), "cached_close": self.close, "base_price": self.base,
            "ratio": self.base / self.close if self.close else None, "digest": self.digest, "reason": self.reason,
        }  # fmt: skip


def _plain(value) -> float:
    """A number from a table or a column as a plain Python number (an int when it is whole)."""
    value = value.item() if hasattr(value, "item") else value
    return int(value) if float(value).is_integer() else float(value)


def extender(
    rows: pd.DataFrame, session: dt.date, previous: dt.date, source: str
) -> Callable[[str, bytes | None], Extension]:
    """How to extend one cached series by its row of a validated snapshot.

    :param rows: the snapshot's good rows (``validate_snapshot``), index ``Code``
    :param previous: the XKRX session before ``session``; the cache must end exactly there
    """
    day = np.datetime64(session, "ns")

    def extend(code: str, blob: bytes | None) -> Extension:
        if blob is None:
            return Extension(code, None, "not cached: history fetched", "uncached")
        try:
            dates, columns = codec.decode_arrays(blob)
        except BadOhlcvData as exc:
            return Extension(code, None, f"the cached value cannot be read ({exc}): history refetched", "unreadable")
        cached_last = pd.Timestamp(dates[-1]).date()
        if cached_last != previous:
            return Extension(code, None, f"cached through {cached_last}, not {previous}: history fetched", "behind")
        row = rows.loc[code]
        close = columns["Close"][-1]
        base = row["Close"] - row["Changes"]
        if base != close:
            return Extension(
                code, None,
                f"base price {base:,} != cached close {close:,} (ratio {base / close:.2g}): history refetched", "break",
                _plain(base), _plain(close), hashlib.sha1(blob).hexdigest(),
            )  # fmt: skip
        extended = {name: np.append(columns[name], row[name]) for name in ("Open", "High", "Low", "Close", "Volume")}
        # the same arithmetic as pandas' pct_change on the history, so both paths store the same bits
        extended["Change"] = np.append(columns["Change"], np.float64(row["Close"]) / np.float64(close) - 1)
        return Extension(code, codec.encode_arrays(np.append(dates, day), extended, source))

    return extend
