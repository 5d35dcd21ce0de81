"""What a good OHLCV frame is: a normaliser for vendor frames and a pandera schema that gates writes.

The canonical frame has a tz-naive ``datetime64[ns]`` index named ``Date`` and the columns
Open, High, Low, Close, Volume (int64 when every value is a whole number, else float64) and
Change (float64, the close-to-close return as a fraction, NaN at most on the first row).

A frame is written only if it passes ``validate``:

- the index holds unique, increasing XKRX sessions, none after the run's ``as_of``;
- Open, High, Low, Close and Volume are present, numeric and never missing;
- High >= max(Open, Close), Low <= min(Open, Close), High >= Low, prices > 0;
- Volume >= 0.

Trading-halt rows are the one exception to the price rules, in the shape Naver reports
them: Volume 0, Open = High = Low = 0 and Close > 0 (the last traded price carried over).
"""

from __future__ import annotations

import datetime as dt
import functools
import numbers
from collections.abc import Callable

import numpy as np
import pandas as pd

from ohlcv.codec import VALUE_COLUMNS
from ohlcv.errors import BadOhlcvData, NoData, SourceUnavailable

PRICE_COLUMNS: tuple[str, ...] = ("Open", "High", "Low", "Close")
NUMBER_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "Volume")
MAX_REASONS = 3
#: the rules every trading row obeys (halt rows are exempt), by the name a failure reports
ROW_RULES = {
    "price <= 0 (not a halt row)": lambda f: (f[list(PRICE_COLUMNS)] > 0).all(axis=1),
    "High < max(Open, Close)": lambda f: f["High"] >= f[["Open", "Close"]].max(axis=1),
    "Low > min(Open, Close)": lambda f: f["Low"] <= f[["Open", "Close"]].min(axis=1),
    "High < Low": lambda f: f["High"] >= f["Low"],
}
#: a snapshot row's base price (the previous close, as the exchange adjusted it) is positive
BASE_RULE = "base price (Close - Changes) <= 0"


def _narrow(values: pd.Series) -> pd.Series:
    """Whole-number floats as int64; anything that is not plainly numeric is left for the schema."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values
    array = values.to_numpy(dtype="float64", na_value=np.nan)
    if np.isfinite(array).all() and np.array_equal(array, np.trunc(array)):
        return pd.Series(array.astype("int64"), index=values.index)
    return pd.Series(array, index=values.index)


def _filled_change(change: pd.Series, computed: np.ndarray | None) -> np.ndarray:
    """The vendor's Change, its gaps after the first row filled from Close: OHLCV_STR allows
    NaN on the first row only."""
    values = change.to_numpy()
    if computed is None or not _numeric(change):
        return values
    values = values.astype("float64")
    gaps = np.isnan(values)
    gaps[:1] = False
    return np.where(gaps, computed, values)


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Bring a vendor frame into canonical shape without judging it (``validate`` judges).

    Moves a ``Date`` column to the index, drops time zones and times of day, narrows
    whole-number prices to int64 and computes ``Change`` from Close where the vendor gives
    none (after the first row). Never sorts, deduplicates or fills prices.
    """
    if not isinstance(frame, pd.DataFrame):
        raise BadOhlcvData(f"expected a DataFrame, got {type(frame).__name__}")
    if "Date" in frame.columns:
        frame = frame.set_index("Date")
    try:
        dates = pd.DatetimeIndex(frame.index)
    except (TypeError, ValueError) as exc:
        raise BadOhlcvData(f"the dates are not dates: {exc}") from None
    if dates.tz is not None:
        dates = dates.tz_localize(None)
    index = pd.DatetimeIndex(dates.normalize().values.astype("datetime64[ns]"), name="Date")
    columns = {name: _narrow(frame[name]).to_numpy() for name in frame.columns if name in NUMBER_COLUMNS}
    computed = None
    if "Close" in columns and pd.api.types.is_numeric_dtype(columns["Close"]):
        computed = pd.Series(columns["Close"], dtype="float64").pct_change().to_numpy()
    if "Change" in frame.columns:
        columns["Change"] = _filled_change(frame["Change"], computed)
    elif computed is not None:
        columns["Change"] = computed
    order = [name for name in VALUE_COLUMNS if name in columns]
    return pd.DataFrame(columns, index=index, columns=order)


