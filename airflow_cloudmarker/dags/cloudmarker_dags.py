"""Cloudmarker audits as Airflow DAGs: one DAG per audit of the config cascade.

Airflow imports this file (it names "airflow" and "dag", as safe-mode discovery wants). The
config files come from CLOUDMARKER_CONFIG (os.pathsep-separated), else the tutorial's cascade.
"""

from airflow_cloudmarker.dagfile import load_dags

globals().update(load_dags())
