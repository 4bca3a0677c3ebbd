"""Cloudmarker as an Apache Airflow 3 provider: each configured audit becomes a DAG.

The package keeps the original Cloudmarker plugin paths (``cloudmarker.clouds.mockcloud.MockCloud``
loads ``airflow_cloudmarker.clouds.mockcloud.MockCloud``) so existing configs keep working.
"""

from __future__ import annotations

__version__ = "0.1.0"


def _option(description: str, kind: str, default: str, example: str) -> dict[str, str | None]:
    return {"description": description, "version_added": "0.1.0", "type": kind, "example": example, "default": default}


def _options() -> dict[str, dict[str, str | None]]:
    """Every ``[cloudmarker]`` option the package reads (env: ``AIRFLOW__CLOUDMARKER__<NAME>``), with its default.

    The defaults are the code's own fallbacks (tests/unit/test_architecture.py checks both ways), so
    declaring them changes nothing but what ``airflow config list`` shows.
    """
    return {
        "config_path": _option(
            "Colon-separated list of YAML config files cascaded over the built-in base config "
            "(the CLOUDMARKER_CONFIG environment variable wins; empty: the tutorial's default cascade).",
            "string",
            "",
            "/etc/cloudmarker.yaml:/opt/airflow/cloudmarker.yaml",
        ),
        "findings_path": _option(
            "Where the findings state (new/open/resolved across runs) is kept: a local path or object "
            "storage URL. Empty: cloudmarker-findings beside the XComs ([common.io] xcom_objectstorage_path), "
            "else under AIRFLOW_HOME.",
            "string",
            "",
            "s3://aws_default@my-bucket/cloudmarker-findings",
        ),
        "task_retries": _option(
            "Retries of each plugin task of an audit. cloudmarker -n sets 0 for itself (a laptop run fails fast).",
            "integer",
            "2",
            "3",
        ),
        "retry_delay_seconds": _option("Seconds between a failed task try and its retry.", "integer", "60", "300"),
        "batch_size": _option(
            "Records per XCom batch at most (a batch is also cut at batch_bytes).", "integer", "50000", "10000"
        ),
        "batch_bytes": _option(
            "Encoded JSON bytes per XCom batch at most: bounds a task's memory whatever the record size.",
            "integer",
            "4000000",
            "1000000",
        ),
        "max_shard_groups": _option(
            "Mapped fetch tasks a sharded cloud's shards (subscriptions, projects) are packed into at most, "
            "unless the plugin's max_shard_groups says otherwise; never more than [core] max_map_length.",
            "integer",
            "32",
            "64",
        ),
    }


def get_provider_info() -> dict:
    """Describe this distribution to Airflow's providers manager (``airflow providers list``)."""
    return {
        "package-name": "airflow-cloudmarker",
        "name": "Cloudmarker",
        "description": "Cloud security monitoring: Cloudmarker audits of Azure and GCP as Airflow DAGs.",
        "versions": [__version__],
        "hooks": [
            {"integration-name": "Splunk HTTP Event Collector", "python-modules": ["airflow_cloudmarker.hooks.splunk"]}
        ],
        "connection-types": [
            {"connection-type": "splunk_hec", "hook-class-name": "airflow_cloudmarker.hooks.splunk.SplunkHecHook"}
        ],
        "config": {"cloudmarker": {"description": "Cloudmarker settings.", "options": _options()}},
    }
