""".NET: unhandled exceptions and host start-up failures (`Hosting failed to start`,
`Application startup exception`) logged by Microsoft.Extensions.Logging's console format."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.finding import Finding, finding, last, next_nonblank
from bot.diagnosis.logtext import Line

_UNHANDLED = re.compile(r"^Unhandled [eE]xception[.:]? +[\w.`]+(Exception|Error)\b|"
                        r"^Process terminated\. ")
_HOST_FAILED = re.compile(r"^\s*(Hosting failed to start|Application startup exception|"
                          r"Unable to start Kestrel|An error occurred while starting the "
                          r"application|Host terminated unexpectedly)")
_EXCEPTION = re.compile(r"^\s*(?:[A-Z]\w*\.)+[A-Z]\w*Exception\b(?:: .*|$)")
_LOOKAHEAD = 12


def detect(lines: Sequence[Line]) -> Finding | None:
    """The unhandled exception line, or the host failure and the exception it logs."""
    i = last(lines, _UNHANDLED)
    if i is not None:
        return finding(Category.APP_FATAL, [lines[i]], runtime="dotnet",
                       headline=lines[i].core.strip())
    i = last(lines, _HOST_FAILED)
    if i is None:
        return None
    exc = next((ln for ln in lines[i + 1:i + _LOOKAHEAD] if _EXCEPTION.match(ln.core)), None)
    detail = exc or next_nonblank(lines, i)
    head = (exc or lines[i]).core.strip()
    return finding(Category.APP_FATAL, [lines[i], detail], runtime="dotnet", headline=head)
