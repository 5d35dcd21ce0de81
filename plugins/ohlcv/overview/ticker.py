"""One ticker as a person looks at it: its cached history as candles, its corporate actions and
repairs (the ledger), its ``ticker:lastUpdateAt`` entry, the vendor label of its value, and
where it stands (the cache page's states)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from ohlcv import codec
from ohlcv.errors import BadOhlcvData, NeverListed
from ohlcv.keys import validate_ticker
from ohlcv.overview.cache import market_of, standing
from ohlcv.store import OhlcvStore


def document(store: OhlcvStore, code: str, *, first: dt.date | None = None) -> dict[str, Any]:
    """The ticker view of ``code`` as a JSON-ready document; its candles from ``first`` (None:
    the whole history). ``InvalidTicker`` for a bad code, ``NeverListed`` for one the cache
    knows nothing of."""
    code = validate_ticker(code)
    blob = store.client.get(store.keys.series(code))
    if blob is None and not store.known(code):
        raise NeverListed(f"{code} was never in a recorded market table and is not cached")
    _, newest, _ = store.recorded_sessions()
    listed = store.listed_on(newest) if newest else {}
    delisted = store.delisted([code])
    last = store.last_updates()
    entry = last.get(code)
    failures, inactive = store.failures([code]), store.state_of([code])[1]
    runs = store.recent_runs(1)
    postponed = store.postponed(runs[0]["run_id"]) if runs else {}
    where = standing(
        code, market_of(code, listed, delisted), store.meta().last_update_at, last, failures, inactive, delisted,
        postponed,
    )  # fmt: skip
    candles, source, unreadable = _candles(blob, first)
    ledger = store.actions(code)
    return {
        "code": code,
        "market": where["market"],
        "state": where["state"],
        "reason": where["reason"],
        "since": where["since"],
        "last_update_at": entry.isoformat() if entry else None,
        "source": source,
        "unreadable": unreadable,
        "rows": len(candles["time"]),
        "preliminary": store.preliminary([code]).get(code, []),
        "delisted": delisted.get(code),
        "actions": [_action(row) for row in ledger.to_dict("records")],
        "candles": candles,
    }


def _action(row: dict) -> dict[str, Any]:
    """A ledger row with plain values (``OhlcvStore.actions``)."""
    return {
        "session": row["session"].isoformat() if row["session"] else None,
        "action": row["action"],
        "found_by": row["found_by"],
        "ratio": _number(row["ratio"]),
        "cached_close": _number(row["cached_close"]),
        "base_price": _number(row["base_price"]),
        "run_id": row["run_id"],
        "reason": row["reason"],
        "recorded_at": row["recorded_at"].isoformat(),
    }


def _candles(blob: bytes | None, first: dt.date | None) -> tuple[dict[str, list], str, str]:
    """The value's rows as columns of plain numbers (``time`` ISO), its source label, and why it
    cannot be read ("" when it can)."""
    empty = {name: [] for name in ("time", "open", "high", "low", "close", "volume")}
    if blob is None:
        return empty, "", ""
    try:
        columns = codec.decode_columns(blob)
    except BadOhlcvData as exc:
        return empty, "", str(exc)
    if first is not None:
        columns = columns.window(first, columns.last_date())
    days = columns.days.tolist()
    epoch = dt.date(1970, 1, 1)
    opens, highs, lows, closes, volumes, _ = (values.tolist() for values in columns.values)
    candles = {
        "time": [(epoch + dt.timedelta(days=day)).isoformat() for day in days],
        "open": opens, "high": highs, "low": lows, "close": closes, "volume": volumes,
    }  # fmt: skip
    return candles, codec.source_of(blob), ""


def _number(value: float) -> float | int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value) if float(value).is_integer() else float(value)
