"""Configuration from TOML.

Nothing is required: with no file at all the service runs on the embedded default
(everything under one data directory on this machine).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ENV_CONFIG = "CONSULTANT_CONFIG"
ENV_HOME = "CONSULTANT_HOME"


class ConfigError(Exception):
    """The configuration file is missing, unreadable or has a wrong value."""


def default_data_dir() -> Path:
    """Where the embedded default keeps its files: $CONSULTANT_HOME, else XDG data home."""
    if home := os.environ.get(ENV_HOME):
        return Path(home)
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "caseconsultant"


@dataclass(frozen=True)
class CodesConfig:
    database: Path


@dataclass(frozen=True)
class DraftingConfig:
    templates_dir: Path | None = None
    suggestions: int = 5
    service_name: str = "CaseConsultant"


@dataclass(frozen=True)
class Config:
    data_dir: Path
    codes: CodesConfig
    drafting: DraftingConfig = field(default_factory=DraftingConfig)
    source: Path | None = None


def _path(value: object, key: str, base: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a non-empty string path")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _table(data: dict, key: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{key}] must be a table")
    return value


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read PATH, else $CONSULTANT_CONFIG, else use the embedded default."""
    chosen = path or os.environ.get(ENV_CONFIG)
    data: dict = {}
    source: Path | None = None
    if chosen:
        source = Path(chosen).expanduser()
        try:
            data = tomllib.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"config file {source} does not exist; create it from config.example.toml "
                f"or unset {ENV_CONFIG} to use the embedded default"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {source} is not valid TOML: {exc}") from None
    base = source.resolve().parent if source else Path.cwd()

    paths = _table(data, "paths")
    data_dir = (
        _path(paths["data_dir"], "paths.data_dir", base)
        if "data_dir" in paths
        else default_data_dir()
    )

    codes = _table(data, "codes")
    codes_cfg = CodesConfig(
        database=_path(codes["database"], "codes.database", base)
        if "database" in codes
        else data_dir / "codes.sqlite",
    )

    drafting = _table(data, "drafting")
    suggestions = drafting.get("suggestions", 5)
    if not isinstance(suggestions, int) or not 0 <= suggestions <= 50:
        raise ConfigError("drafting.suggestions must be a whole number from 0 to 50")
    drafting_cfg = DraftingConfig(
        templates_dir=_path(drafting["templates_dir"], "drafting.templates_dir", base)
        if "templates_dir" in drafting
        else None,
        suggestions=suggestions,
        service_name=str(drafting.get("service_name", "CaseConsultant")),
    )
    return Config(data_dir=data_dir, codes=codes_cfg, drafting=drafting_cfg, source=source)
