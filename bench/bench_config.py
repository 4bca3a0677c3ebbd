"""Benchmark: load, validate and build the DAGs of a generated ~5 MB config (many plugins and audits).

Airflow imports the DAG file in the DAG processor and again in every task, and gives each import
``[core] dagbag_import_timeout`` (30 s by default). This prints, for a generated config of about
``--mb`` megabytes:

* ``parse``: reading the YAML files (the cascade) into mappings;
* ``load+validate``: ``load_config`` (parse, merge, check every audit and plugin);
* ``build all``: ``factory.build_dags`` of every audit (what the DAG processor needs);
* ``dag file, all DAGs``: ``dagfile.load_dags()`` as the DAG processor runs it;
* ``dag file, one DAG``: the same with Airflow's parsing context naming one DAG, as when a task
  runs (``AIRFLOW_PARSING_CONTEXT_DAG_ID``, read by ``airflow.sdk.get_parsing_context()``);
* ``dag file, one DAG again``: a second import in the same process (each ``dag.test()`` of
  ``cloudmarker -n`` imports the DAG file again).

    python bench/bench_config.py [--mb 5] [--audits N]
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="cm-bench-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow_cloudmarker import config as config_mod  # noqa: E402
from airflow_cloudmarker import dagfile, factory  # noqa: E402


def generate(path: Path, megabytes: float, audits: int) -> int:
    """Write a config of about ``megabytes`` MB: one MockCloud per audit, long record_types lists."""
    per_audit = int(megabytes * 1_000_000 / audits)
    types_per_cloud = max(1, (per_audit - 260) // 12)
    lines = ["plugins:"]
    for i in range(audits):
        types = ", ".join(f"type{j:05d}" for j in range(types_per_cloud))
        lines += [
            f"  cloud{i}:",
            "    plugin: cloudmarker.clouds.mockcloud.MockCloud",
            "    params:",
            f"      record_count: {i % 50 + 1}",
            f"      record_types: [{types}]",
            f"  event{i}:",
            "    plugin: cloudmarker.events.mockevent.MockEvent",
            "    params:",
            f"      n: {i % 7 + 2}",
        ]
    lines.append("audits:")
    for i in range(audits):
        lines += [
            f"  audit{i}:",
            f"    clouds: [cloud{i}]",
            f"    events: [event{i}]",
            "    stores: [filestore]",
            "    alerts: [filestore]",
        ]
    lines.append("run: [audit0]")
    path.write_text("\n".join(lines) + "\n")
    return path.stat().st_size


def timed(label: str, function):
    gc.collect()  # what earlier steps left behind (thousands of DAGs) must not slow this one's collections
    started = time.perf_counter()
    result = function()
    print(f"{label:<26} {time.perf_counter() - started:8.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=5.0, help="config size in MB (default 5)")
    parser.add_argument("--audits", type=int, default=2000, help="number of audits (default 2000)")
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="cm-bench-config-"))
    path = directory / "big.yaml"
    size = generate(path, args.mb, args.audits)
    print(f"config: {path} ({size / 1e6:.1f} MB, {args.audits} audits, {2 * args.audits} plugins)")
    os.environ[config_mod.CONFIG_ENV_VAR] = str(path)
    clear = getattr(config_mod, "clear_cache", lambda: None)

    clear()
    timed("parse", lambda: config_mod.read_layers([str(path)]))
    clear()
    config = timed("load+validate", lambda: config_mod.load_config([str(path)]))
    dags = timed("build all", functools.partial(factory.build_dags, config))
    assert len(dags) == args.audits + 1, len(dags)  # the generated audits and the base mockaudit

    del dags
    clear()
    dags = timed("dag file, all DAGs", lambda: dagfile.load_dags(str(path)))
    assert len(dags) == args.audits + 1
    del dags, config
    # What Airflow's task runner does before it imports the DAG file to run one task.
    from airflow.sdk.definitions._internal.dag_parsing_context import _airflow_parsing_context_manager

    one = f"audit{args.audits // 2}"
    clear()
    with _airflow_parsing_context_manager(dag_id=one, task_id=f"fetch_cloud{args.audits // 2}"):
        dags = timed("dag file, one DAG", lambda: dagfile.load_dags(str(path)))
        assert list(dags) == [one], len(dags)
        dags = timed("dag file, one DAG again", lambda: dagfile.load_dags(str(path)))
        assert list(dags) == [one], len(dags)


if __name__ == "__main__":
    sys.exit(main())
