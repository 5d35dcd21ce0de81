"""The Node.js reader in ``examples/node-reader`` reads what this project writes, from the spec alone.

A throwaway redis-server is filled as ``make demo`` fills it: the DAG's steps (``ohlcv.indexer.runner``)
over the demo's synthetic universe, run in this process instead of under ``airflow dags test``
(about 2 s instead of 25 s). Period keys are added through ``OhlcvCache``, as forward tests add
them, and one value with ``<i8`` and ``<f8`` columns through the codec. Then ``npm ci`` and
``node --test`` run against it, and the reader's JSON output is compared with Python's decode
of the same keys. Without node or npm the Node tests are skipped, unless
``OHLCV_REQUIRE_NODE`` is set, as ``.ci/run`` does.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import subprocess
from dataclasses import dataclass

import msgpack
import pandas as pd
import pytest
import redis

from ohlcv import OhlcvCache, calendar, codec
from ohlcv.indexer.runner import run_once
from ohlcv.keys import KeySpace
from ohlcv.redis_server import ThrowawayRedis
from ohlcv.settings import Settings
from ohlcv.sources import from_spec
from ohlcv.store import OhlcvStore
from scripts import demo
from tests.conftest import ROOT

READER = ROOT / "examples" / "node-reader"
#: not a key of the package: a value whose Volume needs BigInt and whose prices are doubles
WIDE = "example:wide"


@dataclass(frozen=True)
class Filled:
    url: str
    client: redis.Redis
    as_of: dt.date
    codes: list[str]
    periods: dict[str, str]  # what the period was asked for -> the key it was stored under


def fill_like_the_demo(store: OhlcvStore) -> tuple[dt.date, list[str]]:
    """What one ``make demo`` run writes: the DAG's steps over the demo's synthetic universe."""
    source = from_spec(f"synthetic:{demo.TICKERS}")
    as_of = calendar.last_complete_session(pd.Timestamp.now(tz="UTC"))
    outcome = run_once(store, source, as_of, settings=Settings(), run_id="demo")
    assert not outcome.still_failing
    return as_of, [*source.list_universe("KRX"), "KS11"]


def add_periods(client: redis.Redis, as_of: dt.date, codes: list[str]) -> dict[str, str]:
    """Period keys as forward tests leave them: asked with sloppy dates, an open end, before a listing."""
    cache = OhlcvCache(client, from_spec(f"synthetic:{demo.TICKERS}"))
    old = [code for code in codes if codec.decode(client.get(f"ticker:{code}")).index[0] < pd.Timestamp("2023-1-1")]
    recent = as_of - dt.timedelta(days=30)
    asked = {
        **{f"{code} 2024-1-1 20241231": (code, "2024-1-1", "20241231") for code in old[:3]},
        "KS11 1990-01-01 1990-12-31": ("KS11", "1990-01-01", "1990-12-31"),  # starts before the history
        f"{old[0]} {recent} 2099-12-31": (old[0], recent.isoformat(), "2099-12-31"),  # cut at the published session
    }
    before = set(client.keys("ticker:*:*:*"))
    stored = {}
    for name, (code, start, end) in asked.items():
        cache.get(code, start, end)
        (key,) = {key.decode() for key in client.keys(f"ticker:{code}:*:*")} - before - set(stored.values())
        stored[name] = key
    return stored


@pytest.fixture(scope="module")
def filled():
    with ThrowawayRedis() as server:
        client = server.client()
        as_of, codes = fill_like_the_demo(OhlcvStore(client, KeySpace()))
        periods = add_periods(client, as_of, codes)
        wide = codec.decode(client.get(f"ticker:{codes[0]}")).iloc[:40].copy()
        wide["Volume"] += 2**53  # beyond a JavaScript Number's exact integers
        wide["Close"] = wide["Close"] / 3
        client.set(WIDE, codec.encode(wide, "test"))
        yield Filled(server.url, client, as_of, codes, periods)
        client.close()


@pytest.fixture(scope="module")
def node_reader() -> str:
    """``node``, after ``npm ci`` in the reader's directory (npm's cache is used when it can be)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    required = os.environ.get("OHLCV_REQUIRE_NODE", "") not in ("", "0")
    if not (node and npm):
        missing = ", ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
        if required:
            pytest.fail(f"missing {missing}, required here (OHLCV_REQUIRE_NODE): apt-get install nodejs npm")
        pytest.skip(f"missing {missing} (.ci/run installs nodejs and npm)")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=READER, capture_output=True, text=True
    )
    if done.returncode != 0:
        if required:
            pytest.fail(f"npm ci failed in {READER}:\n{done.stderr}")
        pytest.skip(f"npm ci failed (offline without npm's cache?): {done.stderr.strip().splitlines()[-1:]}")
    return node


