"""API keys: only their SHA-256 digests are configured, and a presented key is compared by digest.

A leaked configuration (env, Secret, log of it) therefore never reveals a usable key.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
from dataclasses import dataclass
from pathlib import Path

from lakehouse_api.settings import ApiSettings, KeyScopes, parse_key_entries


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    """Who made a request, by the digest of their key (used to scope idempotency keys), and the datasets
    the key may use (None: every dataset)."""

    key_sha256: str
    datasets: frozenset[str] | None = None

    def may_use(self, dataset: str) -> bool:
        return self.datasets is None or dataset in self.datasets


class ApiKeys:
    def __init__(self, inline: KeyScopes, file: Path | None) -> None:
        self._inline = dict(inline)
        self._file = file
        self._file_mtime: float | None = None
        self._file_scopes: KeyScopes = {}
        self._lock = threading.Lock()
        if file is not None:
            self._reload_file()

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> ApiKeys:
        inline = parse_key_entries(settings.api_keys_sha256) if settings.api_keys_sha256 else {}
        return cls(inline, settings.api_keys_file)

    def _reload_file(self) -> None:
        # A Secret volume swaps its ..data symlink on update; the mtime check catches that.
        assert self._file is not None
        mtime = self._file.stat().st_mtime
        if mtime != self._file_mtime:
            self._file_scopes = parse_key_entries(self._file.read_text(encoding="utf-8"))
            self._file_mtime = mtime

    def scopes(self) -> KeyScopes:
        if self._file is None:
            return self._inline
        with self._lock:
            # On a read error the last good set stays in force while the volume is being updated.
            with contextlib.suppress(OSError):
                self._reload_file()
            # A key in both places keeps the file's scope: the file is the one that rotates.
            return self._inline | self._file_scopes

    def hashes(self) -> frozenset[str]:
        return frozenset(self.scopes())

    def verify(self, key: str) -> Caller | None:
        presented = key_digest(key)
        # Compare against every digest without stopping early, so timing does not tell which matched.
        matched: Caller | None = None
        for digest, datasets in self.scopes().items():
            if hmac.compare_digest(presented, digest):
                matched = Caller(presented, datasets)
        return matched
