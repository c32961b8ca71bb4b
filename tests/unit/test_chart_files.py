"""charts/lakehouse: values that must match what the code and the lock file say."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_chart_spark_version_is_the_locked_pyspark() -> None:
    import tomllib

    import yaml

    locked = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    (pyspark,) = [p["version"] for p in locked["package"] if p["name"] == "pyspark"]
    values = yaml.safe_load((REPO_ROOT / "charts" / "lakehouse" / "values.yaml").read_text())
    assert values["spark"]["version"] == pyspark, "charts/lakehouse values spark.version must be uv.lock's pyspark"
