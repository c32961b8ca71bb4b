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
