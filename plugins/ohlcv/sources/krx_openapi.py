"""The KRX Open API (``data-dbg.krx.co.kr``) as a second source of the market's daily tables.

Used only when a key is configured (the Airflow Connection ``ohlcv_krx_openapi`` inside
Airflow, ``OHLCV_KRX_OPENAPI_KEY`` outside): for a session whose public table file is
missing, and to cross-check the public file's final table (``ohlcv.indexer.tables``). It serves no
histories and no listing of its own.

Three services give one session's table, one per market (``stk_bydd_trd`` KOSPI,
``ksq_bydd_trd`` KOSDAQ, ``knx_bydd_trd`` KONEX), each an ``OutBlock_1`` array of rows with
``BAS_DD``, ``ISU_CD``, ``TDD_OPNPRC``, ``TDD_HGPRC``, ``TDD_LWPRC``, ``TDD_CLSPRC``,
``CMPPREVDD_PRC`` (the change from the base price), ``ACC_TRDVOL`` and more, every value a
string. They are read through the ``krx-openapi`` client (the key rides the ``AUTH_KEY``
header, never the URL; redirects are refused). KRX publishes a session's data on the next
morning, after the after-hours session: every table it serves is final, and it serves none
for the current KST day (asked for one, this source answers ``TableMissing`` without a call).

A key KRX rejects (or one not approved for the stock services), respCode 401, is a
``TableMissing`` whose reason says so; the daily quota (HTTP 429, 10,000 calls a key) and
transport failures are ``SourceUnavailable``. The key never appears in a message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd

from ohlcv.errors import BadOhlcvData, ConfigurationError, SourceUnavailable, TableMissing
from ohlcv.snapshot import COLUMNS, Snapshot

NAME = "krx_openapi"
#: the Airflow Connection whose password is the key
CONNECTION_ID = "ohlcv_krx_openapi"
#: the markets asked, in order, with the client's market names
MARKETS: tuple[str, ...] = ("KOSPI", "KOSDAQ", "KONEX")
#: the calls one session's table takes (one per market)
CALLS_PER_TABLE = len(MARKETS)
KST = dt.timezone(dt.timedelta(hours=9), "KST")
#: the fields of a row this source reads, and the snapshot columns they become
FIELDS = {
    "TDD_OPNPRC": "Open",
    "TDD_HGPRC": "High",
    "TDD_LWPRC": "Low",
    "TDD_CLSPRC": "Close",
    "ACC_TRDVOL": "Volume",
    "CMPPREVDD_PRC": "Changes",
}


class KrxOpenApiSource:
    """The market's table of a past session from the KRX Open API.

    :param key: the Open API key (never logged, not in ``repr``)
    :param clock: the current time (aware): the current KST day's table is never asked
    :param timeout: seconds per socket operation of one call
    """

    name = NAME

    def __init__(self, key: str, *, clock: Callable[[], dt.datetime] | None = None, timeout: float = 60.0) -> None:
        from krx_openapi import KRX, KRXConfigError

        if not key or not key.strip():
            raise ConfigurationError("the KRX Open API key is empty: set the Connection's password or leave it unset")
        try:
            self._krx = KRX(api_key=key.strip(), timeout=timeout)
        except KRXConfigError as exc:
            raise ConfigurationError(f"the KRX Open API key cannot be used: {exc}") from None
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def __repr__(self) -> str:
        return "KrxOpenApiSource(...)"

    def settles(self, session: dt.date, now: dt.datetime) -> bool:
        return True  # every table it serves is final

    def table(self, session: dt.date) -> Snapshot:
        """KRX's final table of ``session``: ``TableMissing`` when KRX has none (yet)."""
        today = self.clock().astimezone(KST).date()
        if session >= today:
            raise TableMissing(f"the KRX Open API publishes the table of {session} on the next KST day, not before")
        parts = [part for part in (self._market(session, market) for market in MARKETS) if not part.empty]
        if not parts:
            raise TableMissing(f"the KRX Open API has no table of {session} (an empty answer for every market)")
        rows = pd.concat(parts)
        rows.index = pd.Index([str(code) for code in rows.index], name="Code", dtype=object)
        twice = sorted(set(rows.index[rows.index.duplicated()]))
        if twice:
            raise BadOhlcvData(f"the KRX Open API's table of {session} lists {', '.join(twice[:5])} more than once")
        return Snapshot(session, self.name, rows[list(COLUMNS)], final=True)

    def snapshot(self, session: dt.date) -> Snapshot:
        return self.table(session)

    def history(self, code: str, start: dt.date | None, end: dt.date) -> pd.DataFrame:
        raise ConfigurationError("the KRX Open API source serves the market's tables, not histories")

    def _market(self, session: dt.date, market: str) -> pd.DataFrame:
        from krx_openapi import KRXAuthError, KRXError, KRXRateLimitError, KRXResponseError

        what = f"the KRX Open API's {market} table of {session}"
        try:
            answer = self._krx.stock.daily(session.strftime("%Y%m%d"), market=market)
        except KRXAuthError as exc:
            raise TableMissing(
                f"{what}: KRX refused the key ({exc}); check the key and that the stock services are approved for it"
            ) from None
        except KRXRateLimitError as exc:
            raise SourceUnavailable(f"{what}: {exc}") from None
        except KRXResponseError as exc:
            raise BadOhlcvData(f"{what}: {exc}") from None
        except KRXError as exc:
            raise SourceUnavailable(f"{what}: {exc}") from None
        return _frame(answer, session, market, what)


def _frame(answer: list[dict[str, str]], session: dt.date, market: str, what: str) -> pd.DataFrame:
    """The rows of one market's answer as snapshot columns (index ``Code``)."""
    if not answer:
        return pd.DataFrame(columns=list(COLUMNS), index=pd.Index([], name="Code", dtype=object))
    rows = pd.DataFrame(answer)
    missing = [name for name in ("BAS_DD", "ISU_CD", *FIELDS) if name not in rows.columns]
    if missing:
        raise BadOhlcvData(f"{what} lacks the fields {missing}")
    other = sorted(set(rows["BAS_DD"].astype(str)) - {session.strftime("%Y%m%d")})
    if other:
        raise BadOhlcvData(f"{what} holds rows of {', '.join(other[:3])}: not that session's table")
    numbers = {
        column: pd.to_numeric(rows[field].astype(str).str.replace(",", "", regex=False), errors="coerce")
        for field, column in FIELDS.items()
    }
    frame = pd.DataFrame(numbers).assign(Market=market)
    frame.index = pd.Index(rows["ISU_CD"].astype(str).str.strip().tolist(), name="Code", dtype=object)
    return frame[list(COLUMNS)]
