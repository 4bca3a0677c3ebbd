"""Cloudmarker audits as Airflow DAGs, for a deployment's DAGs folder.

Copy or mount this file into the DAGs folder; name the config files with the CLOUDMARKER_CONFIG
environment variable (os.pathsep-separated), or rely on the default cascade.
"""

from airflow_cloudmarker.dagfile import load_dags

globals().update(load_dags())
