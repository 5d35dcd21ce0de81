"""The ledger family: ``ohlcv:actions:{code}``, one stream per code of every continuity break
the snapshot step found in it and every repair the indexer made to it, and
``ohlcv:run:{run_id}:breaks``, the breaks a run found and has not resolved yet.

A break found in a market table is noted for the run; the history fetch that follows writes
its ledger entry in the same transaction as the series (``SeriesStore.write_series``): the
entry says whether the history was repaired or only refetched, with the series' digest before
and after. A break still noted when the run ends (the fetch failed, or was deferred) gets its
entry then (``close_breaks``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pandas as pd

from ohlcv.keys import validate_ticker
from ohlcv.merge import Merge
from ohlcv.status import Status
from ohlcv.store.base import RUN_METRICS_TTL, StoreBase, optimistic, text

#: entries kept per code (about): decades of corporate actions
ACTIONS_KEPT = 1_000
#: the fields of a ledger entry, in the order ``actions`` returns them
FIELDS = (
    "recorded_at", "session", "action", "found_by", "cached_close", "base_price", "ratio", "run_id", "revision",
    "digest_before", "digest_after", "reason",
)  # fmt: skip
#: what a run did about a break or a changed history
ACTIONS = ("repaired", "refetched", "failed", "deferred", "waiting")


def entry(
    *,
    session: dt.date | str | None,
    action: str,
    found_by: str,
    run_id: str,
    cached_close: float | None = None,
    base_price: float | None = None,
    ratio: float | None = None,
    revision: int | None = None,
    digest_before: str = "",
    digest_after: str = "",
    reason: str = "",
) -> dict[str, str]:
    """One ledger entry as the stream stores it (every field a string; empty when unknown).

    :param found_by: ``table`` (the snapshot step's continuity check) or ``history`` (a history
        fetch that differed from the cache)
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown ledger action {action!r}")
    values = {
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "session": session.isoformat() if isinstance(session, dt.date) else (session or ""),
        "action": action,
        "found_by": found_by,
        "cached_close": _number(cached_close),
        "base_price": _number(base_price),
        "ratio": "" if ratio is None else f"{ratio:.10g}",
        "run_id": run_id,
        "revision": "" if revision is None else str(revision),
        "digest_before": digest_before,
        "digest_after": digest_after,
        "reason": reason[:500],
    }
    return values


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def digest(blob: bytes | None) -> str:
    """The SHA-1 of a series value (the ledger's digests; a pinned read finds a kept value by it)."""
    return hashlib.sha1(blob).hexdigest() if blob is not None else ""


def for_write(
    result: Merge, cached: pd.DataFrame | None, before: bytes | None, after: bytes | None, noted: dict | None,
    revision: int | None, run_id: str, unreadable: str = "",
) -> dict[str, str]:  # fmt: skip
    """The ledger entry of a history write (``SeriesStore.write_series``): the break the run
    noted that it resolves, or the repair it makes; ``before`` and ``after`` the series' bytes."""
    revision = revision or None  # 0: no revision published yet
    if noted is not None:
        action = "repaired" if result.status == Status.REPAIRED else "refetched"
        if action == "repaired":
            ratio = f" (vendor/cached close {result.ratio:.6g})" if result.ratio else ""
            why = f"history changed from {result.first_difference} on{ratio}: replaced"
        else:
            why = "the vendor's history agrees with the cache: nothing replaced"
        return entry(
            session=noted["session"], action=action, found_by="table", run_id=run_id,
            cached_close=noted["cached_close"], base_price=noted["base_price"], ratio=noted["ratio"],
            revision=revision, digest_before=digest(before), digest_after=digest(after),
            reason=f"{noted.get('reason', '')}; {why}".lstrip("; "),
        )  # fmt: skip
    close = None
    if cached is not None and result.first_difference is not None:
        at = pd.Timestamp(result.first_difference)
        close = float(cached["Close"].get(at)) if at in cached.index else None
    why = (
        f"the cached value was {unreadable}: replaced by the vendor's history"
        if unreadable
        else f"the vendor's history differs from the cache from {result.first_difference} on: replaced"
    )
    return entry(
        session=result.first_difference, action="repaired", found_by="history", run_id=run_id, cached_close=close,
        ratio=result.ratio, revision=revision, digest_before=digest(before), digest_after=digest(after), reason=why,
    )  # fmt: skip


