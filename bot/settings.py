"""Settings: read once at start-up, frozen, grouped by concern, passed down.

Nothing else in the package reads `os.environ`. Each setting is declared once, as a field
of its group with its variable name, its default and its parser (`_setting`), so the
default is written in one place and `.env.example` can be checked against the fields.

Values come from the process environment, over a `.env` file in the working directory
when there is one (the real environment wins; `ENV_FILE` names another file). A value
wrapped in one pair of matching quotes is unquoted, so `.env.example` can be sourced by a
shell and read by kustomize alike.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import ConfigError

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
T = TypeVar("T")
Parser = Callable[[str, str], Any]  # (variable name, raw text) → value; raises ConfigError


def _setting(env: str, default: T, parse: Parser | None = None) -> T:
    """A field read from the environment variable `env` (parsed by `parse`, plain text by
    default); `default` when the variable is unset or empty."""
    return field(default=default, metadata={"env": env, "parse": parse or _text})


# ---- parsers -----------------------------------------------------------------------------
def _text(_name: str, raw: str) -> str:
    return raw


def _int(minimum: int = 0) -> Parser:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number") from None
        if value < minimum:
            raise ConfigError(f"{name}={value} must be at least {minimum}")
        return value
    return parse


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "": 1.0}


def _seconds(minimum: float) -> Parser:
    """A duration such as `30`, `30s`, `500ms`, `5m`, `1h` or `1d`, in seconds."""
    def parse(name: str, raw: str) -> float:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|)", raw.lower())
        if match is None:
            raise ConfigError(f"{name}={raw!r} is not a duration (e.g. 500ms, 30s, 5m, 6h, "
                              "1d)")
        value = float(match.group(1)) * _UNITS[match.group(2)]
        if value < minimum:
            raise ConfigError(f"{name}={raw} must be at least {minimum:g} s")
        return value
    return parse


def _timedelta(name: str, raw: str) -> timedelta:
    """`90s`, `30m`, `6h`, `1d`, or plain seconds; `0` turns the feature off."""
    return timedelta(seconds=_seconds(0)(name, raw))


def _bool(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true/false)")


def _split_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _list(_name: str, raw: str) -> tuple[str, ...]:
    return _split_list(raw)


def _timezone(name: str, raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name}={raw!r} is not an IANA time zone") from None
    return raw


def _database_url(name: str, raw: str) -> str:
    """DATABASE_URL, checked for the `dialect[+driver]://…` shape SQLAlchemy needs."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(\+[A-Za-z0-9_]+)?://\S*", raw):
        shown = name if "@" in raw else f"{name}={raw!r}"  # may hold a password
        raise ConfigError(
            f"{shown} is not a database URL (e.g. sqlite:///restart-patrol.db "
            "or postgresql+psycopg://user@host:5432/db)")
    return raw


@dataclass(frozen=True, slots=True)
class LinkTemplate:
    """A LINK_TEMPLATES entry: a button's label and its URL template (placeholders from
    LINK_PLACEHOLDERS, filled URL-encoded by bot.render.links)."""

    label: str
    url: str


LINK_PLACEHOLDERS = ("cluster", "namespace", "workload", "pod", "container", "since", "until")
MAX_LINKS = 5  # buttons per message: more would crowd the alert and the drill-down
MAX_LINK_LABEL = 75  # Block Kit's limit for a button's text


