"""Shell scripts of the stack run with `set -o pipefail`: patterns that break under it are refused."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted([*REPO.glob("devstack/**/*.sh"), *REPO.glob(".ci/*")])

# `producer | grep -q` makes grep exit at the first match; a producer still writing then dies of
# SIGPIPE and pipefail turns the match into a failure, now and then (the CI once re-added an address
# that existed and stopped). `grep ... >/dev/null` reads to the end.
EARLY_EXIT_GREP = re.compile(r"\|\s*grep\s+-\w*q")


def test_no_pipeline_ends_in_an_early_exit_grep() -> None:
    assert SCRIPTS, "no stack scripts found"
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in SCRIPTS
        if path.is_file()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if EARLY_EXIT_GREP.search(line)
    ]
    assert not offenders, "\n".join(offenders)
