"""The Airflow plugin ``pip install`` registers (entry point ``airflow.plugins``): the app and its tabs.

Airflow imports this module in every process that loads plugins, task processes included, so it
stays light: the FastAPI app is built only in the API server, the one process that mounts it.
The tabs' hrefs are relative (no leading ``/``), so they work behind a ``[api] base_url`` path;
the UI fills in ``{DAG_ID}`` and ``{RUN_ID}`` in the browser.
"""

from __future__ import annotations

import sys

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/cloudmarker"
EXTERNAL_VIEWS = [
    {
        "name": "Findings",
        "href": "cloudmarker/audit?dag_id={DAG_ID}",
        "destination": "dag",
        "url_route": "cloudmarker-findings",
    },
    {
        "name": "Changes",
        "href": "cloudmarker/run?dag_id={DAG_ID}&run_id={RUN_ID}",
        "destination": "dag_run",
        "url_route": "cloudmarker-changes",
    },
    {
        "name": "Cloudmarker",
        "href": "cloudmarker/",
        "destination": "nav",
        "url_route": "cloudmarker",
        "category": "browse",
    },
]


def in_api_server(argv: list[str] | None = None) -> bool:
    """True in ``airflow api-server`` (and its workers, which inherit its argv)."""
    args = sys.argv if argv is None else argv
    return "api-server" in args[1:2]


def fastapi_apps() -> list[dict]:
    """The app to mount, in the API server only (elsewhere nothing, so a task does not build it)."""
    if not in_api_server():
        return []
    from airflow_cloudmarker.ui.app import create_app

    return [{"name": "cloudmarker", "app": create_app(), "url_prefix": URL_PREFIX}]


class CloudmarkerPlugin(AirflowPlugin):
    """Findings in the Airflow UI: a Findings tab on every DAG, a Changes tab on every run, a Cloudmarker page."""

    name = "cloudmarker"
    fastapi_apps = fastapi_apps()
    external_views = EXTERNAL_VIEWS
