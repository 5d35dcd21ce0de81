"""FinanceDataReader: KRX stocks from Naver's chart endpoint, KRX indices and the KRX daily
table from FinanceData's KRX cache.

FinanceDataReader calls ``requests.get`` without a timeout and mostly without looking at
the HTTP status (an error page parses as "no rows"), and reads its KRX cache files with
``pandas.read_csv(url)``, which has no timeout at all. The modules it reads through are
therefore given stand-ins for ``requests`` and ``pandas`` whose calls set a timeout, raise
on HTTP errors and read URLs through ``requests``: an outage is ``SourceUnavailable``
(retried), never ``NoData``. FinanceDataReader's own parsing code still reads every answer.
The stand-ins also note KRX's latest work date as FinanceDataReader asks for it, which is
how a snapshot knows its session from the vendor's own data.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import logging
import re
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pandas as pd
import requests

from ohlcv import calendar
from ohlcv.errors import BadOhlcvData, ConfigurationError, NoData, SourceBlocked, SourceUnavailable, TableMissing
from ohlcv.keys import is_index, validate_ticker
from ohlcv.snapshot import KRX_TABLE_DTYPES, Snapshot, from_krx_table
from ohlcv.universe import Delisting, from_krx_delisting
from ohlcv.validation import canonical

log = logging.getLogger(__name__)

#: seconds to connect to and to read from the vendor
TIMEOUT = (10, 60)
#: where an index history is asked from: FinanceData's KRX cache holds KS11 from 1995 and KQ11
#: from 1996, and answers 404 for the years before
INDEX_FROM = dt.date(1990, 1, 1)
#: Naver's daily chart endpoint; its XML answer always closes with </protocol>
NAVER_CHART = "fchart.stock.naver.com"
#: HTTP statuses with which KRX and Naver refuse a client that asked too much
BLOCKED = frozenset({403, 429})
#: FinanceDataReader's modules whose ``requests`` and ``pandas`` are replaced by the stand-ins
PATCHED = {
    "FinanceDataReader.naver.data": ("requests",),
    "FinanceDataReader.krx.listing": ("requests", "pd"),
    "FinanceDataReader.krx.data": ("requests", "pd"),
}
#: KRX's latest work date, the answer FinanceDataReader's ``StockListing('KRX')`` asks for first
KRX_WORK_DATE = (
    "http://data.krx.co.kr/comm/bldAttendant/executeForResourceBundle.cmd?baseName=krx.mdc.i18n.component&key=B128.bld"
)
KRX_HEADERS = {
    "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
    "Referer": "https://data.krx.co.kr/contents/MDC/MDI/outerLoader/index.cmd",
}
#: FinanceData's public copy of KRX's table, one file per calendar day: the file
#: ``StockListing('KRX')`` reads for the latest work date, read here for any session
KRX_TABLE_FILE = (
    "https://raw.githubusercontent.com/FinanceData/fdr_krx_data_cache/refs/heads/master/data/listing/krx/{}.csv"
)
#: how long KRX's latest work date is taken as known: a catch-up asks for several tables
WORK_DATE_KEPT = 600.0
KST = dt.timezone(dt.timedelta(hours=9), "KST")
#: the file of the calendar day after session D holds D's final table from about 01:15 KST (with
#: a margin) ...
FINAL_FILE_FROM = dt.time(1, 30)
#: ... until, on a trading day, it is overwritten with that day's own values from 09:15 KST
FINAL_FILE_UNTIL = dt.time(9, 0)
_CACHE_FILE_DATE = re.compile(r"/(\d{4}-\d{2}-\d{2})\.csv$")
_answers = threading.local()


def _record(url: str, response: requests.Response | requests.RequestException) -> None:
    seen = getattr(_answers, "seen", None)
    if seen is not None:
        seen.append((url, response))


class CutOff(requests.RequestException):
    """An answer that stopped before its end: the connection dropped, not the data."""


def _checked(method: str, url: str, **kwargs) -> requests.Response:
    kwargs.setdefault("timeout", TIMEOUT)
    try:
        response = requests.request(method, url, **kwargs)
        response.raise_for_status()
        if NAVER_CHART in url and not response.text.rstrip().endswith("</protocol>"):
            raise CutOff(f"Naver's chart answer ends before </protocol> ({len(response.content)} bytes)")
    except requests.RequestException as exc:
        _record(url, exc)  # FinanceDataReader swallows some failures: the recording keeps them
        raise
    _record(url, response)
    return response


def _get(url: str, params=None, **kwargs) -> requests.Response:
    return _checked("GET", url, params=params, **kwargs)


def _post(url: str, data=None, json=None, **kwargs) -> requests.Response:
    return _checked("POST", url, data=data, json=json, **kwargs)


def _read_csv(source, *args, **kwargs) -> pd.DataFrame:
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        source = io.BytesIO(_get(source).content)
    return pd.read_csv(source, *args, **kwargs)


class _Pandas(types.ModuleType):
    """pandas, except that ``read_csv`` reads URLs through the checked ``requests`` calls."""

    read_csv = staticmethod(_read_csv)

    def __getattr__(self, name: str):
        return getattr(pd, name)


_REQUESTS = types.SimpleNamespace(get=_get, post=_post, exceptions=requests.exceptions)
_STAND_INS = {"requests": _REQUESTS, "pd": _Pandas("pandas")}


@functools.cache
def _fdr():
    """FinanceDataReader with its HTTP calls checked (once per process).

    Raises ``ConfigurationError`` if a module no longer holds the name it is patched
    through: FinanceDataReader changed how it imports, and the patch would silently do nothing.
    """
    import importlib

    import FinanceDataReader as fdr

    for name, attributes in PATCHED.items():
        module = importlib.import_module(name)
        for attribute in attributes:
            if not isinstance(getattr(module, attribute, None), types.ModuleType | types.SimpleNamespace):
                raise ConfigurationError(
                    f"{name} has no module-level {attribute!r} any more: FinanceDataReader changed how it "
                    "reaches the network, and its calls would run without timeouts or status checks"
                )
            setattr(module, attribute, _STAND_INS[attribute])
    return fdr


@contextmanager
def _recording() -> Iterator[list[tuple[str, requests.Response]]]:
    """Every answer the checked calls receive in this thread meanwhile."""
    _answers.seen = []
    try:
        yield _answers.seen
    finally:
        _answers.seen = None


def _vendor_error(exc: BaseException, what: str) -> Exception:
    """The error to raise for an exception out of FinanceDataReader: an HTTP refusal is
    ``SourceBlocked``; any other network failure, a cut-off answer and an answer its parser
    cannot read are ``SourceUnavailable`` (retried: a garbled body is most often a
    transfer that broke off, and asking again costs one call; bad *data* in a readable
    answer is judged by validation, as ``BadOhlcvData``)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, requests.RequestException):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, requests.HTTPError):
        status = cause.response.status_code if cause.response is not None else None
        if status in BLOCKED:
            return SourceBlocked(f"the vendor refused {what} with HTTP {status}: {cause}")
        return SourceUnavailable(f"FinanceDataReader could not fetch {what}: {cause}")
    if cause is not None:
        return SourceUnavailable(f"FinanceDataReader could not fetch {what}: {cause}")
    return SourceUnavailable(
        f"FinanceDataReader could not read its answer for {what} ({type(exc).__name__}: {exc}); asked again later"
    )


