"""What an app's own log lines say when no runtime crashed: a fatal log line, an
unreachable dependency or a taken port, a deliberate shutdown, or the line a process printed
right before announcing that it exits."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.finding import (
    Finding,
    finding,
    indented,
    last,
    loud,
    mentions,
    prev_nonblank,
)
from bot.diagnosis.logtext import Line

_FATAL = re.compile(r"^F\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+:\d+\] |level=(fatal|panic)\b|"
                    r"^(FATAL|CRITICAL|CRIT|PANIC|EMERG)\b|\[(fatal|critical|crit|emerg)\]|"
                    r"\b(FATAL|CRITICAL)\b|(?-i:\b(FTL|CRT)\])", re.I)
_KLOG_FATAL = re.compile(r"^F\d{4} ")
_FATAL_LEVELS = ("fatal", "panic", "critical", "emergency", "alert")


def detect_fatal(lines: Sequence[Line]) -> Finding | None:
    """The app's own last fatal log line (klog `F`, level=fatal, FATAL/CRITICAL)."""
    if not (mentions(lines, ("fatal", "critical", "crit", "panic", "emerg", "ftl]", "crt]"))
            or last(lines, _KLOG_FATAL) is not None) and not any(ln.level for ln in lines):
        return None
    for line in reversed(lines):
        fatal = line.level in _FATAL_LEVELS or (line.level is None and _FATAL.search(line.core))
        if fatal:
            runtime = "go" if _KLOG_FATAL.match(line.core) else None
            return finding(Category.APP_FATAL, [line], runtime=runtime,
                           headline=line.core.strip())
    return None


DEPENDENCY = re.compile(
    r"connection refused|(?-i:\bECONNREFUSED\b)|connection (to \S+ )?refused|could not "
    r"translate host name|Name or service not known|nodename nor servname|no such host|"
    r"Name does not resolve|could not resolve host|bad address '|getaddrinfo failed|"
    r"Temporary failure in name resolution|getaddrinfo (ENOTFOUND|EAI_AGAIN)|"
    r"(?-i:UnknownHostException|\bENOTFOUND\b|\bEHOSTUNREACH\b|\bEAI_AGAIN\b|\bETIMEDOUT\b|"
    r"\bECONNRESET\b|ServerSelection\w*|MongoNetworkError|NoBrokersAvailable|"
    r"AMQPConnectionError|CannotConnectError|ConnectionBad|ConnectException|"
    r"ConnectTimeout\w*|\w*ConnectionError\b|ConnectError\b|\w*ConnectionRefused\w*)|"
    r"error occurred while establishing a connection|actively refused|"
    r"can't reach database server|could not connect to any servers|"
    r"No route to host|Communications link failure|failed to establish a new connection|"
    r"cannot connect to host|can't connect to (local )?(MySQL|MariaDB|server)|"
    r"connect(ion)? timed out|i/o timeout|read timed out|handshake operation timed out|"
    r"unable to resolve host|aborted due to timeout|"
    # a host, service or dependency said unreachable (not Rust's "entered unreachable code")
    r"\bnot reachable\b|(?<!entered )\bunreachable\b(?! code)|"
    # a call that ran out of time: Go's HTTP client and contexts, gRPC's DEADLINE_EXCEEDED
    r"Client\.Timeout exceeded|context deadline exceeded|(?-i:DeadlineExceeded|DEADLINE_EXCEEDED)|"
    r"(?-i:\bReadTimeout\w*|^TimeoutError\b)|(could not|failed to|unable to|cannot) connect to|"
    r"Connection reset by peer|server closed the connection unexpectedly|"
    r"Is the server running on|(?-i:[:{,]econnrefused\b|[:{,]nxdomain\b|[:{,]ehostunreach\b)",
    re.I)
PORT = re.compile(r"(?-i:\bEADDRINUSE\b|BindException|AddrInUse|[:{,]eaddrinuse\b)|"
                  r"address already in use|port "
                  r"is already allocated|(port|address) \S* ?(was|is) already in use|"
                  r"cannot bind socket|could not bind to address", re.I)
_DEPENDENCY_WORDS = (
    "refused", "host name", "not known", "servname", "no such host", "name resolution",
    "does not resolve", "resolve host", "bad address", "getaddrinfo", "enotfound",
    "eai_again", "nxdomain", "unknownhost", "ehostunreach", "etimedout", "econnreset", "no route",
    "link failure", "serverselection", "mongonetwork", "nobrokers", "amqpconnection",
    "cannotconnect", "connectionbad", "connectexception", "connecttimeout", "connectionerror",
    "connecterror", "new connection", "connect to", "timed out", "timeout", "reset by peer",
    "closed the connection", "server running on", "establishing a connection", "timeouterror",
    "resolve host", "due to timeout", "reachable", "deadline",
    "actively refused", "reach database", "any servers")
_PORT_WORDS = ("eaddrinuse", "already in use", "bindexception", "already allocated",
               "addrinuse", "cannot bind", "could not bind")
# `code: 'EADDRINUSE'`, `"errno": -111`: a property of the error object, not the error line
_PROPERTY = re.compile(r"""^\s*["']?\w+["']?\s*[:=]\s*["']?[\w.-]+["']?,?\s*$""")


