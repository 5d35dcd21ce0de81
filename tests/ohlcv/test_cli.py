import datetime as dt
import io

import pandas as pd
import pytest

from ohlcv import cli, codec
from ohlcv.settings import Settings
from ohlcv.sources import SyntheticSource

AS_OF = dt.date(2026, 11, 20)


@pytest.fixture
def filled(store, redis_server):
    source = SyntheticSource(3)
    for code in source.list_universe("KRX"):
        store.write_series(code, source.history(code, None, AS_OF), source.name)
    store.write_series("KS11", source.history("KS11", None, dt.date(2026, 11, 13)), source.name)
    store.publish(AS_OF, 3)
    return redis_server.url


def test_status_shows_meta_keys_and_how_current_tickers_are(filled, capsys):
    assert cli.main(["--redis-url", filled, "status"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "getOHLCV_lastUpdateAt     2026-11-20" in out
    assert "getOHLCV_lastUpdateCount  3" in out
    assert "tickers cached            4" in out
    assert "current through 2026-11-20  3" in out
    assert "KS11  2026-11-13" in out  # the stale one is listed
    assert "revision                  1 (cut 2026-11-20, published " in out


def test_get_prints_the_window_as_csv(filled, capsys):
    assert (
        cli.main(["--redis-url", filled, "get", "000100", "--start", "2026-11-2", "--end", "2026-11-6", "--csv"]) == 0
    )
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out), index_col="Date", parse_dates=True)
    expected = SyntheticSource(3).history("000100", dt.date(2026, 11, 2), dt.date(2026, 11, 6))
    assert list(frame.index) == list(expected.index)
    assert frame["Close"].tolist() == expected["Close"].tolist()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["get", "000900", "--cached-only"], cli.EXIT_MISSING),
        (["get", "00:*"], cli.EXIT_USAGE),
        (["get", "000100", "--start", "2026-11-20", "--end", "2026-11-1"], cli.EXIT_USAGE),
        (["get", "000100", "--start", "someday"], cli.EXIT_USAGE),
    ],
)
def test_exit_codes_scripts_can_trust(filled, redis_client, args, code, capsys):
    before = redis_client.dbsize()
    assert cli.main(["--redis-url", filled, *args]) == code
    assert capsys.readouterr().err.startswith(("error:", "000900"))
    assert redis_client.dbsize() == before  # bad input creates no key


def test_unreachable_redis_is_its_own_exit_code(capsys):
    assert cli.main(["--redis-url", "redis://127.0.0.1:1/0", "status"]) == cli.EXIT_REDIS
    assert "Redis" in capsys.readouterr().err


def test_get_fills_a_miss_from_the_vendor_and_warm_creates_period_keys(filled, redis_client, monkeypatch, capsys):
    monkeypatch.setenv("OHLCV_SOURCE", "synthetic:5")
    assert cli.main(["--redis-url", filled, "get", "000400", "--start", "2026-11-2", "--end", "2026-11-6"]) == 0
    assert "000400: 5 rows, 2026-11-02 to 2026-11-06" in capsys.readouterr().out
    assert redis_client.hget("ticker:lastUpdateAt", "000400") >= b"2026-11-20"  # stored through the newest session
    args = ["warm", "--tickers", "000100,000200", "000400", "--period", "2026-01-02:2026-06-30", "2026-07-01:2026-9-30"]
    assert cli.main(["--redis-url", filled, *args]) == 0
    assert (
        redis_client.exists(
            "ticker:000100:2026-01-02:2026-06-30",
            "ticker:000400:2026-07-01:2026-09-30",
            "ticker:000200:2026-07-01:2026-09-30",
        )
        == 3
    )


def test_help_is_there_for_every_command(capsys):
    for command in ("status", "get", "warm", "migrate", "universe", "actions"):
        with pytest.raises(SystemExit) as done:
            cli.main([command, "--help"])
        assert done.value.code == 0
        assert "usage: python -m ohlcv" in capsys.readouterr().out


