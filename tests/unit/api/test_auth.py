from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from lakehouse_api.auth import ApiKeys, key_digest
from lakehouse_api.settings import parse_key_entries, parse_key_hashes


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_only_configured_keys_pass_and_the_caller_is_the_digest() -> None:
    keys = ApiKeys(dict.fromkeys([digest("alpha"), digest("beta")]), None)

    assert keys.verify("alpha") is not None and keys.verify("alpha").key_sha256 == key_digest("alpha")
    assert keys.verify("beta") is not None
    assert keys.verify("gamma") is None and keys.verify("") is None


def test_key_file_changes_are_picked_up_without_restart(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text(f"# rotated 2025-01-01\n{digest('old')}\n")
    keys = ApiKeys({}, secret)
    assert keys.verify("old") is not None

    secret.write_text(digest("new") + "\n")
    os.utime(secret, (1, 1))  # a different mtime, as a Secret volume update gives

    assert keys.verify("new") is not None and keys.verify("old") is None


def test_a_vanished_key_file_keeps_the_last_good_keys(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text(digest("k"))
    keys = ApiKeys({}, secret)
    secret.unlink()

    assert keys.verify("k") is not None


def test_hash_lists_accept_commas_whitespace_and_comments() -> None:
    a, b, c = digest("a"), digest("b"), digest("c")

    assert parse_key_hashes(f"{a},{b.upper()}\n# comment\n  {c}  ") == {a, b, c}


def test_a_plain_key_instead_of_a_hash_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="not SHA-256") as refused:
        parse_key_hashes("my-secret-key")

    assert "my-secret-key" not in str(refused.value)


def test_entries_may_scope_a_key_to_datasets() -> None:
    admin, orders_only, both = digest("admin"), digest("orders"), digest("both")

    scopes = parse_key_entries(f"{admin}\n# the orders team\n{orders_only}:orders, {both.upper()}:orders+customers")

    assert scopes == {admin: None, orders_only: frozenset({"orders"}), both: frozenset({"orders", "customers"})}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (f"{digest('k')}:Orders", "entry 1 names a dataset that is not a dataset name"),
        (f"{digest('k')}:", "entry 1 names a dataset"),
        (f"{digest('a')} {digest('k')}:orders {digest('k')}:customers", "entry 3 lists a key already listed"),
        (f"{digest('k')} {digest('k')}:orders", "entry 2 lists a key already listed"),
        ("my-secret-key:orders", "not SHA-256"),
    ],
)
def test_bad_scopes_are_refused_without_echoing_the_entry(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as refused:
        parse_key_entries(text)

    assert "my-secret-key" not in str(refused.value) and digest("k") not in str(refused.value)


def test_the_same_entry_twice_is_one_key() -> None:
    assert parse_key_entries(f"{digest('k')}:orders,{digest('k')}:orders") == {digest("k"): frozenset({"orders"})}


def test_a_verified_key_carries_its_datasets(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text(f"{digest('scoped')}:orders\n")
    keys = ApiKeys({digest("admin"): None}, secret)

    scoped, admin = keys.verify("scoped"), keys.verify("admin")

    assert scoped is not None and scoped.datasets == frozenset({"orders"})
    assert scoped.may_use("orders") and not scoped.may_use("customers")
    assert admin is not None and admin.datasets is None and admin.may_use("customers")
