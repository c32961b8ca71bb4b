"""The recovery commands' pure logic, and the runbooks' shape (tests/integration/test_runbooks.py runs them)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from lakehouse_cli.main import build_parser
from lakehouse_cli.recovery.replay import REPLAY_OF_LABEL, failed_runs, replay_manifest, replay_name

from lakehouse.k8s.ingestionrun.spec import UPLOAD_ID_MAX_LENGTH, UPLOAD_ID_PATTERN
from tests.utils.runbooks import RUNBOOKS_DIR, block_variables, runbook_blocks

README = Path(__file__).resolve().parents[3] / "README.md"
# Set by the shell or the platform's environment, not by the runbook's reader.
AMBIENT = {"PATH", "HOME", "KUBECONFIG"}


def run(name: str, phase: str | None, *, labels: dict[str, str] | None = None, reason: str | None = None) -> dict:
    status: dict[str, Any] = {"phase": phase} if phase else {}
    if reason:
        status["conditions"] = [{"type": "Failed", "status": "True", "reason": reason}]
    return {
        "apiVersion": "lakehouse.dev/v1alpha1",
        "kind": "IngestionRun",
        "metadata": {"name": name, "labels": labels or {}, "uid": "u1", "resourceVersion": "7"},
        "spec": {
            "uploadId": "up-1",
            "dataset": "orders",
            "source": {"uri": "s3://uploads/orders/2026-12-01/up-1/a.csv", "format": "csv"},
            "target": {"namespace": "bronze_it", "table": "t"},
        },
        "status": status,
    }


@pytest.mark.parametrize(
    ("name", "replay_of", "expected"),
    [
        ("up-1", None, "up-1-r1"),
        ("up-1-r1", "up-1", "up-1-r2"),
        ("up-1-r9", "up-1-r8", "up-1-r10"),
        ("t-r2", None, "t-r2-r1"),  # an upload whose id looks like a replay's is not one
        ("x" * 63, None, "x" * 60 + "-r1"),
        ("a-" * 31 + "b", None, ("a-" * 30).rstrip("-") + "-r1"),
    ],
)
def test_replay_names_follow_the_chain_and_stay_object_names(name: str, replay_of: str | None, expected: str) -> None:
    replay = replay_name(name, replay_of)
    assert replay == expected
    assert len(replay) <= UPLOAD_ID_MAX_LENGTH and re.fullmatch(UPLOAD_ID_PATTERN, replay)


def test_a_replay_has_the_runs_spec_its_labels_and_points_back_to_it() -> None:
    original = run("up-1-r1", "Failed", labels={"lakehouse.dev/dataset": "orders", REPLAY_OF_LABEL: "up-1"})
    manifest = replay_manifest(original)
    assert manifest["metadata"] == {
        "name": "up-1-r2",
        "labels": {"lakehouse.dev/dataset": "orders", REPLAY_OF_LABEL: "up-1-r1"},
    }
    assert manifest["spec"] == original["spec"]
    assert "status" not in manifest


def test_failed_runs_leaves_out_replayed_other_datasets_and_other_reasons() -> None:
    runs = [
        run("a", "Failed", reason="RetriesExhausted"),
        run("b", "Failed", reason="RetriesExhausted"),
        run("b-r1", "Transforming", labels={REPLAY_OF_LABEL: "b"}),
        run("c", "Failed", reason="MissingColumns"),
        run("d", "Succeeded"),
        run("e", "Ingesting"),
    ]
    assert [r["metadata"]["name"] for r in failed_runs(runs, None, None)] == ["a", "c"]
    assert [r["metadata"]["name"] for r in failed_runs(runs, "orders", "RetriesExhausted")] == ["a"]
    assert failed_runs(runs, "customers", None) == []


def test_the_recovery_commands_parse() -> None:
    parser = build_parser()
    assert parser.parse_args(["rollback", "bronze.orders", "--to-snapshot", "42", "--dry-run"]).to_snapshot == 42
    replay = parser.parse_args(["replay", "--failed", "--dataset", "orders", "--wait"])
    assert (replay.failed, replay.dataset, replay.runs, replay.wait) == (True, "orders", [], True)
    with pytest.raises(SystemExit):
        parser.parse_args(["rollback", "bronze.orders"])  # the target is never implied


RUNBOOKS = sorted(RUNBOOKS_DIR.glob("*.md"))


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.name)
def test_every_runbook_has_run_blocks_with_documented_variables_and_is_linked(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    blocks = runbook_blocks(text)
    assert blocks, "no ```sh runbook=NAME block: nothing of it would be tested"
    for section in ("## When to use it", "## Variables", "## What it does not fix"):
        assert section in text
    variables_section = text.split("## Variables", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]*)`", variables_section))
    used = set().union(*(block_variables(body) for body in blocks.values())) - AMBIENT
    # Variables a block sets itself (`name=...`) are lower case, so every upper-case one comes from the reader.
    assert used <= documented, f"used but not in the Variables table: {sorted(used - documented)}"
    assert f"docs/runbooks/{path.name}" in README.read_text(encoding="utf-8")


def test_blocks_are_found_by_name_and_a_name_is_used_once() -> None:
    text = "intro\n```sh runbook=one\necho $A\n```\n```sh\nnot run\n```\n```sh runbook=two\necho ${B}x\n```\n"
    blocks = runbook_blocks(text)
    assert blocks == {"one": "echo $A\n", "two": "echo ${B}x\n"}
    assert block_variables(blocks["two"]) == {"B"}
    with pytest.raises(ValueError, match="two blocks"):
        runbook_blocks(text + "```sh runbook=one\nx\n```\n")
