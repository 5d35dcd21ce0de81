"""The deployment files agree with the pins and keep secrets out of the code."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_every_requirement_is_pinned_and_locked():
    for name, lock in (
        ("requirements.txt", "constraints.txt"),
        ("requirements-dev.txt", "constraints.txt"),
        ("requirements-bench.txt", "constraints-bench.txt"),
    ):
        locked = pins(ROOT / lock)
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if not line or line.startswith("-r"):
                continue
            package, _, version = line.partition("==")
            assert version, f"{name}: {line} is not pinned"
            assert locked.get(package.lower()) == version, f"{name}: {line} disagrees with {lock}"


def test_image_is_the_pinned_airflow():
    airflow = pins(ROOT / "requirements.txt")["apache-airflow"]
    assert f"FROM apache/airflow:{airflow}-python3.11" in (ROOT / "Dockerfile").read_text()


def test_compose_has_a_protected_persistent_cache_redis():
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    redis = compose["services"]["cache-redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--requirepass ${OHLCV_REDIS_PASSWORD" in command
    assert redis["healthcheck"]["test"]
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_compose_gives_airflow_the_connection_without_a_literal_password():
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    environment = compose["services"]["airflow"]["environment"]
    assert environment["AIRFLOW_CONN_OHLCV_REDIS"] == "redis://:${OHLCV_REDIS_PASSWORD}@cache-redis:6379/0"
    assert int(environment["AIRFLOW__CORE__MAX_MAP_LENGTH"]) >= 2_900
    assert compose["services"]["airflow"]["depends_on"]["cache-redis"]["condition"] == "service_healthy"


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_command():
    readme = (ROOT / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:15])
    assert "make demo" in first_screen
    assert "make test" in first_screen
    assert "make test" in (ROOT / ".ci" / "run").read_text()
