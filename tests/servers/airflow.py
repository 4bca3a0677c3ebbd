"""Real Airflow services for the deployment tests: start, wait for health, talk REST, stop.

Every deployment test runs the real ``cloudmarker`` command (no ``-n``: Airflow's scheduler,
DAG processor, triggerer and API server as child processes) in an AIRFLOW_HOME of its own, on
free ports, and drives it through the REST API v2 the UI uses. Celery workers are real
``airflow celery worker`` processes. This module also holds the two small things the Celery
workers import by dotted path: the task-hostname callable that tells two workers on one machine
apart, and a cloud plugin whose shards take long enough for a worker to be killed mid-task.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import httpx

from servers.net import free_port, port_open

TERMINAL_RUN_STATES = {"success", "failed"}


# --- imported by Airflow in the workers -------------------------------------------------------------


def worker_hostname() -> str:
    """``[core] hostname_callable`` for the tests: the name of the Celery worker running the task."""
    return os.environ.get("CM_WORKER_NAME") or socket.getfqdn()


# --- processes ----------------------------------------------------------------------------------------


def package_dags_folder() -> str:
    return str(resources.files("airflow_cloudmarker").joinpath("dags"))


def deployment_env(home: Path, config_paths: list[str], **overrides: str) -> dict[str, str]:
    """One deployment's environment, shared by ``cloudmarker`` and its workers: own home, DB, ports, XCom dir."""
    env = dict(os.environ)
    # The session's settings (conftest) describe another Airflow; this deployment has its own.
    for key in [k for k in env if k.startswith("AIRFLOW__") or k == "AIRFLOW_HOME"]:
        del env[key]
    port = free_port()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "HOME": str(home.parent),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": package_dags_folder(),
            "AIRFLOW__CORE__XCOM_BACKEND": "airflow.providers.common.io.xcom.backend.XComObjectStorageBackend",
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH": f"file://{home}/xcom",
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD": "0",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # New runs are picked up quickly; the defaults suit a production scheduler, not a test.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "CLOUDMARKER_CONFIG": os.pathsep.join(config_paths),
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
        }
    )
    env.update(overrides)
    return env


