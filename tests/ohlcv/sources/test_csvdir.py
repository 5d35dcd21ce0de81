import datetime as dt
from pathlib import Path

import pytest

from ohlcv.errors import BadOhlcvData, ConfigurationError, NoData
from ohlcv.sources import CsvDirSource, from_spec
from ohlcv.validation import validate, validate_snapshot

CSV = "Date,Open,High,Low,Close,Volume\n2024-01-02,100,110,95,105,1000\n2024-01-03,105,108,101,102,900\n"


@pytest.fixture
def directory(tmp_path):
    (tmp_path / "005930.csv").write_text(CSV)
    (tmp_path / "0126Z0.csv").write_text(CSV)
    return tmp_path


def test_universe_is_the_files(directory):
    assert CsvDirSource(directory).list_universe("KRX") == ["005930", "0126Z0"]


def test_universe_file_filters_by_market(directory):
    (directory / "universe.csv").write_text("Code,Market\n005930,KOSPI\n0126Z0,KOSDAQ\n")
    assert CsvDirSource(directory).list_universe("KOSDAQ") == ["0126Z0"]
    assert CsvDirSource(directory).list_universe("KRX") == ["005930", "0126Z0"]


def test_history_reads_and_cuts_the_window(directory):
    frame = from_spec(f"csv:{directory}").history("005930", None, dt.date(2024, 1, 2))
    assert len(frame) == 1
    assert frame["Close"].iloc[0] == 105


def test_missing_file_is_no_data(directory):
    with pytest.raises(NoData, match=r"000660\.csv"):
        CsvDirSource(directory).history("000660", None, dt.date(2024, 1, 3))


def test_a_broken_file_is_read_but_fails_validation(directory):
    (directory / "000660.csv").write_text("Date,Open\n2024-01-02,abc\n")
    frame = CsvDirSource(directory).history("000660", None, dt.date(2024, 1, 3))
    with pytest.raises(BadOhlcvData, match="missing columns"):
        validate(frame, dt.date(2024, 1, 3))


def test_missing_directory_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError):
        CsvDirSource(tmp_path / "nowhere")


def test_the_snapshot_is_built_from_the_files_with_the_change_against_the_row_before(directory):
    (directory / "000100.csv").write_text("Date,Open,High,Low,Close,Volume\n2024-01-02,50,55,49,52,10\n")
    table = CsvDirSource(directory).snapshot(dt.date(2024, 1, 5))
    assert table.session == dt.date(2024, 1, 3)  # the newest session any file holds up to the one asked for
    assert table.frame.loc["005930"].tolist() == ["KRX", 105, 108, 101, 102, 900, -3]
    assert table.frame.loc["000100", ["Open", "Close"]].isna().all()  # listed, but no row that day
    good, bad = validate_snapshot(table.frame)
    assert list(good.index) == ["005930", "0126Z0"]
    assert bad == {"000100": "no prices in the snapshot"}


def test_a_replayed_krx_table_is_the_snapshot_of_its_session(directory):
    (directory / "snapshots").mkdir()
    real = Path(__file__).resolve().parents[2] / "fixtures" / "krx" / "2026-03-10.csv"
    (directory / "snapshots" / "2026-03-10.csv").write_bytes(real.read_bytes())
    table = CsvDirSource(directory).snapshot(dt.date(2026, 3, 10))
    assert (table.session, table.source, len(table.frame)) == (dt.date(2026, 3, 10), "csv", 2881)
    assert table.frame.loc["005930", "Close"] == 187900
