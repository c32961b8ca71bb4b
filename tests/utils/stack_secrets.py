"""The secret values the local stack configures, for tests that look for them where they must not be."""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

from tests.utils.stack import stack_env

# Identifiers, not secrets: the S3 server's own log names the access key id of each request, by design.
NOT_SECRET_FILES = {"s3-access-key-id"}


def stack_secrets() -> dict[str, str]:
    """Name -> value of every secret: the files of `$LAKEHOUSE_STATE_DIR/secrets/` and the passwords, keys and
    tokens `make -s env` exports. Names only ever go into a test's messages."""
    state = Path(stack_env("LAKEHOUSE_STATE_DIR")["LAKEHOUSE_STATE_DIR"])
    values = {
        f"secrets/{path.name}": path.read_text().strip()
        for path in sorted((state / "secrets").iterdir())
        if path.is_file() and path.name not in NOT_SECRET_FILES
    }
    for name in ("AWS_SECRET_ACCESS_KEY", "LAKEHOUSE_API_KEY", "NIFI_LISTEN_TOKEN", "ICEBERG_CATALOG_TOKEN"):
        if os.environ.get(name):
            values[f"${name}"] = os.environ[name]
    for name in ("DATABASE_URL", "ICEBERG_CATALOG_DATABASE_URL"):
        if password := urllib.parse.urlsplit(os.environ.get(name, "")).password:
            values[f"password of ${name}"] = password
    assert values and all(len(value) >= 16 for value in values.values()), "a secret too short to look for"
    return values
