"""Settling: the final volumes of rows appended from a preliminary table.

KRX's public table of a session is last written at about 17:56 KST, before the after-hours
single-price session's last match at 18:00: the evening's runs append its rows with a Volume
that is not yet the session's. Each such row is marked in ``ohlcv:preliminary`` (code -> its
preliminary sessions). Once the vendor can give the session's final table (``Source.settles``;
for FinanceDataReader the next calendar day's file between 01:30 and 09:00 KST, a weekend or
holiday file at any time), the first run replaces those rows' Volume in place, atomically with
the mark and the ticker's period keys that hold the session: *settled*, not a repair. Prices
are final at the close, so a final row whose prices differ from the cached one is not settled
(the next history fetch decides), and a final table in which many do is refused as a whole.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from ohlcv import codec
from ohlcv.errors import BadOhlcvData, TableMissing
from ohlcv.indexer import tables
from ohlcv.snapshot import Extension, Snapshot
from ohlcv.sources.base import Source
from ohlcv.store import OhlcvStore
from ohlcv.validation import PRICE_COLUMNS, validate_snapshot

log = logging.getLogger(__name__)


def settle(store: OhlcvStore, source: Source, codes: list[str], as_of: dt.date, now: dt.datetime, run_id: str) -> int:
    """Settle the preliminary rows of ``codes`` whose session's final table can be had now;
    return how many rows were settled."""
    held = store.preliminary(codes)
    by_session: dict[str, list[str]] = {}
    for code, days in held.items():
        for day in days:
            by_session.setdefault(day, []).append(code)
    settled = 0
    for day, waiting in sorted(by_session.items()):
        session = dt.date.fromisoformat(day)
        if session > as_of or not source.settles(session, now):
            continue
        try:
            table = tables.get(store, source, session, now, run_id)
        except TableMissing as exc:
            log.info("%d preliminary rows of %s stay preliminary: %s", len(waiting), session, exc)
            continue
        if not table.final:
            continue
        settled += _settle_table(store, table, sorted(waiting), run_id)
    return settled


def _settle_table(store: OhlcvStore, table: Snapshot, codes: list[str], run_id: str) -> int:
    good, _ = validate_snapshot(table.frame)  # a bad row leaves its code's row preliminary
    session = table.session

    guard = tables.refusing(
        "changed",
        lambda changed, total: (
            f"{changed} of {total} preliminary rows have other prices in it: not the final table of {session}"
        ),
    )

    day = session.isoformat()
    try:
        outcomes = store.extend_many(
            codes, settler(good, session), run_id=run_id, status=None, periods_holding=session,
            counter="rows_settled", guard=guard, marks=lambda held: [other for other in held if other != day],
        )  # fmt: skip
    except tables.TableRefused as exc:
        tables.refuse(store, table, run_id, str(exc))
        return 0
    done = [outcome.code for outcome in outcomes if outcome.blob is not None]
    for outcome in outcomes:
        if outcome.blob is None:
            log.warning("%s: the row of %s stays preliminary: %s", outcome.code, session, outcome.reason)
    log.info("settled %d rows of %s from its final %s table", len(done), session, table.source)
    store.note_table(run_id, session, f"settled {len(done)} preliminary rows (final)")
    return len(done)


def settler(rows: pd.DataFrame, session: dt.date) -> Callable[[str, bytes | None], Extension]:
    """How to settle one cached series' row of ``session`` from a final table's good ``rows``."""
    day = np.datetime64(session, "ns")

    def settle_one(code: str, blob: bytes | None) -> Extension:
        if blob is None or code not in rows.index:
            return Extension(code, None, f"not cached, or not in the final table of {session}", "behind")
        try:
            dates, columns = codec.decode_arrays(blob)
        except BadOhlcvData as exc:
            return Extension(code, None, f"the cached value cannot be read ({exc})", "unreadable")
        where = np.flatnonzero(dates == day)
        if not len(where):
            return Extension(code, None, f"no cached row of {session} (repaired meanwhile)", "behind")
        position = int(where[0])
        row = rows.loc[code]
        cached = [columns[name][position] for name in PRICE_COLUMNS]
        final = [row[name] for name in PRICE_COLUMNS]
        if cached != final or row["Volume"] < columns["Volume"][position]:
            return Extension(
                code, None,
                f"the final row differs in prices {final} from the cached {cached}, or its volume is lower", "changed",
            )  # fmt: skip
        volume = columns["Volume"].copy()
        preliminary = volume[position].item()
        volume[position] = row["Volume"]
        encoded = codec.encode_arrays(dates, {**columns, "Volume": volume}, codec.source_of(blob))
        return Extension(code, encoded, previous=preliminary)

    return settle_one
