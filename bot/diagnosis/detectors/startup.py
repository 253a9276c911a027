"""Start-up failures of any runtime: the entrypoint could not be executed, or the program
rejected its configuration (bad flag, invalid or unreadable config, missing setting)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.detectors.bursts import last_burst
from bot.diagnosis.finding import (
    Finding,
    anywhere,
    detail_of,
    finding,
    last,
    loud,
    mentions,
    next_nonblank,
)
from bot.diagnosis.logtext import Line

_EXEC: tuple[re.Pattern[str], ...] = (
    re.compile(r"exec format error|cannot execute binary file|cannot execute: required file "
               r"not found", re.I),
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
               r"No such file or directory)$|^\S+: \d+: (?:exec: )?\S+: (?:not found|"
               r"Permission denied)$"),
    re.compile(r"can't open file .*\[Errno \d+\]"),
    re.compile(r"^(?:/usr)?(?:/bin/)?env: .*: No such file or directory"),
    re.compile(r"^exec \S+: (no such file or directory|permission denied)"),
    # runc/containerd reporting why it could not start the process
    re.compile(r"starting container process caused|exec: \\?\"[^\"]+\\?\": (?:permission denied|"
               r"no such file or directory|executable file not found)"),
    re.compile(r"npm ERR! missing script: |ERR_PNPM_NO_SCRIPT|error Command \"[^\"]+\" not found"),
)
_EXEC_WORDS = ("exec", "not found", "permission denied", "no such file", "oci runtime",
               "can't open file", "npm err", "pnpm", "error command", "\\r", "^m",
               "bad interpreter", "illegal option", "install or update .net", "package.json",
               "starting container process", "bad substitution", "cannot execute")
_EXEC_FOCUS = re.compile(r'exec: \\?"[^"\\]+\\?": [^:"\\]+|exec \S+: (no such file or directory|'
                         r'exec format error|permission denied)')


def detect_exec(lines: Sequence[Line]) -> Finding | None:
    """The process could not be started: bad binary, missing file, not executable, CRLF."""
    if not mentions(lines, _EXEC_WORDS):
        return None
    for pattern in _EXEC:
        if not anywhere(lines, pattern):
            continue
        # a script failing line after line: the first failure of the last burst is the root
        burst = last_burst([ln.index for ln in lines if pattern.search(ln.core)])
        if burst is not None:
            core = lines[burst[0]].core.strip()
            focus = _EXEC_FOCUS.search(core)
            return finding(Category.EXEC_ERROR, [lines[burst[0]]],
                           headline=focus.group(0) if focus else core)
    return None


# An unrendered `${DB_HOST}`, or a `$PORT` where a host, port or address belongs.
PLACEHOLDER = (r"\$\{[A-Za-z_][\w.-]*(?::-?[^}]*)?\}|"
               r"(?i:host|port|addr|lookup|dial|listen|url|dsn|endpoint)\S*[^\n]*"
               r"(?<![\w$])\$[A-Z_][A-Z0-9_]{2,}\b")
# A dependency's address that cannot be right (`invalid port number: "tcp://10.0.0.3:5432"`,
# often a Kubernetes service-link variable shadowing the app's own), or credentials the
# dependency rejects: the dependency may be fine, the configuration is not.
BAD_ADDRESS = re.compile(r"invalid (port|port number|host|hostname|host name|address|url|uri|dsn|"
                         r"connection string|scheme)\b|unknown port|too many colons in address|"
                         r"malformed (url|uri|dsn|connection string)|missing port in address|"
                         # a listen address this host does not have (EADDRNOTAVAIL on bind)
                         r"\b(?:bind|listen)\w*(?:\(\))?:? .{0,40}cannot assign requested address",
                         re.I)
BAD_CREDENTIALS = re.compile(r"(login|password authentication|authentication) failed for user|"
                             r"access denied for user|invalid (username|password|credentials)|"
                             r"SASL authentication failed", re.I)
_SETTING = (r"(?:config|configuration|settings?|options?|env(?:ironment)?(?: variables?)?|"
            r"parameters?|properties|flags?|arguments?)")
CONFIG: tuple[re.Pattern[str], ...] = (
    re.compile(r"(error|failed|unable|cannot|can't|could not) (to )?(initializ|load|pars|read|"
               r"decod|unmarshal|validat|open|bind)\w* (the |your )?" + _SETTING, re.I),
    # Go's wrapping convention, "<verb> config: <cause>" ("parse config: json: cannot …")
    re.compile(r"(?:^|: )(?:load|pars|read|decod|unmarshal|validat|open)\w* (?:the |your )?"
               r"(?:config|configuration|settings?)\b[\w./-]*: .*\b(?:cannot|invalid|unknown|"
               r"unexpected|error|no such|not found|denied|expected|syntax)\b", re.I),
    # an environment variable's name heading the error its value caused ("SYNC_INTERVAL:
    # time: unknown unit …"): the value was rejected
    re.compile(r"(?:^|(?<=\s))(?-i:[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9]): .*\b(?:invalid|"
               r"unknown|cannot|can't|could not|unable|bad|malformed|out of range|not a valid|"
               r"parse|parsing|expected|syntax)\b", re.I),
    re.compile(r"(unable|failed|cannot|could not) to configure\b|"
               r"\bno \S+ (certificate|key|secret|password|url|host) (was |were )?"
               r"(specified|configured|provided)", re.I),
    re.compile(r"(invalid|bad|malformed) (config|configuration)\b", re.I),
    re.compile(r"configuration (error|is invalid|invalid)|\b(?:config|settings?) (?:is )?invalid\b",
               re.I),
    re.compile(r"validation errors? for \w*(Settings|Config|Configuration|Env|Options)\b|"
               r"(?-i:OptionsValidationException|ConfigurationException|"
               r"InvalidConfigurationException|ConfigError|ImproperlyConfigured)", re.I),
    re.compile(r"flag provided but not defined|unknown (shorthand )?flag|"
               r"unrecognized arguments?:|unrecognized option|invalid option|"
               r"invalid value '[^']*' for '-|unexpected argument '[^']*' found|"
               r"\bmissing (?:required )?(?:argument |option |flag )?--?[a-z][\w-]*|"
               r"\bno such option:? '?--?[a-z]|\b(?:missing option|invalid value for) '--?[a-z]|"
               r"error: the following arguments are required:|error: argument \S+: "
               r"(?:invalid|expected)|"
               r"unknown command \"[^\"]+\" for \"|required flag\(s\) .* not set", re.I),
    # a config file or setting the process says is missing or not found
    re.compile(r"\b(?:config|configuration|settings?) (?:file )?\S+ (?:is )?"
               r"(?:missing|not found)\b", re.I),
    re.compile(r"missing required (configuration|config|env|environment variable|setting|"
               r"option|parameter)|(environment )?variable \S+ (is )?(not set|required|missing|"
               r"must be set)|required key \S+ missing|\S+ must be (set|specified|provided)\b|"
               # an environment variable's name (upper case with an underscore) said missing
               r"(?-i:\b[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9]\b) (?:is )?(?:not set|unset|missing|"
               r"required|empty|not defined)\b|"
               # … or named after the word: "Missing DB_HOST", "missing env var API_KEY"
               r"\b(?:missing|unset|undefined)(?: required)?(?: env(?:ironment)? var(?:iable)?| "
               r"setting)?:? (?-i:[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9])\b", re.I),
    re.compile(r"Could not resolve placeholder|" + PLACEHOLDER),
    re.compile(r"yaml: (line \d+|unmarshal errors)|mapping values are not allowed", re.I),
    re.compile(r": unbound variable$|: parameter (null or )?not set$|"
               r"(?-i:Unrecognized VM option|Invalid (maximum|initial) heap size|"
               r"thread stack size specified is too small)|"
               r"bootstrap checks? fail|(secret|configmap|config map)s? \"[^\"]+\" not found|"
               r"couldn't find key \S+ in (Secret|ConfigMap)", re.I),
    re.compile(r"Syntax error on line \d+ of|invalid argument \"[^\"]*\" for \"[^\"]*\" "
               r"flag|\bconfig(?:uration)? file error\b", re.I),
    # a bash-only construct run by sh (dash/ash): the entrypoint stops at that line
    re.compile(r"^\S+: (?:line )?\d+: (?:\S+: )?Bad substitution$"),
    # a server that refuses to run as root: the pod's security context is the setting
    re.compile(r"\"root\" execution of .* is not permitted|must not be run as root|"
               r"(?:running|run) as root is not (?:allowed|permitted|supported)|"
               r"how to run \w+ as root", re.I),
    # an ASGI/WSGI server told to serve an app that its module path does not lead to
    re.compile(r"Error loading [AW]SGI app|Failed to find (?:attribute|application object) "
               r"'[^']+' in '[^']+'|Could not locate a Flask application|"
               r"Application object must be callable"),
)
CONFIG_WORDS = ("config", "settings", "flag", "unrecognized", "usage:", "unknown command",
                "missing required", "environment variable", "yaml", "mapping values",
                "syntax error on line", "configure", "specified", "validation error",
                "option", "placeholder", "${", "must be", "required key", "variable",
                "properties", "argument", "parameter", "$", "unbound", "not set", "vm option",
                "heap size", "bootstrap check", "secret", "configmap", "config map",
                "sgi app", "failed to find", "flask application", "must be callable",
                "file error", "bad substitution", "root", "missing", "stack size")


# `*** FATAL CONFIG FILE ERROR ***`: a banner whose block below says what was rejected
_BANNER = re.compile(r"^\s*\*{3}.*\*{3}\s*$")
_BANNER_REACH = 5


def _banner_detail(lines: Sequence[Line], line: Line) -> list[Line]:
    """The block under a banner line (up to a blank line): its directive and its reason."""
    if not _BANNER.match(line.core):
        return []
    block: list[Line] = []
    for below in lines[line.index + 1:line.index + 1 + _BANNER_REACH]:
        if not below.core.strip():
            break
        block.append(below)
    return block[-2:]


# argparse's parser.error(): its usage line, then `prog: error: why`
_USAGE = re.compile(r"^usage: \S", re.I)
_PROG_ERROR = re.compile(r"^(?:[\w.-]+(?: [\w.-]+)*: )?error: \S", re.I)
_USAGE_REACH = 4  # non-blank lines after the usage line (click prints "Try '… --help'" first)


def _usage_error(lines: Sequence[Line]) -> Finding | None:
    """A command line rejected with its usage printed above the error."""
    i = last(lines, _USAGE)
    if i is None:
        return None
    below = next_nonblank(lines, i)
    for _ in range(_USAGE_REACH):
        if below is None or _PROG_ERROR.match(below.core):
            break
        below = next_nonblank(lines, below.index)
    if below is None or not _PROG_ERROR.match(below.core):
        return None
    return finding(Category.CONFIG_ERROR, [below], headline=below.core.strip())


def detect_config(lines: Sequence[Line]) -> Finding | None:
    """A configuration the program rejected at start-up (skipping INFO/DEBUG noise)."""
    if not mentions(lines, CONFIG_WORDS):
        return None
    if mentions(lines, ("usage: ",)):
        rejected = _usage_error(lines)
        if rejected is not None:
            return rejected
    for pattern in CONFIG:
        if not anywhere(lines, pattern):
            continue
        for line in reversed(lines):
            if pattern.search(line.core) and loud(line) and not line.core[:1].isspace():
                detail = detail_of(lines, line)
                block = _banner_detail(lines, line)
                return finding(Category.CONFIG_ERROR, [line, detail, *block],
                               headline=(block[-1] if block else detail or line).core.strip())
    return None
