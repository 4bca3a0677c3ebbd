"""Deployment tests: Airflow's scheduler, API server and Celery workers as real processes, a real browser."""
