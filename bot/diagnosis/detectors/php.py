"""PHP: `PHP Fatal error:  Uncaught …` and parse errors."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.finding import Finding, finding, last
from bot.diagnosis.logtext import Line

_FATAL = re.compile(r"^(?:PHP )?(?:Fatal error|Parse error): +")


def detect(lines: Sequence[Line]) -> Finding | None:
    """The last fatal error PHP printed (the uncaught exception and where it was thrown)."""
    i = last(lines, _FATAL)
    if i is None:
        return None
    return finding(Category.APP_FATAL, [lines[i]], runtime="php", headline=lines[i].core.strip())
