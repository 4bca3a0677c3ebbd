"""The tutorial's mock audits end to end through Airflow's dag.test(): config in, files out.

Most runs are in-process (``runner.run_now``, what ``cloudmarker -n`` calls): after the first,
each costs under a second. A few go through the real ``cloudmarker`` command to prove the
console script, its exit status and its summary.
"""

from __future__ import annotations

import json
import textwrap

from support.cli import run_cli

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import runner

GET_STARTED = """\
plugins:
  mymockcloud:
    plugin: cloudmarker.clouds.mockcloud.MockCloud
    params:
      record_count: 5
      record_types:
        - apple
        - ball
        - cat

audits:
  mymockaudit:
    clouds:
      - mymockcloud
    stores:
      - filestore
    events:
      - mockevent
    alerts:
      - filestore

run:
  - mymockaudit
"""


def read_json(path):
    with open(path) as f:
        return json.load(f)


def run_now(paths):
    config = config_mod.load_config(paths)
    return config, runner.run_now(config, paths)


def test_get_started_through_the_cloudmarker_command(airflow_db, out_dir, home, tmp_path):
    (home.parent / "work" / "cloudmarker.yaml").write_text(GET_STARTED)  # verbatim, in the current directory
    result = run_cli("-n", cwd=home.parent / "work")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = read_json(out_dir / "mymockaudit_mymockcloud.json")
    assert [r["ext"]["record_type"] for r in records] == ["apple", "ball", "cat", "apple", "ball"]
    events = read_json(out_dir / "mymockaudit_mockevent.json")
    assert [e["ext"]["data"] for e in events] == [0, 3]
    com = events[0]["com"]
    assert com["origin_worker"] == "mymockaudit_mockevent" and com["target_type"] == "alert"
    assert com["audit_key"] == "mymockaudit" and len(com["audit_version"]) == 15
    assert (com["check_id"], com["severity"]) == ("mock_multiple_of_n", "low")  # the check reaches the alert
    assert records[0]["com"]["origin_type"] == "cloud" and records[0]["com"]["target_key"] == "filestore"
    assert "mymockaudit" in result.stdout and "success" in result.stdout  # the summary
    log_text = (tmp_path / "cloudmarker.log").read_text()
    assert "mymockcloud: read 5 records in 1 batches" in log_text


