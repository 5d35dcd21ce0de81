"""The example forward-test DAG's task: read the cache at the cut the indexer announced."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def read_at_cut(**context: Any) -> dict[str, Any]:
    """Read ``params.tickers`` through ``OhlcvCache`` pinned to the revision in the newest
    ``ohlcv_cache`` event that triggered this run, ending on its cut: a rerun of this run reads
    the same values, also after a later repair. Returns what was read, per ticker."""
    from ohlcv.airflow import runtime
    from ohlcv.airflow.assets import CACHE
    from ohlcv.airflow.hook import OhlcvRedisHook
    from ohlcv.reader.cache import OhlcvCache

    events = context["triggering_asset_events"][CACHE]
    if not events:
        raise ValueError("this run was not triggered by an ohlcv_cache event; trigger the indexer instead")
    cut, revision = events[-1].extra["cut"], events[-1].extra.get("revision")
    cache = OhlcvCache(OhlcvRedisHook().get_conn(), settings=runtime.settings())
    frames = cache.get_many(context["params"]["tickers"], end=cut, revision=revision)
    read = {code: {"rows": len(frame), "last": frame.index[-1].date().isoformat()} for code, frame in frames.items()}
    for code, seen in read.items():
        log.info("%s: %d sessions through %s (revision %s)", code, seen["rows"], seen["last"], revision)
    return {"cut": cut, "revision": revision, "read": read}