def _work_date(answers: list[tuple[str, requests.Response]]) -> dt.date:
    """The session KRX's table describes: the latest work date KRX gave FinanceDataReader,
    checked against the date of the cache file it then read."""
    stated, read = None, None
    for url, response in answers:
        if isinstance(response, Exception):
            continue
        if match := _CACHE_FILE_DATE.search(url):
            read = dt.date.fromisoformat(match.group(1))
            continue
        try:
            stated = dt.datetime.strptime(response.json()["result"]["output"][0]["max_work_dt"], "%Y%m%d").date()
        except (ValueError, KeyError, IndexError, TypeError):
            continue
    if stated is None:
        raise BadOhlcvData("cannot tell which session the KRX table describes: KRX gave no latest work date")
    if read is not None and read != stated:
        raise BadOhlcvData(f"KRX's latest work date is {stated}, but the table read was {read}'s")
    return stated


def final_file_holds(session: dt.date, now: dt.datetime) -> bool:
    """Whether, at ``now``, the public file of the calendar day after ``session`` holds the
    session's final table: from 01:30 KST on that day, and, when that day is a session itself,
    only until 09:00 KST (then it holds that day's own values)."""
    following = session + dt.timedelta(days=1)
    local = now.astimezone(KST)
    if local < dt.datetime.combine(following, FINAL_FILE_FROM, KST):
        return False
    return not calendar.is_session(following) or local < dt.datetime.combine(following, FINAL_FILE_UNTIL, KST)


def _http_status(exc: BaseException) -> int | None:
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, requests.HTTPError):
        cause = cause.__cause__ or cause.__context__
    return cause.response.status_code if cause is not None and cause.response is not None else None