def test_mockcloud_and_mockevent_overrides(airflow_db, out_dir, home):
    path = home.parent / "work" / "cloudmarker.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            plugins:
              mockcloud:
                params:
                  record_count: 20
                  record_types:
                    - foo
                    - bar
                    - baz
              mockevent:
                params:
                  n: 5
            """
        )
    )
    xcom_files_before = set((airflow_db / "xcom").glob("mockaudit/*/*/*"))
    _, results = run_now(config_mod.DEFAULT_CONFIG_PATHS)
    assert [(r.audit, r.state, r.records, r.events) for r in results] == [("mockaudit", "success", 20, 4)]
    records = read_json(out_dir / "mockaudit_mockcloud.json")
    assert [r["ext"]["record_type"] for r in records[:4]] == ["foo", "bar", "baz", "foo"]
    assert [e["ext"]["data"] for e in read_json(out_dir / "mockaudit_mockevent.json")] == [0, 5, 10, 15]
    # The run's record batches went through the XCom object store and were removed after the run.
    assert set((airflow_db / "xcom").glob("mockaudit/*/*/*")) == xcom_files_before


def test_filestore_path_with_tilde_and_logger_override(airflow_db, home):
    work = home.parent / "work"
    (work / "log").mkdir()
    (work / "cloudmarker.yaml").write_text(
        "plugins:\n  filestore:\n    params:\n      path: ~/cloudmarker\n"
        "logger:\n  handlers:\n    file:\n      filename: log/cloudmarker.log\n"
    )
    _, results = run_now(config_mod.DEFAULT_CONFIG_PATHS)
    assert results[0].state == "success"
    assert len(read_json(home / "cloudmarker" / "mockaudit_mockcloud.json")) == 10
    assert len(read_json(home / "cloudmarker" / "mockaudit_mockevent.json")) == 4
    assert "Audit mockaudit: success" in (work / "log" / "cloudmarker.log").read_text()


def test_config_option_replaces_the_default_list(airflow_db, out_dir, home):
    work = home.parent / "work"
    (work / "cloudmarker.yaml").write_text("run: [nosuchaudit]\n")  # ignored: -c replaces the list
    (work / "foo.yaml").write_text(
        "audits:\n  fooaudit:\n    clouds: [mockcloud]\n    stores: [filestore]\nrun:\n  - mockaudit\n  - fooaudit\n"
    )
    (work / "bar.yaml").write_text(
        f"plugins:\n  filestore:\n    params:\n      path: {out_dir}\n"
        "audits:\n  baraudit:\n    clouds: [mockcloud]\n    stores: [filestore]\nrun:\n  - baraudit\n"
    )
    _, results = run_now(["foo.yaml", "bar.yaml"])
    assert [r.audit for r in results] == ["baraudit"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["baraudit_mockcloud.json"]


def test_failing_cloud_fails_its_task_and_loses_nothing_else(airflow_db, out_dir, home):
    (home.parent / "work" / "cloudmarker.yaml").write_text(
        "plugins:\n  broken:\n    plugin: cm_test_plugins.FailingCloud\n"
        "audits:\n  mockaudit:\n    clouds: [mockcloud, broken]\n"
    )
    _, results = run_now(config_mod.DEFAULT_CONFIG_PATHS)
    (result,) = results
    assert result.state == "failed"
    assert result.failed_tasks == ["fetch_broken"]
    # The successful cloud's records and events all arrived; none of the failed fetch's partial output.
    assert len(read_json(out_dir / "mockaudit_mockcloud.json")) == 10
    assert len(read_json(out_dir / "mockaudit_mockevent.json")) == 4
    assert not (out_dir / "mockaudit_broken.json").exists()


def test_failing_store_and_event_do_not_stop_the_others(airflow_db, out_dir, home):
    (home.parent / "work" / "cloudmarker.yaml").write_text(
        "plugins:\n  deadstore:\n    plugin: cm_test_plugins.FailingStore\n"
        "  buggyevent:\n    plugin: cm_test_plugins.FailingEvent\n"
        "audits:\n  mockaudit:\n    stores: [deadstore, filestore]\n    events: [buggyevent, mockevent]\n"
    )
    _, results = run_now(config_mod.DEFAULT_CONFIG_PATHS)
    assert results[0].state == "failed"
    assert results[0].failed_tasks == ["check_buggyevent", "store_deadstore"]
    assert len(read_json(out_dir / "mockaudit_mockcloud.json")) == 10
    assert len(read_json(out_dir / "mockaudit_mockevent.json")) == 4


def test_sharded_cloud_fans_out_into_mapped_fetch_tasks(airflow_db, out_dir, home):
    (home.parent / "work" / "cloudmarker.yaml").write_text(
        "plugins:\n  sharded:\n    plugin: cm_test_plugins.ShardedCloud\n    params:\n      shard_count: 3\n"
        "audits:\n  mockaudit:\n    clouds: [sharded]\n"
    )
    _, results = run_now(config_mod.DEFAULT_CONFIG_PATHS)
    assert results[0].state == "success" and results[0].records == 12
    records = read_json(out_dir / "mockaudit_sharded.json")
    assert sorted(r["raw"]["data"] for r in records) == list(range(12))
    assert [e["ext"]["data"] for e in read_json(out_dir / "mockaudit_mockevent.json")] == [0, 3, 6, 9]


def test_cloudmarker_command_exits_nonzero_when_an_audit_fails(airflow_db, out_dir, home):
    (home.parent / "work" / "cloudmarker.yaml").write_text(
        "plugins:\n  broken:\n    plugin: cm_test_plugins.FailingCloud\naudits:\n  mockaudit:\n    clouds: [broken]\n"
    )
    result = run_cli("-n", cwd=home.parent / "work")
    assert result.returncode == 1
    assert "failed tasks: fetch_broken" in result.stdout
    # The cause in one line; Airflow's per-task INFO chatter stays off the console.
    assert "fetch of plugin broken (cm_test_plugins.FailingCloud) failed: ConnectionError: cloud API went away" in (
        result.stdout
    )
    assert "Task instance state updated" not in result.stdout + result.stderr
    # The causes, not Airflow's tracebacks of them (the plugin's and the audit_failed watcher's).
    assert "Traceback" not in result.stdout + result.stderr
    assert len((result.stdout + result.stderr).splitlines()) < 20, result.stdout


def test_a_failing_findings_task_says_why_in_one_line(airflow_db, out_dir, home, tmp_path):
    (tmp_path / "not-a-directory").write_text("")
    result = run_cli(
        "-n",
        cwd=home.parent / "work",
        env={"AIRFLOW__CLOUDMARKER__FINDINGS_PATH": f"file://{tmp_path}/not-a-directory/findings"},
    )
    assert result.returncode == 1
    assert "failed tasks: findings" in result.stdout
    cause = [line for line in result.stdout.splitlines() if "findings of audit mockaudit failed: " in line]
    assert len(cause) == 1 and "Error" in cause[0], result.stdout[-3000:]
    assert "Traceback" not in result.stdout + result.stderr


def test_retried_fetch_writes_nothing_twice(airflow_db, out_dir, home, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CLOUDMARKER__TASK_RETRIES", "1")
    monkeypatch.setenv("AIRFLOW__CLOUDMARKER__RETRY_DELAY_SECONDS", "0")
    monkeypatch.setenv("AIRFLOW__CLOUDMARKER__BATCH_SIZE", "2")  # the failed try pushes two batches first
    (home.parent / "work" / "cloudmarker.yaml").write_text(
        f"plugins:\n  flaky:\n    plugin: cm_test_plugins.FlakyCloud\n    params:\n      marker: {tmp_path}/tried\n"
        "audits:\n  mockaudit:\n    clouds: [flaky]\n"
    )
    _, results = run_now(config_mod.DEFAULT_CONFIG_PATHS)
    assert (tmp_path / "tried").exists()  # the first try did fail
    assert results[0].state == "success" and results[0].records == 10
    records = read_json(out_dir / "mockaudit_flaky.json")
    assert sorted(r["raw"]["data"] for r in records) == list(range(10))
    assert [e["ext"]["data"] for e in read_json(out_dir / "mockaudit_mockevent.json")] == [0, 3, 6, 9]


def _fetch_map_indexes(dag_id: str, task_id: str) -> list[int]:
    """The map indexes of ``task_id`` in the latest run of ``dag_id`` (the task instances it became)."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance

    with settings.Session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id).order_by(DagRun.id.desc()).first()
        tis = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run.run_id, task_id=task_id).all()
        return sorted(ti.map_index for ti in tis)