def test_status_shows_the_breaker_and_recent_runs(filled, store, capsys):
    store.open_breaker("synthetic vendor: HTTP 429", dt.timedelta(hours=1))
    record = {
        "run_id": "scheduled__2026-11-20", "as_of": "2026-11-20", "state": "success", "planned": 2903,
        "appended": 2897, "handed_on": 6, "written": 2, "repaired": 4, "unchanged": 0, "skipped_no_data": 0,
        "failed": 0, "retries": 1, "vendor_calls": 7, "snapshot_calls": 1, "history_calls": 6,
        "vendor_seconds": 0.4, "rows_written": 2903, "duration_seconds": 33.0, "waiting": 3, "deferred": 1,
        "settled": 2890, "table_missing": "2026-11-19", "table_refused": "", "actions": 2,
    }  # fmt: skip
    store.record_run(record)
    assert cli.main(["--redis-url", filled, "status"]) == 0
    out = capsys.readouterr().out
    assert "vendor breaker            OPEN, closes in" in out
    assert "HTTP 429" in out
    header, row = out.split("recent runs (newest first):\n")[1].splitlines()[:2]
    row, gaps = row.split("  (")
    shown = dict(zip(header.split()[:-1], row.split()[:-1], strict=True))
    assert shown == {
        "as_of": "2026-11-20", "state": "success", "planned": "2903", "appended": "2897", "handed_on": "6",
        "written": "2", "repaired": "4", "unchanged": "0", "no_data": "0", "waiting": "3", "deferred": "1",
        "settled": "2890", "failed": "0", "retries": "1", "actions": "2", "snapshot": "1", "history": "6",
        "vendor_s": "0.4", "rows": "2903", "took_s": "33.0",
    }  # fmt: skip
    assert row.split()[-1] == "scheduled__2026-11-20"
    assert gaps == "table_missing 2026-11-19)"


def test_status_counts_the_preliminary_rows_by_session(store, redis_server, capsys):
    from ohlcv.indexer.runner import run_once
    from ohlcv.sources.testing import FaultySource

    run_once(store, SyntheticSource(3), dt.date(2026, 11, 19), settings=Settings(), run_id="fill")
    evening = FaultySource(SyntheticSource(3), preliminary={AS_OF})
    moment = dt.datetime(2026, 11, 20, 10, 23, tzinfo=dt.UTC)
    assert run_once(store, evening, AS_OF, settings=Settings(), run_id="evening", now=moment).summary.appended == 3
    assert cli.main(["--redis-url", redis_server.url, "status"]) == 0
    out = capsys.readouterr().out
    assert "preliminary rows          3 (evening volumes, settled by the night run)" in out
    assert "  of 2026-11-20  3" in out


def test_status_shows_the_cross_checks_of_the_tables(store, redis_server, capsys):
    store.note_cross_check(dt.date(2026, 11, 19), {"second": "krx_openapi", "codes": 2881, "differing": 3})
    store.note_cross_check(AS_OF, {"second": "krx_openapi", "served": True, "codes": 2880})
    assert cli.main(["--redis-url", redis_server.url, "status"]) == 0
    out = capsys.readouterr().out
    assert "tables cross-checked      (newest first; the differing codes are in ohlcv:quality)" in out
    assert out.index("  2026-11-20  served by krx_openapi (the first source had none)") < out.index(
        "  2026-11-19  3 of 2881 codes differ from krx_openapi"
    )


@pytest.mark.parametrize(
    ("as_of", "why"),
    [
        ("2030-01-02", "after 20"),  # a future session: rows dated 2030, a 2030 cut
        ("1800-01-02", "before 1990-01-03, the first XKRX session"),  # a stack trace before
    ],
)
def test_index_refuses_an_as_of_outside_the_final_sessions_before_taking_the_lock(
    store, redis_server, monkeypatch, capsys, as_of, why
):
    monkeypatch.setenv("OHLCV_SOURCE", "synthetic:3")
    assert cli.main(["--redis-url", redis_server.url, "index", "--as-of", as_of]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"error: as of {as_of}: ")
    assert why in err
    assert "Traceback" not in err
    assert store.client.keys("*") == []  # no lock taken, nothing written


