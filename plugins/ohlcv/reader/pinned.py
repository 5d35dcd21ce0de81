"""Reads pinned to a revision: each series as the revision saw it, also after later repairs.

A revision R saw each series through R's cut. Appends since R are past the cut. A value a
later write replaced (a repair, rows added before the first) was kept, with the revision
current at that write (``ohlcv:versions:{code}``): the first one kept at or after R is the
value R saw. A preliminary Volume settled after R was kept too (``ohlcv:settled:{session}``)
and is put back. A code no write replaced since R is read as an unpinned read of the window is
(its period key, else a slice of its history written back as one); no vendor is asked: a code
R did not see and nothing holds now is ``NoData``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from ohlcv import codec
from ohlcv.errors import NoData, RevisionExpired, UnknownRevision
from ohlcv.reader import frames
from ohlcv.store import OhlcvStore, Revision
from ohlcv.store.base import text


def resolve(store: OhlcvStore, revision: object) -> Revision:
    """The record of ``revision`` (an id, its digits, or a ``Revision``), readable today;
    ``UnknownRevision`` for one no run published, ``RevisionExpired`` for one too old."""
    wanted = revision.id if isinstance(revision, Revision) else revision
    if isinstance(wanted, str) and wanted.strip().isdigit():
        wanted = int(wanted)
    if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < 1:
        raise UnknownRevision(f"revision={revision!r}: give a revision id, as OhlcvCache.revision() returns it")
    record = store.revision_of(wanted)
    if record is None:
        current = store.current_revision()
        now = f"the current one is {current.id}" if current else "no run has published one yet"
        raise UnknownRevision(f"no run published revision {wanted}; {now}")
    today = dt.datetime.now(dt.UTC).date()
    if today > record.expires:
        raise RevisionExpired(
            f"revision {record.id} (cut {record.cut}, published {record.published:%Y-%m-%d}) expired on "
            f"{record.expires}: the values later writes replaced are kept OHLCV_REVISION_DAYS "
            f"({store.revision_days}) days",
            record.expires,
        )
    return record


def columns(
    cache, codes: list[str], revision: Revision, first: dt.date | None, last: dt.date
) -> dict[str, codec.Columns]:
    """The rows from ``first`` to ``last`` (at most the revision's cut) of each of ``codes`` as
    ``revision`` saw them, in three or four round trips.

    ``cache`` is the ``OhlcvCache`` reading: a code no write replaced since the revision is read
    like an unpinned read of the same window (its period key, else its whole history, kept as
    a period key), since its current history is what the revision saw. The whole histories of
    the codes without a period key are read before it is known whether they are needed.
    """
    store = cache.reads
    last = min(last, revision.cut)
    if not codes:
        return {}
    # The current values first, then which of them a write replaced since the revision: a repair
    # landing between the two reads is seen in the second, and its kept value read instead.
    windows: dict[str, codec.Columns] = {}
    if first is not None:
        blobs = cache._mget([store.keys.period(code, first, last) for code in codes])
        windows = {code: codec.decode_columns(blob) for code, blob in zip(codes, blobs, strict=True) if blob}
    rest = [code for code in codes if code not in windows]
    wholes = dict(zip(rest, cache._mget([store.keys.series(code) for code in rest]), strict=True))
    kept = _replaced_since(store, codes, revision)
    if kept:
        keys = [store.keys.version(code, digest) for code, (digest, _) in kept.items()]
        for (code, _), key, blob in zip(kept.items(), keys, cache._mget(keys), strict=True):
            if blob is None:
                raise RevisionExpired(
                    f"{code}: the value revision {revision.id} saw is no longer kept ({key} expired)", revision.expires
                )
            windows[code] = frames.columns_from_cached(code, blob).window(first, last)
    with cache.client.pipeline(transaction=False) as writes:  # the primary: reads may come from a replica
        for code in [code for code in rest if code not in kept]:
            blob = wholes[code]
            if blob is None:
                raise NoData(f"{code} is not cached, and revision {revision.id} holds no value of it")
            whole = frames.columns_from_cached(code, blob)
            windows[code] = whole.window(first, last)
            if first is not None and windows[code].rows and whole.last_date() >= last:
                cache._keep_period(code, first, last, blob, windows[code], client=writes)
        cache._write_back(writes.execute)
    settled = _settled(store, codes, revision, first, last)
    result = {}
    for code in codes:
        replaced_after = kept[code][1] if code in kept else None
        undo = {
            session: volume
            for session, (volume, after) in settled.get(code, {}).items()
            if after >= revision.id and (replaced_after is None or after <= replaced_after)
        }
        result[code] = _with_volumes(windows[code], undo)
    return result


def _replaced_since(store: OhlcvStore, codes: list[str], revision: Revision) -> dict[str, tuple[str, int]]:
    """Code -> (the SHA-1 of the value ``revision`` saw, the revision current when a write
    replaced it), for the codes a write replaced since: the first one kept at or after it."""
    with store.client.pipeline(transaction=False) as pipe:
        for code in codes:
            pipe.zrangebyscore(store.keys.versions(code), revision.id, "+inf", start=0, num=1, withscores=True)
        found = pipe.execute()
    kept = {}
    for code, hits in zip(codes, found, strict=True):
        if hits:
            member, after = hits[0]
            kept[code] = (text(member).rpartition(":")[2], int(after))
    return kept


def _settled(store: OhlcvStore, codes, revision: Revision, first, last) -> dict[str, dict[dt.date, tuple]]:
    """Code -> session -> (the preliminary Volume settled, the revision current then), for the
    sessions still preliminary at ``revision`` inside the window."""
    sessions = [day for day in revision.preliminary if (first is None or day >= first) and day <= last]
    if not sessions:
        return {}
    with store.client.pipeline(transaction=False) as pipe:
        for session in sessions:
            pipe.hmget(store.keys.settled(session), codes)
        answers = pipe.execute()
    found: dict[str, dict[dt.date, tuple]] = {}
    for session, values in zip(sessions, answers, strict=True):
        for code, value in zip(codes, values, strict=True):
            if value:
                volume, after = text(value).split()
                found.setdefault(code, {})[session] = (float(volume), int(after))
    return found


def _with_volumes(window: codec.Columns, volumes: dict[dt.date, float]) -> codec.Columns:
    """``window`` with the Volume of each of ``volumes``' sessions put back."""
    if not volumes or not window.rows:
        return window
    volume = window.values[4]
    restored = volume.astype(np.float64 if volume.dtype.kind == "f" else np.int64)  # a copy, widened
    epoch = dt.date(1970, 1, 1)
    for session, value in volumes.items():
        where = np.flatnonzero(window.days == (session - epoch).days)
        if len(where):
            restored[where[0]] = value
    values = list(window.values)
    values[4] = restored
    return codec.Columns(window.days, tuple(values))
