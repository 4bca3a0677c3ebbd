"""CeleryExecutor beyond one machine: PostgreSQL metadata DB, Redis broker, two real Celery workers.

One deployment for the module: a fresh PostgreSQL database on 127.0.0.1:5432, a Redis DB index
of its own, the real ``cloudmarker`` command (scheduled mode) with ``CeleryExecutor``, and two
``airflow celery worker`` processes that tell themselves apart through ``[core]
hostname_callable`` (both run on this machine). The audit's cloud is sharded, so its fetch fans
out into mapped tasks that both workers take. Then a worker is SIGKILLed mid-task (its whole
process group, as if the machine died): the scheduler notices the missing heartbeats, the task is
retried on the other worker, and the output holds every record exactly once. Last, Ctrl-C stops
the deployment with no process left behind. About two minutes on 2 cores.
"""

from __future__ import annotations

import json
import random
import signal
import tempfile
import time
from pathlib import Path

import pytest
from servers.airflow import (
    create_postgres_database,
    deployment_env,
    descendants,
    drop_postgres_database,
    start_service,
)
from servers.net import port_open

SHARDS = 4
PER_SHARD = 3
CONFIG = """\
plugins:
  sharded:
    plugin: cm_test_plugins.ShardedCloud
    params:
      shard_count: {shards}
      records_per_shard: {per_shard}
      seconds: 5
  filestore:
    params:
      path: {out}

audits:
  shardaudit:
    clouds:
      - sharded
    stores:
      - filestore

run: []
"""

pytestmark = pytest.mark.skipif(
    not (port_open(5432) and port_open(6379)),
    reason="needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (.ci/services.sh starts them)",
)


@pytest.fixture(scope="module")
def deployment():
    db_url = create_postgres_database()
    root = Path(tempfile.mkdtemp(prefix="cm-celery-"))
    out = root / "out"
    cfg = root / "cloudmarker.yaml"
    cfg.write_text(CONFIG.format(shards=SHARDS, per_shard=PER_SHARD, out=out))
    redis_db = random.randint(3, 15)  # a DB index of its own: no other test's queue mixes in
    env = deployment_env(
        root / "airflow",
        [str(cfg)],
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=db_url,
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:6379/{redis_db}",
        AIRFLOW__CELERY__RESULT_BACKEND="db+" + db_url,
        AIRFLOW__CELERY__WORKER_CONCURRENCY="1",
        # A dead worker's task is noticed after 15 s without heartbeat (default 300 s) and retried 1 s later.
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="15",
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL="3",
        AIRFLOW__CLOUDMARKER__TASK_RETRIES="2",
        AIRFLOW__CLOUDMARKER__RETRY_DELAY_SECONDS="1",
    )
    service = None
    try:
        service = start_service(env, root / "cloudmarker.log", [str(cfg)], timeout=240)
        service.out_dir = out  # type: ignore[attr-defined]
        service.start_worker("worker-a")
        service.start_worker("worker-b")
        service.wait_for_dag("shardaudit")
        yield service
    finally:
        if service is not None:
            service.stop()
        drop_postgres_database(db_url)


def fetch_tis(service, run_id):
    return [ti for ti in service.task_instances("shardaudit", run_id) if ti["task_id"] == "fetch_sharded"]


def output_data(service) -> list[int]:
    records = json.loads((service.out_dir / "shardaudit_sharded.json").read_text())
    return sorted(r["raw"]["data"] for r in records)


def test_mapped_fetches_spread_over_both_workers(deployment):
    run_id = deployment.trigger("shardaudit")
    assert deployment.wait_for_run("shardaudit", run_id, timeout=240) == "success", deployment.tail()
    tis = fetch_tis(deployment, run_id)
    assert sorted(ti["map_index"] for ti in tis) == list(range(SHARDS))
    assert {ti["hostname"] for ti in tis} == {"worker-a", "worker-b"}
    assert output_data(deployment) == list(range(SHARDS * PER_SHARD))


def test_killed_worker_task_is_retried_elsewhere_and_nothing_is_written_twice(deployment):
    run_id = deployment.trigger("shardaudit")
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline:
        for ti in fetch_tis(deployment, run_id):
            if ti["state"] == "running" and ti["hostname"] == "worker-b":
                victim = ti
        time.sleep(0.5)
    assert victim is not None, "worker-b never ran a fetch task\n" + deployment.tail()
    deployment.kill_worker("worker-b")

    assert deployment.wait_for_run("shardaudit", run_id, timeout=240) == "success", deployment.tail()
    tries = deployment.tries("shardaudit", run_id, "fetch_sharded", victim["map_index"])
    assert tries[0]["hostname"] == "worker-b" and tries[-1]["hostname"] == "worker-a"
    assert tries[-1]["state"] == "success" and len(tries) >= 2
    assert output_data(deployment) == list(range(SHARDS * PER_SHARD))  # complete, and no record twice


def test_ctrl_c_stops_every_component(deployment):
    children = descendants(deployment.proc.pid)
    assert len(children) >= 4  # scheduler, DAG processor, triggerer, API server (and their own children)
    deployment.proc.send_signal(signal.SIGINT)
    assert deployment.proc.wait(timeout=60) == 0
    time.sleep(1)
    left = [pid for pid in children if Path(f"/proc/{pid}").exists() and _alive(pid)]
    assert left == [], f"processes left running after Ctrl-C: {left}"
    assert "cloudmarker: stopped" in deployment.log()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
