"""charts/lakehouse ships the repository's CRD unchanged (Helm installs charts/*/crds/ before templates)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_chart_crds_are_the_repository_crds() -> None:
    source = sorted(p.name for p in (REPO_ROOT / "crds").glob("*.yaml"))
    chart = sorted(p.name for p in (REPO_ROOT / "charts" / "lakehouse" / "crds").glob("*.yaml"))
    assert chart == source and source, "the chart must ship the CRD"
    for name in source:
        assert (REPO_ROOT / "charts/lakehouse/crds" / name).read_bytes() == (REPO_ROOT / "crds" / name).read_bytes(), (
            f"charts/lakehouse/crds/{name} differs from crds/{name}: copy it again"
        )


def test_chart_spark_version_is_the_locked_pyspark() -> None:
    import tomllib

    import yaml

    locked = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    (pyspark,) = [p["version"] for p in locked["package"] if p["name"] == "pyspark"]
    values = yaml.safe_load((REPO_ROOT / "charts" / "lakehouse" / "values.yaml").read_text())
    assert values["spark"]["version"] == pyspark, "charts/lakehouse values spark.version must be uv.lock's pyspark"
