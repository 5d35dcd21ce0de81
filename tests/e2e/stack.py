"""Airflow's api-server, scheduler and dag-processor started on this machine with
LocalExecutor, for the end-to-end tests and the KRX-scale benchmark.

`compose_settings()` reads the Airflow and ohlcv settings of docker-compose.yaml, so that a
stack started here runs with the production file's tuning, only with local addresses.
Every process `running_stack` starts is stopped when it exits; `scratch_postgres` creates a
database of its own on the local PostgreSQL and drops it again.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from ohlcv.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAG_ID = "ohlcv_indexer"
#: settings in docker-compose.yaml that name containers or secrets; a local stack sets its own
_CONTAINER_SETTINGS = re.compile(
    r"AIRFLOW__(DATABASE__SQL_ALCHEMY_CONN|CELERY__.*|CORE__EXECUTION_API_SERVER_URL|API_AUTH__JWT_SECRET"
    r"|CORE__FERNET_KEY|CORE__EXECUTOR|CORE__SIMPLE_AUTH_MANAGER_USERS|CORE__AUTH_MANAGER)"
    r"|AIRFLOW_CONN_.*|OHLCV_SOURCE|OHLCV_KEY_PREFIX"
)
_DEFAULT = re.compile(r"\$\{[A-Z0-9_]+:-([^}]*)\}")


def compose_settings(path: Path = ROOT / "docker-compose.yaml") -> dict[str, str]:
    """The Airflow tuning of docker-compose.yaml (environment of every Airflow service),
    without the settings that name containers or secrets; `${VAR:-default}` becomes its default."""
    compose = yaml.safe_load(path.read_text())
    settings = {}
    for name, value in compose["x-airflow-common"]["environment"].items():
        if _CONTAINER_SETTINGS.fullmatch(name):
            continue
        settings[name] = _DEFAULT.sub(r"\1", str(value))
    return settings


def compose_pool_slots(path: Path = ROOT / "docker-compose.yaml") -> int:
    """The slots docker-compose.yaml's init service gives the vendor pool by default."""
    compose = yaml.safe_load(path.read_text())
    return int(_DEFAULT.sub(r"\1", compose["services"]["airflow-init"]["environment"]["OHLCV_VENDOR_POOL_SLOTS"]))


@contextlib.contextmanager
def scratch_postgres(server: str = "postgresql://postgres@127.0.0.1:5432/postgres") -> Iterator[str]:
    """A new, empty database on the local PostgreSQL for Airflow's metadata; dropped afterwards."""
    import psycopg2

    name = f"ohlcv_airflow_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(server)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@dataclass
class Stack:
    """A running api-server, scheduler and dag-processor, and their REST API."""

    home: Path
    port: int
    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def ui(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.ui}/api/v2"

    @property
    def dag(self) -> str:
        return f"{self.api}/dags/{DAG_ID}"

    def airflow(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([AIRFLOW, *args], env=self.env, check=True, capture_output=True, text=True)

    def wait_for_dag(self, seconds: float = 180) -> None:
        wait("the DAG to be parsed", lambda: requests.get(self.dag, timeout=5).status_code == 200, seconds)

    def trigger(self, conf: dict[str, Any] | None = None, logical_date: str | None = None) -> str:
        """Trigger a run (now, or as of ``logical_date``, an ISO time), unpause the DAG and
        return the run's id."""
        body = {"logical_date": logical_date, "conf": conf or {}}
        triggered = requests.post(f"{self.dag}/dagRuns", json=body, timeout=30)
        triggered.raise_for_status()
        unpaused = requests.patch(self.dag, json={"is_paused": False}, timeout=30)
        unpaused.raise_for_status()
        return triggered.json()["dag_run_id"]

    def run(self, run_id: str) -> dict[str, Any]:
        return requests.get(f"{self.dag}/dagRuns/{run_id}", timeout=30).json()

    def wait_for_run(
        self,
        run_id: str,
        seconds: float,
        progress: Callable[[dict[str, Any]], None] | None = None,
        every: float = 2,
    ) -> str:
        """Wait until the run ends, asking every ``every`` seconds; return its state.
        ``progress`` sees the run at every poll."""

        def finished():
            state = self.run(run_id)
            if progress:
                progress(state)
            return state["state"] if state["state"] in ("success", "failed") else None

        return wait("the run to finish", finished, seconds, every=every)

    def task_instances(self, run_id: str, task_id: str | None = None) -> list[dict[str, Any]]:
        """Every task instance of the run (mapped ones included), page by page."""
        found, offset = [], 0
        while True:
            params = {"limit": 1000, "offset": offset, **({"task_id": task_id} if task_id else {})}
            page = requests.get(f"{self.dag}/dagRuns/{run_id}/taskInstances", params=params, timeout=60).json()
            found += page["task_instances"]
            offset += len(page["task_instances"])
            if not page["task_instances"] or offset >= page["total_entries"]:
                return found

    def xcom_keys(self, run_id: str, task_id: str) -> set[str]:
        """The XCom keys the run's instances of ``task_id`` pushed (mapped ones included)."""
        url = f"{self.dag}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries"
        entries = requests.get(url, params={"limit": 1000}, timeout=60).json()["xcom_entries"]
        return {entry["key"] for entry in entries}


def wait(what: str, check: Callable[[], Any], seconds: float, every: float = 1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            result = check()
        except requests.RequestException:
            result = None
        if result:
            return result
        time.sleep(every)
    raise TimeoutError(f"gave up waiting for {what} after {seconds:.0f} s")


@contextlib.contextmanager
def running_stack(
    home: Path,
    redis_url: str,
    *,
    source: str,
    database_url: str | None = None,
    settings: dict[str, str] | None = None,
    pool_slots: int | None = None,
) -> Iterator[Stack]:
    """Migrate, create the vendor pool, start api-server, scheduler and dag-processor; stop them
    all (their whole process groups) on exit. SQLite in ``home`` unless ``database_url`` is given;
    the vendor pool gets docker-compose.yaml's slots unless ``pool_slots`` is given.

    Only the runs the caller triggers happen: the scheduler creates no scheduled runs.
    """
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AIRFLOW", "OHLCV_"))}
    env.update(settings or {})
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API_AUTH__JWT_SECRET=f"local-stack-{uuid.uuid4().hex}",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
        AIRFLOW_CONN_OHLCV_REDIS=redis_url,
        OHLCV_SOURCE=source,
    )
    if database_url:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = database_url
    stack = Stack(home=home, port=port, env=env)
    stack.airflow("db", "migrate")
    slots = pool_slots or compose_pool_slots()
    stack.airflow("pools", "set", "ohlcv_vendor", str(slots), "vendor calls of ohlcv_indexer")
    try:
        for name, args in (("api-server", ["api-server", "--port", str(port)]), ("scheduler", ["scheduler"]),
                           ("dag-processor", ["dag-processor"])):  # fmt: skip
            log = (home / f"{name}.log").open("w")
            stack.processes.append(
                subprocess.Popen(
                    [AIRFLOW, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        yield stack
    finally:
        for process in stack.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in stack.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for process in stack.processes:  # stragglers of a group whose leader has exited
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