def halt_rows(frame: pd.DataFrame) -> pd.Series:
    """The documented trading-halt rows: no trades, Open = High = Low = 0, the close carried over."""
    return (
        (frame["Volume"] == 0)
        & (frame["Open"] == 0)
        & (frame["High"] == 0)
        & (frame["Low"] == 0)
        & (frame["Close"] > 0)
    )


def _numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def _row_checks():
    """``ROW_RULES`` as pandera checks."""
    import pandera.pandas as pa

    return [pa.Check(lambda f, rule=rule: halt_rows(f) | rule(f), error=name) for name, rule in ROW_RULES.items()]


def _numeric_columns(names: tuple[str, ...]) -> dict:
    import pandera.pandas as pa

    numeric = pa.Check(_numeric, name="numeric", error="not numeric")
    return {name: pa.Column(None, checks=[numeric], nullable=False) for name in names}


@functools.cache
def _schemas(as_of: dt.date):
    """Two pandera schemas: columns and dates first, then the row rules on frames that passed."""
    import pandera.pandas as pa

    from ohlcv import calendar

    def sessions_only(index: pd.Index) -> pd.Series:
        days = calendar.sessions(index.min().date(), index.max().date()) if len(index) else index
        return pd.Series(index.isin(days), index=index)

    columns = _numeric_columns(NUMBER_COLUMNS)
    columns["Change"] = pa.Column(None, checks=[pa.Check(_numeric, error="not numeric")], nullable=True, required=False)
    last = pd.Timestamp(as_of)
    shape = pa.DataFrameSchema(
        columns,
        index=pa.Index(
            "datetime64[ns]",
            name="Date",
            unique=True,
            checks=[
                pa.Check(lambda index: index.is_monotonic_increasing, error="dates not increasing"),
                pa.Check(lambda index: index <= last, error=f"date after as_of {as_of.isoformat()}"),
                pa.Check(sessions_only, error="not an XKRX session"),
            ],
        ),
        checks=[pa.Check(lambda frame: len(frame) > 0, error="no rows")],
        name="OHLCV",
    )
    return shape, _rows_schema()


@functools.cache
def _rows_schema():
    import pandera.pandas as pa

    return pa.DataFrameSchema(
        {"Volume": pa.Column(None, checks=[pa.Check.ge(0, error="Volume < 0")])}, checks=_row_checks(), name="OHLCV"
    )


@functools.cache
def _snapshot_schema():
    """The snapshot's rows: numbers everywhere, a positive base price, and the history's row rules."""
    import pandera.pandas as pa

    columns = _numeric_columns((*NUMBER_COLUMNS, "Changes"))
    columns["Volume"] = pa.Column(None, checks=[pa.Check.ge(0, error="Volume < 0")], nullable=False)
    base = pa.Check(lambda f: (f["Close"] - f["Changes"]) > 0, error=BASE_RULE)
    return pa.DataFrameSchema(columns, checks=[*_row_checks(), base], name="snapshot")


def _reason(errors) -> str:
    """One clause per failed check: what failed, on how many rows, the first date and value."""
    cases = errors.failure_cases
    clauses = []
    for check, group in cases.groupby("check", sort=False):
        first = group.iloc[0]
        named = isinstance(first["column"], str) and first["column"] in (*VALUE_COLUMNS, "Date")
        column = first["column"] if named and check not in (*ROW_RULES, BASE_RULE) else ""
        dates = sorted({pd.Timestamp(day).date() for day in group["index"] if isinstance(day, pd.Timestamp)})
        where = f" on {len(dates)} row{'s' if len(dates) != 1 else ''}, first {dates[0]}" if dates else ""
        value = first["failure_case"]
        value = value.item() if isinstance(value, np.generic) else value
        shown = f" (value {value!r})" if column and column != "Date" and not isinstance(value, bool) else ""
        clauses.append(f"{column + ': ' if column else ''}{check}{where}{shown}")
    return "; ".join(clauses[:MAX_REASONS]) + (
        f"; and {len(clauses) - MAX_REASONS} more" if len(clauses) > MAX_REASONS else ""
    )


