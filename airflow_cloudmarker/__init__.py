"""Cloudmarker as an Apache Airflow 3 provider: each configured audit becomes a DAG.

The package keeps the original Cloudmarker plugin paths (``cloudmarker.clouds.mockcloud.MockCloud``
loads ``airflow_cloudmarker.clouds.mockcloud.MockCloud``) so existing configs keep working.
"""

from __future__ import annotations

__version__ = "0.1.0"


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
        "config": {
            "cloudmarker": {
                "description": "Cloudmarker settings.",
                "options": {
                    "config_path": {
                        "description": "Colon-separated list of YAML config files cascaded over the "
                        "built-in base config (the CLOUDMARKER_CONFIG environment variable wins).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/etc/cloudmarker.yaml:/opt/airflow/cloudmarker.yaml",
                        "default": "",
                    }
                },
            }
        },
    }