def _link_templates(name: str, raw: str) -> tuple[LinkTemplate, ...]:
    """`Label=https://…{namespace}…;Label=https://…`: the links the drill-down and the
    new-crash alerts show as buttons. The URL is everything after the first `=` (a query
    string keeps its own), entries are separated by `;`. Refused, each with its own
    message: a missing label or URL, a label used twice or longer than a button shows, a
    URL that is not http(s)://host…, a placeholder not in LINK_PLACEHOLDERS (or with a
    format spec), an unbalanced brace, more than MAX_LINKS entries."""
    import string

    known = " ".join(f"{{{p}}}" for p in LINK_PLACEHOLDERS)
    links: list[LinkTemplate] = []
    for entry in (part.strip() for part in raw.split(";")):
        if not entry:
            continue
        label, equals, url = (part.strip() for part in entry.partition("="))
        if not equals or not label or not url:
            raise ConfigError(f"{name} entry {entry!r} is not Label=https://… "
                              "(entries are separated by ';')")
        if len(label) > MAX_LINK_LABEL:
            raise ConfigError(f"{name}: label {label!r} is longer than {MAX_LINK_LABEL} "
                              "characters (a Slack button shows no more)")
        if any(link.label == label for link in links):
            raise ConfigError(f"{name} names the label {label!r} twice")
        try:
            fields = list(string.Formatter().parse(url))
        except ValueError:
            raise ConfigError(f"{name} link {label!r}: unbalanced '{{' or '}}' in {url!r} "
                              "(write a literal brace as '{{' or '}}')") from None
        for _text_part, placeholder, spec, conversion in fields:
            if placeholder is None:
                continue
            if placeholder not in LINK_PLACEHOLDERS or spec or conversion:
                shown = placeholder + (f"!{conversion}" if conversion else "") + (
                    f":{spec}" if spec else "")
                raise ConfigError(f"{name} link {label!r}: unknown placeholder {{{shown}}} "
                                  f"(use {known})")
        example = url.format(**dict.fromkeys(LINK_PLACEHOLDERS, "x"))
        if not re.match(r"https?://[^/?#\s]+", example, re.IGNORECASE) or re.search(r"\s",
                                                                                     example):
            raise ConfigError(f"{name} link {label!r}: {url!r} is not an http:// or "
                              "https:// URL with a host")
        links.append(LinkTemplate(label, url))
    if len(links) > MAX_LINKS:
        raise ConfigError(f"{name} gives {len(links)} links; at most {MAX_LINKS} are shown "
                          "as buttons")
    return tuple(links)


_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]+")


def check_channel_id(name: str, value: str) -> str:
    """A Slack conversation id (C…, G… or D…). Names (`#ops`) can never match what Slack
    sends with a command, so they are refused with the way to find the id."""
    if _CHANNEL_ID.fullmatch(value):
        return value
    hint = (f" ({value!r} is a channel name)" if value.startswith("#") or value.islower()
            else "")
    raise ConfigError(
        f"{name}: {value!r} is not a Slack channel id{hint}: use the id, e.g. C01ABCDEF "
        "(in Slack: open the channel's details; the id is at the bottom of the About tab)")


def _channel(name: str, raw: str) -> str:
    return check_channel_id(name, raw)


def parse_channel_namespaces(raw: str, contexts: tuple[str, ...] = (), *,
                             name: str = "CHANNEL_NAMESPACES") -> dict[str, tuple[str, ...]]:
    """Parse `C01=ns1,ns2;C02=*` into {channel: namespaces}; `*` means every namespace.
    An entry may name a cluster (`prod/payments`, `prod/*`)."""
    result: dict[str, tuple[str, ...]] = {}
    for part in raw.split(";"):
        entry = part.strip()
        if not entry:
            continue
        channel, sep, namespaces = entry.partition("=")
        channel = channel.strip()
        if not sep or not channel or not namespaces.strip():
            raise ConfigError(f"{name} entry {entry!r} is not CHANNEL=ns1,ns2 (or CHANNEL=*)")
        if not _split_list(namespaces):
            raise ConfigError(f"{name} entry {entry!r} gives channel {channel} no namespace: "
                              "list at least one (or * for all)")
        check_channel_id(f"{name} entry {entry!r}", channel)
        for item in _split_list(namespaces):
            if item.count("/") > 1 or item.startswith("/") or item.endswith("/"):
                raise ConfigError(f"{name} entry {entry!r}: {item!r} is not NAMESPACE, "
                                  "CLUSTER/NAMESPACE or CLUSTER/*")
            cluster = item.partition("/")[0] if "/" in item else None
            if cluster is not None and len(contexts) > 1 and cluster not in contexts:
                raise ConfigError(f"{name} entry {entry!r}: no cluster {cluster!r} in "
                                  f"KUBE_CONTEXTS ({', '.join(contexts)})")
        if channel in result:
            raise ConfigError(f"{name} names channel {channel} twice: list all its "
                              "namespaces in one entry")
        result[channel] = _split_list(namespaces)
    return result


