from __future__ import annotations

import hashlib

import pytest
from lakehouse_api.settings import ApiSettings
from pydantic import ValidationError

REAL_HASH = hashlib.sha256(b"a-random-key-1f9c").hexdigest()


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> ApiSettings:
    for name in ("LAKEHOUSE_API_KEYS_SHA256", "LAKEHOUSE_API_KEYS_FILE", "LAKEHOUSE_ENV", "LAKEHOUSE_MAX_UPLOAD_BYTES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return ApiSettings()


def test_keys_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="refuses to run open"):
        settings(monkeypatch)


def test_placeholder_keys_are_refused_outside_development(monkeypatch: pytest.MonkeyPatch) -> None:
    placeholder = hashlib.sha256(b"changeme").hexdigest()

    with pytest.raises(ValidationError, match="placeholder"):
        settings(monkeypatch, LAKEHOUSE_API_KEYS_SHA256=placeholder)
    assert settings(monkeypatch, LAKEHOUSE_API_KEYS_SHA256=placeholder, LAKEHOUSE_ENV="development")


def test_defaults_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    configured = settings(monkeypatch, LAKEHOUSE_API_KEYS_SHA256=REAL_HASH, LAKEHOUSE_MAX_UPLOAD_BYTES="1024")

    assert configured.max_upload_bytes == 1024
    assert configured.upload_part_bytes == 8 * 1024 * 1024 and configured.max_preview_rows == 1000
    with pytest.raises(ValidationError):
        settings(monkeypatch, LAKEHOUSE_API_KEYS_SHA256=REAL_HASH, LAKEHOUSE_UPLOAD_PART_BYTES="1024")


def test_a_raw_key_pasted_as_a_hash_is_not_echoed_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as refused:
        settings(monkeypatch, LAKEHOUSE_API_KEYS_SHA256="my-raw-secret-key")

    assert "my-raw-secret-key" not in str(refused.value)
