"""Running the command blocks of a runbook (docs/runbooks/*.md) as an operator would paste them.

A block to run is fenced as ```sh runbook=NAME; other fences are examples. Each block runs in its own
`bash -euo pipefail`, with the test's variables in the environment and the checkout's `lakehouse` and `python`
first on PATH. A test runs every block of its runbook (`Runbook.unrun`), so no step goes untested.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

RUNBOOKS_DIR = Path(__file__).resolve().parents[2] / "docs" / "runbooks"
_BLOCK = re.compile(r"^```sh runbook=(?P<name>[a-z0-9-]+)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
_VARIABLE = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)")


def runbook_blocks(text: str) -> dict[str, str]:
    """The runnable blocks of a runbook, by name, in their order."""
    blocks: dict[str, str] = {}
    for match in _BLOCK.finditer(text):
        if match["name"] in blocks:
            raise ValueError(f"two blocks are named {match['name']!r}")
        blocks[match["name"]] = match["body"]
    return blocks


def block_variables(script: str) -> set[str]:
    return set(_VARIABLE.findall(script))


class Runbook:
    def __init__(self, name: str, variables: dict[str, str]) -> None:
        self.path = RUNBOOKS_DIR / name
        self.blocks = runbook_blocks(self.path.read_text(encoding="utf-8"))
        self.variables = variables
        self.ran: list[str] = []

    def run(self, block: str, *, expect_exit: int = 0, timeout: float = 600) -> str:
        """Runs one block; its stdout and stderr together, or a failure that shows them."""
        done = run_shell_block(self.blocks[block], self.variables, timeout)
        output = done.stdout + done.stderr
        assert done.returncode == expect_exit, f"{self.path.name} block {block!r} exited {done.returncode}:\n{output}"
        self.ran.append(block)
        return output

    def unrun(self) -> list[str]:
        return [name for name in self.blocks if name not in self.ran]


def run_shell_block(script: str, variables: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """A block of documentation as someone pastes it into a shell at the checkout: `bash -euo pipefail`, with
    the stack's environment and `variables`, and the checkout's `lakehouse`, `python` and `kubectl` first on
    PATH."""
    tools = [str(Path(sys.executable).parent)]
    if kubectl := os.environ.get("KUBECTL"):
        tools.append(str(Path(kubectl).parent))
    env = {**os.environ, **variables, "PATH": os.pathsep.join([*tools, os.environ.get("PATH", "")])}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=RUNBOOKS_DIR.parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
