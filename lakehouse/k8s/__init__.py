"""Kubernetes API types shared by every component (operator, upload API, CLI, Airflow, tests)."""
