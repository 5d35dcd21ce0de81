"""What one indexer run did, ticker by ticker: appended from the tables, handed on to a history
fetch and why, written, repaired, settled, failed, waiting, deferred; and its record, its
tables and its counters. A run's per-ticker keys expire two days after it (``RUN_METRICS_TTL``);
its record in ``ohlcv:runs`` stays among the newest 200."""

from __future__ import annotations

from typing import Any

from ohlcv.overview.cache import typed_run
from ohlcv.store import RUNS_KEPT, OhlcvStore

#: the outcomes of a ticker the run view lists, in this order (the rest after them)
ORDER = ("failed", "repaired", "written", "deferred", "waiting", "unchanged", "settled", "no_data", "inactive",
         "appended", "current")  # fmt: skip


def document(store: OhlcvStore, run_id: str) -> dict[str, Any]:
    """The run view of ``run_id`` as a JSON-ready document. ``expired`` says its per-ticker keys
    are gone (older than two days, or a run that wrote none); ``record`` is None for a run that
    has not finished (or is older than the newest ``RUNS_KEPT``)."""
    results = store.run_results(run_id)
    handed_on, behind = store.handed_on(run_id), store.postponed(run_id)
    failures = {code: record for code, record in store.all_failures().items() if record.get("run_id") == run_id}
    codes = sorted(set(results) | set(handed_on) | set(failures))
    tickers = []
    for code in codes:
        outcome = results.get(code, "failed" if code in failures else "")
        why = (failures.get(code) or {}).get("reason") or behind.get(code) or ""
        tickers.append({"code": code, "outcome": outcome, "handed_on": handed_on.get(code), "reason": why})
    rank = {name: position for position, name in enumerate(ORDER)}
    tickers.sort(key=lambda row: (rank.get(row["outcome"], len(ORDER)), row["code"]))
    record = next((run for run in store.recent_runs(RUNS_KEPT) if run.get("run_id") == run_id), None)
    counts: dict[str, int] = {}
    for row in tickers:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    return {
        "run_id": run_id,
        "expired": not results and not handed_on,
        "record": typed_run(record) if record else None,
        "outcomes": counts,
        "tickers": tickers,
        "tables": store.run_tables(run_id),
        "metrics": store.run_metrics(run_id),
    }
