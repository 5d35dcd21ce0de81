"""Bounding a vendor call in wall time, whatever the vendor does.

An HTTP timeout bounds each read of a socket, not an answer: a server that accepts the
connection and sends nothing, or a byte now and then, keeps a call waiting as long as it
likes. ``call_within`` runs the call in a daemon thread and stops waiting for it after the
given seconds; the thread is left to end on its own (or with the process), and nothing it
returns afterwards is used.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import TypeVar

from ohlcv.errors import TickerDeadline

T = TypeVar("T")


def call_within(seconds: float, function: Callable[..., T], *args, what: str = "the vendor call") -> T:
    """``function(*args)``, or ``TickerDeadline`` when it has not returned after ``seconds``.

    The call runs in the caller's context (context variables included); its exception is
    raised as if it had been called directly.
    """
    done = threading.Event()
    outcome: dict[str, object] = {}
    context = contextvars.copy_context()

    def run() -> None:
        try:
            outcome["value"] = context.run(function, *args)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name=f"ohlcv-bounded: {what}", daemon=True).start()
    if not done.wait(max(seconds, 0.0)):
        raise TickerDeadline(f"{what}: no answer within {seconds:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
