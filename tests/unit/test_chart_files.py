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


def test_chart_readme_is_generated_from_values() -> None:
    from lakehouse.devtools.chart_readme import render

    committed = (REPO_ROOT / "charts" / "lakehouse" / "README.md").read_text()
    assert committed == render(), "run `python -m lakehouse.devtools.chart_readme` after editing values.yaml"


def test_chart_metadata_names_the_project_and_its_crd() -> None:
    import tomllib

    import yaml

    from lakehouse.k8s.ingestionrun import GROUP, KIND, PLURAL, VERSION

    chart = yaml.safe_load((REPO_ROOT / "charts" / "lakehouse" / "Chart.yaml").read_text())
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert chart["home"] == project["urls"]["Homepage"]
    assert chart["maintainers"] and all(m["name"] and m["email"] for m in chart["maintainers"])
    assert chart["annotations"]["artifacthub.io/license"] == project["license"]
    (crd,) = yaml.safe_load(chart["annotations"]["artifacthub.io/crds"])
    assert (crd["kind"], crd["version"], crd["name"]) == (KIND, VERSION, f"{PLURAL}.{GROUP}")


def test_chart_topics_are_the_topics_the_platform_publishes_to() -> None:
    import yaml

    from lakehouse.events import TOPICS

    for values in ("charts/lakehouse/values.yaml", "devstack/cluster/lakehouse-values.yaml"):
        items = yaml.safe_load((REPO_ROOT / values).read_text())["kafka"]["topics"]["items"]
        assert set(items) == set(TOPICS), values
