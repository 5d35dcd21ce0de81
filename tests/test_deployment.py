"""The deployment files agree with the pins and keep secrets out of the code."""

import re
import subprocess
import sys
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
            package = package.split("[")[0]  # celery[redis]: the extra's packages are locked by name
            assert version, f"{name}: {line} is not pinned"
            assert locked.get(package.lower()) == version, f"{name}: {line} disagrees with {lock}"


def test_image_is_the_pinned_airflow():
    airflow = pins(ROOT / "requirements.txt")["apache-airflow"]
    assert f"FROM apache/airflow:{airflow}-python3.11" in (ROOT / "Dockerfile").read_text()


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def env_example(**changes: str) -> dict[str, str]:
    """The variables .env.example sets, with ``changes``."""
    text = (ROOT / ".env.example").read_text()
    return {**dict(re.findall(r"^([A-Z_][A-Z0-9_]*)=(.*)$", text, re.MULTILINE)), **changes}


def interpolated(value: str, env: dict[str, str]) -> str:
    """``value`` as Compose interpolates it: ``${NAME}``, ``${NAME:-default}`` (also when empty),
    ``${NAME:?error}``."""

    def one(match: re.Match) -> str:
        name, operator, rest = match.group(1), match.group(2), match.group(3)
        found = env.get(name, "")
        if operator == ":-" and not found:
            return rest
        assert operator != ":?" or found, f"{name} must be set"
        return found

    return re.sub(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", one, value)


def test_compose_file_is_valid_against_the_compose_specification():
    checker = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yaml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_has_the_airflow_services_and_a_protected_persistent_cache_redis():
    services = compose()["services"]
    for name in ("postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                 "airflow-triggerer", "cache-redis"):  # fmt: skip
        assert name in services, name
    redis = services["cache-redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--requirepass ${OHLCV_REDIS_PASSWORD" in command
    assert redis["healthcheck"]["test"]
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_compose_gives_airflow_the_connection_pool_and_map_length_without_literal_secrets():
    services = compose()["services"]
    environment = services["airflow-scheduler"]["environment"]
    assert "${OHLCV_REDIS_PASSWORD:?" in environment["AIRFLOW_CONN_OHLCV_REDIS"]
    cache_port = services["cache-redis"]["ports"][0].rsplit(":", 1)[-1].strip('"')
    uri = interpolated(environment["AIRFLOW_CONN_OHLCV_REDIS"], env_example())
    assert uri == f"redis://:change-me@cache-redis:{cache_port}/0"
    assert int(environment["AIRFLOW__CORE__MAX_MAP_LENGTH"]) >= 2_900
    assert "pools set ohlcv_vendor" in " ".join(services["airflow-init"]["command"])
    assert services["airflow-scheduler"]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert services["airflow-scheduler"]["build"] == "."


def test_the_ha_profile_adds_a_replica_and_three_sentinels_that_the_env_lines_point_airflow_at(monkeypatch):
    from ohlcv.airflow.hook import OhlcvRedisHook

    services = compose()["services"]
    sentinels = [name for name in services if name.startswith("cache-sentinel-")]
    assert sentinels == ["cache-sentinel-1", "cache-sentinel-2", "cache-sentinel-3"]
    for name in ("cache-redis-replica", *sentinels):
        assert services[name]["profiles"] == ["ha"]
        assert any(volume.endswith(":/data") for volume in services[name]["volumes"])  # own state, kept
    assert "profiles" not in services["cache-redis"]
    replica = " ".join(services["cache-redis-replica"]["command"])
    assert "--replicaof cache-redis 6379" in replica
    assert "--masterauth ${OHLCV_REDIS_PASSWORD}" in replica
    assert "--masterauth ${OHLCV_REDIS_PASSWORD}" in " ".join(services["cache-redis"]["command"])  # rejoins
    script = services["cache-sentinel-1"]["command"][2]
    assert "sentinel monitor ohlcv cache-redis 6379 2" in script
    assert [services[name]["environment"]["SENTINEL_NAME"] for name in sentinels] == sentinels

    # the two lines .env.example gives for the ha profile
    text = (ROOT / ".env.example").read_text()
    lines = dict(re.findall(r"^#\s+(OHLCV_REDIS_(?:SCHEME|ADDRESS))=(\S+)$", text, re.MULTILINE))
    assert set(lines) == {"OHLCV_REDIS_SCHEME", "OHLCV_REDIS_ADDRESS"}
    template = services["airflow-scheduler"]["environment"]["AIRFLOW_CONN_OHLCV_REDIS"]
    monkeypatch.setenv("AIRFLOW_CONN_OHLCV_REDIS", interpolated(template, env_example(**lines)))
    spec = OhlcvRedisHook().sentinel_spec()
    assert spec.sentinels == tuple((name, 26379) for name in sentinels)
    assert (spec.service, spec.db, spec.password) == ("ohlcv", 0, "change-me")
    readme = (ROOT / "README.md").read_text()
    for name, value in lines.items():
        assert f"{name}={value}" in readme  # the README's switch is the same


def test_celery_workers_are_a_profile():
    services = compose()["services"]
    assert services["airflow-worker"]["profiles"] == ["celery"]
    assert services["celery-broker"]["profiles"] == ["celery"]
    assert "profiles" not in services["airflow-scheduler"]


def test_celery_workers_read_the_projects_celery_configuration_and_a_protected_broker():
    services = compose()["services"]
    worker = services["airflow-worker"]
    environment = worker["environment"]
    # the preload in the worker's parent, and the settings every Airflow service shares
    assert environment["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == "ohlcv.airflow.celery_config.CELERY_CONFIG"
    assert (
        services["airflow-scheduler"]["environment"]["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"]
        == (environment["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"])
    )
    assert worker["command"][:2] == ["celery", "worker"]
    # no running task is handed to a second worker: longer than the sensor's longest wait
    assert int(environment["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"]) > 3600
    broker = services["celery-broker"]
    assert broker["command"] == ["redis-server", "--requirepass", "${CELERY_BROKER_PASSWORD:-}"]
    assert environment["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://:${CELERY_BROKER_PASSWORD:-}@celery-broker:")


def test_every_variable_the_compose_file_reads_is_documented_in_env_example():
    # ``$${NAME}`` is left for the container's shell; only ``${NAME}`` is read by compose
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", (ROOT / "docker-compose.yaml").read_text()))
    documented = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert used - documented == set()


def test_the_two_commands_people_type_exist_and_ci_runs_the_test_command():
    # a dry run (-n) resolves each target and its prerequisites without running anything
    done = subprocess.run(["make", "-n", "demo", "test"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_readme_s_cutover_indexes_once_after_migrating_as_docs_cutover_does():
    """Without the index run, getOHLCV_lastUpdateAt keeps the old job's run date and readers go
    to the vendor for the sessions in between."""
    for page, step in (("README.md", "3. **Convert"), ("docs/cutover.md", "3. **Migrate.**")):
        text = (ROOT / page).read_text()
        start = text.index(step)
        steps = text[start : text.index("\n4. ", start)]
        assert steps.index("python -m ohlcv migrate") < steps.index("python -m ohlcv index"), page