def validate(frame: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Return the canonical form of ``frame`` if it is a good OHLCV series through ``as_of``.

    Raises ``BadOhlcvData`` naming the failed checks, their dates and values.
    """
    import pandera.errors

    candidate = canonical(frame)
    missing = [name for name in NUMBER_COLUMNS if name not in candidate.columns]
    if missing:
        raise BadOhlcvData(f"missing columns {missing}")
    for schema in _schemas(as_of):
        try:
            schema.validate(candidate, lazy=True)
        except pandera.errors.SchemaErrors as exc:
            raise BadOhlcvData(_reason(exc)) from None
    return candidate


def _numbers_only(values: pd.Series) -> pd.Series:
    """The values as float64, with NaN for anything that is not a number (text such as
    ``"78,200"`` is not read as one, as in ``validate``)."""
    if _numeric(values):
        return values.astype("float64")
    return pd.Series(
        [v if isinstance(v, numbers.Number) and not isinstance(v, bool) else np.nan for v in values],
        index=values.index,
        dtype="float64",
    )


def validate_snapshot(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Split a market snapshot (index ``Code``; Open, High, Low, Close, Volume, Changes) into the
    rows that pass and, for every other code, why it failed.

    Each row is judged on its own, so a bad row costs only its code: values that are not
    numbers, a code listed twice, a non-positive base price, and the history's row rules.
    """
    import pandera.errors

    reasons: dict[str, str] = {}
    counts = frame.index.value_counts()
    for code in counts.index[counts > 1]:
        reasons[code] = f"listed {counts[code]} times in the snapshot"
    for code in frame.index[frame[list(NUMBER_COLUMNS)].isna().all(axis=1)]:
        reasons.setdefault(code, "no prices in the snapshot")
    numbers = pd.DataFrame(
        {name: _numbers_only(frame[name]) for name in (*NUMBER_COLUMNS, "Changes")}, index=frame.index
    )
    for name in numbers.columns:
        for code in numbers.index[numbers[name].isna()]:
            reasons.setdefault(code, f"{name} is not a number (value {frame.loc[code, name]!r})")
    candidates = numbers.loc[~numbers.index.isin(list(reasons))]
    try:
        _snapshot_schema().validate(candidates, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        for code, group in exc.failure_cases.groupby("index", sort=False):
            reasons.setdefault(str(code), "; ".join(dict.fromkeys(group["check"].astype(str))))
    good = frame.loc[~frame.index.isin(list(reasons))]
    return pd.DataFrame({name: _narrow(numbers.loc[good.index, name]) for name in numbers.columns}), reasons


def against_cache(
    code: str, fetch: Callable[[], pd.DataFrame], through: dt.date, cached: dt.date | None
) -> pd.DataFrame:
    """The vendor's answer ``fetch()`` for ``code``, validated through ``through``, where the cache
    holds ``code`` through ``cached`` (None: not at all).

    A ticker with history does not vanish from the vendor, nor lose sessions: an empty answer
    (``NoData``) or one ending before ``cached`` is an outage or a truncated download
    (``SourceUnavailable``). ``NoData`` passes only for a code the cache does not hold.
    """
    try:
        raw = fetch()
    except NoData as exc:
        if cached is not None:
            raise SourceUnavailable(
                f"{code}: the vendor returned nothing, but the cache holds it through {cached}"
            ) from exc
        raise
    fresh = validate(raw, through)
    vendor_last = fresh.index[-1].date()
    if cached is not None and vendor_last < cached:
        raise SourceUnavailable(
            f"{code}: the vendor's answer ends on {vendor_last}, before the cached {cached}: a truncated download"
        )
    return fresh
