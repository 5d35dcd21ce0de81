"""exchange-calendars' XKRX with what it does not know added through its own mechanism (a
calendar subclass). Imported only where the calendar is built: importing exchange-calendars
costs a reader about 0.2 s, and building the calendar seconds (see ``ohlcv.calendar``).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from exchange_calendars.exchange_calendar_xkrx import XKRXExchangeCalendar

from ohlcv.calendar import EXTRA_CLOSED, LAST_SATURDAY_SESSION, TRADED


class KrxCalendar(XKRXExchangeCalendar):
    """XKRX with Saturday sessions until 1998-12-05 and the closures in ``EXTRA_CLOSED``."""

    weekmask = "1111110"

    @property
    def special_weekmasks(self) -> list:
        return []

    @property
    def adhoc_holidays(self) -> list[pd.Timestamp]:
        traded = {pd.Timestamp(day) for day in TRADED}
        listed = [day for day in super().adhoc_holidays if pd.Timestamp(day) not in traded]
        saturdays = pd.date_range(LAST_SATURDAY_SESSION + dt.timedelta(days=7), self._end_bound, freq="W-SAT")
        return [*listed, *saturdays, *(pd.Timestamp(day) for day in sorted(EXTRA_CLOSED))]

    def __init__(self, start: str, end: pd.Timestamp) -> None:
        self._end_bound = end  # adhoc_holidays is read while the base class builds
        super().__init__(start=start, end=end)
