"""The commands the documentation shows, run as a reader would paste them (issue #16).

A block fenced ```sh docs-test in README.md or docs/ can run against the local stack, so it is run: it must
exit 0, and a `# expect: TEXT` line in it must find TEXT in its output. Blocks that need a reader's own names
(a run, a release, a registry) stay plain ```sh; the runbooks have their own test (test_runbooks.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.utils.runbooks import run_shell_block

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```sh docs-test\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
_EXPECT = re.compile(r"^# expect: (?P<text>.+)$", re.MULTILINE)


def documented_blocks() -> list[tuple[str, str]]:
    return [
        (f"{path.relative_to(REPO_ROOT)}#{number}", match["body"])
        for path in DOCUMENTS
        for number, match in enumerate(_BLOCK.finditer(path.read_text(encoding="utf-8")), start=1)
    ]


def test_the_docs_have_commands_to_run() -> None:
    """A renamed fence would silently turn every check below off."""
    assert {where.split("#")[0] for where, _ in documented_blocks()} >= {
        "README.md",
        "docs/upgrading.md",
        "docs/troubleshooting.md",
    }


@pytest.mark.parametrize(("where", "script"), documented_blocks(), ids=[w for w, _ in documented_blocks()])
def test_a_documented_command_block_runs(where: str, script: str) -> None:
    done = run_shell_block(script, {}, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{where} exited {done.returncode}:\n{output[-3000:]}"
    for expected in _EXPECT.findall(script):
        assert expected in output, f"{where}: {expected!r} not in:\n{output[-3000:]}"
