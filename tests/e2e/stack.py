"""Airflow's api-server, scheduler and dag-processor started on this machine, with
LocalExecutor or with CeleryExecutor and ``airflow celery worker`` processes, for the
end-to-end tests and the KRX-scale benchmark.

`compose_settings()` reads the Airflow and ohlcv settings of docker-compose.yaml (the Celery
ones included) and `compose_worker_args()` its worker command, so that a stack started here
runs with the production file's tuning, only with local addresses. Every process
`running_stack` starts, and everything those start, is stopped when it exits;
`scratch_postgres` creates a database of its own on the local PostgreSQL and drops it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests
import yaml

from ohlcv.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAG_ID = "ohlcv_indexer"
#: settings in docker-compose.yaml that name containers or secrets; a local stack sets its own
_CONTAINER_SETTINGS = re.compile(
    r"AIRFLOW__(DATABASE__SQL_ALCHEMY_CONN|CELERY__BROKER_URL|CELERY__RESULT_BACKEND|CORE__EXECUTION_API_SERVER_URL"
    r"|API_AUTH__JWT_SECRET|CORE__FERNET_KEY|CORE__EXECUTOR|CORE__SIMPLE_AUTH_MANAGER_USERS|CORE__AUTH_MANAGER)"
    r"|AIRFLOW_CONN_.*|OHLCV_SOURCE|OHLCV_KEY_PREFIX"
)
LOCAL = "LocalExecutor"
CELERY = "CeleryExecutor"
#: the local PostgreSQL server a scratch metadata database is created on
POSTGRES_SERVER = os.environ.get("OHLCV_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
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


def compose_worker_args(path: Path = ROOT / "docker-compose.yaml") -> list[str]:
    """The ``airflow`` arguments docker-compose.yaml starts a Celery worker with."""
    command = yaml.safe_load(path.read_text())["services"]["airflow-worker"]["command"]
    args = shlex.split(command) if isinstance(command, str) else list(command)
    return [_DEFAULT.sub(r"\1", arg) for arg in args]


def compose_pool_slots(path: Path = ROOT / "docker-compose.yaml") -> int:
    """The slots docker-compose.yaml's init service gives the vendor pool by default."""
    compose = yaml.safe_load(path.read_text())
    return int(_DEFAULT.sub(r"\1", compose["services"]["airflow-init"]["environment"]["OHLCV_VENDOR_POOL_SLOTS"]))


def postgres_unavailable(server: str = POSTGRES_SERVER) -> str | None:
    """Why no scratch database can be created on ``server``, or None when one can."""
    import psycopg2

    try:
        psycopg2.connect(server, connect_timeout=5).close()
    except psycopg2.Error as exc:
        return f"no PostgreSQL at {server}: {str(exc).strip()}"
    return None