class FdrSource:
    """Production source: ``FinanceDataReader.DataReader`` and ``StockListing('KRX')``, and the
    public per-date KRX table files for any session.

    :param clock: the current time (aware); which file holds a session's final table depends on it
    """

    name = "fdr"

    def __init__(self, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._work_date: tuple[float, dt.date] | None = None

    def settles(self, session: dt.date, now: dt.datetime) -> bool:
        return final_file_holds(session, now)

    def table(self, session: dt.date) -> Snapshot:
        """KRX's table of ``session`` from the public file that holds its best version now: the
        next calendar day's file while it holds the final table (``final_file_holds``), else the
        session's own file, last written at about 17:56 KST: preliminary volumes."""
        _fdr()  # the stand-ins' timeouts and status checks
        latest = self.latest_work_date()
        if session > latest:
            raise TableMissing(f"KRX's latest work date is {latest}: no KRX table of {session} yet")
        if final_file_holds(session, self.clock()):
            try:
                return self._read(session + dt.timedelta(days=1), session, final=True)
            except TableMissing as exc:
                log.info("no final KRX table of %s yet (%s); reading its own file", session, exc)
        return self._read(session, session, final=False)

    def latest_work_date(self) -> dt.date:
        """KRX's latest work date (asked at most every ``WORK_DATE_KEPT`` seconds)."""
        if self._work_date is not None and time.monotonic() - self._work_date[0] < WORK_DATE_KEPT:
            return self._work_date[1]
        try:
            answer = _get(KRX_WORK_DATE, headers=KRX_HEADERS).json()
            stated = dt.datetime.strptime(answer["result"]["output"][0]["max_work_dt"], "%Y%m%d").date()
        except (requests.RequestException, ValueError, KeyError, IndexError, TypeError) as exc:
            raise _vendor_error(exc, "KRX's latest work date") from exc
        self._work_date = (time.monotonic(), stated)
        return stated

    def _read(self, day: dt.date, session: dt.date, *, final: bool) -> Snapshot:
        url = KRX_TABLE_FILE.format(day.isoformat())
        try:
            body = _get(url).content
        except Exception as exc:
            if _http_status(exc) == 404:
                raise TableMissing(f"the public KRX table file of {day} is not published (HTTP 404)") from None
            raise _vendor_error(exc, f"the KRX table of {session}") from exc
        if body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":
            raise BadOhlcvData(f"the public KRX table file of {day} is an HTML page, not a table")
        try:
            table = pd.read_csv(io.BytesIO(body), index_col=0, dtype=KRX_TABLE_DTYPES)
        except Exception as exc:
            raise BadOhlcvData(f"the public KRX table file of {day} cannot be read as CSV: {exc}") from None
        return from_krx_table(table.reset_index(drop=True), session, self.name, final=final)

    def snapshot(self, session: dt.date) -> Snapshot:
        """KRX's table of its latest work date (FinanceDataReader serves no other session)."""
        listing, answers = _stock_listing("KRX", "the KRX table of KRX's latest work date")
        listed = _work_date(answers)
        if listed != session:
            log.info("asked for the KRX table of %s; KRX's latest is %s's", session, listed)
        # the latest work date's own file: written on the session's evening, before its volumes are final
        return from_krx_table(listing, listed, self.name, final=False)

    def delistings(self) -> list[Delisting]:
        """KRX's delisting listing (every security delisted since 1956) as FinanceDataReader's
        ``StockListing('KRX-DELISTING')`` reads it: the public file of KRX's latest work date.

        FinanceDataReader turns a failed download of that file into an empty frame; the failed
        answer, kept by the checked calls, tells a file not published yet (``TableMissing``)
        from an outage (``SourceUnavailable``)."""
        frame, answers = _stock_listing("KRX-DELISTING", "the KRX delisting listing")
        if frame is None or frame.empty:
            failed = [answer for _, answer in answers if isinstance(answer, Exception)]
            if failed and _http_status(failed[-1]) == 404:
                raise TableMissing(
                    f"the KRX delisting listing of KRX's latest work date is not published: {failed[-1]}"
                )
            if failed:
                raise _vendor_error(failed[-1], "the KRX delisting listing")
            raise BadOhlcvData("the KRX delisting listing came back without rows")
        return from_krx_delisting(frame)

    def history(self, code: str, start: dt.date | None, end: dt.date) -> pd.DataFrame:
        fdr = _fdr()
        code = validate_ticker(code)
        if start is None and is_index(code):
            start = INDEX_FROM  # FinanceDataReader's index reader would start in 2010
        try:
            frame = fdr.DataReader(code, start.isoformat() if start else None, end.isoformat())
        except (requests.RequestException, ValueError, KeyError, IndexError, UnicodeDecodeError) as exc:
            raise _vendor_error(exc, code) from exc
        if frame is None or frame.empty:
            raise NoData(f"FinanceDataReader has no data for {code} up to {end.isoformat()}")
        frame = canonical(frame)
        if is_index(code):
            _require_every_year(code, frame)
        return frame


def _stock_listing(market: str, what: str) -> tuple[pd.DataFrame, list]:
    """FinanceDataReader's ``StockListing(market)`` and every answer its calls received; a 404
    is ``TableMissing`` (not published), any other failure the vendor error it stands for."""
    fdr = _fdr()
    try:
        with _recording() as answers:
            return fdr.StockListing(market), answers
    except Exception as exc:
        if _http_status(exc) == 404:
            raise TableMissing(f"{what} is not published (HTTP 404): {exc}") from None
        raise _vendor_error(exc, what) from exc


def _require_every_year(code: str, frame: pd.DataFrame) -> None:
    """Index levels come from one cache file per year, and FinanceDataReader skips a file it
    cannot read: a year without rows inside the answer is a failed download, not a holiday."""
    held = set(frame.index.year)
    missing = [year for year in range(frame.index[0].year, frame.index[-1].year + 1) if year not in held]
    if missing:
        raise SourceUnavailable(
            f"FinanceDataReader's answer for {code} has no rows in {', '.join(map(str, missing))}: "
            "a yearly file failed to download"
        )
