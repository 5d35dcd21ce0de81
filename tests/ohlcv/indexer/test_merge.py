import datetime as dt

import pandas as pd
import pytest

from ohlcv.errors import BadOhlcvData
from ohlcv.merge import first_difference, merge
from ohlcv.sources import SyntheticSource
from ohlcv.status import Status

SOURCE = SyntheticSource(3)


def history(code="000200", start=None, end=dt.date(2026, 11, 20), **switches):
    source = SyntheticSource(3, **switches) if switches else SOURCE
    return source.history(code, start, end)


def test_nothing_cached_writes_every_row():
    fresh = history()
    result = merge(None, fresh)
    assert (result.status, result.new_rows) == (Status.WRITTEN, len(fresh))


def test_agreeing_answer_appends_only_the_new_sessions():
    cached = history(end=dt.date(2026, 11, 13))
    result = merge(cached, history(start=dt.date(2026, 1, 1)))  # a vendor window shorter than the cache
    assert (result.status, result.new_rows) == (Status.WRITTEN, 5)
    pd.testing.assert_frame_equal(result.frame, history())  # old rows kept, new rows added


def test_same_answer_changes_nothing():
    assert merge(history(), history()).status == Status.UNCHANGED


def test_split_is_a_repair_with_the_first_date_and_ratio():
    cached = history("000100", end=dt.date(2026, 11, 13))
    fresh = history("000100", splits={"000100": (dt.date(2026, 11, 16), 50)})
    result = merge(cached, fresh)
    assert result.status == Status.REPAIRED
    assert result.first_difference == cached.index[0].date()
    assert result.ratio == pytest.approx(1 / 50, rel=0.01)
    pd.testing.assert_frame_equal(result.frame, fresh)


def test_a_vendor_correction_of_one_old_row_is_a_repair():
    cached = history()
    fresh = cached.copy()
    fresh.loc["2020-03-03", "Close"] = fresh.loc["2020-03-03", "Close"] * 1.01
    result = merge(cached, fresh)
    assert (result.status, result.first_difference) == (Status.REPAIRED, dt.date(2020, 3, 3))
    pd.testing.assert_frame_equal(result.frame, fresh)  # the vendor's corrected history replaces the cache


def test_differences_within_tolerance_are_ignored():
    cached = history()
    fresh = cached.copy()
    fresh["Close"] = fresh["Close"] + 1  # one won everywhere: rounding, not a new history
    assert first_difference(cached, fresh) is None


def test_a_missing_session_is_a_difference():
    cached = history()
    assert first_difference(cached, cached.drop(pd.Timestamp("2024-06-03")))[0] == dt.date(2024, 6, 3)


def test_changed_history_ending_before_the_cache_is_not_replaced():
    """Replacing would drop cached sessions newer than the answer: refuse instead."""
    fresh = history("000100", end=dt.date(2026, 11, 13), splits={"000100": (dt.date(2026, 11, 1), 50)})
    with pytest.raises(BadOhlcvData, match="not replaced"):
        merge(history("000100"), fresh)


def test_an_agreeing_answer_with_older_sessions_extends_the_cache_backwards():
    """A narrow window cached first must not make a later full history look 'unchanged'."""
    cached = history(start=dt.date(2026, 1, 1))
    result = merge(cached, history(end=dt.date(2026, 11, 13)))
    assert (result.status, result.new_rows) == (Status.WRITTEN, 0)
    pd.testing.assert_frame_equal(result.frame, history())
