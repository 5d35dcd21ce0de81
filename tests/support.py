"""Helpers several test modules share."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return whether it held.

    For what Redis does on its own clock (a key's TTL running out): the test shortens the TTL
    to a millisecond with PEXPIRE and waits for the effect, instead of sleeping a fixed time.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
