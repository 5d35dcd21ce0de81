"""Vendors behind one interface, chosen by a spec string.

``OHLCV_SOURCE`` (inside Airflow the Variable ``ohlcv_source`` wins) is one of:

- ``fdr`` (default): FinanceDataReader, the production vendor;
- ``synthetic`` or ``synthetic:N``: the deterministic offline source with N tickers (default 50),
  optionally with market events, ``synthetic:N?split=CODE:DATE:RATIO&halt=...`` (see
  ``ohlcv.sources.synthetic``), and for tests with failures, ``...&fail=CODE&down=5`` (see
  ``ohlcv.sources.testing``);
- ``csv:<dir>``: a directory of CSV files.

With a KRX Open API key (``OHLCV_KRX_OPENAPI_KEY``, or the Connection ``ohlcv_krx_openapi``),
``second_tables`` gives the second source of the market's tables (``ohlcv.sources.krx_openapi``).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from ohlcv.errors import ConfigurationError
from ohlcv.sources.base import MARKETS, Source
from ohlcv.sources.csvdir import CsvDirSource
from ohlcv.sources.fdr import FdrSource
from ohlcv.sources.synthetic import DEFAULT_TICKERS, SyntheticSource

__all__ = [
    "MARKETS",
    "CsvDirSource",
    "FdrSource",
    "Source",
    "SyntheticSource",
    "from_spec",
    "second_tables",
]


def from_spec(spec: str) -> Source:
    """The source a spec string names; raise ``ConfigurationError`` for an unknown one."""
    kind, _, argument = spec.strip().partition(":")
    if kind == "fdr" and not argument:
        return FdrSource()
    if kind.startswith("synthetic"):
        kind, _, query = spec.strip().partition("?")
        size = kind.partition(":")[2]
        if kind in ("synthetic", f"synthetic:{size}") and (size.isdigit() or not size):
            tickers = int(size) if size else DEFAULT_TICKERS
            return _synthetic(spec.strip(), tickers, query) if query else SyntheticSource(tickers)
    if kind == "csv" and argument:
        return CsvDirSource(argument)
    raise ConfigurationError(f"unknown source {spec!r}: expected 'fdr', 'synthetic', 'synthetic:N' or 'csv:<dir>'")


def second_tables(key: str | None) -> Source | None:
    """The second source of the market's tables for a KRX Open API ``key`` (None: none)."""
    if not key:
        return None
    from ohlcv.sources.krx_openapi import KrxOpenApiSource

    return KrxOpenApiSource(key)


def _synthetic(spec: str, tickers: int, query: str) -> Source:
    """The synthetic vendor with a spec's switches: market events, and the test-only failures."""
    from ohlcv.sources import testing

    try:
        parsed = parse_qs(query, strict_parsing=True)
    except ValueError:
        raise ConfigurationError(f"source {spec!r}: the switches after '?' are not name=value pairs") from None
    options = {key: ",".join(values).split(",") for key, values in parsed.items()}
    known = SyntheticSource.SWITCHES | testing.SWITCHES
    unknown = set(options) - known
    if unknown:
        raise ConfigurationError(f"unknown synthetic switches {sorted(unknown)}; expected {sorted(known)}")
    events = {key: values for key, values in options.items() if key in SyntheticSource.SWITCHES}
    faults = {key: values for key, values in options.items() if key in testing.SWITCHES}
    try:
        vendor = SyntheticSource.from_options(tickers, events)
        return testing.shared(spec, lambda: testing.from_options(vendor, faults)) if faults else vendor
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"source {spec!r}: a switch has a value it cannot take ({exc})") from None
