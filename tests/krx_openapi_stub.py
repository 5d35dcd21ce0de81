"""The KRX Open API's HTTP answers intercepted at urllib (which the ``krx-openapi`` client uses),
in the API's own JSON format: ``{"OutBlock_1": [row, ...]}``, every value a string.

The row fields and their form follow KRX's service spec of 유가증권 일별매매정보
(``sto/stk_bydd_trd``: ``BAS_DD``, ``ISU_CD``, ``ISU_NM``, ``MKT_NM``, ``SECT_TP_NM``,
``TDD_CLSPRC``, ``CMPPREVDD_PRC``, ``FLUC_RT``, ``TDD_OPNPRC``, ``TDD_HGPRC``, ``TDD_LWPRC``,
``ACC_TRDVOL``, ``ACC_TRDVAL``, ``MKTCAP``, ``LIST_SHRS``) and the client's field catalog
(``krx_openapi.catalog``, schema ``STOCK_TRD``).
"""

from __future__ import annotations

import datetime as dt
import email.message
import io
import json
import urllib.error
import urllib.parse
import urllib.request
import urllib.response

import krx_openapi.session

from ohlcv.snapshot import Snapshot

#: the client's market names -> the services that serve them
SERVICES = {"KOSPI": "stk_bydd_trd", "KOSDAQ": "ksq_bydd_trd", "KONEX": "knx_bydd_trd"}


def rows_of(table: Snapshot, market: str) -> list[dict[str, str]]:
    """One market's rows of ``table`` as the Open API sends them."""
    frame = table.frame[table.frame["Market"] == market]
    day = table.session.strftime("%Y%m%d")
    return [
        {
            "BAS_DD": day,
            "ISU_CD": str(code),
            "ISU_NM": f"종목{code}",
            "MKT_NM": market,
            "SECT_TP_NM": "",
            "TDD_CLSPRC": str(int(row["Close"])),
            "CMPPREVDD_PRC": str(int(row["Changes"])),
            "FLUC_RT": f"{100 * row['Changes'] / max(row['Close'] - row['Changes'], 1):.2f}",
            "TDD_OPNPRC": str(int(row["Open"])),
            "TDD_HGPRC": str(int(row["High"])),
            "TDD_LWPRC": str(int(row["Low"])),
            "ACC_TRDVOL": str(int(row["Volume"])),
            "ACC_TRDVAL": str(int(row["Volume"] * row["Close"])),
            "MKTCAP": "0",
            "LIST_SHRS": "0",
        }
        for code, row in frame.iterrows()
    ]


class OpenApiStub(urllib.request.BaseHandler):
    """Answers ``https://data-dbg.krx.co.kr/svc/apis/sto/{service}.json?basDd=...`` requests.

    ``serve(table)`` answers a session's three services with its rows; ``answer(service, day,
    status=..., body=...)`` sets one answer; anything else is an empty ``OutBlock_1`` (KRX's
    answer for a date it has no data of). ``calls`` lists (service, basDd, AUTH_KEY header).
    """

    handler_order = 100  # before urllib's own https handler

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], tuple[int, bytes]] = {}
        self.calls: list[tuple[str, str, str | None]] = []

    def serve(self, table: Snapshot) -> None:
        for market, service in SERVICES.items():
            self.answer(service, table.session, body={"OutBlock_1": rows_of(table, market)})

    def answer(self, service: str, day: dt.date, *, status: int = 200, body: dict | bytes | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body if body is not None else {"OutBlock_1": []})
        self.answers[service, day.strftime("%Y%m%d")] = (status, raw.encode() if isinstance(raw, str) else raw)

    def https_open(self, request: urllib.request.Request):
        url = urllib.parse.urlsplit(request.full_url)
        assert url.netloc == "data-dbg.krx.co.kr", url.netloc
        service = url.path.rsplit("/", 1)[-1].removesuffix(".json")
        day = urllib.parse.parse_qs(url.query)["basDd"][0]
        self.calls.append((service, day, request.get_header("Auth_key")))
        status, body = self.answers.get((service, day), (200, b'{"OutBlock_1": []}'))
        headers = email.message.Message()
        headers["Content-Type"] = "application/json; charset=utf-8"
        if status != 200:
            raise urllib.error.HTTPError(request.full_url, status, "error", headers, io.BytesIO(body))
        response = urllib.response.addinfourl(io.BytesIO(body), headers, request.full_url, status)
        response.msg = "OK"
        return response


def install(monkeypatch) -> OpenApiStub:
    """Route the client's requests to a new stub for one test."""
    stub = OpenApiStub()
    monkeypatch.setattr(krx_openapi.session, "_OPENER", urllib.request.build_opener(stub))
    return stub