@dataclass
class Service:
    """A running ``cloudmarker`` (scheduled mode) with its log file and REST client."""

    env: dict[str, str]
    proc: subprocess.Popen
    log_path: Path
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    _token: str | None = None

    @property
    def base_url(self) -> str:
        return self.env["AIRFLOW__API__BASE_URL"]

    @property
    def home(self) -> Path:
        return Path(self.env["AIRFLOW_HOME"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def password(self, user: str = "admin") -> str:
        with open(self.home / "simple_auth_manager_passwords.json.generated") as f:
            return json.load(f)[user]

    def token_of(self, user: str) -> str:
        """A JWT of ``user`` (POST /auth/token), as the UI's login gets it."""
        response = httpx.post(
            f"{self.base_url}/auth/token", json={"username": user, "password": self.password(user)}, timeout=30
        )
        response.raise_for_status()
        return response.json()["access_token"]

    # REST API v2, as the UI uses it
    def token(self) -> str:
        if self._token is None:
            response = httpx.post(
                f"{self.base_url}/auth/token",
                json={"username": "admin", "password": self.password()},
                timeout=30,
            )
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}"}
        response = httpx.request(method, f"{self.base_url}/api/v2{path}", headers=headers, timeout=30, **kwargs)
        response.raise_for_status()
        return response

    def wait_for_dag(self, dag_id: str, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = httpx.get(
                f"{self.base_url}/api/v2/dags/{dag_id}",
                headers={"Authorization": f"Bearer {self.token()}"},
                timeout=30,
            )
            if response.status_code == 200:
                return response.json()
            time.sleep(1)
        raise TimeoutError(f"DAG {dag_id} not parsed within {timeout} s\n{self.tail()}")

    def trigger(self, dag_id: str) -> str:
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None}).json()
        return run["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        state = "unknown"
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL_RUN_STATES:
                return state
            time.sleep(1)
        raise TimeoutError(f"run {run_id} of {dag_id} still {state} after {timeout} s\n{self.tail()}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self.api("GET", path, params={"limit": 1000}).json()["task_instances"]

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries"
        return self.api("GET", path).json()["task_instances"]

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    # workers
    def start_worker(self, name: str, concurrency: int = 1) -> subprocess.Popen:
        """A real ``airflow celery worker`` whose tasks report ``name`` as their hostname."""
        env = {
            **self.env,
            "CM_WORKER_NAME": name,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "servers.airflow.worker_hostname",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }
        log = open(self.log_path.with_name(f"worker-{name}.log"), "wb")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "celery", "worker", "-H", f"{name}@%h", "-c", str(concurrency)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.workers[name] = proc
        return proc

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker's whole process group, as if its machine died."""
        proc = self.workers[name]
        _killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self, timeout: float = 60) -> int:
        """Ctrl-C the service (SIGINT) and stop the workers; return the service's exit status."""
        for name in list(self.workers):
            _killpg(self.workers[name].pid, signal.SIGTERM)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait()
        for proc in self.workers.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return code


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def start_service(env: dict[str, str], log_path: Path, config_paths: list[str], timeout: float = 180) -> Service:
    """Run ``cloudmarker -c <config>`` (scheduled mode) and wait until Airflow reports itself healthy."""
    log = open(log_path, "wb")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "cloudmarker"), "-c", *config_paths],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    service = Service(env=env, proc=proc, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cloudmarker exited with {proc.returncode}\n{service.tail()}")
        if "Cloudmarker is running in Airflow." in service.log():
            return service
        time.sleep(1)
    service.stop()
    raise TimeoutError(f"cloudmarker not ready within {timeout} s\n{service.tail()}")


def processes_in_group(pgid: int) -> list[int]:
    """Live processes of a process group (zombies excluded), read from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def descendants(pid: int) -> list[int]:
    """Live descendants of ``pid`` (from /proc), to prove a stop leaves no orphans."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


# --- PostgreSQL ------------------------------------------------------------------------------------------


def create_postgres_database() -> str | None:
    """A fresh database on 127.0.0.1:5432 for one test run; its SQLAlchemy URL, or None without PostgreSQL."""
    if not port_open(5432):
        return None
    import psycopg2

    name = f"cm_test_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


def drop_postgres_database(url: str) -> None:
    import psycopg2

    name = url.rsplit("/", 1)[1]
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


# --- one shared LocalExecutor service for the whole session ------------------------------------------------

MANUAL_AND_DAILY_CONFIG = """\
plugins:
  filestore:
    params:
      path: {out}
  dailystore:
    plugin: cloudmarker.stores.filestore.FileStore
    params:
      path: {out}/daily

audits:
  dailyaudit:
    clouds:
      - mockcloud
    stores:
      - dailystore

run:
  - dailyaudit

schedule: "{schedule}"
timezone: Asia/Kolkata
"""

_SHARED: dict[str, Service] = {}
UI_USERS = "admin:admin,viewer:viewer,outsider:"


def shared_local_service(config: object) -> Service:
    """The session's LocalExecutor + SQLite ``cloudmarker`` service, started on first use and stopped at the end.

    ``mockaudit`` (from the base config, not in ``run``) is manual only, so a test's trigger is
    the only run that writes its files; ``dailyaudit`` is the scheduled one.
    """
    if "local" in _SHARED and _SHARED["local"].proc.poll() is None:
        return _SHARED["local"]
    root = Path(tempfile.mkdtemp(prefix="cm-local-service-"))  # outlives pytest's tmp rotation, for post-mortems
    out = root / "out"
    cfg = root / "cloudmarker.yaml"
    cfg.write_text(MANUAL_AND_DAILY_CONFIG.format(out=out, schedule="06:30"))
    # Users of three kinds for the UI plugin's auth tests: a VIEWER reads every DAG, a user without a
    # role reads none (SimpleAuthManager has no per-DAG grants outside multi-team mode), admin everything.
    env = deployment_env(root / "airflow", [str(cfg)], AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=UI_USERS)
    service = start_service(env, root / "cloudmarker.log", [str(cfg)])
    service.out_dir = out  # type: ignore[attr-defined]
    _SHARED["local"] = service
    config.add_cleanup(service.stop)
    return service
