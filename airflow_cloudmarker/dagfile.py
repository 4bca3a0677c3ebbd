"""What the DAG file runs: read the config cascade and build the audits' DAGs.

The DAG processor imports the DAG file often and every task re-imports it, so this reads only
YAML and environment variables (no network), builds only the DAG a task needs when Airflow
says which, and reports a bad audit without hiding the others: one bad audit raising would
flag every DAG of the file as broken.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from airflow_cloudmarker import config as config_mod
from airflow_cloudmarker import factory

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
        import os

        return [p for p in value.split(os.pathsep) if p.strip()]
    return list(config_mod.DEFAULT_CONFIG_PATHS)


def load_dags(fileloc: str | None = None) -> dict[str, Any]:
    """DAGs for the DAG file's globals(). A config error of the whole cascade raises (Airflow shows it).

    ``fileloc`` defaults to the file of the caller, the DAG file itself.
    """
    from airflow.sdk import get_parsing_context

    if fileloc is None:
        fileloc = sys._getframe(1).f_code.co_filename

    config = config_mod.load_config(config_paths())
    for warning in config.warnings:
        log.warning("%s", warning)
    wanted = get_parsing_context().dag_id
    keys = [wanted] if wanted and wanted in config.audits else None
    from airflow_cloudmarker import notify

    return factory.build_dags(config, keys, notify.dag_callbacks, fileloc)
