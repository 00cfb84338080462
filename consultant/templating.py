"""Where templates come from: the operator's override folder first, then our own.

An operator can restyle the reply (greeting, sign-off, wording) by copying a
template into `drafting.templates_dir` without touching the installed package.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import jinja2

from consultant.config import ConfigError


def packaged_templates() -> Path:
    """The templates shipped in the wheel, or the repository's folder in an editable install."""
    packaged = files("consultant") / "templates"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[1] / "templates"


def template_environment(override_dir: Path | None = None) -> jinja2.Environment:
    """Templates from OVERRIDE_DIR first, then the packaged ones; a missing variable is an
    error rather than a silent gap in a reply, and only HTML templates are escaped."""
    loaders: list[jinja2.BaseLoader] = []
    if override_dir is not None:
        if not override_dir.is_dir():
            raise ConfigError(
                f"drafting.templates_dir {override_dir} is not a folder; create it (copy the "
                "templates you want to change into it) or remove the setting"
            )
        loaders.append(jinja2.FileSystemLoader(override_dir))
    loaders.append(jinja2.FileSystemLoader(packaged_templates()))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), disabled_extensions=(), default_for_string=False
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
