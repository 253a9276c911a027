"""Ruby and Rails: uncaught exceptions (`file.rb:12:in 'm': message (Class)`), `rails
aborted!` and Bundler failing to load the server's command."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.finding import Finding, finding, last, next_nonblank
from bot.diagnosis.logtext import Line

# `app.rb:3:in …`, also raised from Ruby's own code: `<internal:…/kernel_require.rb>:85:in …`
# The class is any constant path (`NoMethodError`, `Errno::ENOENT`, `Psych::SyntaxError`): the
# `file.rb:N:in 'm': message (Class)` shape is what tells an uncaught exception.
_UNCAUGHT = re.compile(r"^(?:\S+\.rb|<internal:[^>]+>):\d+:in .*\(([A-Z]\w*(?:::[A-Z]\w*)*)\)$")
_ABORTED = re.compile(r"^(rails|rake) aborted!$|^bundler: failed to load command: ")
_CLASS_MESSAGE = re.compile(r"^([A-Z]\w*(::[A-Z]\w*)*): .+")


def detect(lines: Sequence[Line]) -> Finding | None:
    """The uncaught exception line; after `rails aborted!`, the `Class: message` line."""
    i = last(lines, _UNCAUGHT)
    aborted = last(lines, _ABORTED)
    if aborted is not None and (i is None or i < aborted):
        detail = next_nonblank(lines, aborted)
        head = detail.core.strip() if detail else lines[aborted].core.strip()
        return finding(Category.APP_FATAL, [lines[aborted], detail], runtime="ruby",
                       headline=head)
    if i is not None:
        return finding(Category.APP_FATAL, [lines[i]], runtime="ruby",
                       headline=lines[i].core.strip())
    return None
