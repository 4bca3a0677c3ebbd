"""What the DAG file runs: read the config cascade and build the audits' DAGs.

The DAG processor imports the DAG file often and every task re-imports it, so this reads only
YAML and environment variables (no network), builds only the DAG a task needs when Airflow
says which, and reports a bad audit without hiding the others: one bad audit raising would
flag every DAG of the file as broken.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import environment, factory, notify

if TYPE_CHECKING:
    from airflow.sdk import DAG

log = logging.getLogger("airflow_cloudmarker.dagfile")


def config_paths() -> list[str]:
    """``CLOUDMARKER_CONFIG``, else ``[cloudmarker] config_path``, else the tutorial's default cascade."""
    paths = config_mod.config_paths_from_env()
    if paths is not None:
        return paths
    try:
        from airflow.configuration import conf

        value = conf.get("cloudmarker", "config_path", fallback="")
    except Exception:
        value = ""
    if value:
        return [p for p in value.split(os.pathsep) if p.strip()]
    return list(config_mod.DEFAULT_CONFIG_PATHS)


def load_dags(fileloc: str | None = None) -> dict[str, DAG]:
    """DAGs for the DAG file's globals(). A config error of the whole cascade raises (Airflow shows it).

    ``fileloc`` defaults to the file of the caller, the DAG file itself. The config is parsed
    once per process (``load_config`` keeps it by file contents), and when Airflow parses the
    file to run a task (``get_parsing_context().dag_id`` is set) only that audit's DAG is built:
    a task of one audit does not pay for building the DAGs of a thousand others.
    """
    from airflow.sdk import get_parsing_context

    if fileloc is None:
        fileloc = sys._getframe(1).f_code.co_filename

    config = config_mod.load_config(config_paths())
    for warning in config.warnings:
        log.warning("%s", warning)
    return factory.build_dags(
        config,
        wanted_audits(config, get_parsing_context().dag_id),
        notify.dag_callbacks,
        fileloc,
        begin_hook=notify.begin_callback,
    )


def wanted_audits(config: config_mod.Config, parsing_dag_id: str | None) -> list[str] | None:
    """The audits to build: all (None) when the DAG processor parses the file, else the one Airflow asks for.

    A dag_id that is not one of this file's audits builds nothing (the task's DAG is not here).
    Under ``cloudmarker -n`` only the audits it runs are built.
    """
    if not parsing_dag_id:
        only = os.environ.get(environment.AUDITS_ENV_VAR)
        return None if only is None else [a for a in only.split(",") if a in config.audits]
    return [parsing_dag_id] if parsing_dag_id in config.audits else []