def _channel_map(name: str, raw: str) -> Mapping[str, tuple[str, ...]]:
    return parse_channel_namespaces(raw, name=name)


# ---- groups --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """Which clusters and namespaces, and how this replica takes part in leader election."""

    kubeconfig: str | None = _setting("KUBECONFIG", None)
    context: str | None = _setting("KUBE_CONTEXT", None)
    contexts: tuple[str, ...] = _setting("KUBE_CONTEXTS", (), _list)
    name: str | None = _setting("CLUSTER_NAME", None)
    namespaces: tuple[str, ...] = _setting("PATROL_NAMESPACES", (), _list)
    in_cluster: bool = False  # running in a pod (KUBERNETES_SERVICE_HOST is set)
    leader_election: bool = _setting("LEADER_ELECTION", False, _bool)
    lease_name: str = _setting("LEASE_NAME", "restart-patrol")
    lease_namespace: str = _setting("LEASE_NAMESPACE", "default")
    lease_duration: int = _setting("LEASE_DURATION", 15, _int(2))


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """Time and size bounds of every Kubernetes call and of each answer."""

    connect_timeout: float = _setting("KUBE_CONNECT_TIMEOUT", 5.0, _seconds(0.01))
    read_timeout: float = _setting("KUBE_READ_TIMEOUT", 30.0, _seconds(0.01))
    retries: int = _setting("KUBE_RETRIES", 4, _int(0))
    retry_backoff: float = _setting("KUBE_RETRY_BACKOFF", 0.5, _seconds(0))
    patrol_deadline: float = _setting("PATROL_DEADLINE", 300.0, _seconds(0.1))
    query_deadline: float = _setting("QUERY_DEADLINE", 60.0, _seconds(0.1))
    log_tail_lines: int = _setting("LOG_TAIL_LINES", 200, _int(1))
    log_limit_bytes: int = _setting("LOG_LIMIT_BYTES", 256 * 1024, _int(1024))


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """The database and how long it keeps what."""

    database_url: str = _setting("DATABASE_URL", "sqlite:///restart-patrol.db", _database_url)
    retention_days: int = _setting("RETENTION_DAYS", 30, _int(8))
    crash_retention_days: int = _setting("CRASH_RETENTION_DAYS", 90, _int(1))
    crash_retention_per_workload: int = _setting("CRASH_RETENTION_PER_WORKLOAD", 200, _int(1))


@dataclass(frozen=True, slots=True)
class SlackSettings:
    """The Slack app: credentials, where it posts, who may see what, the HTTP port."""

    bot_token: str | None = _setting("SLACK_BOT_TOKEN", None)
    signing_secret: str | None = _setting("SLACK_SIGNING_SECRET", None)
    app_token: str | None = _setting("SLACK_APP_TOKEN", None)
    api_url: str = _setting("SLACK_API_URL", "https://slack.com/api/")
    patrol_channel: str | None = _setting("PATROL_CHANNEL", None, _channel)
    channel_namespaces: Mapping[str, tuple[str, ...]] | None = _setting(
        "CHANNEL_NAMESPACES", None, _channel_map)
    digest_channels: Mapping[str, tuple[str, ...]] | None = _setting(
        "DIGEST_CHANNELS", None, _channel_map)
    links: tuple[LinkTemplate, ...] = _setting("LINK_TEMPLATES", (), _link_templates)
    alert_new_crashes: bool = _setting("ALERT_NEW_CRASHES", False, _bool)
    alert_burst: int = _setting("ALERT_BURST", 5, _int(1))
    alert_window: float = _setting("ALERT_WINDOW", 60.0, _seconds(0.1))
    # how often alert threads are checked for repeats to count and replies that are due
    alert_thread_poll: float = _setting("ALERT_THREAD_POLL", 30.0, _seconds(0.1))
    port: int = _setting("PORT", 3000, _int(0))


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    """When the digest is posted, what it may catch up, and what it leaves out."""

    cron: str = _setting("PATROL_SCHEDULE", "0 9 * * *")
    timezone: str = _setting("PATROL_TIMEZONE", "UTC", _timezone)
    catchup: timedelta = _setting("DIGEST_CATCHUP", timedelta(hours=6), _timedelta)
    min_delta: int = _setting("PATROL_MIN_DELTA", 1, _int(1))
    ignore: tuple[str, ...] = _setting("PATROL_IGNORE", (), _list)


