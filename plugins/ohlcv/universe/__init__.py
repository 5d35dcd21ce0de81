"""The point-in-time universe: which codes were listed on each session (``record``: listed
spans recorded from the market's daily tables) and the vendor's delisting listing
(``delistings``)."""

from __future__ import annotations

from ohlcv.universe.delistings import Delisting, from_krx_delisting
from ohlcv.universe.record import Record, Span, spans_from_json, spans_to_json

__all__ = ["Delisting", "Record", "Span", "from_krx_delisting", "spans_from_json", "spans_to_json"]
