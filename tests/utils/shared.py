"""Reference material in ../shared beside the repository (read-only; CI lays it there too)."""

from pathlib import Path

SHARED_DIR = Path(__file__).resolve().parents[2].parent / "shared"
SPARK_OPERATOR_CRD = SHARED_DIR / "specs/spark-operator/sparkoperator.k8s.io_sparkapplications.yaml"
LAKEKEEPER_MANAGEMENT_SPEC = SHARED_DIR / "specs/lakekeeper/management-open-api.yaml"
