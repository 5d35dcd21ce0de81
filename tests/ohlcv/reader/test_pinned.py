"""Reads pinned to a revision return what a read returned when it was current: after a split
repaired a history, after the night settled the evening's volumes, after older rows were added;
an unknown or expired revision is one clear error."""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from ohlcv import OhlcvCache, calendar
from ohlcv.errors import InvalidDate, NoData, RevisionExpired, UnknownRevision
from ohlcv.indexer.runner import run_once
from ohlcv.keys import KeySpace
from ohlcv.settings import Settings
from ohlcv.sources import SyntheticSource
from ohlcv.sources.testing import FaultySource
from ohlcv.store import OhlcvStore

DAYS = [day.date() for day in calendar.sessions(dt.date(2026, 11, 2), dt.date(2026, 11, 13))]
SPLIT, SPLIT_DAY = "000200", DAYS[4]
CODES = ["000100", "000200", "000300", "000400", "KS11"]


def vendor() -> SyntheticSource:
    return SyntheticSource(4, splits={SPLIT: (SPLIT_DAY, 10)})


def evening(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(10, 23), ZoneInfo("Europe/London"))


def reader(redis_client) -> OhlcvCache:
    return OhlcvCache(redis_client, vendor(), settings=Settings(client_cache_mb=0))


def test_every_revision_reads_as_it_read_when_it_was_current(store, redis_client):
    source, seen = vendor(), {}
    for day in DAYS:
        run_once(store, source, day, run_id=f"run-{day}", settings=Settings(), now=evening(day))
        cache = reader(redis_client)  # a report running right after the run
        revision = cache.revision()
        assert revision.cut == day
        seen[revision.id] = (
            cache.get_many(CODES, as_frame=True),
            cache.get("000100", "2026-11-3", as_="arrow"),
        )
    assert sorted(seen) == list(range(1, len(DAYS) + 1))  # each run moved the cut: a new revision each
    later = reader(redis_client)
    for revision, (long, one) in seen.items():
        pd.testing.assert_frame_equal(later.get_many(CODES, as_frame=True, revision=revision), long, check_exact=True)
        assert later.get("000100", "2026-11-3", as_="arrow", revision=revision).equals(one)
    # not vacuous: the split repaired the whole history, so the revisions before it differ now
    before_split = seen[4][0].xs(SPLIT, level="Ticker")
    now = later.get(SPLIT, end=DAYS[3])
    assert (before_split["Close"] / now["Close"]).median() == pytest.approx(10, rel=0.02)
    assert store.client.zcard(f"ohlcv:versions:{SPLIT}") == 1


def test_a_settled_volume_reads_preliminary_at_the_evening_s_revision(store, redis_client):
    day = DAYS[1]
    source = FaultySource(vendor(), preliminary={day})
    run_once(store, source, DAYS[0], run_id="first", settings=Settings(), now=evening(DAYS[0]))
    run_once(store, source, day, run_id="evening", settings=Settings(), now=evening(day))
    cache = reader(redis_client)
    evening_revision, evening_frames = cache.revision(), cache.get_many(CODES)
    assert evening_revision.preliminary == (day,)
    source.preliminary.clear()  # the night's final table
    night = dt.datetime.combine(day, dt.time(18, 23), ZoneInfo("Europe/London"))
    outcome = run_once(store, source, day, run_id="night", settings=Settings(), now=night)
    assert outcome.record["settled"] == 4
    night_revision = cache.revision()
    assert night_revision.id == evening_revision.id + 1  # the cut stayed; the settled volumes made a new one
    assert night_revision.cut == evening_revision.cut == day
    assert night_revision.preliminary == ()
    for code in CODES[:4]:
        final = cache.get(code)["Volume"].iloc[-1]
        pinned = cache.get(code, revision=evening_revision.id)
        pd.testing.assert_frame_equal(pinned, evening_frames[code], check_exact=True)
        assert pinned["Volume"].iloc[-1] < final  # preliminary, as the evening read it
        assert cache.get(code, revision=night_revision.id)["Volume"].iloc[-1] == final


def test_a_revision_stays_while_nothing_changes(store, redis_client):
    source = vendor()
    run_once(store, source, DAYS[0], run_id="one", settings=Settings(), now=evening(DAYS[0]))
    first = store.current_revision()
    run_once(store, source, DAYS[0], run_id="again", settings=Settings(), now=evening(DAYS[0]))
    assert store.current_revision() == first
    assert (first.id, first.cut, first.count, first.run_id) == (1, DAYS[0], 5, "one")
    assert first.expires == first.published.date() + dt.timedelta(days=400)


def test_rows_added_before_the_first_keep_the_value_older_revisions_saw(store, redis_client):
    source = vendor()
    whole = source.history("000100", None, DAYS[2])
    store.write_series("000100", whole.loc["2026-01-02":], source.name)
    store.publish(DAYS[2], 1)
    cache = reader(redis_client)
    revision, short = cache.revision(), cache.get("000100")
    outcome = store.write_series("000100", whole, source.name)  # the vendor's answer reaches further back
    assert outcome.status == "written"
    assert cache.get("000100").index[0] < short.index[0]
    pd.testing.assert_frame_equal(cache.get("000100", revision=revision.id), short, check_exact=True)


