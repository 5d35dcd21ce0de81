"""The vendor's delisting listing: every security KRX delisted since 1956, with its listing
and delisting dates, the reason and the code it moved to (FinanceDataReader's
``StockListing('KRX-DELISTING')``, the public file ``data/listing/delisting/YYYY-MM-DD.csv``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import pandas as pd

from ohlcv import calendar
from ohlcv.errors import BadOhlcvData
from ohlcv.keys import code_as_written


@dataclass(frozen=True)
class Delisting:
    """One row of the vendor's delisting listing (``Source.delistings``).

    :param delisted: the delisting date: the first day the code is no longer listed
    :param to: the code it moved to (a merger, a transfer), when the listing names one
    """

    code: str
    name: str
    market: str
    listed: dt.date
    delisted: dt.date
    reason: str = ""
    to: str = ""

    @property
    def last(self) -> dt.date:
        """The last session the code was listed on: the session before its delisting date."""
        if self.delisted <= dt.date.fromisoformat(calendar.FIRST_DAY):
            return self.delisted - dt.timedelta(days=1)  # before the calendar: a calendar day
        return calendar.previous_session(self.delisted)


#: the columns of KRX's delisting listing as FinanceDataReader's ``StockListing('KRX-DELISTING')`` gives it
DELISTING_COLUMNS = ("Symbol", "Name", "Market", "ListingDate", "DelistingDate", "Reason", "ToSymbol")


def from_krx_delisting(frame: pd.DataFrame) -> list[Delisting]:
    """The delistings of the stock codes in KRX's delisting listing, oldest first; rows of other
    securities (warrants, rights, funds with longer codes) and rows without both dates are left
    out. Raises ``BadOhlcvData`` for a frame without the listing's columns or without rows."""
    missing = [name for name in DELISTING_COLUMNS if name not in frame.columns]
    if missing:
        raise BadOhlcvData(f"the delisting listing lacks the columns {missing}")
    if frame.empty:
        raise BadOhlcvData("the delisting listing has no rows (it lists every delisting since 1956)")
    listed = pd.to_datetime(frame["ListingDate"], errors="coerce")
    delisted = pd.to_datetime(frame["DelistingDate"], errors="coerce")
    found: dict[tuple[str, dt.date, dt.date], Delisting] = {}
    for row, first, gone in zip(frame.itertuples(index=False), listed, delisted, strict=True):
        code = code_as_written(str(row.Symbol).strip())
        if code is None or pd.isna(first) or pd.isna(gone) or gone < first:
            continue
        item = Delisting(
            code, _text(row.Name), _text(row.Market), first.date(), gone.date(), _text(row.Reason), _text(row.ToSymbol)
        )
        key = (code, item.listed, item.delisted)
        if key in found:  # one delisting on two rows, one reason each
            known = found[key]
            reasons = "; ".join(dict.fromkeys(filter(None, (known.reason, item.reason))))
            item = dataclasses.replace(known, reason=reasons, to=known.to or item.to)
        found[key] = item
    if not found:
        raise BadOhlcvData("the delisting listing names no stock code")
    return sorted(found.values(), key=lambda item: (item.delisted, item.code))


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value).strip()
