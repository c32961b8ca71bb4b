"""`lakehouse maintenance run DATASET`: its arguments, and an unknown dataset refused before any server is asked."""

from __future__ import annotations

import pytest
from lakehouse_cli.exits import EXIT_REFUSED
from lakehouse_cli.main import build_parser, main


def test_the_maintenance_command_parses() -> None:
    args = build_parser().parse_args(["maintenance", "run", "orders"])
    assert (args.command, args.action, args.dataset) == ("maintenance", "run", "orders")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["maintenance", "run"])  # the dataset is never implied


def test_an_unknown_dataset_is_refused(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_API_URL", "http://127.0.0.1:9")
    assert main(["maintenance", "run", "no_such_dataset"]) == EXIT_REFUSED
    assert "unknown dataset 'no_such_dataset'" in capsys.readouterr().err
