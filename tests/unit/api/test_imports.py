"""The API imports only what an upload needs at start-up: table reads bring in PyIceberg and Arrow when they run."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

TABLE_ONLY_PACKAGES = ("pyiceberg", "pyarrow")


def test_a_started_api_has_not_imported_pyiceberg_or_pyarrow() -> None:
    script = (
        "import json, sys\n"
        "from lakehouse_api.main import create_app\n"
        "create_app()\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(TABLE_ONLY_PACKAGES)!r}))))\n"
    )
    env = {**os.environ, "LAKEHOUSE_API_KEYS_SHA256": hashlib.sha256(b"unit-test-key").hexdigest()}
    output = subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True)
    assert json.loads(output.stdout.strip().splitlines()[-1]) == []