@pytest.fixture
def published(store, redis_client):
    source = vendor()
    for day in DAYS[:2]:
        run_once(store, source, day, run_id=f"run-{day}", settings=Settings(), now=evening(day))
    return reader(redis_client)


@pytest.mark.parametrize(
    ("revision", "error", "message"),
    [
        (7, UnknownRevision, "no run published revision 7; the current one is 2"),
        ("2x", UnknownRevision, "give a revision id"),
        (0, UnknownRevision, "give a revision id"),
        (True, UnknownRevision, "give a revision id"),
    ],
)
def test_an_unknown_revision_is_refused_and_writes_nothing(published, redis_client, revision, error, message):
    before = sorted(redis_client.keys("*"))
    with pytest.raises(error, match=message):
        published.get("000100", revision=revision)
    with pytest.raises(error):
        published.get_many(["000100"], revision=revision)
    assert sorted(redis_client.keys("*")) == before


def test_an_expired_revision_names_when_it_expired(published, store, redis_client):
    record = json.loads(redis_client.hget("ohlcv:revisions", 1))
    redis_client.hset("ohlcv:revisions", 1, json.dumps({**record, "expires": "2020-01-01"}))  # published long ago
    with pytest.raises(RevisionExpired, match=r"revision 1 \(cut 2026-11-02.*expired on 2020-01-01") as raised:
        published.get("000100", revision=1)
    assert raised.value.expired.year == 2020
    assert issubclass(RevisionExpired, UnknownRevision)
    assert published.get("000100", revision="2").index[-1].date() == DAYS[1]  # the digits of an id are fine


def test_pinned_reads_end_at_the_revision_s_cut_and_refuse_latest(published, redis_client):
    store = OhlcvStore(redis_client, KeySpace())
    run_once(store, vendor(), DAYS[2], run_id="third", settings=Settings(), now=evening(DAYS[2]))
    assert published.get("000100", revision=1).index[-1].date() == DAYS[0]
    assert published.get("000100", end="2099-1-1", revision=1).index[-1].date() == DAYS[0]
    assert published.get("000100", "2026-11-3", "2026-11-3", revision=1).empty
    with pytest.raises(ValueError, match="latest=True"):
        published.get("000100", latest=True, revision=1)
    with pytest.raises(InvalidDate):
        published.get("000100", "2026-11-3", "2026-11-2", revision=1)
    with pytest.raises(NoData, match="revision 1 holds no value"):
        published.get("000900", revision=1)  # pinned reads never ask the vendor


def test_a_kept_value_gone_is_an_expired_revision(published, store, redis_client):
    run_once(store, vendor(), SPLIT_DAY, run_id="split", settings=Settings(), now=evening(SPLIT_DAY))
    (kept,) = redis_client.keys(f"ohlcv:version:{SPLIT}:*")
    redis_client.delete(kept)
    with pytest.raises(RevisionExpired, match="no longer kept"):
        published.get(SPLIT, revision=1)


def test_a_repair_landing_during_a_pinned_read_is_not_read(published, store, redis_client, monkeypatch):
    """The read takes the current value first and then looks for a value kept since the
    revision: a repair landing after that look finds the value already read (looked up first,
    the read would take the repaired value)."""
    from ohlcv.reader import pinned

    expected = published.get(SPLIT, revision=2)
    looked_up = pinned._replaced_since

    def repaired_meanwhile(*args):
        found = looked_up(*args)
        split = vendor()
        store.write_series(SPLIT, split.history(SPLIT, None, SPLIT_DAY), split.name)  # the split lands now
        return found

    monkeypatch.setattr(pinned, "_replaced_since", repaired_meanwhile)
    pd.testing.assert_frame_equal(published.get(SPLIT, revision=2), expected, check_exact=True)
    assert redis_client.zcard(f"ohlcv:versions:{SPLIT}") == 1  # it did land


def test_a_kept_value_lives_until_the_end_of_the_day_its_revision_expires(published, store, redis_client):
    run_once(store, vendor(), SPLIT_DAY, run_id="split", settings=Settings(), now=evening(SPLIT_DAY))
    (kept,) = redis_client.keys(f"ohlcv:version:{SPLIT}:*")
    expires = store.revision_of(2).expires  # the revision current when the split replaced the value
    until = dt.datetime.combine(expires + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()
    for key in (kept, f"ohlcv:versions:{SPLIT}"):
        assert abs(dt.datetime.now(dt.UTC).timestamp() + redis_client.ttl(key) - until) <= 2, key


def test_rows_added_before_the_first_drop_the_period_keys_that_lack_them(store, redis_client):
    source = vendor()
    whole = source.history("000100", None, DAYS[2])
    store.write_series("000100", whole.loc["2026-01-02":], source.name)
    store.publish(DAYS[2], 1)
    cache = reader(redis_client)
    assert len(cache.get("000100", "2025-06-02", DAYS[2])) < len(whole.loc["2025-06-02":])  # kept as a period key
    store.write_series("000100", whole, source.name)  # the vendor's answer reaches further back
    assert len(cache.get("000100", "2025-06-02", DAYS[2])) == len(whole.loc["2025-06-02":])
