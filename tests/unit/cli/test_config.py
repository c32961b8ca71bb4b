from __future__ import annotations

from pathlib import Path

import pytest
from lakehouse_cli.config import DEFAULT_URL, ConfigError, resolve


def test_flags_beat_env_beat_file_beat_default(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('url = "http://file:1/"\napi_key = "file-key"\n')
    env = {"LAKEHOUSE_CONFIG": str(config)}

    assert resolve(None, None, None, env) == resolve(None, None, str(config), {})
    assert resolve(None, None, None, env).url == "http://file:1"  # trailing slash dropped
    assert resolve(None, None, None, env).api_key == "file-key"
    with_env = {**env, "LAKEHOUSE_API_URL": "http://env:2", "LAKEHOUSE_API_KEY": "env-key"}
    assert (resolve(None, None, None, with_env).url, resolve(None, None, None, with_env).api_key) == (
        "http://env:2",
        "env-key",
    )
    assert resolve("http://flag:3", "flag-key", None, with_env).url == "http://flag:3"
    assert resolve(None, None, str(tmp_path / "missing.toml"), {}).url == DEFAULT_URL


def test_key_can_live_in_its_own_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("secret-key\n")
    config = tmp_path / "config.toml"
    config.write_text(f'api_key_file = "{key_file}"\n')

    assert resolve(None, None, str(config), {}).api_key == "secret-key"


def test_broken_config_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("url = ")

    with pytest.raises(ConfigError):
        resolve(None, None, str(config), {})
