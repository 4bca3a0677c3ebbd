"""`cloudmarker` (scheduled mode) with LocalExecutor on SQLite: real Airflow components, driven over REST.

One service for the module (about 40 s to start on 2 cores, shared with the browser test): the
real ``cloudmarker`` command starts the scheduler, DAG processor, triggerer and API server; the
test logs in through ``/auth/token`` and triggers ``mockaudit`` through the REST API v2 the UI
uses, then reads the FileStore output the run wrote.
"""

from __future__ import annotations

import json

import pytest
from servers.airflow import shared_local_service


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
