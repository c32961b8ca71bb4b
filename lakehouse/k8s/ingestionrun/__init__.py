"""The IngestionRun API (lakehouse.dev/v1alpha1): its names, spec, phases, conditions and status.

This package is the one home of these facts. It imports only the standard library and pydantic, so
the operator, the upload API, the CLI, the Airflow DAGs and the tests all use it; the CRD in
charts/lakehouse/crds is held equal to it by tests/unit/test_ingestionrun_types.py.
"""

GROUP = "lakehouse.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURAL = "ingestionruns"
KIND = "IngestionRun"