class LedgerStore(StoreBase):
    """Breaks noted during a run, and the ledger of every code."""

    def note_breaks(self, run_id: str, breaks: dict[str, dict]) -> None:
        """Note the continuity breaks the snapshot step found (code -> session, cached close,
        base price, ratio, digest of the cached series) for the run's history fetches to resolve."""
        if not breaks:
            return
        key = self.keys.run_breaks(run_id)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping={code: json.dumps(found) for code, found in breaks.items()})
            pipe.expire(key, RUN_METRICS_TTL)
            pipe.execute()

    def queue_action(self, pipe, code: str, values: dict[str, str], run_id: str) -> None:
        """Queue one ledger entry in a transaction (``entry`` builds ``values``), resolve the run's
        noted break of ``code`` and count it in the run's metrics."""
        pipe.xadd(self.keys.actions(code), values, maxlen=ACTIONS_KEPT, approximate=True)
        if run_id:
            pipe.hdel(self.keys.run_breaks(run_id), code)
            pipe.hincrby(self.keys.run_metrics(run_id), "actions", 1)
            pipe.expire(self.keys.run_metrics(run_id), RUN_METRICS_TTL)

    def close_breaks(self, run_id: str, outcomes: dict[str, str], revision: int | None) -> int:
        """Enter every break the run noted and did not resolve: ``outcomes`` says what became of
        each ticker (``deferred``, ``waiting``; anything else is ``failed``). Returns how many."""
        key = self.keys.run_breaks(run_id)

        def attempt(pipe) -> int:  # watching the breaks: a fetch resolving one meanwhile is entered once
            left = {text(code): json.loads(found) for code, found in pipe.hgetall(key).items()}
            if not left:
                pipe.unwatch()
                return 0
            pipe.multi()
            for code, found in sorted(left.items()):
                action = outcomes.get(code, "failed")
                action = action if action in ("deferred", "waiting") else "failed"
                values = entry(
                    session=found["session"], action=action, found_by="table", run_id=run_id,
                    cached_close=found["cached_close"], base_price=found["base_price"], ratio=found["ratio"],
                    revision=revision, digest_before=found.get("digest", ""),
                    reason=f"handed on to index_ticker and {action}: {found.get('reason', '')}".rstrip(": "),
                )  # fmt: skip
                self.queue_action(pipe, code, values, run_id)
            pipe.execute()
            return len(left)

        return optimistic(
            self.client, [key], attempt, f"gave up entering run {run_id}'s breaks after concurrent changes"
        )

    def pending_break(self, pipe, run_id: str, code: str) -> dict | None:
        """The break the run noted for ``code`` (None: none), read inside a watching pipeline."""
        if not run_id:
            return None
        found = pipe.hget(self.keys.run_breaks(run_id), code)
        return json.loads(found) if found else None

    def actions(self, code: str) -> pd.DataFrame:
        """Every ledger entry of ``code``, oldest first: the columns ``FIELDS``, dates and
        numbers typed (an empty frame with those columns when there are none)."""
        entries = self.client.xrange(self.keys.actions(validate_ticker(code)))
        rows = [{text(name): text(value) for name, value in fields.items()} for _, fields in entries]
        frame = pd.DataFrame(rows, columns=list(FIELDS)).fillna("")
        frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], utc=True)
        frame["session"] = pd.to_datetime(frame["session"].replace("", None)).dt.date
        for name in ("cached_close", "base_price", "ratio"):
            frame[name] = pd.to_numeric(frame[name].replace("", None), errors="coerce").astype("float64")
        frame["revision"] = pd.to_numeric(frame["revision"].replace("", None), errors="coerce").astype("Int64")
        return frame

    def revision_id(self) -> int | None:
        """The current revision id (None: no run has published one yet)."""
        found = self.client.get(self.keys.revision)
        return int(found) if found else None

    def has_actions(self, code: str) -> bool:
        return bool(self.client.exists(self.keys.actions(validate_ticker(code))))