def test_many_shards_become_a_bounded_number_of_fetch_tasks(airflow_db, out_dir, home):
    (home.parent / "work" / "cloudmarker.yaml").write_text(
        "plugins:\n  sharded:\n    plugin: cm_test_plugins.ShardedCloud\n    max_shard_groups: 4\n"
        "    params:\n      shard_count: 30\n      records_per_shard: 3\n"
        "audits:\n  mockaudit:\n    clouds: [sharded]\n"
    )
    _, results = run_now(config_mod.DEFAULT_CONFIG_PATHS)
    assert results[0].state == "success" and results[0].records == 90
    assert _fetch_map_indexes("mockaudit", "fetch_sharded") == [0, 1, 2, 3]
    records = read_json(out_dir / "mockaudit_sharded.json")
    assert sorted(r["raw"]["data"] for r in records) == list(range(90))  # every shard's records, exactly once


def test_a_failing_shard_is_named_and_the_others_records_are_kept(airflow_db, out_dir, home, tmp_path):
    config = home.parent / "work" / "cloudmarker.yaml"
    base = (
        "plugins:\n  sharded:\n    plugin: cm_test_plugins.ShardedCloud\n    max_shard_groups: 2\n"
        "    params:\n      shard_count: 5\n{fail}"
        "audits:\n  mockaudit:\n    clouds: [sharded]\n    events: [mockevent]\n    stores: [filestore]\n"
        "    alerts: [filestore]\n"
    )
    config.write_text(base.format(fail=""))
    _, results = run_now(config_mod.DEFAULT_CONFIG_PATHS)
    assert results[0].state == "success" and results[0].new == 7  # data 0, 3, ..., 18

    config.write_text(base.format(fail="      fail_shards: [shard-1]\n"))
    log_file = tmp_path / "cloudmarker.log"
    log_file.write_text("")
    _, results = run_now(config_mod.DEFAULT_CONFIG_PATHS)
    assert results[0].state == "failed" and results[0].failed_tasks == ["fetch_sharded"]
    # shard-1's first record (data 4) came before it failed; its other three (5, 6, 7) are missing.
    data = sorted(r["raw"]["data"] for r in read_json(out_dir / "mockaudit_sharded.json"))
    assert data == [d for d in range(20) if d not in (5, 6, 7)]
    # The finding of data 6 is unseen but not resolved: its cloud did not complete.
    assert results[0].resolved == 0
    alerts = read_json(out_dir / "mockaudit_mockevent.json")
    assert sorted(e["ext"]["data"] for e in alerts) == [0, 3, 9, 12, 15, 18]
    messages = log_file.read_text().splitlines()
    assert any(
        "fetch of plugin sharded (cm_test_plugins.ShardedCloud) failed: ShardsFailed: 1 of 3 shards failed "
        "(shard-1; first: shard-1: ConnectionError: the API of shard-1 went away" in m
        for m in messages
    ), messages
    assert any("shards that did not complete: sharded:shard-1" in m for m in messages), messages
