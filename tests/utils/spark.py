"""The stack's Spark jars (devstack/spark.sh), for tests that run spark-submit in local mode."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


def spark_jars() -> str:
    """SPARK_JARS: the comma-separated jars; the test fails with what to do when they are not installed."""
    done = subprocess.run(
        [str(REPOSITORY / "devstack" / "spark.sh"), "env"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"Spark jars missing: run `devstack/spark.sh install` ({done.stderr.strip()})", pytrace=False)
    return done.stdout.strip().removeprefix("export SPARK_JARS=")
