"""``cloudmarker`` without ``-n``: hand the audits to Airflow's own scheduler (deployment issue)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from airflow_cloudmarker.config import Config


def serve(config: Config, config_paths: Sequence[str]) -> int:
    print(
        "cloudmarker: scheduled mode is not available yet; run the audits now with `cloudmarker -n`, "
        "or put dags/cloudmarker_dags.py in an Airflow deployment's DAGs folder",
        file=sys.stderr,
    )
    return 2