def test_today_before_its_session_is_final_is_refused(store):
    from ohlcv.errors import InvalidDate
    from ohlcv.indexer.runner import run_once

    afternoon = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)  # 17:00 KST: the after-hours session trades
    with pytest.raises(InvalidDate, match="after 2026-11-19, the last final XKRX session"):
        run_once(store, SyntheticSource(3), AS_OF, settings=Settings(), run_id="early", now=afternoon)
    assert store.client.keys("*") == []


@pytest.mark.parametrize("hours", ["0", "-1", "10000"])
def test_breaker_open_refuses_hours_it_cannot_keep_and_logs_nothing(store, redis_server, capsys, hours):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--redis-url", redis_server.url, "breaker", "open", "Naver answers 429", "--hours", hours])
    assert exited.value.code == cli.EXIT_USAGE
    assert "--hours" in capsys.readouterr().err
    assert store.client.keys("*") == []


def test_a_blocked_vendor_is_exit_code_4(filled, store, monkeypatch, capsys):
    monkeypatch.setenv("OHLCV_SOURCE", "synthetic:5")
    store.open_breaker("HTTP 429", dt.timedelta(hours=1))
    assert cli.main(["--redis-url", filled, "get", "000400"]) == cli.EXIT_VENDOR
    assert "breaker open" in capsys.readouterr().err


def test_cached_only_reads_are_cut_at_the_published_session(filled, redis_client, capsys):
    redis_client.set("getOHLCV_lastUpdateAt", "2026-11-13")
    assert cli.main(["--redis-url", filled, "get", "000100", "--cached-only", "--start", "2026-11-2"]) == 0
    assert "2026-11-02 to 2026-11-13" in capsys.readouterr().out


def test_an_operator_can_close_and_open_the_breaker_and_every_change_is_logged(redis_server, store, capsys):
    store.open_breaker("synthetic vendor: HTTP 429", dt.timedelta(hours=12))
    assert cli.main(["--redis-url", redis_server.url, "breaker", "close"]) == 0
    assert store.breaker() is None
    assert "vendor breaker closed (it was open: synthetic vendor: HTTP 429)" in capsys.readouterr().out
    assert cli.main(["--redis-url", redis_server.url, "breaker", "open", "Naver is blocking us", "--hours", "2"]) == 0
    assert store.breaker() == "Naver is blocking us"
    assert dt.timedelta(hours=1.9) < store.breaker_ttl() <= dt.timedelta(hours=2)
    log = store.breaker_log()
    assert [(entry["action"], entry["reason"]) for entry in log] == [
        ("open", "Naver is blocking us"),
        ("close", "synthetic vendor: HTTP 429"),
        ("open", "synthetic vendor: HTTP 429"),
    ]
    assert log[0]["by"].endswith("(python -m ohlcv breaker)")
    assert log[2]["by"] == "a block answer"
    with pytest.raises(SystemExit):
        cli.main(["--redis-url", redis_server.url, "breaker", "open"])  # a reason is required


@pytest.fixture
def reader_url(redis_server, redis_client):
    """A URL of a Redis user that may only read (ACL: read commands and connection commands)."""
    redis_client.acl_setuser(
        "reader", enabled=True, passwords=["+reader-pw"], keys=["*"], commands=["-@all", "+@read", "+@connection"]
    )
    yield f"redis://reader:reader-pw@127.0.0.1:{redis_server.port}/0"
    redis_client.acl_deluser("reader")


def test_a_read_only_user_reads_through_the_cli_and_cannot_index(filled, reader_url, redis_client, capsys, caplog):
    period = ["get", "000100", "--start", "2024-01-02", "--end", "2024-06-28"]
    assert cli.main(["--redis-url", reader_url, "--read-only", *period]) == cli.EXIT_OK
    assert "000100: 121 rows, 2024-01-02 to 2024-06-28" in capsys.readouterr().out
    assert cli.main(["--redis-url", reader_url, *period]) == cli.EXIT_OK  # NOPERM on the write-back: skipped
    assert "may not write" in caplog.text
    assert redis_client.keys("ticker:000100:*") == []
    assert cli.main(["--redis-url", reader_url, "index", "--source", "synthetic:3"]) == cli.EXIT_PERMISSION
    assert "the Redis user may not do this" in capsys.readouterr().err


