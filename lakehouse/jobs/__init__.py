"""Jobs that run as scripts, e.g. under spark-submit, which takes a file: read them with importlib.resources.

Alone in their package on purpose: a script's folder comes first on sys.path, so no sibling module may shadow
a top-level import.

A job reports on its last stdout line, a JSON object (`last_json_line` reads it back).
"""

from __future__ import annotations

import json
from typing import Any

# A job's exit status when the data or the contract is wrong: retrying cannot help, so the run fails at once
# with the reason the job printed last.
EXIT_REJECTED = 2


def last_json_line(stdout: str) -> dict[str, Any]:
    """The job's report: its last stdout line that is a JSON object; {} when it wrote none (it was killed)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return {}
