"""Benchmark: what one XCom push and pull cost inside ``dag.test()``, with and without the FastAPI fix.

Every batch a task pushes or pulls is a request to dag.test's in-process Execution API. This runs
one task that pushes and pulls ``--count`` small XComs (the object-storage backend, as
``cloudmarker -n`` configures it) in a fresh AIRFLOW_HOME, once as Airflow ships and once with
``inprocess_api.speed_up_dependency_overrides``, and prints milliseconds per call.
Printed figures, not a timed test; report ``uptime`` with them.

    python bench/bench_xcom.py [--count 200] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap

DAG = textwrap.dedent(
    """
    # airflow dag
    import os, time
    from airflow.sdk import dag, task, get_current_context

    if os.environ.get("BENCH_FIX"):
        from airflow_cloudmarker.inprocess_api import speed_up_dependency_overrides
        speed_up_dependency_overrides()

    @dag(schedule=None)
    def bench_xcom():
        @task
        def calls():
            ti = get_current_context()["ti"]
            n = int(os.environ["BENCH_COUNT"])
            started = time.perf_counter()
            for i in range(n):
                ti.xcom_push(f"k{i}", {"count": 1, "records": "[]"})
            pushed = time.perf_counter()
            for i in range(n):
                ti.xcom_pull(task_ids="calls", key=f"k{i}")
            pulled = time.perf_counter()
            with open(os.environ["BENCH_OUT"], "w") as f:
                f.write(f"{(pushed - started) / n * 1000:.1f} {(pulled - pushed) / n * 1000:.1f}")
        calls()
    bench_xcom()
    """
)


def run(home: str, count: int, fix: bool) -> tuple[float, float]:
    out = os.path.join(home, "result.txt")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        AIRFLOW_HOME=home,
        AIRFLOW__CORE__DAGS_FOLDER=os.path.join(home, "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__CORE__XCOM_BACKEND="airflow.providers.common.io.xcom.backend.XComObjectStorageBackend",
        AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH=f"file://{home}/xcom",
        AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD="0",
        AIRFLOW__LOGGING__LOGGING_LEVEL="ERROR",
        BENCH_COUNT=str(count),
        BENCH_OUT=out,
        **({"BENCH_FIX": "1"} if fix else {}),
    )
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    subprocess.run([airflow, "dags", "test", "bench_xcom"], env=env, check=True, capture_output=True)
    with open(out) as f:
        push, pull = f.read().split()
    return float(push), float(pull)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="cm-bench-xcom-")
    os.makedirs(os.path.join(home, "dags"))
    with open(os.path.join(home, "dags", "bench_xcom.py"), "w") as f:
        f.write(DAG)
    env = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"}
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    print(f"{'FastAPI':<26} {'push ms':>8} {'pull ms':>8}   ({args.count} calls each)")
    for _ in range(args.rounds):
        for fix in (False, True):
            push, pull = run(home, args.count, fix)
            print(f"{'memoized get_dependant' if fix else 'as shipped':<26} {push:>8.1f} {pull:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
