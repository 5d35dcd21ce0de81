"""The revisions family: ``ohlcv:revision`` (the current revision id), ``ohlcv:revisions``
(id -> what each published), ``ohlcv:revision:changed``, and what a pinned read needs to see a
series as it was: ``ohlcv:version:{code}:{sha1}`` with its index ``ohlcv:versions:{code}``
(a superseded value; the index's members ``{sequence}:{sha1}``, scored by the revision current
when it was replaced), and ``ohlcv:settled:{session}`` (a settled row's preliminary Volume).

A revision is published with the cut (one Lua script: the meta keys, the id and its record
change together), a new one whenever the cut moved or a history was rewritten since the last.
A revision R sees each series as its bytes through R's cut. Appends need nothing kept: R's
view of an appended series is its prefix. A write that changes rows R may see (a repair, rows
added before the first, an unreadable value replaced) keeps the value it replaces, stamped
with the revision current at the write, until that revision expires (``OHLCV_REVISION_DAYS``
after it was published); settling a preliminary Volume keeps the Volume it replaces. Writers
watch ``ohlcv:revision``, so a stamp is never a publish behind.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from ohlcv.keys import KeySpace
from ohlcv.settings import DEFAULT_REVISION_DAYS
from ohlcv.store.base import StoreBase, text

# KEYS: lastUpdateAt, lastUpdateCount, revision, revisions, changed.
# ARGV: cut (ISO), count, the new revision's record: a JSON object's members after its id
# (joined as text, not through cjson, which would write an empty list as {}).
# Returns {the cut replaced or false, the revision id now, 1 if it is new}.
_PUBLISH = """
local previous = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
local current = redis.call('GET', KEYS[3])
if current and previous == ARGV[1] and redis.call('EXISTS', KEYS[5]) == 0 then
  return {previous, tonumber(current), 0}
