import subprocess
import sys


def test_core_package_imports_no_airflow():
    """Forward-test code installs the core without Airflow; nothing in it may pull Airflow in."""
    probe = (
        "import sys, ohlcv, ohlcv.keys, ohlcv.codec, ohlcv.calendar, ohlcv.validation, ohlcv.sources, "
        "ohlcv.store, ohlcv.indexer.per_ticker, ohlcv.cli, ohlcv.redis_server; "
        "print(sorted(name for name in sys.modules if name == 'airflow' or name.startswith('airflow.')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _imports(path) -> set[str]:
    """Every ``ohlcv`` module ``path`` imports, lazy imports included."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ohlcv"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("ohlcv"))
    return found


def test_the_layout_shows_the_two_halves_on_a_shared_core():
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "plugins" / "ohlcv"
    top = sorted(path.name for path in package.glob("*.py"))
    assert len(top) <= 14, top
    halves = {"reader": "ohlcv.indexer", "indexer": "ohlcv.reader"}
    for half, other in halves.items():
        for module in (package / half).glob("*.py"):
            crossing = sorted(name for name in _imports(module) if name == other or name.startswith(other + "."))
            assert crossing == [], f"{half}/{module.name} imports the other half: {crossing}"
    core = [package, package / "store", package / "sources", package / "universe", package / "overview"]
    for shared in [path for folder in core for path in folder.glob("*.py")]:
        if shared.name in ("cli.py", "__init__.py", "__main__.py"):
            continue  # the entry points wire both halves
        halves_used = sorted(name for name in _imports(shared) if name.startswith(("ohlcv.reader", "ohlcv.indexer")))
        assert halves_used == [], f"the core module {shared.relative_to(package)} imports a half: {halves_used}"
