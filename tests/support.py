"""Helpers several test modules share."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import pandas as pd

from ohlcv import codec
from ohlcv.errors import SourceUnavailable
from ohlcv.keys import validate_period
from ohlcv.sources import SyntheticSource
from ohlcv.store import OhlcvStore


def until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return whether it held.

    For what Redis does on its own clock (a key's TTL running out): the test shortens the TTL
    to a millisecond with PEXPIRE and waits for the effect, instead of sleeping a fixed time.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class CountingSource(SyntheticSource):
    """The synthetic source, counting its own calls and failing on demand."""

    def __init__(self, tickers=5, failing=(), **switches):
        super().__init__(tickers, **switches)
        self.asked = []
        self.failing = set(failing)

    def snapshot(self, session):
        self.asked.append(("snapshot", session))
        return super().snapshot(session)

    def history(self, code, start, end):
        self.asked.append(code)
        if code in self.failing:
            raise SourceUnavailable(f"{code}: vendor down")
        return super().history(code, start, end)


def keep_period(store: OhlcvStore, code: str, start, end, ttl: dt.timedelta) -> str:
    """Keep ``start``..``end`` of ``code``'s cached history as a period key, the way a reader's
    write-back does (``OhlcvStore.keep_period``); return the key."""
    first, last = validate_period(start, end)
    blob = store.client.get(store.keys.series(code))
    window = codec.decode(blob).loc[pd.Timestamp(first) : pd.Timestamp(last)]
    assert store.keep_period(code, first, last, blob, window, ttl), f"{code}: the period was not kept"
    return store.keys.period(code, first, last)