def header_of(blob: bytes) -> dict:
    """Every field of an OHLCV_STR value but the column bytes, read as the spec says: a MessagePack map."""
    return {key: value for key, value in msgpack.unpackb(blob, raw=False).items() if key != "data"}


def python_json(blob: bytes) -> dict:
    """A value as the Node reader prints it, from Python's decode."""
    header, frame = header_of(blob), codec.decode(blob)
    columns = {}
    for name in codec.VALUE_COLUMNS:
        values = frame[name].tolist()
        columns[name] = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
    fields = ("format", "version", "rows", "source", "dtypes")
    return {
        **{field: header[field] for field in fields},
        "dates": [day.date().isoformat() for day in frame.index],
        "columns": columns,
    }


def node_json(line: str) -> dict:
    """A line of the Node reader's output, its int64 strings (beyond 2^53) read as integers."""
    value = json.loads(line)
    value["columns"] = {
        name: [int(v) if isinstance(v, str) else v for v in values] for name, values in value["columns"].items()
    }
    return value


def test_node_reader_passes_its_tests_against_the_demo_data(node_reader, filled):
    done = subprocess.run(
        [node_reader, "--test", "--test-reporter=tap", "reader.test.mjs"],
        cwd=READER,
        env={**os.environ, "OHLCV_REDIS_URL": filled.url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
    assert "# SKIP" not in done.stdout  # the tests against Redis ran


def test_node_reader_decodes_values_exactly_as_python_does(node_reader, filled):
    """Every row of some histories (node --test has checked all of them), every period key, and
    the value with <i8 and <f8 columns."""
    sample = sorted({*filled.codes[:4], "KS11", *(key.split(":")[1] for key in filled.periods.values())})
    keys = [f"ticker:{code}" for code in sample] + sorted(filled.periods.values()) + [WIDE]
    done = subprocess.run(
        [node_reader, "reader.mjs", *keys],
        cwd=READER,
        env={**os.environ, "OHLCV_REDIS_URL": filled.url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(keys)
    for key, line in zip(keys, lines, strict=True):
        value = node_json(line)
        assert value.pop("key") == key
        assert value == python_json(filled.client.get(key)), key
    assert header_of(filled.client.get(WIDE))["dtypes"][4:6] == ["<f8", "<i8"]


def test_period_keys_are_named_by_the_requested_dates(filled):
    """The bounds are the dates asked for, normalised, not the first and last session inside;
    an end after the published session is cut at it."""
    stored = filled.periods
    code = next(name.split()[0] for name in stored if name.endswith("2024-1-1 20241231"))
    assert stored[f"{code} 2024-1-1 20241231"] == f"ticker:{code}:2024-01-01:2024-12-31"
    assert stored["KS11 1990-01-01 1990-12-31"] == "ticker:KS11:1990-01-01:1990-12-31"
    recent = filled.as_of - dt.timedelta(days=30)
    (open_end,) = [key for name, key in stored.items() if name.endswith(" 2099-12-31")]
    assert open_end.endswith(f":{recent.isoformat()}:{filled.as_of.isoformat()}")
    ks11 = codec.decode(filled.client.get(stored["KS11 1990-01-01 1990-12-31"]))
    assert ks11.index[0] == pd.Timestamp("1990-01-03")  # the first session, not the key's start
    assert math.isnan(ks11["Change"].iloc[0])  # nothing before the history's first session
    period = codec.decode(filled.client.get(stored[f"{code} 2024-1-1 20241231"]))
    assert (period.index[0], period.index[-1]) == (pd.Timestamp("2024-01-02"), pd.Timestamp("2024-12-30"))
    history = codec.decode(filled.client.get(f"ticker:{code}"))
    assert period["Change"].iloc[0] == history.loc[period.index[0], "Change"]
    assert not math.isnan(period["Change"].iloc[0])  # the real return from the session before


RESEARCH = "research:"  # a key space of its own beside the demo's


def fill_research(client: redis.Redis) -> OhlcvStore:
    """Two weeks of daily runs over a split, a delisting, a new listing and an evening's
    preliminary volumes settled by the night run: revisions with repaired and settled values."""
    from zoneinfo import ZoneInfo

    from ohlcv.sources import SyntheticSource
    from ohlcv.sources.testing import FaultySource

    days = [day.date() for day in calendar.sessions(dt.date(2026, 11, 2), dt.date(2026, 11, 13))]
    vendor = SyntheticSource(
        6, splits={"000200": (days[5], 10)}, delisted={"000300": days[3]}, listed={"000500": days[6]}
    )
    source = FaultySource(vendor, preliminary={days[7]})
    store = OhlcvStore(client, KeySpace(RESEARCH))
    for day in days:
        evening = dt.datetime.combine(day, dt.time(10, 23), ZoneInfo("Europe/London"))
        assert not run_once(
            store, source, day, run_id=f"research-{day}", settings=Settings(), now=evening
        ).still_failing
        if day == days[7]:
            source.preliminary.clear()  # the night's final table settles the evening's volumes
            night = dt.datetime.combine(day, dt.time(18, 23), ZoneInfo("Europe/London"))
            run_once(store, source, day, run_id=f"research-night-{day}", settings=Settings(), now=night)
    return store


def test_node_reads_the_universe_and_pinned_revisions_as_python_does(node_reader, filled):
    store = fill_research(filled.client)
    cache = OhlcvCache(filled.client, settings=Settings(key_prefix=RESEARCH, client_cache_mb=0))
    env = {**os.environ, "OHLCV_REDIS_URL": filled.url, "OHLCV_KEY_PREFIX": RESEARCH}

    def node(*args: str) -> list[dict]:
        done = subprocess.run([node_reader, "reader.mjs", *args], cwd=READER, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    record = store.universe_record()
    assert len(record.sessions) == 10
    for session in record.sessions:
        (found,) = node("--universe", session.isoformat())
        assert found["exact"] is True
        assert found["markets"] == dict(cache.universe(session).markets), session
    (kosdaq,) = node("--universe", record.sessions[0].isoformat(), "KOSDAQ")
    assert kosdaq["markets"] == dict(cache.universe(record.sessions[0], "KOSDAQ").markets)

    codes = ["000100", "000200", "000300", "000600", "KS11"]
    current = cache.revision().id
    assert current == 11  # ten sessions, and the night that settled one of them
    for revision in range(1, current + 1):
        lines = node("--revision", str(revision), *codes)
        for code, line in zip(codes, lines, strict=True):
            line.pop("code"), line.pop("revision")
            frame = cache.get(code, revision=revision)
            expected = python_json(codec.encode(frame, "synthetic"))
            assert node_json(json.dumps(line))["columns"] == expected["columns"], (code, revision)
            assert line["dates"] == expected["dates"], (code, revision)
    # not vacuous: revision 5 saw 000200 before its split and the evening's preliminary volumes
    assert filled.client.zcard(f"{RESEARCH}ohlcv:versions:000200") == 1
    assert filled.client.exists(f"{RESEARCH}ohlcv:settled:2026-11-11")
    before_split = cache.get("000200", revision=5)  # through 2026-11-06, the session before the split
    assert before_split.index[-1] == pd.Timestamp("2026-11-06")
    split_adjusted = cache.get("000200", end="2026-11-06")["Close"].iloc[-1]
    assert before_split["Close"].iloc[-1] / split_adjusted == pytest.approx(10, rel=0.02)
    evening = cache.get("000100", revision=8)["Volume"].iloc[-1]  # 2026-11-11, before the night settled it
    assert evening < cache.get("000100", end="2026-11-11")["Volume"].iloc[-1]
