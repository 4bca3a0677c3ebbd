"""``cloudmarker`` without ``-n``: Airflow's own components run the audits on their schedule.

The scheduler, DAG processor, triggerer and API server (with the web UI) start as child
processes on the same embedded defaults as ``cloudmarker -n`` (``environment.service_environment``:
an AIRFLOW_HOME of its own, SQLite, XComs in a local directory, this package's DAG file reading
the same config files), with the audits' DAGs unpaused so the daily ``schedule`` is honoured.
There is no scheduling loop here: this module only starts, watches and stops Airflow's
processes. It does what ``airflow standalone`` does, but keeps the configured executor and auth
manager, and on Ctrl-C or SIGTERM it stops every child and its process group, so nothing is
left running.

Settings the user exported (``AIRFLOW__API__PORT``, ``AIRFLOW__CORE__EXECUTOR``,
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``, ...) win over these defaults.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_cloudmarker import environment, local_runs, metadb, runner

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_cloudmarker.config import Config

#: The API server first: task processes report to its Execution API, so the scheduler waits for it.
COMPONENTS = ("api-server", "dag-processor", "triggerer", "scheduler")
#: Components the API server's health endpoint reports on, under these names.
HEALTH_KEYS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
STOP_GRACE_SECONDS = 20.0
READY_TIMEOUT_SECONDS = 180.0
EXIT_COMPONENT_DIED = 1


#: Audit-log events of a person pausing or unpausing one DAG: the UI's toggle and the REST API
#: (``PATCH /api/v2/dags/{dag_id}``), and ``airflow dags pause|unpause``.
PERSON_PAUSE_EVENTS = ("patch_dag", "cli_dag_pause", "cli_dag_unpause")


def activate_scheduled_audits(audit_keys: Sequence[str]) -> list[str]:
    """Unpause the audits in ``run`` that are paused though no person ever paused them; return their keys.

    ``dag.test()`` (an earlier ``cloudmarker -n``, or one from a release that let Airflow pause new
    DAGs) registers a DAG paused, and the service's ``dags_are_paused_at_creation = False`` only
    applies to DAGs it creates: without this, an audit first run with ``-n`` would never be
    scheduled. A person's pause is in Airflow's audit log (the UI, the REST API, the CLI), and is
    kept.
    """
    if not audit_keys:
        return []
    from airflow import settings
    from airflow.models.dag import DagModel
    from airflow.models.log import Log
    from sqlalchemy import select

    keys = list(audit_keys)
    with settings.Session() as session:
        paused = session.scalars(select(DagModel).where(DagModel.dag_id.in_(keys), DagModel.is_paused)).all()
        by_person = set(
            session.scalars(select(Log.dag_id).where(Log.dag_id.in_(keys), Log.event.in_(PERSON_PAUSE_EVENTS)))
        )
        unpaused = []
        for dag in paused:
            if dag.dag_id not in by_person:
                dag.is_paused = False
                unpaused.append(dag.dag_id)
        session.commit()
    return sorted(unpaused)


def password_file(env: Mapping[str, str]) -> str:
    """Where Airflow's simple auth manager keeps the generated passwords."""
    configured = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    return configured or os.path.join(env["AIRFLOW_HOME"], "simple_auth_manager_passwords.json.generated")


def health(base_url: str, timeout: float = 2.0) -> dict | None:
    """The API server's ``/api/v2/monitor/health`` document, or None while it does not answer."""
    try:
        with urllib.request.urlopen(f"{base_url}/api/v2/monitor/health", timeout=timeout) as response:
            return json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def all_healthy(document: dict | None) -> bool:
    """True when the health document says every component in ``HEALTH_KEYS`` is healthy (None: not yet)."""
    if not document:
        return False
    return all((document.get(key) or {}).get("status") == "healthy" for key in HEALTH_KEYS)


