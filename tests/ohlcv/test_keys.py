import datetime as dt

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ohlcv.errors import InvalidDate, InvalidKeyPrefix, InvalidTicker
from ohlcv.keys import KeySpace, to_date, validate_period, validate_ticker


@pytest.mark.parametrize("code", ["005930", "000660", "0126Z0", "00680K", "KS11", "KQ11", "KS200"])
def test_valid_codes_are_kept_as_they_are(code):
    assert validate_ticker(code) == code


def test_lower_case_letters_are_upper_cased():
    assert validate_ticker("0126z0") == "0126Z0"
    assert validate_ticker("ks11") == "KS11"


@pytest.mark.parametrize(
    "code",
    [
        "",
        "5930",
        "0059300",
        " 005930",
        "005930 ",
        "005930\n",
        "00593:",
        "00593*",
        "0059 0",
        "ticker:005930",
        "005930:2022-01-01:2022-12-31",
        "*",
        "0126I0",  # I, O and U are not used by the code reform
        "00680A",  # the sixth character is a digit or K to N
        "٠٠٥٩٣٠",  # Arabic-Indic digits are not ASCII digits
        "SPX",  # index symbols only from the explicit list
        "KS11:*",
    ],
)
def test_invalid_codes_are_rejected(code):
    with pytest.raises(InvalidTicker, match="invalid ticker"):
        validate_ticker(code)


@pytest.mark.parametrize("code", [None, 5930, b"005930", ["005930"]])
def test_non_strings_are_rejected(code):
    with pytest.raises(InvalidTicker, match="must be a string"):
        validate_ticker(code)


@given(st.text(max_size=12))
def test_nothing_that_validates_can_break_a_key(text):
    try:
        code = validate_ticker(text)
    except InvalidTicker:
        return
    assert code.isascii()
    assert code.isalnum()
    assert code.upper() == code


def test_original_key_layout():
    keys = KeySpace()
    assert keys.series("005930") == "ticker:005930"
    assert keys.period("005930", "2022-9-1", "2022-09-30") == "ticker:005930:2022-09-01:2022-09-30"
    assert keys.last_update_hash == "ticker:lastUpdateAt"
    assert keys.is_updating == "getOHLCV_isUpdating"
    assert keys.last_update_at == "getOHLCV_lastUpdateAt"
    assert keys.last_update_count == "getOHLCV_lastUpdateCount"


def test_prefix_goes_in_front_of_every_key():
    keys = KeySpace("staging:")
    assert keys.series("KS11") == "staging:ticker:KS11"
    assert keys.last_update_hash == "staging:ticker:lastUpdateAt"
    assert keys.is_updating == "staging:getOHLCV_isUpdating"


@pytest.mark.parametrize("prefix", ["a b:", "x*", "p\n", "::"])
def test_prefix_with_unsafe_characters_is_rejected(prefix):
    with pytest.raises(InvalidKeyPrefix, match="invalid key prefix"):
        KeySpace(prefix)


def test_period_key_refuses_a_code_that_would_inject():
    with pytest.raises(InvalidTicker):
        KeySpace().period("005930:*", "2022-01-01", "2022-12-31")


@pytest.mark.parametrize(
    "value",
    ["2022-9-12", "2022-09-12", "20220912", " 2022-09-12 ", dt.date(2022, 9, 12), dt.datetime(2022, 9, 12, 15, 30)],
)
def test_dates_in_many_spellings(value):
    assert to_date(value) == dt.date(2022, 9, 12)


def test_timestamp_is_a_date():
    assert to_date(pd.Timestamp("2022-09-12 09:00", tz="Asia/Seoul")) == dt.date(2022, 9, 12)


@pytest.mark.parametrize("value", ["2022-13-01", "2022-02-30", "12/09/2022", "yesterday", "", None, 20220912, pd.NaT])
def test_bad_dates_are_rejected(value):
    with pytest.raises(InvalidDate):
        to_date(value)


def test_start_after_end_is_rejected():
    with pytest.raises(InvalidDate, match="after end"):
        validate_period("2022-10-01", "2022-9-30")