# A line that advises about the error above it rather than stating one (libpq's "Is the
# server running on host …", "Hint: …").
_HINT = re.compile(r"^\s*(?:Is the \w+ running\b|hint:|did you mean\b|make sure\b|"
                   r"please (?:check|make sure|verify|ensure)\b|check (?:that|if|whether)\b)",
                   re.I)
_HINT_REACH = 3


def _stated_at(lines: Sequence[Line], line: Line, pattern: re.Pattern[str]) -> Line:
    """The line that states the failure `line` belongs to: the head of the indented block
    it sits in (an error logged with its object dumped below it), or the error right above
    a hint, when that line says the same; else `line` itself."""
    k = line.index
    while k > 0 and indented(lines[k]) and lines[k - 1].core.strip():
        k -= 1
    if k != line.index and pattern.search(lines[k].core):
        return lines[k]
    if _HINT.match(line.core):
        for above in reversed(lines[max(0, line.index - _HINT_REACH):line.index]):
            if not above.core.strip():
                break
            if pattern.search(above.core) and not _HINT.match(above.core):
                return above
    return line


# An address as logs print it: `('0.0.0.0', 8000)`, `10.0.0.3:5432`, `[::1]:80`.
_ADDRESS = re.compile(r"\('[\w.:-]+', \d+\)|\b\d{1,3}(?:\.\d{1,3}){3}:\d+\b|\[[0-9a-f:]+\]:\d+")


def _same_address_above(lines: Sequence[Line], line: Line) -> Line | None:
    """The loud line right above `line` when it reports on the same address (a server's
    "Connection in use: ('0.0.0.0', 8000)" over the errno its retry got): the statement
    the errno elaborates."""
    above = prev_nonblank(lines, line.index)
    if above is None or above.index < line.index - 2 or not loud(above):
        return None
    addresses = set(_ADDRESS.findall(line.core))
    if not addresses or not addresses & set(_ADDRESS.findall(above.core)):
        return None
    return above


def detect_dependency(lines: Sequence[Line]) -> Finding | None:
    """A refused/unresolvable dependency or a taken port, among the last lines or loud."""
    if not mentions(lines, _DEPENDENCY_WORDS + _PORT_WORDS):
        return None
    tail_start = max(0, len(lines) - 5)
    for line in reversed(lines):
        if not (line.index >= tail_start or loud(line)) or _PROPERTY.match(line.core):
            continue
        for pattern, category in ((PORT, Category.PORT_IN_USE),
                                  (DEPENDENCY, Category.DEPENDENCY_UNAVAILABLE)):
            if pattern.search(line.core):
                stated = _stated_at(lines, line, pattern)
                return finding(category, [_same_address_above(lines, stated), stated],
                               headline=stated.core.strip())
    return None


SHUTDOWN = re.compile(
    r"shutting down|graceful(ly)? shut|shutdown (complete|initiated|requested|signal)|"
    r"received (signal|sigterm|sigint|terminated|interrupt|a sigterm|a sigint)|"
    r"signal received|(got|received) (a )?(sigterm|sigint)|"
    r"stopping (server|service|http|grpc)|caught (sigterm|signal)|exiting on signal|"
    r"terminating gracefully|signal: terminated|stopped by (sigterm|sigint)", re.I)


def detect_shutdown(lines: Sequence[Line]) -> Finding | None:
    """A deliberate stop: the first shutdown line of the final shutdown sequence."""
    if not mentions(lines, ("shut", "signal", "sigterm", "sigint", "terminat", "interrupt",
                            "stopping", "exiting", "stopped")):
        return None
    end = last(lines, SHUTDOWN)
    if end is None:
        return None
    start = end
    for k in range(end - 1, max(-1, end - 40), -1):
        if SHUTDOWN.search(lines[k].core):
            start = k
        elif lines[k].core.strip() and k < start - 5:
            break
    picked = [ln for ln in lines[start:end + 1] if SHUTDOWN.search(ln.core)][:3]
    return finding(Category.GRACEFUL_SHUTDOWN, picked, headline=lines[start].core.strip())


# A process (or its supervisor) saying that it exits now, with no reason on the line.
_EXITING = re.compile(r"^(?:Exiting|Aborting|Terminating|Quitting)\b[.!…]*\s*$|"
                      r"^(?:\S+ )?exited with code [1-9]\d*\b|^\S+ exited with code [1-9]",
                      re.I)
_SUPERVISOR = re.compile(r"exited with code \d+|^(?:Exiting|Aborting)\b|sending SIG\w+ to",
                         re.I)


def detect_announced_exit(lines: Sequence[Line]) -> Finding | None:
    """The loud line right before `Exiting` / `… exited with code 1`: the stated reason."""
    if not mentions(lines, ("exiting", "aborting", "terminating", "quitting", "exited with")):
        return None
    i = last(lines, _EXITING)
    if i is None:
        return None
    k = i
    while (reason := prev_nonblank(lines, k)) is not None and (
            _SUPERVISOR.search(reason.core) or not loud(reason)):
        k = reason.index
    if reason is None or SHUTDOWN.search(reason.core) or reason.core.startswith(("at ", "\t")):
        return None
    return finding(Category.APP_FATAL, [reason], headline=reason.core.strip())
