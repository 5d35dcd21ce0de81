"""exchange-calendars' XKRX with what it does not know added through its own mechanism (a
calendar subclass). Imported only where the calendar is built: importing exchange-calendars
costs a reader about 0.2 s, and building the calendar seconds (see ``ohlcv.calendar``, which
holds the corrections and passes them in).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pandas as pd
from exchange_calendars.exchange_calendar_xkrx import XKRXExchangeCalendar


class KrxCalendar(XKRXExchangeCalendar):
    """XKRX with Saturday sessions through ``last_saturday``, the days in ``closed`` closed
    and the holidays in ``traded`` traded."""

    weekmask = "1111110"

    @property
    def special_weekmasks(self) -> list:
        return []

    @property
    def adhoc_holidays(self) -> list[pd.Timestamp]:
        listed = [day for day in super().adhoc_holidays if pd.Timestamp(day) not in self._traded]
        saturdays = pd.date_range(self._last_saturday + dt.timedelta(days=7), self._end_bound, freq="W-SAT")
        return [*listed, *saturdays, *self._closed]

    def __init__(
        self,
        start: str,
        end: pd.Timestamp,
        *,
        last_saturday: dt.date,
        closed: Iterable[dt.date],
        traded: Iterable[dt.date],
    ) -> None:
        # adhoc_holidays is read while the base class builds
        self._end_bound, self._last_saturday = end, last_saturday
        self._closed = [pd.Timestamp(day) for day in sorted(closed)]
        self._traded = {pd.Timestamp(day) for day in traded}
        super().__init__(start=start, end=end)
