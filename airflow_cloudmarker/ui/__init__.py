"""Findings in the Airflow UI: an Airflow plugin with a FastAPI app at ``/cloudmarker`` (JSON API and pages).

Airflow loads it through the ``airflow.plugins`` entry point (see ``plugin``); nothing in the package
imports it. It only reads the findings state (``findings``, ``findings_index``).
"""
