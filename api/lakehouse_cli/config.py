"""Where the CLI finds the API: flags, then the environment, then a config file, then the local stack."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:28000"
DEFAULT_CONFIG = Path("~/.config/lakehouse/config.toml")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class CliConfig:
    url: str
    api_key: str | None


def config_path(flag: str | None, env: dict[str, str]) -> Path:
    return Path(flag or env.get("LAKEHOUSE_CONFIG") or DEFAULT_CONFIG).expanduser()


def _read_file(path: Path) -> dict[str, str]:
    """`url = "..."` and `api_key = "..."` (or `api_key_file = "..."`, to keep the key out of this file)."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from error
    values = {k: str(v) for k, v in data.items() if k in {"url", "api_key", "api_key_file"}}
    if "api_key_file" in values and "api_key" not in values:
        values["api_key"] = Path(values["api_key_file"]).expanduser().read_text(encoding="utf-8").strip()
    return values


def resolve(
    url_flag: str | None, key_flag: str | None, config_flag: str | None, env: dict[str, str] | None = None
) -> CliConfig:
    env = dict(os.environ) if env is None else env
    file_values = _read_file(config_path(config_flag, env))
    url = url_flag or env.get("LAKEHOUSE_API_URL") or file_values.get("url") or DEFAULT_URL
    key = key_flag or env.get("LAKEHOUSE_API_KEY") or file_values.get("api_key")
    return CliConfig(url=url.rstrip("/"), api_key=key or None)
