from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from lakehouse_api.auth import ApiKeys, key_digest
from lakehouse_api.settings import parse_key_hashes


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_only_configured_keys_pass_and_the_caller_is_the_digest() -> None:
    keys = ApiKeys({digest("alpha"), digest("beta")}, None)

    assert keys.verify("alpha") is not None and keys.verify("alpha").key_sha256 == key_digest("alpha")
    assert keys.verify("beta") is not None
    assert keys.verify("gamma") is None and keys.verify("") is None


def test_key_file_changes_are_picked_up_without_restart(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text(f"# rotated 2025-01-01\n{digest('old')}\n")
    keys = ApiKeys(set(), secret)
    assert keys.verify("old") is not None

    secret.write_text(digest("new") + "\n")
    os.utime(secret, (1, 1))  # a different mtime, as a Secret volume update gives

    assert keys.verify("new") is not None and keys.verify("old") is None


def test_a_vanished_key_file_keeps_the_last_good_keys(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text(digest("k"))
    keys = ApiKeys(set(), secret)
    secret.unlink()

    assert keys.verify("k") is not None


def test_hash_lists_accept_commas_whitespace_and_comments() -> None:
    a, b, c = digest("a"), digest("b"), digest("c")

    assert parse_key_hashes(f"{a},{b.upper()}\n# comment\n  {c}  ") == {a, b, c}


def test_a_plain_key_instead_of_a_hash_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="not SHA-256") as refused:
        parse_key_hashes("my-secret-key")

    assert "my-secret-key" not in str(refused.value)
