"""Access to the running local stack for integration tests (endpoints come from `make -s env`)."""

from __future__ import annotations

import os

import pytest


def stack_env(*names: str) -> dict[str, str]:
    """The named environment variables, or a test failure that says how to get them.

    Failing (not skipping) matters: a suite that silently skips its integration tests
    when the stack is down would report green without testing anything.
    """
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not set: start the stack with `make up` and run "
            '`eval "$(make -s env)"` (make test does both)',
            pytrace=False,
        )
    return {name: os.environ[name] for name in names}
