"""Settings for tests: amend a Settings by environment-variable name, through the same
parsers `load_settings` uses (a string is parsed; any other value is taken as it is)."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from bot.settings import GROUPS, Settings


def _owner(name: str) -> tuple[str | None, str, Any]:
    """(group attribute or None for top level, field name, parser) of variable `name`."""
    for f in fields(Settings):
        if f.metadata.get("env") == name:
            return None, f.name, f.metadata["parse"]
    for group in fields(Settings):
        kind = group.default_factory  # type: ignore[misc]
        if kind not in GROUPS:
            continue
        for f in fields(kind):
            if f.metadata.get("env") == name:
                return group.name, f.name, f.metadata["parse"]
    raise KeyError(f"no setting reads {name}")


def amend(settings: Settings, **env: object) -> Settings:
    """`settings` with these variables set, e.g. amend(s, DATABASE_URL="sqlite:///x.db")."""
    for name, given in env.items():
        group, attribute, parse = _owner(name)
        value = (parse(name, given) if given else None) if isinstance(given, str) else given
        if group is None:
            settings = replace(settings, **{attribute: value})
        else:
            settings = replace(settings, **{group: replace(getattr(settings, group),
                                                           **{attribute: value})})
    return settings
