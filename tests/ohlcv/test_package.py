import subprocess
import sys


def test_core_package_imports_no_airflow():
    """Forward-test code installs the core without Airflow; nothing in it may pull Airflow in."""
    probe = (
        "import sys, ohlcv, ohlcv.keys, ohlcv.codec, ohlcv.calendar, ohlcv.validation, ohlcv.sources, "
        "ohlcv.store, ohlcv.indexer, ohlcv.cli, ohlcv.redis_server; "
        "print(sorted(name for name in sys.modules if name == 'airflow' or name.startswith('airflow.')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
