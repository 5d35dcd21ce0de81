"""A writer killed with SIGKILL at a random moment leaves Redis decodable and consistent."""

import datetime as dt
import multiprocessing
import random
import signal
import time

import pytest
import redis

from ohlcv import calendar, codec
from ohlcv.errors import BadOhlcvData
from ohlcv.keys import KeySpace
from ohlcv.sources import SyntheticSource
from ohlcv.store import OhlcvStore
from tests.support import keep_period

CODES = ("000100", "000200", "000300")
KILLS = 30


def _answers() -> dict[str, list]:
    """Per ticker, answers ending one session later each, alternating plain and 1:50-adjusted
    history, so that every write is a repair that replaces the series and its period keys."""
    plain = SyntheticSource(3)
    split = SyntheticSource(3, splits={code: (dt.date(2020, 1, 2), 50) for code in CODES})
    ends = [day.date() for day in calendar.sessions(dt.date(2026, 6, 1), dt.date(2026, 11, 20))]
    return {
        code: [(split if step % 2 else plain).history(code, dt.date(2020, 1, 2), end) for step, end in enumerate(ends)]
        for code in CODES
    }


def _write_forever(port: int, answers: dict[str, list]) -> None:
    store = OhlcvStore(redis.Redis(port=port), KeySpace())
    last, _ = store.state_of(list(CODES))
    position = {
        code: next(
            (i for i, frame in enumerate(frames) if last[code] is None or frame.index[-1].date() > last[code]), 0
        )
        for code, frames in answers.items()
    }
    while True:
        for code, frames in answers.items():
            frame = frames[position[code] % len(frames)]
            position[code] += 1
            try:
                store.write_series(code, frame, "synthetic")
            except BadOhlcvData:
                continue  # after wrapping around, an older rewritten history is refused
            keep_period(store, code, "2026-01-02", "2026-06-30", dt.timedelta(minutes=5))


def _check_consistent(client: redis.Redis) -> int:
    last_updates = {key.decode(): value.decode() for key, value in client.hgetall("ticker:lastUpdateAt").items()}
    series = {key.decode().split(":")[1] for key in client.keys("ticker:[0-9]*") if key.count(b":") == 1}
    assert set(last_updates) == series, "series keys and ticker:lastUpdateAt disagree"
    for code in series:
        frame = codec.decode(client.get(f"ticker:{code}"))
        assert frame.index[-1].date().isoformat() == last_updates[code], code
    for key in client.keys("ticker:*:*:*"):
        blob = client.get(key)
        if blob is not None:  # may have expired meanwhile
            codec.decode(blob)
    return len(series)


@pytest.mark.timeout(180)
def test_sigkill_during_writes_never_leaves_a_half_written_ticker(redis_server, redis_client):
    answers = _answers()
    context = multiprocessing.get_context("fork")
    rng = random.Random(20261124)
    for _ in range(KILLS):
        writer = context.Process(target=_write_forever, args=(redis_server.port, answers), daemon=True)
        writer.start()
        time.sleep(rng.uniform(0.02, 0.4))
        writer.kill()
        writer.join(timeout=10)
        assert writer.exitcode == -signal.SIGKILL
        _check_consistent(redis_client)
    assert _check_consistent(redis_client) == len(CODES)
    assert len(redis_client.hgetall("ticker:lastUpdateAt")) == len(CODES)