@dataclass(frozen=True, slots=True)
class RecorderSettings:
    """The flight recorder's pace and bounds."""

    log_interval_minutes: int = _setting("RECORDER_LOG_INTERVAL_MINUTES", 10, _int(0))
    queue: int = _setting("RECORDER_QUEUE", 1000, _int(1))
    workers: int = _setting("RECORDER_WORKERS", 4, _int(1))


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of restart-patrol, by concern; see `.env.example` for each."""

    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    slack: SlackSettings = field(default_factory=SlackSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    recorder: RecorderSettings = field(default_factory=RecorderSettings)
    redact_logs: bool = _setting("REDACT_LOGS", True, _bool)
    templates_dir: str | None = _setting("TEMPLATES_DIR", None)


GROUPS: tuple[type[Any], ...] = (ClusterSettings, LimitSettings, StoreSettings, SlackSettings,
                                 ScheduleSettings, RecorderSettings)


def variables() -> dict[str, Any]:
    """Every environment variable restart-patrol reads, with its default (for docs and
    the `.env.example` check)."""
    found: dict[str, Any] = {}
    for kind in (*GROUPS, Settings):
        for f in fields(kind):
            if "env" in f.metadata:
                found[f.metadata["env"]] = None if f.default is MISSING else f.default
    return found


# ---- loading -------------------------------------------------------------------------
def _unquoted(raw: str) -> str:
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1].strip()
    return text


def _read(kind: type[T], env: Mapping[str, str]) -> T:
    values: dict[str, Any] = {}
    for f in fields(kind):  # type: ignore[arg-type]
        name = f.metadata.get("env")
        if name is None:
            continue
        raw = _unquoted(env.get(name, ""))
        if raw:
            values[f.name] = f.metadata["parse"](name, raw)
    return kind(**values)


def _check_contexts(cluster: ClusterSettings, raw: str) -> None:
    contexts = cluster.contexts
    if len(set(contexts)) != len(contexts):
        raise ConfigError(f"KUBE_CONTEXTS={raw!r} names a context twice")
    bad = [c for c in contexts if "/" in c]
    if bad:
        raise ConfigError(f"KUBE_CONTEXTS: context {bad[0]!r} contains '/', which separates "
                          "cluster from namespace in /restarts; rename the context")
    if len(contexts) > 1 and cluster.name:
        raise ConfigError("CLUSTER_NAME names one cluster; with several KUBE_CONTEXTS each "
                          "cluster is named after its context (unset CLUSTER_NAME)")


def _check_namespaces(cluster: ClusterSettings) -> None:
    """PATROL_NAMESPACES: `namespace`, or `cluster/namespace` / `cluster/*`. With several
    KUBE_CONTEXTS every entry names its cluster (a namespace of one cluster may not exist
    in another); with one cluster its name is checked once connected (`namespaces_for`)."""
    several = len(cluster.contexts) > 1
    for entry in cluster.namespaces:
        name, sep, namespace = entry.partition("/")
        if not sep:
            if several:
                raise ConfigError(
                    f"PATROL_NAMESPACES entry {entry!r}: with several KUBE_CONTEXTS name it "
                    f"CLUSTER/NAMESPACE or CLUSTER/*, CLUSTER one of "
                    f"{', '.join(cluster.contexts)}")
            continue
        if not name or not namespace or "/" in namespace:
            raise ConfigError(f"PATROL_NAMESPACES entry {entry!r} is not NAMESPACE, "
                              "CLUSTER/NAMESPACE or CLUSTER/*")
        if several and name not in cluster.contexts:
            raise ConfigError(f"PATROL_NAMESPACES entry {entry!r}: no cluster {name!r} in "
                              f"KUBE_CONTEXTS ({', '.join(cluster.contexts)})")


def _lease_namespace(env: Mapping[str, str], cluster: ClusterSettings) -> ClusterSettings:
    """LEASE_NAMESPACE, else the pod's own namespace in a cluster, else `default`."""
    if _unquoted(env.get("LEASE_NAMESPACE", "")) or not cluster.in_cluster:
        return cluster
    try:
        own = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    except OSError:
        return cluster
    return _replace(cluster, lease_namespace=own) if own else cluster


