"""Hooks for services that have no official Airflow provider."""