def test_refused_credentials_are_not_an_unreachable_server(filled, redis_server, capsys):
    wrong = f"redis://reader:not-the-password@127.0.0.1:{redis_server.port}/0"
    assert cli.main(["--redis-url", wrong, "status"]) == cli.EXIT_AUTH
    assert "refused the credentials" in capsys.readouterr().err
    assert cli.main(["--redis-url", "redis://127.0.0.1:1/0", "status"]) == cli.EXIT_REDIS


def test_a_period_without_an_end_says_so(filled, capsys):
    assert cli.main(["--redis-url", filled, "warm", "--tickers", "000100", "--period", "2024-01-02"]) == cli.EXIT_USAGE
    assert "--period '2024-01-02' needs a start and an end: START:END" in capsys.readouterr().err


# the old job's pandas JSON dates rows in epoch milliseconds, a format pandas now deprecates
@pytest.mark.filterwarnings("ignore:'epoch' date format is deprecated")
def test_migrate_reports_each_ticker_then_totals_and_a_second_run_says_there_is_nothing_left(
    redis_server, redis_client, capsys
):
    legacy = SyntheticSource(3).history("000100", None, AS_OF).to_json(date_format="epoch")
    redis_client.set("ticker_000100", legacy)
    redis_client.hset("ticker_lastUpdateAt", "000100", "2026-11-20")
    url = ["--redis-url", redis_server.url]

    assert cli.main([*url, "migrate", "--dry-run"]) == cli.EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "dry run: nothing is written"
    assert out[1].startswith("000100  renamed: ticker_000100 (pandas JSON, 3301 rows through 2026-11-20) -> ")
    assert redis_client.exists("ticker:000100") == 0

    assert cli.main([*url, "migrate", "--source", "jenkins"]) == cli.EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("000100  renamed: ")
    assert out[1].startswith("totals: converted 0, renamed 1, conflict 0, already current 0")
    assert codec.source_of(redis_client.get("ticker:000100")) == "jenkins"

    assert cli.main([*url, "migrate"]) == cli.EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("000100  already current: ticker:000100 (OHLCV_STR, 3301 rows through 2026-11-20)")
    assert out[-1] == "nothing to migrate: every value is already OHLCV_STR under its new name"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["migrate", "--tickers", "00:*"], cli.EXIT_USAGE),
        (["migrate", "--source", "Bad Label"], cli.EXIT_USAGE),
        (["migrate"], cli.EXIT_MISSING),  # a value that cannot be migrated
    ],
)
def test_migrate_exit_codes(redis_server, redis_client, args, code, capsys):
    redis_client.set("ticker:000100", b"damaged")
    assert cli.main(["--redis-url", redis_server.url, *args]) == code
    assert redis_client.get("ticker:000100") == b"damaged"
    if code == cli.EXIT_MISSING:
        assert "000100  invalid: ticker:000100: neither OHLCV_STR nor pandas JSON" in capsys.readouterr().out


def test_migrate_waits_for_no_indexer_run(redis_server, store, capsys):
    store.begin_run("scheduled__2026-11-24")
    assert cli.main(["--redis-url", redis_server.url, "migrate"]) == cli.EXIT_LOCKED
    assert "another indexer run holds ohlcv:lock:run" in capsys.readouterr().err


def test_migrate_with_a_read_only_user_is_a_permission_error(filled, reader_url, capsys):
    assert cli.main(["--redis-url", reader_url, "migrate"]) == cli.EXIT_PERMISSION


