"""The wheel alone: built from this checkout, installed into a fresh virtualenv with the locked versions of its
declared dependencies (no extras, no dev group), and run from a folder outside the repository, so nothing can
resolve from the source tree. The CLI, the operator's entry point, the files the code reads at run time and the
migrations (against the stack's PostgreSQL) must all work from the installed package.

uv is the pinned one of the devstack (`devstack/python.sh uv`), with its cache: the install links what
`make venv` fetched already.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.db.migrate import DEFAULT_SQL_DIR, discover
from lakehouse.nifi.deploy import FlowDefinition

REPO_ROOT = Path(__file__).resolve().parents[2]
# Run inside the installed package: where each runtime file resolves from, and what it holds.
PROBE = """
import importlib.util, json
from importlib import resources
import lakehouse_operator.handlers  # every engine, as the operator imports them
from lakehouse.contracts.registry import DEFAULT_CONTRACTS_DIR, ContractRegistry
from lakehouse.db.migrate import DEFAULT_SQL_DIR, discover
from lakehouse.nifi.deploy import DEFAULT_FLOW, FlowDefinition

template = resources.files("lakehouse_operator") / "templates" / "bronze-transform.yaml.j2"
job = resources.files("lakehouse.jobs") / "bronze_transform.py"
print(json.dumps({
    "paths": [str(p) for p in (DEFAULT_CONTRACTS_DIR, DEFAULT_SQL_DIR, DEFAULT_FLOW, template, job)],
    "contracts": ContractRegistry.default().names(),
    "migrations": [m.version for m in discover(DEFAULT_SQL_DIR)],
    "flow": FlowDefinition.load().name,
    "template": "kind: SparkApplication" in template.read_text(),
    "job": 'if __name__ == "__main__":' in job.read_text(),
    "pyspark": importlib.util.find_spec("pyspark") is not None,
}))
"""


@dataclass(frozen=True)
class Installed:
    venv: Path
    workdir: Path  # outside the repository, empty

    def run(self, *args: str, env: dict[str, str] | None = None) -> str:
        # Nothing of the checkout or of the test's own environment may leak in.
        clean = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
        clean.pop("LAKEHOUSE_CONTRACTS_DIR", None)
        done = subprocess.run(
            [str(self.venv / "bin" / args[0]), *args[1:]],
            cwd=self.workdir,
            env=clean | (env or {}),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}{done.stdout}"
        return done.stdout


def uv(*args: str, cwd: Path) -> None:
    done = subprocess.run(
        [str(REPO_ROOT / "devstack" / "python.sh"), "uv", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"uv {' '.join(args)}: {done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    build = tmp_path_factory.mktemp("wheel")
    uv("build", "--wheel", "--out-dir", str(build / "dist"), str(REPO_ROOT), cwd=build)
    (wheel,) = (build / "dist").glob("lakehouse_ingest-*.whl")
    # The runtime dependencies at their locked versions, as the platform image installs them.
    locked = build / "locked.txt"
    uv("export", "--project", str(REPO_ROOT), "--frozen", "--no-dev", "--no-emit-project", "--no-hashes",
       "--quiet", "-o", str(locked), cwd=build)  # fmt: skip
    uv("venv", "--quiet", "--python", "3.11", str(build / "venv"), cwd=build)
    uv("pip", "install", "--quiet", "--python", str(build / "venv" / "bin" / "python"), "--constraints", str(locked),
       str(wheel), cwd=build)  # fmt: skip
    yield Installed(build / "venv", tmp_path_factory.mktemp("elsewhere"))


def test_the_cli_and_the_operator_start_from_the_wheel(installed: Installed) -> None:
    version = importlib.metadata.version("lakehouse-ingest")
    assert installed.run("lakehouse", "--version").strip() == f"lakehouse {version}"
    operator = ("python", "-m", "lakehouse_operator")
    assert installed.run(*operator, "--version").strip() == f"python -m lakehouse_operator {version}"
    assert installed.run(*operator, "--help").startswith("usage: python -m lakehouse_operator")


def test_runtime_files_resolve_inside_the_installed_package(installed: Installed) -> None:
    found = json.loads(installed.run("python", "-c", PROBE))

    site_packages = str(installed.venv / "lib")
    assert all(path.startswith(site_packages) for path in found["paths"]), found["paths"]
    assert found["contracts"] == ContractRegistry.default().names()
    assert found["migrations"] == [m.version for m in discover(DEFAULT_SQL_DIR)]
    assert found["flow"] == FlowDefinition.load().name
    assert found["template"] and found["job"]
    assert not found["pyspark"], "pyspark is the `spark` extra; the base install must not need it"


@pytest.mark.integration
def test_migrations_run_from_the_wheel_alone_and_again_as_a_no_op(
    installed: Installed, scratch_database_url: str
) -> None:
    env = {"DATABASE_URL": scratch_database_url}
    versions = [m.version for m in discover(DEFAULT_SQL_DIR)]

    first = installed.run("python", "-m", "lakehouse.db.migrate", env=env)
    again = installed.run("python", "-m", "lakehouse.db.migrate", env=env)

    assert first.strip() == f"migrations: {len(versions)} applied ({', '.join(versions)})"
    assert again.strip() == "migrations: 0 applied, up to date"
    with psycopg.connect(scratch_database_url) as conn:
        applied = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert applied == versions
