"""Vendors behind one interface, chosen by a spec string.

``OHLCV_SOURCE`` (inside Airflow the Variable ``ohlcv_source`` wins) is one of:

- ``fdr`` (default): FinanceDataReader, the production vendor;
- ``synthetic`` or ``synthetic:N``: the deterministic offline source with N tickers (default 50),
  optionally with switches, ``synthetic:N?split=CODE:DATE:RATIO&halt=...&bad=...``
  (see ``ohlcv.sources.synthetic``);
- ``csv:<dir>``: a directory of CSV files.
"""

from __future__ import annotations

import os

from ohlcv.errors import ConfigurationError
from ohlcv.sources.base import MARKETS, Source
from ohlcv.sources.csvdir import CsvDirSource
from ohlcv.sources.fdr import FdrSource
from ohlcv.sources.synthetic import DEFAULT_TICKERS, SyntheticSource

DEFAULT_SPEC = "fdr"

__all__ = ["MARKETS", "CsvDirSource", "FdrSource", "Source", "SyntheticSource", "from_spec", "spec_from_env"]


def spec_from_env() -> str:
    """The source spec in ``OHLCV_SOURCE``, or the default."""
    return os.environ.get("OHLCV_SOURCE", "").strip() or DEFAULT_SPEC


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
            return SyntheticSource.from_options(tickers, query) if query else SyntheticSource(tickers)
    if kind == "csv" and argument:
        return CsvDirSource(argument)
    raise ConfigurationError(f"unknown source {spec!r}: expected 'fdr', 'synthetic', 'synthetic:N' or 'csv:<dir>'")