end
local id = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[4], id, '{"id": ' .. id .. ', ' .. ARGV[3])
redis.call('DEL', KEYS[5])
return {previous, id, 1}
"""


@dataclass(frozen=True)
class Revision:
    """What one publish of the cut made current: read with ``get(..., revision=id)``.

    :param preliminary: sessions whose rows held a preliminary Volume when it was published
    :param expires: after this day the revision can no longer be read (``OHLCV_REVISION_DAYS``)
    """

    id: int
    cut: dt.date
    count: int
    published: dt.datetime
    run_id: str
    expires: dt.date
    preliminary: tuple[dt.date, ...] = ()

    @classmethod
    def from_json(cls, text_: str | bytes) -> Revision:
        doc = json.loads(text_)
        return cls(
            int(doc["id"]), dt.date.fromisoformat(doc["cut"]), int(doc["count"]),
            dt.datetime.fromisoformat(doc["published"]), doc.get("run_id", ""), dt.date.fromisoformat(doc["expires"]),
            tuple(dt.date.fromisoformat(day) for day in doc.get("preliminary") or []),
        )  # fmt: skip


@dataclass(frozen=True)
class Stamp:
    """What a write that changes rows older revisions saw is stamped with (``stamp``).

    :param after: the revision current at the write (0: none published yet)
    :param until: when what it keeps may go (epoch seconds): the end of the day ``after`` expires
    :param sequence: orders the values of one code kept under the same revision
    """

    after: int
    until: int
    sequence: int


@dataclass(frozen=True)
class Published:
    """What ``publish`` did: the cut it replaced and the revision current afterwards."""

    previous: dt.date | None
    revision: int
    new: bool


class RevisionStore(StoreBase):
    """Publishing revisions, and keeping what reads pinned to an older one need."""

    #: how long superseded values are kept and revisions readable (``OHLCV_REVISION_DAYS``)
    revision_days: int = DEFAULT_REVISION_DAYS

    def __init__(self, client, keys: KeySpace) -> None:
        super().__init__(client, keys)
        self._publish_script = client.register_script(_PUBLISH)

    def publish(self, cut: dt.date, count: int, *, run_id: str = "") -> Published:
        """Set both meta keys together and publish a revision with them: a new one when the cut
        moved or a history was rewritten since the current one, else the current one stays."""
        now = dt.datetime.now(dt.UTC)
        held = {day for value in self.client.hvals(self.keys.preliminary) for day in _days(value)}
        record = {
            "cut": cut.isoformat(), "count": int(count), "published": now.isoformat(timespec="seconds"),
            "run_id": run_id, "expires": (now.date() + dt.timedelta(days=self.revision_days)).isoformat(),
            "preliminary": sorted(day for day in held if day <= cut.isoformat()),
        }  # fmt: skip
        keys = [
            self.keys.last_update_at, self.keys.last_update_count, self.keys.revision, self.keys.revisions,
            self.keys.revision_changed,
        ]  # fmt: skip
        previous, revision, new = self._publish_script(
            keys=keys, args=[cut.isoformat(), int(count), json.dumps(record).removeprefix("{")]
        )
        return Published(dt.date.fromisoformat(text(previous)) if previous else None, int(revision), bool(new))

    def current_revision(self) -> Revision | None:
        """The revision published last (None: none yet)."""
        current = self.client.get(self.keys.revision)
        return self.revision_of(int(current)) if current else None

    def revision_of(self, revision: int) -> Revision | None:
        """The record of revision ``revision`` (None: no run published it)."""
        found = self.client.hget(self.keys.revisions, int(revision))
        return Revision.from_json(found) if found else None

    def stamp(self, pipe, code: str | None = None) -> Stamp:
        """What a write that changes rows older revisions saw is stamped with, read inside its
        transaction, which watches ``ohlcv:revision`` (and, with ``code``, its kept values'
        index): the revision current now, seen by the revisions up to it and not after."""
        current = pipe.get(self.keys.revision)
        after = int(current) if current else 0
        if not after:
            return Stamp(0, 0, 0)
        record = pipe.hget(self.keys.revisions, after)
        expires = (
            Revision.from_json(record).expires
            if record
            else dt.datetime.now(dt.UTC).date() + dt.timedelta(days=self.revision_days)
        )
        # kept until the end of the day the stamped revision expires: every revision that can
        # need the value was published no later, so expires no later
        until = int(dt.datetime.combine(expires + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp())
        sequence = 0
        if code is not None:
            index = self.keys.versions(code)
            sequence = pipe.zcard(index)
            remaining = pipe.ttl(index)
            if remaining > 0:  # never shorten what an earlier revision's value needs
                until = max(until, int(dt.datetime.now(dt.UTC).timestamp()) + remaining)
        return Stamp(after, until, sequence)

    def queue_superseded(self, pipe, code: str, value: bytes, digest: str, stamp: Stamp) -> None:
        """Keep a value a write replaces for the revisions up to ``stamp.after`` (queued in its
        MULTI; ``stamp`` from ``stamp(pipe, code)``)."""
        pipe.set(self.keys.revision_changed, 1)
        if not stamp.after:
            return  # no revision was ever published: no pinned read can need it
        kept, index = self.keys.version(code, digest), self.keys.versions(code)
        pipe.set(kept, value)
        pipe.expireat(kept, stamp.until)
        pipe.zadd(index, {f"{stamp.sequence:08d}:{digest}": stamp.after})
        pipe.expireat(index, stamp.until)

    def queue_settled(self, pipe, session: dt.date, volumes: dict[str, float], stamp: Stamp) -> None:
        """Keep the preliminary Volume of each code's row of ``session`` a settle replaces."""
        if not volumes:
            return
        if stamp.after:
            key = self.keys.settled(session)
            pipe.hset(key, mapping={code: f"{_number(volume)} {stamp.after}" for code, volume in volumes.items()})
            pipe.expireat(key, stamp.until)
        pipe.set(self.keys.revision_changed, 1)


def _days(value: bytes | str) -> list[str]:
    try:
        days = json.loads(value)
    except ValueError:
        return []
    return [day for day in days if isinstance(day, str)] if isinstance(days, list) else []


def _number(value: float) -> str:
    value = value.item() if hasattr(value, "item") else value
    return str(int(value)) if float(value).is_integer() else repr(float(value))