@dataclass
class Components:
    """Airflow's components as child processes, each leading its own process group."""

    env: dict[str, str]
    names: Sequence[str] = COMPONENTS
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self, names: Sequence[str] | None = None) -> None:
        """Start ``names`` (default: all), each in its own session so ``stop()`` can kill its whole group."""
        for name in names or self.names:
            # A session of its own: Ctrl-C reaches only us, and we can kill the child's whole group.
            proc = subprocess.Popen(
                [sys.executable, "-m", "airflow", *name.split()],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.processes[name] = proc
            thread = threading.Thread(target=_relay, args=(name, proc), daemon=True)
            thread.start()
            self._threads.append(thread)

    def died(self) -> list[tuple[str, int]]:
        """Components that exited, with their exit codes."""
        return [(n, p.returncode) for n, p in self.processes.items() if p.poll() is not None]

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM every component, wait up to ``grace`` seconds, then SIGKILL what is left of each group."""
        for proc in self.processes.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.processes.values():
            # Also reaps grandchildren (API server workers, executor workers, parsers) the child left behind.
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        for thread in self._threads:
            thread.join(timeout=2)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _relay(name: str, proc: subprocess.Popen) -> None:
    """Copy a component's output to ours, each line prefixed with the component's name."""
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace").rstrip()
        print(f"{name:<13} | {line}", flush=True)


def _banner(config: Config, env: Mapping[str, str]) -> str:
    from airflow_cloudmarker.factory import local_timezone_name

    url = env["AIRFLOW__API__BASE_URL"]
    lines = ["", "Cloudmarker is running in Airflow.", f"  Web UI:   {url}"]
    users = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "")
    if env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() == "true":
        lines.append("  Login:    none needed (simple_auth_manager_all_admins)")
    else:
        path = password_file(env)
        passwords = {}
        try:
            with open(path) as f:
                passwords = json.load(f)
        except (OSError, ValueError):
            pass
        for entry in users.split(","):
            user = entry.split(":")[0].strip()
            if user:
                secret = passwords.get(user, f"(see {path})")
                lines.append(f"  Login:    user {user}, password {secret}  (kept in {path})")
    if config.schedule is not None and config.run:
        hour, minute = config.schedule
        tz = config.timezone or local_timezone_name()
        lines.append(f"  Schedule: {', '.join(config.run)} every day at {hour:02d}:{minute:02d} {tz}")
    others = sorted(set(config.audits) - set(config.run))
    if others:
        lines.append(f"  Manual:   {', '.join(others)} (not in `run`: trigger them from the UI)")
    lines.append("  Stop:     Ctrl-C")
    if "Celery" in env.get("AIRFLOW__CORE__EXECUTOR", ""):
        lines.append("  Workers:  start them with `airflow celery worker` (same environment and config)")
    return "\n".join(lines) + "\n"


def serve(config: Config, config_paths: Sequence[str]) -> int:
    """Start Airflow's components for the audits of ``config``; run until Ctrl-C or SIGTERM."""
    env = environment.service_environment(environment.existing_paths(config_paths))
    environment.apply(env)
    environment.check_airflow_settings()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    # Children inherit the whole environment (PYTHONPATH, AIRFLOW_CONN_*, HOME ...) with the defaults on top.
    # The DAG processor builds every audit (CLOUDMARKER_AUDITS is cloudmarker -n's, not the service's).
    components = Components({k: v for k, v in os.environ.items() if k != environment.AUDITS_ENV_VAR})
    try:
        print(f"cloudmarker: Airflow home {env['AIRFLOW_HOME']}; preparing the metadata DB", flush=True)
        metadb.ensure_database()
        # A run a killed `cloudmarker -n` left running would hold the audit's one active run slot forever.
        for run in local_runs.recover_abandoned_runs(runner.purge_run_xcoms):
            print(f"cloudmarker: {run.message()}", flush=True)
        for key in activate_scheduled_audits(config.run):
            print(f"cloudmarker: audit {key} was registered paused by `cloudmarker -n`; unpaused it", flush=True)
        if stop.is_set():
            return 0
        base_url = env["AIRFLOW__API__BASE_URL"]
        first, rest = COMPONENTS[0], COMPONENTS[1:]
        components.start([first])
        # Tasks queued before the Execution API answers fail with "connection refused" and wait for a retry.
        while not stop.wait(1.0) and not components.died() and health(base_url) is None:
            pass
        if not stop.is_set() and not components.died():
            components.start(rest)
        ready = False
        started = time.monotonic()
        while not stop.wait(1.0):
            dead = components.died()
            if dead:
                for name, code in dead:
                    print(f"cloudmarker: error: Airflow {name} exited with status {code}; stopping", file=sys.stderr)
                return EXIT_COMPONENT_DIED
            if not ready and all_healthy(health(base_url)):
                ready = True
                print(_banner(config, env), flush=True)
            elif not ready and time.monotonic() - started > READY_TIMEOUT_SECONDS:
                print("cloudmarker: warning: Airflow is not healthy yet; see the component logs above", flush=True)
                started = time.monotonic()
        print("cloudmarker: stopping Airflow's components", flush=True)
        return 0
    finally:
        components.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("cloudmarker: stopped", flush=True)
