"""The jinja2 environment over the templates directory (TEMPLATES_DIR or the installed one)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path

import jinja2

from bot.patrol.durations import human_duration

PACKAGE = "restart_patrol_templates"  # the top-level templates/ directory, installed


def templates_path(override: str | None = None) -> Path:
    """Where templates are read from: `override` (TEMPLATES_DIR) or the packaged copy."""
    return Path(override) if override else Path(str(resources.files(PACKAGE)))


def stamp(moment: datetime, seconds: bool = False) -> str:
    """The one human timestamp format of every message: `2026-11-28 09:00 UTC`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds
                                           else "%Y-%m-%d %H:%M UTC")


def clock(moment: datetime, reference: datetime | None = None) -> str:
    """A short time within a message whose window is stated in full: `07:10` on the
    reference's (UTC) day, `11-27 07:10` on another."""
    moment = moment.astimezone(UTC)
    if reference is not None and moment.date() == reference.astimezone(UTC).date():
        return moment.strftime("%H:%M")
    return moment.strftime("%m-%d %H:%M")


def slack_escape(text: object) -> str:
    """Escape &, <, > for Slack mrkdwn (also inside code blocks)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def aligned(table: Sequence[Sequence[object]]) -> list[str]:
    """Rows of cells → lines with every column but the last padded to its widest cell,
    columns two spaces apart (kubectl's layout)."""
    cells = [[str(c) for c in row] for row in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]) - 1)] \
        if cells else []
    return ["  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)),
                       *row[len(widths):]]) for row in cells]


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
    env.filters["stamp"] = stamp
    env.filters["clock"] = clock
    env.filters["slack"] = slack_escape
    env.filters["ljust"] = lambda value, width: str(value).ljust(int(width))  # older copies
    env.filters["aligned"] = aligned
    env.filters["clip"] = lambda value, width: (
        str(value) if len(str(value)) <= int(width) else str(value)[: int(width) - 1] + "…")
    env.filters["between"] = lambda later, earlier: human_duration(
        (later - earlier).total_seconds())
    return env


def render(name: str, override: str | None = None, **context: object) -> str:
    """Render template `name` with `context`."""
    return environment(override).get_template(name).render(**context)


def phrase(name: str, override: str | None = None, **context: object) -> str:
    """One short phrase from templates/phrases.j2 (the macro `name`), for strings Python
    hands to a library (file titles) or writes itself (notes, status lines)."""
    macro = getattr(environment(override).get_template("phrases.j2").module, name)
    return str(macro(**context)).strip()
