"""Write the session table shipped with the package, ``plugins/ohlcv/xkrx_sessions.msgpack``.

Run it after changing exchange-calendars' pinned version or a correction in
``ohlcv.calendar`` (a test fails until then), and once a year so the table reaches past the
next year: readers on a Redis without a published table then never build the calendar.

    .venv/bin/python scripts/build_sessions.py
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))

from ohlcv import calendar  # noqa: E402


def main() -> None:
    built = calendar.SessionTable.from_calendar(calendar.xkrx(dt.date.today()))
    calendar.BUNDLED.write_bytes(built.encode())
    print(f"{calendar.BUNDLED}: {len(built.days)} sessions, {built.days[0]} to {built.last}, rules {built.rules}")


if __name__ == "__main__":
    main()
