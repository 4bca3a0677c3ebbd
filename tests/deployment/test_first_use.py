"""A new user's audits, first run with ``cloudmarker -n``, are scheduled when the service starts later.

The real ``cloudmarker`` service (scheduler, DAG processor, triggerer, API server) in a fresh HOME,
as a user starts it, after a first ``-n`` run; the first run itself is in
tests/integration/test_first_use.py.
"""

from __future__ import annotations

import subprocess
import time

from servers.airflow import Service
from servers.net import free_port
from support.cli import console_script, run_cli_as_user, user_config, user_env

PAUSED_FIRST = """\
audits:
  dailyaudit:
    clouds: [mockcloud]
    stores: [filestore]
  keptpaused:
    clouds: [mockcloud]
    stores: [filestore]
run: [dailyaudit, keptpaused]
schedule: "06:30"
"""


def test_audits_first_run_with_dash_n_are_scheduled_by_the_service(user_home, tmp_path):
    """The tutorial's path: ``cloudmarker -n`` first, the service later. The audits in ``run`` are scheduled,
    however ``-n`` registered them; an audit a person paused stays paused."""
    user_config(user_home, tmp_path, PAUSED_FIRST)
    # As a release that let Airflow register new DAGs paused left a home: both audits paused.
    first = run_cli_as_user("-n", home=user_home, env={"AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True"})
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    airflow_home = user_home / ".cloudmarker" / "airflow"
    pause = subprocess.run(
        [console_script("airflow"), "dags", "pause", "keptpaused"],
        env=user_env(user_home, {"AIRFLOW_HOME": str(airflow_home)}),
        capture_output=True,
        text=True,
        timeout=120,
    )  # a person pauses one of them on purpose
    assert pause.returncode == 0, pause.stderr[-3000:]

    port = free_port()
    ports = {
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }
    log_path = tmp_path / "service.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [console_script("cloudmarker")],
            cwd=user_home,
            env=user_env(user_home, ports),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    rest_env = {"AIRFLOW_HOME": str(airflow_home), "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}"}
    service = Service(env=rest_env, proc=proc, log_path=log_path)
    try:
        deadline = time.monotonic() + 180
        while "Cloudmarker is running in Airflow." not in service.log():
            assert proc.poll() is None and time.monotonic() < deadline, service.tail()
            time.sleep(1)
        daily = service.wait_for_dag("dailyaudit")
        kept = service.wait_for_dag("keptpaused")
    finally:
        assert service.stop() == 0, service.tail()
    assert daily["is_paused"] is False and daily["next_dagrun_run_after"], daily
    assert kept["is_paused"] is True, kept
    assert "audit dailyaudit was registered paused by `cloudmarker -n`; unpaused it" in service.log()
    assert "audit keptpaused" not in service.log()
