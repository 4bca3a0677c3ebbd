"""The DAG file shipped inside the package (`cloudmarker -n` points Airflow here)."""