def _replace(value: T, **changes: Any) -> T:
    from dataclasses import replace
    return replace(value, **changes)  # type: ignore[type-var]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a `.env` file (python-dotenv's reading: quotes, `export`,
    comments). A missing file is no settings; an unreadable one is a ConfigError."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    try:
        values = dotenv_values(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return {key: value for key, value in values.items() if value is not None}


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from `env`, validating each value. With no `env`: the process
    environment over the `.env` file in the working directory (or ENV_FILE)."""
    if env is None:
        file = Path(os.environ.get("ENV_FILE") or ".env")
        env = {**read_env_file(file), **os.environ}
    cluster = _read(ClusterSettings, env)
    _check_contexts(cluster, env.get("KUBE_CONTEXTS", ""))
    _check_namespaces(cluster)
    cluster = _lease_namespace(env, _replace(
        cluster, in_cluster=bool(env.get("KUBERNETES_SERVICE_HOST"))))
    slack = _read(SlackSettings, env)
    if slack.channel_namespaces is not None:
        slack = _replace(slack, channel_namespaces=parse_channel_namespaces(
            _unquoted(env.get("CHANNEL_NAMESPACES", "")), cluster.contexts))
    if slack.digest_channels is not None:
        slack = _replace(slack, digest_channels=parse_channel_namespaces(
            _unquoted(env.get("DIGEST_CHANNELS", "")), cluster.contexts,
            name="DIGEST_CHANNELS"))
    top = _read(Settings, env)
    return _replace(top, cluster=cluster, limits=_read(LimitSettings, env),
                    store=_read(StoreSettings, env), slack=slack,
                    schedule=_read(ScheduleSettings, env), recorder=_read(RecorderSettings, env))


def namespaces_for(settings: Settings, cluster: str) -> tuple[str, ...]:
    """The namespaces to patrol in `cluster` (empty = all). PATROL_NAMESPACES entries name
    a namespace, or `cluster/namespace` (`cluster/*`) — required with several clusters,
    accepted with one. An entry naming another cluster than the only one is a ConfigError
    (it would silently patrol nothing)."""
    entries = settings.cluster.namespaces
    if not entries:
        return ()
    several = len(settings.cluster.contexts) > 1
    mine: list[str] = []
    for entry in entries:
        name, sep, namespace = entry.partition("/")
        if not sep:
            mine.append(entry)
        elif name == cluster:
            mine.append(namespace)
        elif not several:
            raise ConfigError(f"PATROL_NAMESPACES entry {entry!r} names cluster {name!r}, "
                              f"but this bot serves cluster {cluster!r}")
    if several and not mine:
        return ()  # a cluster no entry names is patrolled whole
    return () if "*" in mine else tuple(mine)
