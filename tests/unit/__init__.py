"""Unit tests: no Airflow run, no metadata DB, no server, no ``cloudmarker`` process (``pytest -m unit``)."""