def test_universe_prints_the_codes_listed_on_a_session(store, redis_server, capsys):
    from ohlcv.indexer import listings

    source = SyntheticSource(6, delisted={"000300": dt.date(2026, 11, 18)})
    listings.record(store, [source.table(day) for day in (dt.date(2026, 11, 18), dt.date(2026, 11, 19))])
    assert cli.main(["--redis-url", redis_server.url, "universe", "2026-11-18"]) == cli.EXIT_OK
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert [line.split()[0] for line in lines] == source.list_universe("KRX")  # the delisted one included
    assert all(line.split()[1] == SyntheticSource.market_of(line.split()[0]) for line in lines)
    assert "6 codes listed on 2026-11-18 (KRX); exact" in captured.err
    assert cli.main(["--redis-url", redis_server.url, "status"]) == cli.EXIT_OK
    assert (
        "universe recorded         2026-11-18 to 2026-11-19 (2 sessions, exact from 2026-11-18); 1 codes delisted"
        in (capsys.readouterr().out)
    )
    assert cli.main(["--redis-url", redis_server.url, "universe", "2026-11-19", "--market", "KOSDAQ"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == [code for code in source.list_universe("KOSDAQ") if code != "000300"]


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["universe"], cli.EXIT_USAGE, "needs a SESSION"),
        (["universe", "2026-11-21"], cli.EXIT_USAGE, "not an XKRX session"),
        (["universe", "2026-11-20"], cli.EXIT_MISSING, "recorded through 2026-11-19"),
        (["universe", "2026-11-19", "--market", "NYSE"], cli.EXIT_USAGE, "invalid choice"),
        (["universe", "2026-11-19", "--backfill"], cli.EXIT_USAGE, "give no SESSION"),
    ],
)
def test_universe_refuses_bad_questions(store, redis_server, capsys, args, code, said):
    from ohlcv.indexer import listings

    listings.record(store, [SyntheticSource(3).table(dt.date(2026, 11, 19))])
    try:
        answered = cli.main(["--redis-url", redis_server.url, *args])
    except SystemExit as exit_:  # argparse's own refusals
        answered = exit_.code
    assert answered == code
    assert said in capsys.readouterr().err


def test_universe_backfill_records_earlier_sessions_and_says_how_far_back_it_is_exact(
    store, redis_server, capsys, monkeypatch
):
    from ohlcv.indexer import listings

    monkeypatch.setattr("pandas.Timestamp.now", lambda tz=None: pd.Timestamp("2026-11-20 12:00", tz="UTC"))
    listings.record(store, [SyntheticSource(3).table(dt.date(2026, 11, 20))])
    args = [
        "--redis-url",
        redis_server.url,
        "universe",
        "--backfill",
        "--since",
        "2026-11-2",
        "--source",
        "synthetic:3",
    ]
    assert cli.main(args) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "recorded 14 sessions now; the record holds 2026-11-02 to 2026-11-20" in out
    assert "exact from 2026-11-02" in out
    assert store.recorded_sessions() == (dt.date(2026, 11, 2), dt.date(2026, 11, 20), 15)


def _run_on_a_terminal(argv: list[str]) -> tuple[int, str]:
    """``python -m ohlcv *argv`` with stderr on a pseudo-terminal of 100 columns; its stderr."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import subprocess
    import sys
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "ohlcv", *argv], stderr=follower, stdout=subprocess.DEVNULL)
    os.close(follower)
    written = b""
    while select.select([leader], [], [], 60)[0]:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        written += chunk
    os.close(leader)
    return process.wait(timeout=60), written.decode(errors="replace")


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["index", "--as-of", "2026-11-20", "--source", "synthetic:12"], "history fetches"),
        (["warm", "--tickers", "000100", "000200", "--period", "2026-11-2:2026-11-20"], "2026-11-02:2026-11-20"),
        (["universe", "--backfill", "--since", "2026-11-16", "--source", "synthetic:3"], "sessions"),
    ],
)
def test_long_commands_show_a_progress_bar_on_a_terminal_and_plain_lines_elsewhere(store, redis_server, argv, what):
    import subprocess
    import sys

    from ohlcv.indexer import listings

    source = SyntheticSource(3)
    for code in ("000100", "000200"):
        store.write_series(code, source.history(code, None, AS_OF), source.name)
    store.publish(AS_OF, 2)
    listings.record(store, [source.table(AS_OF)])
    code, terminal = _run_on_a_terminal(["--redis-url", redis_server.url, *argv])
    assert code == cli.EXIT_OK, terminal
    assert f"{what}:" in terminal
    assert "%|" in terminal  # tqdm's bar
    piped = subprocess.run(
        [sys.executable, "-m", "ohlcv", "--redis-url", redis_server.url, *argv], capture_output=True, text=True
    )
    assert piped.returncode == cli.EXIT_OK, piped.stderr
    assert "%|" not in piped.stderr
    assert "\r" not in piped.stderr  # plain lines for a log file