@contextlib.contextmanager
def scratch_postgres(server: str = POSTGRES_SERVER) -> Iterator[str]:
    """A new, empty database on the local PostgreSQL for Airflow's metadata; dropped afterwards."""
    import psycopg2
    from sqlalchemy.engine import make_url

    name = f"ohlcv_airflow_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(server)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(server).set(drivername="postgresql+psycopg2", database=name).render_as_string(False)
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@dataclass
class Stack:
    """A running api-server, scheduler and dag-processor (and Celery workers), and their REST API.

    ``processes`` maps a name (``scheduler``, ``worker-1``) to the process started under it;
    each is the leader of a session of its own, so it and everything it starts can be found
    and stopped together.
    """

    home: Path
    port: int
    env: dict[str, str]
    executor: str = LOCAL
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    #: the REST API's session: with users configured, it carries a bearer token (``login``)
    http: requests.Session = field(default_factory=requests.Session)
    #: every session leader ever started, the killed and the stopped ones included
    sessions: list[int] = field(default_factory=list)

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

    def login(self, user: str, password: str, seconds: float = 120) -> str:
        """A token for ``user`` from the api-server (Airflow's simple auth manager), which the
        REST helpers send from now on; the token."""

        def token():
            answer = requests.post(f"{self.ui}/auth/token", json={"username": user, "password": password}, timeout=10)
            return answer.json()["access_token"] if answer.status_code == 201 else None

        found = wait("the api-server to issue a token", token, seconds)
        self.http.headers["Authorization"] = f"Bearer {found}"
        return found

    def wait_for_dag(self, seconds: float = 180) -> None:
        wait("the DAG to be parsed", lambda: self.http.get(self.dag, timeout=5).status_code == 200, seconds)

    def trigger(self, conf: dict[str, Any] | None = None, logical_date: str | None = None) -> str:
        """Trigger a run (now, or as of ``logical_date``, an ISO time), unpause the DAG and
        return the run's id."""
        body = {"logical_date": logical_date, "conf": conf or {}}
        triggered = self.http.post(f"{self.dag}/dagRuns", json=body, timeout=30)
        triggered.raise_for_status()
        unpaused = self.http.patch(self.dag, json={"is_paused": False}, timeout=30)
        unpaused.raise_for_status()
        return triggered.json()["dag_run_id"]

    def run(self, run_id: str) -> dict[str, Any]:
        return self.http.get(f"{self.dag}/dagRuns/{run_id}", timeout=30).json()

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
            page = self.http.get(f"{self.dag}/dagRuns/{run_id}/taskInstances", params=params, timeout=60).json()
            found += page["task_instances"]
            offset += len(page["task_instances"])
            if not page["task_instances"] or offset >= page["total_entries"]:
                return found

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start ``airflow *args`` in a session of its own, logging to ``{home}/{name}.log``."""
        with (self.home / f"{name}.log").open("a") as log:
            process = subprocess.Popen(
                [AIRFLOW, *args], env=env or self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes[name] = process
        self.sessions.append(process.pid)
        return process

    def start_worker(self, name: str) -> subprocess.Popen:
        """An ``airflow celery worker`` as docker-compose.yaml starts one, as if on a machine named ``name``:
        Celery node ``name@host``, task instances' hostname ``name``, its own log server port."""
        env = {
            **self.env,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.e2e.hostname.worker_hostname",
            "OHLCV_TEST_WORKER_HOSTNAME": name,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), self.env.get("PYTHONPATH")])),
        }
        return self.start(name, [*compose_worker_args(), "--celery-hostname", f"{name}@%h"], env)

    def wait_for_workers(self, names: list[str], seconds: float = 120) -> None:
        """Wait until every named Celery worker answers a ping through the broker."""
        ping = [
            sys.executable, "-m", "celery", "--app", "airflow.providers.celery.executors.celery_executor.app",
            "inspect", "ping", "--timeout", "5", "--json",
        ]  # fmt: skip

        def answered() -> bool:
            done = subprocess.run(ping, env=self.env, capture_output=True, text=True, timeout=60)
            return all(f'"{name}@' in done.stdout for name in names)

        wait(f"Celery workers {', '.join(names)}", answered, seconds, every=2)

    def kill(self, name: str) -> None:
        """SIGKILL a process and everything it started, as when its machine dies."""
        kill_session(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait()

    def alive(self) -> list[psutil.Process]:
        """Every process still running that this stack started, directly or not."""
        return [process for leader in self.sessions for process in session_members(leader)]

    def xcom_keys(self, run_id: str, task_id: str) -> set[str]:
        """The XCom keys the run's instances of ``task_id`` pushed (mapped ones included)."""
        url = f"{self.dag}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries"
        entries = self.http.get(url, params={"limit": 1000}, timeout=60).json()["xcom_entries"]
        return {entry["key"] for entry in entries}


def session_members(leader: int) -> list[psutil.Process]:
    """The running processes of the session ``leader`` started (Airflow's task processes get a
    process group of their own, but stay in the session)."""
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            if os.getsid(process.pid) == leader and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
    return members


def kill_session(leader: int, sig: signal.Signals) -> None:
    for process in session_members(leader):
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)


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
    broker_url: str | None = None,
    workers: int = 2,
    users: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Migrate, create the vendor pool, start api-server, scheduler and dag-processor, and with a
    ``broker_url`` CeleryExecutor and ``workers`` Celery workers (``worker-1``, ``worker-2``, ...);
    stop them all, and everything they started, on exit. SQLite in ``home`` unless
    ``database_url`` is given (Celery needs it: Airflow refuses SQLite with it); the vendor pool
    gets docker-compose.yaml's slots unless ``pool_slots`` is given.

    Only the runs the caller triggers happen, and the runs their Asset events trigger: the
    indexer has no schedule here (``OHLCV_SCHEDULE=none``). Every caller is an admin unless
    ``users`` (name -> password) are given: then the simple auth manager knows those users
    (admins) and nobody else, and the REST helpers log in as the first of them.
    """
    executor = CELERY if broker_url else LOCAL
    if executor == CELERY and not database_url:
        raise ValueError("CeleryExecutor needs a database_url: Airflow refuses SQLite with it")
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AIRFLOW", "OHLCV_"))}
    env.update(settings or {})
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__EXECUTOR=executor,
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API_AUTH__JWT_SECRET=f"local-stack-{uuid.uuid4().hex}",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        # only the runs the caller triggers, and the runs its Asset events trigger
        OHLCV_SCHEDULE="none",
        AIRFLOW_CONN_OHLCV_REDIS=redis_url,
        OHLCV_SOURCE=source,
    )
    if users:
        passwords = home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps(users))
        env.update(
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=",".join(f"{name}:admin" for name in users),
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
        )
    if database_url:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = database_url
    if broker_url:
        env["AIRFLOW__CELERY__BROKER_URL"] = broker_url
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = f"db+{database_url}"
    stack = Stack(home=home, port=port, env=env, executor=executor)
    stack.airflow("db", "migrate")
    slots = pool_slots or compose_pool_slots()
    stack.airflow("pools", "set", "ohlcv_vendor", str(slots), "vendor calls of ohlcv_indexer")
    try:
        stack.start("api-server", ["api-server", "--port", str(port)])
        if users:
            stack.login(*next(iter(users.items())))
        stack.start("scheduler", ["scheduler"])
        stack.start("dag-processor", ["dag-processor"])
        if executor == CELERY:
            names = [f"worker-{number}" for number in range(1, workers + 1)]
            for name in names:
                stack.start_worker(name)
            stack.wait_for_workers(names)
        yield stack
    finally:
        stop(stack)


def stop(stack: Stack, seconds: float = 30) -> None:
    """SIGTERM every process of every session the stack started, SIGKILL what is left after
    ``seconds``. Runs still going are abandoned: the database and the broker are throwaways."""
    for leader in stack.sessions:
        kill_session(leader, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    for process in stack.processes.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    with contextlib.suppress(TimeoutError):
        wait("the stack to stop", lambda: not stack.alive(), max(0.1, deadline - time.monotonic()), every=0.2)
    for leader in stack.sessions:
        kill_session(leader, signal.SIGKILL)
    for process in stack.processes.values():
        process.wait()
