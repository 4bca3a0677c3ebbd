"""Benchmark: one large Azure tenant audited by the `cloudmarker` service (LocalExecutor), CPU and task count.

Starts the fake ARM server in its own process (``--subscriptions`` subscriptions, ``--latency``
seconds per call, as ``bench_tenant.py`` does), then the real ``cloudmarker -c <config>`` service
(no ``-n``: Airflow's API server, DAG processor, triggerer and scheduler as child processes, the
scheduler's LocalExecutor running every task in a process of its own) with a fresh HOME, so
AIRFLOW_HOME, the SQLite DB and the XCom directory are the service's defaults under a temp dir.
It waits until Airflow is healthy, measures the idle service's CPU for ``--idle`` seconds,
triggers the audit through the REST API v2 (``/auth/token`` login, ``POST .../dagRuns``), waits
for the run to end, stops the service (SIGINT, as Ctrl-C) and prints:

* the task instances of the run (REST, every page), per task and state, with their tries;
* the run's wall time (queued to end, from the DagRun) and the fetch tasks' own time (their logs);
* CPU seconds (user+sys) of the whole service process tree: in the run (the live tree sampled at
  the trigger and at the end), the same net of the idle rate, and over the service's life. The
  tree is every process the service ever started, task processes included: the service runs
  under this script in ``--reap`` mode, a child subreaper (``PR_SET_CHILD_SUBREAPER``) that
  adopts and reaps every orphan, so ``os.wait4`` on it returns the usage of all of them;
* the peak RSS of a task process (sampled every ``--sample`` seconds);
* whether every subscription's records were stored exactly once (FileStore output).

``--groups N`` sets the plugin's ``max_shard_groups``: ``--groups 1000 --subscriptions 1000`` is one
fetch task per subscription (the behaviour before shard groups; Airflow's ``max_map_length``,
1,024, refused 2,000). Printed figures, not a timed test; report ``uptime`` with them.

    python bench/bench_deployment.py [--subscriptions 2000] [--latency 0.05] [--groups N]
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from servers.net import free_port  # noqa: E402 - tests/ is on sys.path from here on

PR_SET_CHILD_SUBREAPER = 36
TASK_TITLE = "airflow worker -- "  # the task runner's process title (task_runner.py)
WORKER_TITLE = "airflow worker -- LocalExecutor"  # a LocalExecutor worker (local_executor.py)
COMPONENTS = ("api-server", "dag-processor", "triggerer", "scheduler")

CONFIG = """\
plugins:
  myazcloud:
    plugin: cloudmarker.clouds.azcloud.AzCloud
{groups}    params:
      tenant: {tenant}
      client: {client}
      secret: {secret}
      authority_host: {url}
      resource_manager_url: {url}
  filestore:
    params:
      path: {out}
audits:
  tenantaudit:
    clouds: [myazcloud]
    stores: [filestore]
"""


# --- the reaper: the service's parent, which adopts and reaps every process of its tree ------------------


def reap(command: list[str]) -> int:
    """Run ``command`` as a child subreaper; forward SIGINT/SIGTERM; reap the whole tree; return its status."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    child = subprocess.Popen(command)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, _frame: child.send_signal(number))
    code = child.wait()
    # Orphans (task processes, API server workers, parsers whose parent died first) are ours now.
    deadline = time.monotonic() + 60
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return code
        if pid == 0:
            if time.monotonic() > deadline:
                import psutil

                for leftover in psutil.Process().children(recursive=True):
                    leftover.kill()
            time.sleep(0.2)


# --- the measuring side ------------------------------------------------------------------------------------


def kind(proc) -> str:
    """What a process of the service's tree is, from its title (Airflow sets them) or command line."""
    line = " ".join(proc.cmdline())
    if line.startswith(WORKER_TITLE):
        return "executor workers"
    if line.startswith(TASK_TITLE):
        return "task processes"
    for component in COMPONENTS:  # "python -m airflow api-server", retitled "airflow api_server -- host:..."
        if f"airflow {component}" in line or f"airflow {component.replace('-', '_')}" in line:
            return component
    return "cloudmarker"


