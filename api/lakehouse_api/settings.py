"""The API's one settings object, from the environment (the Deployment's env and mounted Secrets)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lakehouse.k8s.ingestionrun.spec import is_dataset_name

MIB = 1024 * 1024
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# Hashes of keys that only ever belong in examples; refused outside development.
PLACEHOLDER_KEY_HASHES = frozenset(
    hashlib.sha256(word.encode()).hexdigest() for word in ("", "changeme", "change-me", "secret", "password", "test")
)


# The datasets a key may use, by the key's SHA-256 digest; None: every dataset (an unscoped, admin key).
KeyScopes = dict[str, frozenset[str] | None]


def parse_key_entries(text: str) -> KeyScopes:
    """Entries separated by commas, whitespace or lines; `#` starts a comment. An entry is a key's SHA-256
    hex digest, alone for a key that may use every dataset, or followed by `:` and the datasets it may use,
    joined by `+` (`<sha256>:orders+customers`)."""
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    tokens = [token.strip() for line in lines for token in re.split(r"[,\s]+", line) if token.strip()]
    scopes: KeyScopes = {}
    # Errors give counts and positions only: a raw key pasted here by mistake must not reach the log.
    if bad := [t for t in tokens if not SHA256_HEX.match(t.partition(":")[0].lower())]:
        raise ValueError(f"{len(bad)} API key entries are not SHA-256 hex digests (store hashes, not keys)")
    for position, token in enumerate(tokens, 1):
        digest, scoped, datasets = token.partition(":")
        scope = frozenset(datasets.split("+")) if scoped else None
        if scope is not None and not all(is_dataset_name(name) for name in scope):
            raise ValueError(f"API key entry {position} names a dataset that is not a dataset name (`a-z0-9_`)")
        if scopes.get(digest.lower(), scope) != scope:
            raise ValueError(f"API key entry {position} lists a key already listed with other datasets")
        scopes[digest.lower()] = scope
    return scopes


def parse_key_hashes(text: str) -> set[str]:
    """The digests of `parse_key_entries`, whatever their datasets."""
    return set(parse_key_entries(text))


class ApiSettings(BaseSettings):
    # Errors must not echo the input: someone may have pasted a raw key where a hash belongs.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, hide_input_in_errors=True)

    environment: Literal["development", "production"] = Field(default="production", alias="LAKEHOUSE_ENV")
    # Accepted keys, as SHA-256 hex digests, each maybe scoped to datasets (parse_key_entries): inline, and/or
    # a file (a mounted Kubernetes Secret) that is re-read when it changes so keys rotate without a restart.
    # No default: one is required.
    api_keys_sha256: str | None = Field(default=None, alias="LAKEHOUSE_API_KEYS_SHA256")
    api_keys_file: Path | None = Field(default=None, alias="LAKEHOUSE_API_KEYS_FILE")

    namespace: str = Field(default="lakehouse", alias="LAKEHOUSE_NAMESPACE")
    uploads_bucket: str = Field(default="uploads", alias="LAKEHOUSE_UPLOADS_BUCKET")
    max_upload_bytes: int = Field(default=5 * 1024 * MIB, gt=0, alias="LAKEHOUSE_MAX_UPLOAD_BYTES")
    # S3 wants parts of at least 5 MiB (except the last); an upload holds (1 + in flight) parts in memory.
    upload_part_bytes: int = Field(default=8 * MIB, ge=5 * MIB, le=512 * MIB, alias="LAKEHOUSE_UPLOAD_PART_BYTES")
    upload_parts_in_flight: int = Field(default=2, ge=1, le=8, alias="LAKEHOUSE_UPLOAD_PARTS_IN_FLIGHT")
    max_preview_rows: int = Field(default=1000, gt=0, le=10_000, alias="LAKEHOUSE_MAX_PREVIEW_ROWS")
    # Timeouts of calls to S3, Kubernetes and the catalog, so a dead dependency gives a quick 503.
    backend_timeout_seconds: float = Field(default=5.0, gt=0, alias="LAKEHOUSE_BACKEND_TIMEOUT")
    # Requests per key: a token bucket refilled at `per minute` and holding at most `burst`; 0 turns it off.
    # Counted in each API process, so N replicas allow up to N times as much.
    rate_limit_per_minute: int = Field(default=600, ge=0, alias="LAKEHOUSE_API_RATE_LIMIT_PER_MINUTE")
    rate_limit_burst: int = Field(default=60, ge=1, alias="LAKEHOUSE_API_RATE_LIMIT_BURST")
    # Multipart uploads left behind by a killed API process are aborted once this old (uploads/sweeper.py).
    upload_sweep_interval_seconds: float = Field(default=3600, ge=0, alias="LAKEHOUSE_UPLOAD_SWEEP_INTERVAL_SECONDS")
    upload_sweep_age_seconds: float = Field(default=24 * 3600, gt=0, alias="LAKEHOUSE_UPLOAD_SWEEP_AGE_SECONDS")

    @model_validator(mode="after")
    def _keys_configured(self) -> ApiSettings:
        if not self.api_keys_sha256 and not self.api_keys_file:
            raise ValueError("set LAKEHOUSE_API_KEYS_SHA256 or LAKEHOUSE_API_KEYS_FILE: the API refuses to run open")
        if self.api_keys_sha256 is not None:
            inline = parse_key_hashes(self.api_keys_sha256)
            if self.environment != "development" and inline & PLACEHOLDER_KEY_HASHES:
                raise ValueError("an API key is a well-known placeholder; generate a random key")
        return self
