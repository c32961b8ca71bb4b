"""The lakehouse provider for Apache Airflow: create or adopt IngestionRuns and wait for them, deferred.

Airflow finds it through the `apache_airflow_provider` entry point, which names get_provider_info. Nothing
here imports Airflow, so the pure logic (runs.py, summary.py, monitoring.py, messages.py) is tested without it.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "lakehouse-airflow",
        "name": "Lakehouse",
        "description": "IngestionRuns of the lakehouse ingestion platform, created, adopted and awaited from DAGs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Lakehouse",
                "external-doc-url": "https://github.com/lakehouse-ingest/lakehouse-ingest/tree/main/airflow",
                "tags": ["software"],
            }
        ],
        "hooks": [{"integration-name": "Lakehouse", "python-modules": ["lakehouse_airflow.hooks.lakehouse"]}],
        "operators": [
            {"integration-name": "Lakehouse", "python-modules": ["lakehouse_airflow.operators.ingestion_run"]}
        ],
        "sensors": [{"integration-name": "Lakehouse", "python-modules": ["lakehouse_airflow.sensors.ingestion_run"]}],
        "triggers": [{"integration-name": "Lakehouse", "python-modules": ["lakehouse_airflow.triggers.ingestion_run"]}],
    }
