"""The Airflow settings of cloudmarker's own processes, applied before anything imports Airflow.

Airflow reads AIRFLOW_HOME, the DAGs folder, the metadata DB and the XCom backend once, when it
is first imported. Validating a config can import Airflow (a secret registered with its log
masker, a user's plugin module that imports a provider hook at its top), so the ``cloudmarker``
command applies this environment first thing, before it reads any config. Applied later, a
new user's first run would create its DB under ``~/airflow`` and find no DAGs.

This module must not import Airflow, nor any module of ours that does.
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from typing import TYPE_CHECKING

from airflow_cloudmarker.config import CONFIG_ENV_VAR  # config imports no Airflow

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

XCOM_BACKEND = "airflow.providers.common.io.xcom.backend.XComObjectStorageBackend"
DAG_FILE_NAME = "cloudmarker_dags.py"
#: Set by ``cloudmarker -n`` to the audits of its ``run`` list (``,``-separated): its ``dag.test()``
#: imports the DAG file with no parsing context, and needs no DAG of the other audits.
AUDITS_ENV_VAR = "CLOUDMARKER_AUDITS"


class AirflowImportedTooEarly(RuntimeError):
    """Airflow was imported with other settings than the ones this process needs."""


def default_home() -> str:
    """AIRFLOW_HOME when none is set: under ``~/.cloudmarker``, not sharing Airflow's default ``~/airflow``."""
    return os.path.join(os.path.expanduser("~"), ".cloudmarker", "airflow")


def dags_folder() -> str:
    """The DAGs folder inside the package (a ``pip install`` has no top-level ``dags/``)."""
    return str(resources.files("airflow_cloudmarker").joinpath("dags"))


def existing_paths(paths: Sequence[str]) -> list[str]:
    """Absolute paths of the config files that exist (relative names depend on the cwd)."""
    result = []
    for path in paths:
        full = os.path.abspath(os.path.expanduser(path))
        if os.path.isfile(full):
            result.append(full)
    return result


def embedded_environment(config_paths: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for an in-process Airflow (``cloudmarker -n``); values the user already set are kept."""
    environ = os.environ if environ is None else environ
    home = os.path.abspath(os.path.expanduser(environ.get("AIRFLOW_HOME") or default_home()))
    defaults = {
        "AIRFLOW_HOME": home,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__XCOM_BACKEND": XCOM_BACKEND,
        "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH": f"file://{home}/xcom",
        "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD": "0",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        # dag.test() registers DAGs as Airflow creates them; paused, the service would never schedule them.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # A failing plugin should fail the laptop run now, not after minutes of retry delays.
        "AIRFLOW__CLOUDMARKER__TASK_RETRIES": "0",
    }
    env = {k: environ.get(k) or v for k, v in defaults.items()}
    # The DAG file must build exactly the DAGs of this run: our DAGs folder and our config files.
    env["AIRFLOW__CORE__DAGS_FOLDER"] = dags_folder()
    env[CONFIG_ENV_VAR] = os.pathsep.join(config_paths)
    return env


def service_environment(config_paths: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of the service's Airflow components: ``cloudmarker -n``'s defaults plus what a service needs."""
    environ = os.environ if environ is None else environ
    env = embedded_environment(config_paths, environ)
    if "AIRFLOW__CLOUDMARKER__TASK_RETRIES" not in environ:
        # `-n` fails fast; a scheduled audit should ride out a flaky cloud API with Airflow's retries.
        env.pop("AIRFLOW__CLOUDMARKER__TASK_RETRIES", None)
    host = environ.get("AIRFLOW__API__HOST") or "127.0.0.1"
    port = environ.get("AIRFLOW__API__PORT") or "8080"
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    defaults = {
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": port,
        # Task processes reach the Execution API through base_url; a changed port without it fails every task.
        "AIRFLOW__API__BASE_URL": f"http://{url_host}:{port}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        # LocalExecutor starts this many worker processes up front; 32 (Airflow's default) swamps a laptop.
        "AIRFLOW__CORE__PARALLELISM": str(max(4, 2 * (os.cpu_count() or 2))),
    }
    env.update({k: environ.get(k) or v for k, v in defaults.items()})
    # Children run `airflow` from this interpreter's environment even when the venv is not activated.
    bin_dir = os.path.dirname(sys.executable)
    path = environ.get("PATH", "")
    env["PATH"] = path if path.split(os.pathsep)[0] == bin_dir else os.pathsep.join([bin_dir, path])
    return env


def apply(env: Mapping[str, str]) -> None:
    """Put ``env`` into this process's environment; it must happen before Airflow is first imported."""
    os.environ.update(env)
    os.makedirs(os.environ["AIRFLOW_HOME"], exist_ok=True)


def check_airflow_settings() -> None:
    """Fail clearly when Airflow was imported before :func:`apply` (it would use other settings silently).

    Called right before Airflow is used: Airflow fixed AIRFLOW_HOME and the DAGs folder at its first
    import, so a mismatch here means a run would create a second metadata DB and find no DAGs.
    """
    if "airflow.configuration" not in sys.modules:
        return
    from airflow.configuration import AIRFLOW_HOME, conf

    wanted_home = os.path.abspath(os.environ.get("AIRFLOW_HOME", ""))
    got_folder = os.path.abspath(os.path.expanduser(conf.get("core", "dags_folder")))
    wanted_folder = os.path.abspath(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER", got_folder))
    if os.path.abspath(AIRFLOW_HOME) != wanted_home or got_folder != wanted_folder:
        raise AirflowImportedTooEarly(
            f"Airflow was imported before cloudmarker set its environment (it uses AIRFLOW_HOME {AIRFLOW_HOME} "
            f"and DAGs folder {got_folder}, not {wanted_home} and {wanted_folder}); "
            "call airflow_cloudmarker.environment.apply() before anything imports Airflow"
        )
