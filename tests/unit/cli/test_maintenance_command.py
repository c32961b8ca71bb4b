"""`lakehouse maintenance run DATASET`: its arguments, and an unknown dataset refused before any server is asked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lakehouse_cli.exits import EXIT_REFUSED
from lakehouse_cli.main import build_parser, main

from lakehouse.contracts.cluster import ClusterContracts, contracts_of


def test_the_maintenance_command_parses() -> None:
    args = build_parser().parse_args(["maintenance", "run", "orders"])
    assert (args.command, args.action, args.dataset) == ("maintenance", "run", "orders")
    assert build_parser().parse_args(["maintenance", "run", "orders", "--namespace", "team-a"]).namespace == "team-a"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["maintenance", "run"])  # the dataset is never implied


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No kubeconfig and no pod: the contract files are all there is."""
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config either


def test_without_a_cluster_the_contract_files_are_read(no_cluster: None) -> None:
    contracts = contracts_of("lakehouse")
    assert not isinstance(contracts, ClusterContracts)
    assert contracts.get("orders").bronze.identifier == "bronze.orders"


def test_with_a_kubeconfig_the_namespaces_datasets_are_read(no_cluster: None, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = Path(os.environ["HOME"]) / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\nusers: [{name: u, user: {}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert isinstance(contracts_of("lakehouse"), ClusterContracts)


def test_an_unknown_dataset_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_cluster: None
) -> None:
    monkeypatch.setenv("LAKEHOUSE_API_URL", "http://127.0.0.1:9")
    assert main(["maintenance", "run", "no_such_dataset"]) == EXIT_REFUSED
    assert "unknown dataset 'no_such_dataset'" in capsys.readouterr().err
