"""Values kept in the process until Redis says they changed (server-assisted client-side caching).

One connection reads with ``CLIENT TRACKING ON REDIRECT <id>``: Redis remembers the keys it
read and, when one of them is written, expired, evicted or flushed, publishes its name on
``__redis__:invalidate`` to a second connection of ours. Before every lookup the pending
invalidations are applied, so a value written before the read began is never served stale;
the only window is the network's delivery time of that message.

This needs Redis 6 or newer and, for an ACL user, ``+client|tracking +subscribe
&__redis__:invalidate``. redis-py's own ``cache_config`` needs Redis 7.4, which is why this
uses the RESP2 redirect mode every Redis since 6.0 has. When tracking cannot be turned on, or
a connection breaks, every read goes to Redis, after one warning.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict

import redis

log = logging.getLogger(__name__)

INVALIDATE = "__redis__:invalidate"


class TrackedReads:
    """GET and MGET through a tracked connection, answered from the process when nothing changed.

    :param client: the client whose server and credentials to use
    :param max_bytes: the values kept, in bytes (least recently used go first)
    :param fall_back: when the tracked connection breaks, read through ``client`` (False: raise,
        for a caller that reads elsewhere then, such as a reader of a replica)
    """

    def __init__(self, client: redis.Redis, max_bytes: int, *, fall_back: bool = True) -> None:
        self.client = client
        self.fall_back = fall_back
        self.pool = client.connection_pool
        self.max_bytes = max_bytes
        self._values: OrderedDict[bytes | str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._reader = None
        self._listener = None
        self.enabled = True
        self.hits = self.misses = 0
        self._pid = os.getpid()

    # -- the two connections -----------------------------------------------------------------

    def _connection(self):
        """A connection of the pool's kind, speaking RESP2 (pub/sub messages arrive as replies)."""
        options = {
            name: value
            for name, value in self.pool.connection_kwargs.items()
            if not name.startswith("maint_notifications") and name != "protocol"
        }
        return self.pool.connection_class(**options, protocol=2)

    def _connect(self) -> None:
        listener, reader = self._connection(), self._connection()
        try:
            listener.connect()
            listener.send_command("CLIENT", "ID")
            listener_id = listener.read_response()
            listener.send_command("SUBSCRIBE", INVALIDATE)
            listener.read_response()
            reader.connect()
            reader.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", listener_id)
            reader.read_response()
        except Exception:
            listener.disconnect()
            reader.disconnect()
            raise
        self._listener, self._reader = listener, reader

    def _ready(self) -> bool:
        if self._pid != os.getpid():  # a forked child: the parent's connections are not ours to use
            self._reader = self._listener = None
            self._values.clear()
            self._size = 0
            self._pid = os.getpid()
        if self._reader is not None:
            return True
        if not self.enabled:
            return False
        try:
            self._connect()
        except (redis.exceptions.ResponseError, redis.exceptions.NoPermissionError) as exc:
            self._disable(f"Redis refused client tracking ({exc})")
            return False
        return True

    def _disable(self, why: str) -> None:
        log.warning("%s: every read goes to Redis", why)
        self.enabled = False
        self._drop()

    def _drop(self) -> None:
        """Forget every value and both connections (tracking ends with its connection)."""
        for connection in (self._reader, self._listener):
            if connection is not None:
                connection.disconnect()
        self._reader = self._listener = None
        self._values.clear()
        self._size = 0

    def _apply_invalidations(self) -> None:
        while self._listener.can_read(timeout=0):
            kind, _, keys = self._listener.read_response()[:3]
            if kind not in (b"message", "message"):
                continue
            if keys is None:  # FLUSHDB, FLUSHALL, or the server lost track
                self._values.clear()
                self._size = 0
                continue
            for key in keys:
                value = self._values.pop(key, None)
                if value is not None:
                    self._size -= len(value)

    # -- reads -------------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        return self.mget([key])[0]

    def mget(self, keys: list[str]) -> list[bytes | None]:
        """The values of ``keys`` (None where absent), from the process where still valid."""
        with self._lock:
            if not self._ready():
                return self.client.mget(keys)
            try:
                self._apply_invalidations()
                wanted = [key.encode() for key in keys]
                found = [self._values.get(key) for key in wanted]
                missing = [key for key, value in zip(wanted, found, strict=True) if value is None]
                for key in wanted:
                    if key in self._values:
                        self._values.move_to_end(key)
                self.hits += len(keys) - len(missing)
                self.misses += len(missing)
                if not missing:
                    return found
                self._reader.send_command("MGET", *missing)
                fetched = dict(zip(missing, self._reader.read_response(), strict=True))
                for key, value in fetched.items():
                    if value is not None:
                        self._keep(key, value)
                return [fetched[key] if value is None else value for key, value in zip(wanted, found, strict=True)]
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
                log.warning("client tracking connection lost (%s): reconnecting at the next read", exc)
                self._drop()
                if not self.fall_back:
                    raise
                return self.client.mget(keys)

    def _keep(self, key: bytes, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        previous = self._values.pop(key, None)
        if previous is not None:
            self._size -= len(previous)
        self._values[key] = value
        self._size += len(value)
        while self._size > self.max_bytes:
            _, dropped = self._values.popitem(last=False)
            self._size -= len(dropped)

    def close(self) -> None:
        with self._lock:
            self._drop()
