"""Start-up failures of any runtime: the entrypoint could not be executed, or the program
rejected its configuration (bad flag, invalid or unreadable config, missing setting)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.finding import Finding, anywhere, finding, last, loud, mentions
from bot.diagnosis.logtext import Line

_EXEC: tuple[re.Pattern[str], ...] = (
    re.compile(r"exec format error"),
    re.compile(r"exec user process caused"),
    re.compile(r"executable file not found in \$PATH"),
    re.compile(r"OCI runtime (create|exec|start) failed"),
    re.compile(r"\$'\\r': command not found|(?:bash|sh)\\r: (?:No such file|not found)|"
               r"\^M: bad interpreter"),
    re.compile(r": bad interpreter: |set: Illegal option -o pipefail|"
               r"The framework '[^']+', version '[^']+' .*was not found|"
               r"You must install or update \.NET to run this application|"
               r"Could not read package\.json"),
    re.compile(r"^(?:/\S*/)?(?:ba|da|z|a)?sh: (?:\d+: |line \d+: )?.*: "
               r"(?:not found|command not found|Permission denied|No such file or directory)"),
    re.compile(r": line \d+: .*: (?:not found|command not found|Permission denied|"
               r"No such file or directory)$"),
    re.compile(r"can't open file .*\[Errno \d+\]"),
    re.compile(r"^(?:/usr)?(?:/bin/)?env: .*: No such file or directory"),
    re.compile(r"^exec \S+: (no such file or directory|permission denied)"),
    re.compile(r"npm ERR! missing script: |ERR_PNPM_NO_SCRIPT|error Command \"[^\"]+\" not found"),
)
_EXEC_WORDS = ("exec", "not found", "permission denied", "no such file", "oci runtime",
               "can't open file", "npm err", "pnpm", "error command", "\\r", "^m",
               "bad interpreter", "illegal option", "install or update .net", "package.json")
_EXEC_FOCUS = re.compile(r'exec: "[^"]+": [^:]+|exec \S+: (no such file or directory|'
                         r'exec format error|permission denied)')


def detect_exec(lines: Sequence[Line]) -> Finding | None:
    """The process could not be started: bad binary, missing file, not executable, CRLF."""
    if not mentions(lines, _EXEC_WORDS):
        return None
    for pattern in _EXEC:
        i = last(lines, pattern)
        if i is not None:
            core = lines[i].core.strip()
            focus = _EXEC_FOCUS.search(core)
            return finding(Category.EXEC_ERROR, [lines[i]],
                           headline=focus.group(0) if focus else core)
    return None


# An unrendered `${DB_HOST}`, or a `$PORT` where a host, port or address belongs.
PLACEHOLDER = (r"\$\{[A-Za-z_][\w.-]*(?::-?[^}]*)?\}|"
               r"(?i:host|port|addr|lookup|dial|listen|url|dsn|endpoint)\S*[^\n]*"
               r"(?<![\w$])\$[A-Z_][A-Z0-9_]{2,}\b")
_SETTING = (r"(?:config|configuration|settings?|options?|env(?:ironment)?(?: variables?)?|"
            r"parameters?|properties|flags?|arguments?)")
CONFIG: tuple[re.Pattern[str], ...] = (
    re.compile(r"(error|failed|unable|cannot|can't|could not) (to )?(initializ|load|pars|read|"
               r"decod|unmarshal|validat|open|bind)\w* (the |your )?" + _SETTING, re.I),
    re.compile(r"(unable|failed|cannot|could not) to configure\b|"
               r"\bno \S+ (certificate|key|secret|password|url|host) (was |were )?"
               r"(specified|configured|provided)", re.I),
    re.compile(r"(invalid|bad|malformed) (config|configuration)\b", re.I),
    re.compile(r"configuration (error|is invalid|invalid)", re.I),
    re.compile(r"validation errors? for \w*(Settings|Config|Configuration|Env|Options)\b|"
               r"(?-i:OptionsValidationException|ConfigurationException|"
               r"InvalidConfigurationException|ConfigError|ImproperlyConfigured)", re.I),
    re.compile(r"flag provided but not defined|unknown (shorthand )?flag|"
               r"unrecognized arguments?:|unrecognized option|invalid option|"
               r"unknown command \"[^\"]+\" for \"|required flag\(s\) .* not set", re.I),
    re.compile(r"missing required (configuration|config|env|environment variable|setting|"
               r"option|parameter)|(environment )?variable \S+ (is )?(not set|required|missing|"
               r"must be set)|required key \S+ missing|\S+ must be (set|specified|provided)\b",
               re.I),
    re.compile(r"Could not resolve placeholder|" + PLACEHOLDER),
    re.compile(r"yaml: (line \d+|unmarshal errors)|mapping values are not allowed", re.I),
    re.compile(r": unbound variable$|: parameter (null or )?not set$|"
               r"(?-i:Unrecognized VM option|Invalid (maximum|initial) heap size)|"
               r"bootstrap checks? fail|(secret|configmap|config map)s? \"[^\"]+\" not found|"
               r"couldn't find key \S+ in (Secret|ConfigMap)", re.I),
    re.compile(r"Syntax error on line \d+ of|invalid argument \"[^\"]*\" for \"[^\"]*\" "
               r"flag", re.I),
)
CONFIG_WORDS = ("config", "settings", "flag", "unrecognized", "usage:", "unknown command",
                "missing required", "environment variable", "yaml", "mapping values",
                "syntax error on line", "configure", "specified", "validation error",
                "option", "placeholder", "${", "must be", "required key", "variable",
                "properties", "argument", "parameter", "$", "unbound", "not set", "vm option",
                "heap size", "bootstrap check", "secret", "configmap", "config map")


def detect_config(lines: Sequence[Line]) -> Finding | None:
    """A configuration the program rejected at start-up (skipping INFO/DEBUG noise)."""
    if not mentions(lines, CONFIG_WORDS):
        return None
    for pattern in CONFIG:
        if not anywhere(lines, pattern):
            continue
        for line in reversed(lines):
            if pattern.search(line.core) and loud(line) and not line.core[:1].isspace():
                return finding(Category.CONFIG_ERROR, [line], headline=line.core.strip())
    return None
