"""Through Airflow's own CLI and providers manager: the provider registers, the DAG file loads audits."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from support.cli import REPO_ROOT, console_script


def json_output(text: str):
    """The JSON document in a CLI's stdout (Airflow prints warnings before it)."""
    for line in reversed(text.splitlines()):
        if line.startswith(("[", "{")):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise AssertionError(f"no JSON in output: {text[-2000:]}")


def airflow(*args: str, env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [console_script("airflow"), *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout
    )


def test_provider_is_registered(airflow_db):
    from airflow.providers_manager import ProvidersManager

    providers = ProvidersManager().providers
    assert "airflow-cloudmarker" in providers
    assert providers["airflow-cloudmarker"].data["name"] == "Cloudmarker"


def test_dags_folder_lists_good_audits_and_skips_a_bad_one(airflow_db, tmp_path):
    config = tmp_path / "deploy.yaml"
    config.write_text(
        f"plugins:\n  filestore:\n    params:\n      path: {tmp_path}/out\n"
        "audits:\n"
        "  goodaudit:\n    clouds: [mockcloud]\n    stores: [filestore]\n"
        "  badaudit:\n    clouds: [nosuchcloud]\n"
    )
    env = {"AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"), "CLOUDMARKER_CONFIG": str(config)}
    listed = airflow("dags", "list", "--local", "--output", "json", env=env)
    assert listed.returncode == 0, listed.stderr[-2000:]
    dag_ids = {d["dag_id"] for d in json_output(listed.stdout)}
    assert {"mockaudit", "goodaudit"} <= dag_ids
    assert "badaudit" not in dag_ids
    # The skipped audit is reported as a parse warning of the DAG file, naming the problem.
    script = (
        "import json; from airflow.dag_processing.dagbag import DagBag; "
        f"bag = DagBag({str(REPO_ROOT / 'dags')!r}); "
        "print(json.dumps({'warnings': [w for ws in bag.captured_warnings.values() for w in ws], "
        "'errors': bag.import_errors}))"
    )
    parsed = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    report = json_output(parsed.stdout)
    assert report["errors"] == {}
    assert any(
        "audit badaudit skipped" in w and "'nosuchcloud' is not defined under plugins" in w for w in report["warnings"]
    ), report
    errors = airflow("dags", "list-import-errors", "--local", "--output", "json", env=env)
    assert "cloudmarker_dags" not in errors.stdout, errors.stdout

    tested = airflow("dags", "test", "mockaudit", env=env)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
    records = json.loads((tmp_path / "out" / "mockaudit_mockcloud.json").read_text())
    events = json.loads((tmp_path / "out" / "mockaudit_mockevent.json").read_text())
    assert (len(records), len(events)) == (10, 4)
