import datetime as dt
import time

import pytest

from ohlcv.errors import ConfigurationError, SourceUnavailable
from ohlcv.sources import SyntheticSource, from_spec
from ohlcv.sources.testing import FaultySource, forget_shared


def test_a_lagging_vendor_describes_an_earlier_session():
    lagging = FaultySource(SyntheticSource(3), snapshot_lag=1)
    assert lagging.snapshot(dt.date(2026, 11, 23)).session == dt.date(2026, 11, 20)
    assert from_spec("synthetic:3?snapshot_lag=2").snapshot(dt.date(2026, 11, 23)).session == dt.date(2026, 11, 19)


def test_latency_makes_every_history_call_take_that_long():
    source = from_spec("synthetic:3?latency=0.2")
    code = source.list_universe("KRX")[0]
    began = time.perf_counter()
    source.history(code, None, dt.date(2026, 11, 20))
    assert time.perf_counter() - began >= 0.2


def test_the_plain_synthetic_vendor_has_no_failure_machinery():
    plain = from_spec("synthetic:3?split=000100:2026-11-16:50")
    assert type(plain) is SyntheticSource
    assert not hasattr(plain, "calls")


def test_a_spec_with_failure_switches_wraps_the_synthetic_vendor_with_its_market_events():
    source = from_spec("synthetic:3?split=000100:2026-11-16:50&fail=000200")
    assert isinstance(source, FaultySource)
    assert source.inner.splits == {"000100": (dt.date(2026, 11, 16), 50.0)}
    with pytest.raises(SourceUnavailable, match="000200"):
        source.history("000200", None, dt.date(2026, 11, 20))


def test_the_first_calls_counted_by_a_switch_span_every_task_of_the_process_until_forgotten():
    end = dt.date(2026, 11, 20)
    with pytest.raises(SourceUnavailable):
        from_spec("synthetic:3?down=1").history("000100", None, end)
    assert not from_spec("synthetic:3?down=1").history("000100", None, end).empty  # another task, same process
    forget_shared()
    with pytest.raises(SourceUnavailable):
        from_spec("synthetic:3?down=1").history("000100", None, end)


def test_unknown_switches_and_bad_payload_kinds_are_refused():
    with pytest.raises(ConfigurationError, match="unknown synthetic switches"):
        from_spec("synthetic:3?explode=1")
    with pytest.raises(ConfigurationError, match="unknown bad payload kinds"):
        from_spec("synthetic:3?bad=000100:gibberish")
