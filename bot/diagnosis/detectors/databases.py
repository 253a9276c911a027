"""Database servers that fail to start: PostgreSQL (`FATAL:`/`PANIC:`, initdb, pg_ctl) and
MySQL/MariaDB (`[ERROR]` … `Aborting`, the image entrypoint's `[ERROR] [Entrypoint]`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.detectors.bursts import last_burst
from bot.diagnosis.detectors.logs import DEPENDENCY, PORT
from bot.diagnosis.finding import Finding, anywhere, finding, mentions
from bot.diagnosis.logtext import Line

# matched against the line as printed (the level tags are in brackets the core drops)
_SERVER_ERROR = re.compile(
    r"(?:FATAL|PANIC):  \S|"  # PostgreSQL's level tags (two spaces)
    r"^(?:initdb|pg_ctl|pg_basebackup|postgres|mysqld|mariadbd|mysql_install_db)"
    r"(?:\[\d+\])?: (?!(?:warning|hint|detail|note|ready)\b)(?:error: )?\S|"
    # MySQL/MariaDB: a time, the thread id, then the level (`17:52:47 0 [ERROR] `; an app's
    # own `12:00:01 [ERROR] …` has no thread id and is not a server's), their image's
    r"\d\d:\d\d:\d\d(?:\.\d+)?Z? \d+ \[ERROR\] |\[ERROR\] \[(?:MY-\d+|Entrypoint)\]")
_FOLLOW_ON = re.compile(r"(?:^|\] )Aborting\.?\s*$|database system is shut down|"
                        r"exited with code", re.I)
_CAUSE_REACH = 4
_WORDS = ("FATAL:  ", "PANIC:  ", "initdb", "pg_ctl", "pg_basebackup", "postgres", "mysqld",
          "mariadbd", "mysql_install_db", "[ERROR]")
_CONFIG = re.compile(
    r"data director(y|ies)|datadir|exists but is not empty|has files in it|is not empty|"
    r"wrong ownership|permissions should be|incompatible with server|initialized by "
    r"PostgreSQL version|configuration file|unrecognized configuration parameter|invalid value "
    r"for parameter|unknown variable|option is not specified|environment variable|"
    r"is uninitialized|could not access directory|unknown (?:option|variable)|"
    r"\b(?:for|of) parameter \"", re.I)


def detect(lines: Sequence[Line]) -> Finding | None:
    """The first error of the server's final burst; config-error when it is about the data
    directory, parameters or required environment, else app-fatal (refined by callers)."""
    if not mentions(lines, _WORDS, shown=True) or not anywhere(lines, _SERVER_ERROR, shown=True):
        return None
    burst = last_burst([ln.index for ln in lines if _SERVER_ERROR.search(ln.shown)
                        and not _FOLLOW_ON.search(ln.core)])
    if burst is None:
        return None
    # the burst's rejected setting, when one of its lines names it, else its first line
    head = next((lines[i] for i in range(burst[0], burst[1] + 1)
                 if _SERVER_ERROR.search(lines[i].shown) and _CONFIG.search(lines[i].shown)),
                lines[burst[0]])
    category = Category.CONFIG_ERROR if _CONFIG.search(head.shown) else Category.APP_FATAL
    # a fatal line that is the consequence of an error logged just above it at a lower level
    # (PostgreSQL's "could not bind …: Address already in use" before "FATAL:  could not
    # create any TCP/IP sockets"): that error is the cause, quoted first
    cause = next((ln for ln in reversed(lines[max(0, head.index - _CAUSE_REACH):head.index])
                  if PORT.search(ln.core) or DEPENDENCY.search(ln.core)), None)
    if cause is not None:
        return finding(category, [cause, head], headline=cause.core.strip())
    return finding(category, [head], headline=head.core.strip())
