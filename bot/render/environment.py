"""The jinja2 environment over the templates directory (TEMPLATES_DIR or the installed one)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import jinja2

PACKAGE = "restart_patrol_templates"  # the top-level templates/ directory, installed


def templates_path(override: str | None = None) -> Path:
    """Where templates are read from: `override` (TEMPLATES_DIR) or the packaged copy."""
    return Path(override) if override else Path(str(resources.files(PACKAGE)))


@cache
def environment(override: str | None = None) -> jinja2.Environment:
    """A StrictUndefined environment: a missing variable is an error, never blank text."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_path(override))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["ljust"] = lambda value, width: str(value).ljust(int(width))
    env.filters["clip"] = lambda value, width: (
        str(value) if len(str(value)) <= int(width) else str(value)[: int(width) - 1] + "…")
    return env


def render(name: str, override: str | None = None, **context: object) -> str:
    """Render template `name` with `context`."""
    return environment(override).get_template(name).render(**context)
