"""Database servers that fail to start: PostgreSQL (`FATAL:`/`PANIC:`, initdb, pg_ctl) and
MySQL/MariaDB (`[ERROR]` … `Aborting`, the image entrypoint's `[ERROR] [Entrypoint]`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.detectors.bursts import first_of_last_burst
from bot.diagnosis.finding import Finding, finding, mentions
from bot.diagnosis.logtext import Line

_SERVER_ERROR = re.compile(
    r"(?:^|\s)(?:FATAL|PANIC):  \S|"  # PostgreSQL's level tags (two spaces)
    r"^(?:initdb|pg_ctl|pg_basebackup|postgres|mysqld|mariadbd|mysql_install_db)"
    r"(?:\[\d+\])?: (?!(?:warning|hint|detail|note|ready)\b)(?:error: )?\S|"
    r"\b\d+ \[ERROR\] |\[ERROR\] \[(?:MY-\d+|Entrypoint)\]")  # MySQL/MariaDB, their image
_FOLLOW_ON = re.compile(r"\bAborting\b|^\S*\s*\[ERROR\] (?:\[MY-\d+\] \[Server\] )?Aborting|"
                        r"database system is shut down|exited with code", re.I)
_CONFIG = re.compile(
    r"data director(y|ies)|datadir|exists but is not empty|has files in it|is not empty|"
    r"wrong ownership|permissions should be|incompatible with server|initialized by "
    r"PostgreSQL version|configuration file|unrecognized configuration parameter|invalid value "
    r"for parameter|unknown variable|password option is not specified|environment variable|"
    r"is uninitialized", re.I)
_WORDS = ("fatal:", "panic:", "initdb", "pg_ctl", "postgres", "mysqld", "mariadbd", "[error]",
          "mysql_install_db", "pg_basebackup")


def detect(lines: Sequence[Line]) -> Finding | None:
    """The first error of the server's final burst; config-error when it is about the data
    directory, parameters or required environment, else app-fatal (refined by callers)."""
    if not mentions(lines, _WORDS):
        return None
    i = first_of_last_burst(lines, _SERVER_ERROR, skip=_FOLLOW_ON)
    if i is None:
        return None
    core = lines[i].core.strip()
    category = Category.CONFIG_ERROR if _CONFIG.search(core) else Category.APP_FATAL
    return finding(category, [lines[i]], headline=core)