def tree_cpu(root: int) -> tuple[collections.Counter, list]:
    """CPU seconds (user+sys) the live tree under ``root`` used so far, per kind of process; and its processes.

    Each live process counts its own time and that of the children it reaped; a process that
    exited and was reaped is in its parent's ``children_*`` times, so nothing is counted twice.
    A process is put under its component (its nearest ancestor that is one); an executor worker's
    reaped children are its task processes.
    """
    import psutil

    usage: collections.Counter = collections.Counter()
    try:
        top = psutil.Process(root)
        procs = [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return usage, []
    kinds: dict[int, str] = {}
    for proc in procs:  # parents come before their children
        try:
            own = kind(proc)
            if own == "cloudmarker":
                own = kinds.get(proc.ppid(), own)
            kinds[proc.pid] = own
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        usage[own] += t.user + t.system
        usage["task processes" if own == "executor workers" else own] += t.children_user + t.children_system
    return usage, procs


class Sampler:
    """Peak RSS and PSS of each task process (title ``airflow worker -- <ti id>``).

    RSS counts the pages a task process shares with the LocalExecutor worker it was forked from;
    PSS splits shared pages between their sharers, so it is closer to what each task adds.
    """

    def __init__(self) -> None:
        self.rss: dict[int, int] = {}
        self.pss: dict[int, int] = {}

    def sample(self, procs: list) -> None:
        import psutil

        for proc in procs:
            try:
                if kind(proc) != "task processes":
                    continue
                memory = proc.memory_full_info()
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            self.rss[proc.pid] = max(self.rss.get(proc.pid, 0), memory.rss)
            self.pss[proc.pid] = max(self.pss.get(proc.pid, 0), memory.pss)


def service_env(root: Path, fake_env: dict[str, str]) -> dict[str, str]:
    """The service's environment: a fresh HOME (so its own AIRFLOW_HOME), free ports, nothing else of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and not k.startswith("CLOUDMARKER")}
    port = free_port()
    env.update(
        {
            "HOME": str(root),
            "AIRFLOW__API__PORT": str(port),  # 8080 may be another helper's
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CLOUDMARKER__FINDINGS_PATH": f"file://{root}/findings",
            "NO_PROXY": "127.0.0.1,localhost",
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
            **fake_env,
        }
    )
    return env


def all_task_instances(service, dag_id: str, run_id: str) -> list[dict]:
    """Every task instance of the run: the list endpoint pages at ``[api] maximum_page_limit`` (100)."""
    found: list[dict] = []
    while True:
        page = service.api(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100, "offset": len(found)}
        ).json()
        found.extend(page["task_instances"])
        if not page["task_instances"] or len(found) >= page["total_entries"]:
            return found


def fetch_task_seconds(home: Path, dag_id: str) -> list[float]:
    """The fetch tasks' own time, from their summary lines (``... read N records in B batches in S s``)."""
    seconds = []
    for path in (home / "logs").glob(f"dag_id={dag_id}/run_id=*/task_id=fetch_*/**/attempt=*.log"):
        match = re.search(r"read \d+ records in \d+ batches in ([\d.]+) s", path.read_text(errors="replace"))
        if match:
            seconds.append(float(match.group(1)))
    return seconds


def most_at_once(tis: list[dict], prefix: str = "fetch_") -> int:
    """How many of the run's ``prefix`` task instances ran at the same time at most (their start and end dates)."""
    edges = []
    for ti in tis:
        if ti["task_id"].startswith(prefix) and ti.get("start_date") and ti.get("end_date"):
            edges += [(_seconds(ti["start_date"]), 1), (_seconds(ti["end_date"]), -1)]
    running = peak = 0
    for _, step in sorted(edges):
        running += step
        peak = max(peak, running)
    return peak


def stamp(label: str) -> None:
    load = os.getloadavg()
    print(f"[{time.strftime('%H:%M:%S')} load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}] {label}", flush=True)


def measure(args: argparse.Namespace) -> int:
    import multiprocessing

    import psutil
    import requests
    from servers import azure as fake_azure
    from servers.airflow import Service

    root = Path(tempfile.mkdtemp(prefix="cm-deploy-"))
    # The fake ARM server in a process of its own (not in the service's tree), as bench_tenant.py runs it.
    context = multiprocessing.get_context("spawn")
    info = context.Queue()
    kwargs = {"subscriptions": args.subscriptions, "vms": 2, "latency": args.latency}
    server = context.Process(target=fake_azure.serve_in_process, args=(str(root / "ca"), info), kwargs=kwargs)
    server.daemon = True
    server.start()
    service_proc = None
    try:
        url, ca_file, tenant, client, secret, subscriptions = info.get(timeout=120)
        fake = {"verify": ca_file, "shards": subscriptions, "env": {"REQUESTS_CA_BUNDLE": ca_file}}
        out = root / "out"
        groups = f"    max_shard_groups: {args.groups}\n" if args.groups else ""
        config = root / "cloudmarker.yaml"
        config.write_text(CONFIG.format(groups=groups, tenant=tenant, client=client, secret=secret, url=url, out=out))
        env = service_env(root, fake["env"])
        home = root / ".cloudmarker" / "airflow"
        log_path = root / "cloudmarker.log"
        cloudmarker = os.path.join(os.path.dirname(sys.executable), "cloudmarker")
        stamp(f"starting the service; work dir {root}")
        started = time.monotonic()
        with open(log_path, "wb") as log:
            service_proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--reap", "--", cloudmarker, "-c", str(config)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        env["AIRFLOW_HOME"] = str(home)
        env["AIRFLOW__API__BASE_URL"] = f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}"
        service = Service(env=env, proc=service_proc, log_path=log_path)
        while "Cloudmarker is running in Airflow." not in service.log():
            if service_proc.poll() is not None or time.monotonic() - started > 300:
                raise RuntimeError(f"the service did not start\n{service.tail()}")
            time.sleep(1)
        dag = service.wait_for_dag("tenantaudit", timeout=300)
        ready_cpu = sum(tree_cpu(service_proc.pid)[0].values())
        ready_wall = time.monotonic() - started
        stamp(f"ready after {ready_wall:.1f} s, CPU {ready_cpu:.1f} s; paused {dag['is_paused']}")
        idle_start = sum(tree_cpu(service_proc.pid)[0].values())
        time.sleep(args.idle)
        idle_end = sum(tree_cpu(service_proc.pid)[0].values())
        idle_rate = (idle_end - idle_start) / args.idle
        stamp(f"idle: {idle_end - idle_start:.1f} CPU s in {args.idle:.0f} s ({idle_rate:.2f} CPU s/s)")

        trigger_usage, _ = tree_cpu(service_proc.pid)
        run_id = service.trigger("tenantaudit")
        triggered = time.monotonic()
        sampler = Sampler()
        state = "queued"
        while state not in ("success", "failed"):
            _, procs = tree_cpu(service_proc.pid)
            sampler.sample(procs)
            time.sleep(args.sample)
            if time.monotonic() - triggered > args.timeout:
                raise TimeoutError(f"run still {state} after {args.timeout} s")
            state = service.run_state("tenantaudit", run_id)
        end_usage, _ = tree_cpu(service_proc.pid)
        polled_wall = time.monotonic() - triggered
        stamp(f"run {state} after {polled_wall:.1f} s")

        run = service.api("GET", f"/dags/tenantaudit/dagRuns/{run_id}").json()
        tis = all_task_instances(service, "tenantaudit", run_id)
        fetch_seconds = fetch_task_seconds(home, "tenantaudit")
        every_call = requests.get(f"{url}/_test/calls?all=1", timeout=60, verify=fake["verify"]).json()
        arm_calls = sum(1 for c in every_call if c[1].startswith("/subscriptions"))
        tokens = sum(1 for c in every_call if c[1].endswith("/token"))
        server_cpu = sum(psutil.Process(server.pid).cpu_times()[:2])

        # Stop as Ctrl-C does; wait4 on the reaper returns the CPU of every process the service ever had.
        os.kill(service_proc.pid, signal.SIGINT)
        _, status, usage = os.wait4(service_proc.pid, 0)
        service_proc.returncode = os.waitstatus_to_exitcode(status)
        life_cpu = usage.ru_utime + usage.ru_stime
        life_wall = time.monotonic() - started
        stamp(f"stopped, exit status {service_proc.returncode}")

        records = json.loads((out / "tenantaudit_myazcloud.json").read_text()) if state == "success" else []
        per_sub = collections.Counter(
            r["ext"]["subscription_id"] for r in records if r["ext"]["record_type"] == "subscription"
        )
        exactly_once = sorted(per_sub) == sorted(fake["shards"]) and set(per_sub.values()) == {1}
        by_task = collections.Counter(ti["task_id"] for ti in tis)
        states = collections.Counter(ti["state"] for ti in tis)
        retried = sum(1 for ti in tis if (ti.get("try_number") or 1) > 1)
        run_wall = _seconds(run["end_date"]) - _seconds(run["queued_at"])
        by_kind = {k: end_usage[k] - trigger_usage[k] for k in sorted(end_usage)}
        run_cpu = sum(by_kind.values())
        task_rss, task_pss = sorted(sampler.rss.values()), sorted(sampler.pss.values())
        fetches = by_task.get(f"fetch_{'myazcloud'}", 0)

        print()
        print(
            f"azure tenant: {args.subscriptions} subscriptions, latency {args.latency * 1000:.0f} ms, "
            f"max_shard_groups {args.groups or 'default'}; run {state}"
        )
        print(
            f"task instances in the run: {len(tis)} ({fetches} fetch_myazcloud, at most {most_at_once(tis)} at once); "
            f"by task "
            f"{dict(sorted(by_task.items()))}; states {dict(states)}; retried {retried}"
        )
        print(
            f"run wall {run_wall:.1f} s (queued to end; polled {polled_wall:.1f} s); fetch tasks' own time "
            f"sum {sum(fetch_seconds):.1f} s over {len(fetch_seconds)} tasks"
            + (f", longest {max(fetch_seconds):.1f} s" if fetch_seconds else "")
        )
        net = run_cpu - idle_rate * polled_wall
        print(
            f"service tree CPU (user+sys): in the run {run_cpu:.1f} s, net of idle {net:.1f} s "
            f"({net / len(tis):.2f} s per task instance); idle {idle_rate:.2f} CPU s/s; start-up {ready_cpu:.1f} s "
            f"in {ready_wall:.0f} s; whole life {life_cpu:.1f} s in {life_wall:.0f} s (wait4 through the subreaper)"
        )
        print("  in the run, per kind: " + ", ".join(f"{k} {v:.1f} s" for k, v in by_kind.items()))
        if task_rss:
            print(
                f"task processes seen: {len(task_rss)}; peak RSS median {task_rss[len(task_rss) // 2] / 2**20:.0f} MB, "
                f"max {task_rss[-1] / 2**20:.0f} MB; peak PSS median {task_pss[len(task_pss) // 2] / 2**20:.0f} MB, "
                f"max {task_pss[-1] / 2**20:.0f} MB"
            )
        print(
            f"ARM calls {arm_calls} (+{tokens} token requests); fake ARM server CPU {server_cpu:.1f} s (not counted "
            f"above); records {len(records)}; every subscription exactly once: {exactly_once}"
        )
        return 0 if state == "success" and exactly_once else 1
    finally:
        if service_proc is not None and service_proc.poll() is None:
            os.killpg(service_proc.pid, signal.SIGKILL)
            service_proc.wait()
        server.kill()


def _seconds(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def main() -> int:
    if sys.argv[1:2] == ["--reap"]:
        return reap(sys.argv[3:] if sys.argv[2:3] == ["--"] else sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per ARM call")
    parser.add_argument("--groups", type=int, default=None, help="the plugin's max_shard_groups (default: 32)")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds the idle service's CPU is measured")
    parser.add_argument("--sample", type=float, default=1.0, help="seconds between samples of the process tree")
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds the run may take")
    return measure(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
