"""The cache as an operator looks at it: the published cut, every ticker's state by market,
the tickers that are not current and why, the vendor breaker, damaged series, the recent runs
and where the cache lives (the primary, its replicas and their lag, the Sentinels). One read of
Redis (a handful of round trips) gives it all; the Airflow cache page and
``python -m ohlcv status --json`` show exactly this.

A ticker is one of the codes the newest recorded market table lists, the cached ones, and
those with a failure or inactive record. Its state, the first that applies:

- ``delisted``: marked delisted (``ohlcv:delisted``), its history kept as it ended;
- ``current``: cached through the published cut;
- ``inactive``: found without data or halted for long (``ohlcv:inactive``), asked again later;
- ``failing``: its latest fetch failed (``ohlcv:failures``);
- ``lagging``: behind the cut without a failure: waiting for a market table, deferred beyond
  a run's history budget, not cached yet.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from ohlcv import calendar
from ohlcv.keys import is_index
from ohlcv.store import OhlcvStore, sentinel

#: the states a ticker can be in, in the order they are decided
STATES = ("delisted", "current", "inactive", "failing", "lagging")
#: the version of the document's field names: a field is added, never renamed, within one
VERSION = 1
#: runs and breaker changes the document holds
RUNS_SHOWN = 30
BREAKER_LOG_SHOWN = 20


def state(store: OhlcvStore, *, runs: int = RUNS_SHOWN, damage: bool = True) -> dict[str, Any]:
    """The cache's state as a JSON-ready document (see the module docstring; field names are
    stable: ``docs/cli.md``). ``damage=False`` skips the check of every series' bytes."""
    meta = store.meta()
    cut = meta.last_update_at
    last = store.last_updates()
    failures, inactive, delisted = store.all_failures(), store.all_inactive(), store.delisted()
    oldest, newest, recorded = store.recorded_sessions()
    listed = store.listed_on(newest) if newest else {}
    recent = store.recent_runs(runs)
    behind = store.postponed(recent[0]["run_id"]) if recent else {}
    codes = sorted(set(listed) | set(last) | set(failures) | set(inactive))
    tickers = [
        standing(code, market_of(code, listed, delisted), cut, last, failures, inactive, delisted, behind)
        for code in codes
    ]
    by_market: dict[str, Counter] = {}
    for ticker in tickers:
        by_market.setdefault(ticker["market"], Counter())[ticker["state"]] += 1
    lock_ttl = store.client.pttl(store.keys.run_lock)
    breaker, breaker_ttl = store.breaker(), store.breaker_ttl()
    held = Counter(day for days in store.preliminary().values() for day in days)
    return {
        "version": VERSION,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cut": {
            "last_update_at": cut.isoformat() if cut else None,
            "last_update_count": meta.last_update_count,
            "is_updating": meta.is_updating,
            "run_lock_expires_in_seconds": lock_ttl // 1000 if lock_ttl > 0 else None,
        },
        "revision": _revision(store),
        "universe": _universe(store, oldest, newest, recorded),
        "tickers": {
            "total": len(tickers),
            "by_state": {name: sum(counts[name] for counts in by_market.values()) for name in STATES},
            "by_market": {
                market: {name: counts[name] for name in STATES} for market, counts in sorted(by_market.items())
            },
        },
        "not_current": [ticker for ticker in tickers if ticker["state"] != "current"],
        "breaker": {
            "open": breaker is not None,
            "reason": breaker,
            "closes_in_seconds": int(breaker_ttl.total_seconds()) if breaker_ttl else None,
            "log": store.breaker_log(BREAKER_LOG_SHOWN),
        },
        "damaged": _damaged(store, last) if damage else None,
        "preliminary": {"rows": sum(held.values()), "by_session": dict(sorted(held.items()))},
        "cross_checks": [
            {"session": day, **note} for day, note in sorted(store.cross_checked().items(), reverse=True)[:5]
        ],
        "runs": [typed_run(run) for run in recent],
        "redis": sentinel.topology(store.client),
    }


def _revision(store: OhlcvStore) -> dict[str, Any] | None:
    revision = store.current_revision()
    if revision is None:
        return None
    return {
        "id": revision.id,
        "cut": revision.cut.isoformat(),
        "published": revision.published.isoformat(),
        "expires": revision.expires.isoformat(),
    }


def _universe(store: OhlcvStore, oldest, newest, recorded: int) -> dict[str, Any] | None:
    if newest is None:
        return None
    exact = store.recorded().exact_from()
    return {
        "oldest": oldest.isoformat(),
        "newest": newest.isoformat(),
        "sessions": recorded,
        "exact_from": exact.isoformat(),
    }


def market_of(code: str, listed: dict[str, str], delisted: dict[str, dict]) -> str:
    """The market a code is listed on (the newest recorded table, else its delisted mark)."""
    if code in listed:
        return listed[code]
    if code in delisted:
        return delisted[code].get("market", "unknown")
    return "INDEX" if is_index(code) else "unknown"


def standing(code, market, cut, last, failures, inactive, delisted, behind) -> dict[str, Any]:
    """One ticker's row: its state (the module docstring), last cached session, why and since when."""
    held = last.get(code)
    row = {"code": code, "market": market, "last": held.isoformat() if held else None}
    if code in delisted:
        mark = delisted[code]
        reason = mark.get("reason") or f"not in the market table since {mark.get('seen_missing') or 'its last session'}"
        return {**row, "state": "delisted", "reason": reason, "since": mark.get("delisted") or mark.get("seen_missing")}
    if held is not None and cut is not None and held >= cut:
        return {**row, "state": "current", "reason": "", "since": None}
    if code in inactive:
        record = inactive[code]
        return {**row, "state": "inactive", "reason": record.get("reason", ""), "since": record.get("checked")}
    if code in failures:
        record = failures[code]
        return {**row, "state": "failing", "reason": record.get("reason", ""), "since": record.get("as_of")}
    if held is None:
        return {**row, "state": "lagging", "reason": behind.get(code, "not cached yet"), "since": None}
    reason = behind.get(code, f"cached through {held}")
    return {**row, "state": "lagging", "reason": reason, "since": calendar.next_session(held).isoformat()}


def _damaged(store: OhlcvStore, last: dict[str, dt.date]) -> list[dict[str, str]]:
    found = store.check_series(last)
    return [{"code": code, "kind": damage.kind, "reason": damage.reason} for code, damage in sorted(found.items())]


#: the fields of a run record that are words, not numbers
RUN_TEXT_FIELDS = frozenset(
    {
        "run_id", "as_of", "state", "table_missing", "table_refused", "table_second", "published", "finished_at",
        "unpublished",
    }
)  # fmt: skip


def typed_run(run: dict[str, str]) -> dict[str, Any]:
    """A run record with its counts and seconds as numbers."""
    typed: dict[str, Any] = {}
    for name, value in run.items():
        typed[name] = value
        if name in RUN_TEXT_FIELDS:
            continue
        for kind in (int, float):
            try:
                typed[name] = kind(value)
                break
            except ValueError:
                continue
    return typed
