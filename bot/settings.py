"""Settings: read once from the environment, frozen, passed down.

Nothing else in the package reads `os.environ`; this keeps configuration testable and
makes every knob visible in one place (and in `.env.example`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///restart-patrol.db"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of restart-patrol; see `.env.example` for the meaning of each."""

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    patrol_channel: str | None = None
    patrol_schedule: str = "0 9 * * *"
    patrol_timezone: str = "UTC"
    patrol_namespaces: tuple[str, ...] = ()
    channel_namespaces: Mapping[str, tuple[str, ...]] | None = None
    database_url: str = DEFAULT_DATABASE_URL
    kubeconfig: str | None = None
    kube_context: str | None = None
    kube_contexts: tuple[str, ...] = ()
    in_cluster: bool = False
    cluster_name: str | None = None
    port: int = 3000
    log_tail_lines: int = 200
    log_limit_bytes: int = 256 * 1024
    redact_logs: bool = True
    templates_dir: str | None = None
    min_delta: int = 1
    ignore: tuple[str, ...] = ()
    retention_days: int = 30
    recorder_log_interval_minutes: int = 10  # between log fetches of one crash-looping pod
    recorder_queue: int = 1000
    recorder_workers: int = 4
    crash_retention_days: int = 90
    crash_retention_per_workload: int = 200
    alert_new_crashes: bool = False
    alert_burst: int = 5  # new-crash alerts posted one by one per alert_window …
    alert_window: float = 60.0  # … seconds; the rest of a crash wave is one summary
    digest_catchup: timedelta = timedelta(hours=6)
    kube_connect_timeout: float = 5.0
    kube_read_timeout: float = 30.0
    kube_retries: int = 4
    kube_retry_backoff: float = 0.5
    patrol_deadline: float = 300.0
    query_deadline: float = 60.0
    leader_election: bool = False
    lease_name: str = "restart-patrol"
    lease_namespace: str = "default"
    lease_duration: int = 15


def namespaces_for(settings: Settings, cluster: str) -> tuple[str, ...]:
    """The namespaces to patrol in `cluster` (empty = all): PATROL_NAMESPACES, whose
    entries are `cluster/namespace` (or `cluster/*`) when several clusters are served."""
    if not settings.kube_contexts or len(settings.kube_contexts) < 2:
        return settings.patrol_namespaces
    mine = [entry.partition("/")[2] for entry in settings.patrol_namespaces
            if entry.partition("/")[0] == cluster]
    return () if "*" in mine else tuple(mine)


def _split_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def parse_channel_namespaces(raw: str, contexts: tuple[str, ...] = ()
                             ) -> dict[str, tuple[str, ...]]:
    """Parse `C01=ns1,ns2;C02=*` into {channel: namespaces}; `*` means every namespace.
    An entry may name a cluster (`prod/payments`, `prod/*`) when several are served."""
    result: dict[str, tuple[str, ...]] = {}
    for part in raw.split(";"):
        entry = part.strip()
        if not entry:
            continue
        channel, sep, namespaces = entry.partition("=")
        if not sep or not channel.strip() or not namespaces.strip():
            raise ConfigError(
                f"CHANNEL_NAMESPACES entry {entry!r} is not CHANNEL=ns1,ns2 (or CHANNEL=*)"
            )
        if not _split_list(namespaces):
            raise ConfigError(
                f"CHANNEL_NAMESPACES entry {entry!r} gives channel {channel.strip()} no "
                "namespace: list at least one (or * for all)")
        for item in _split_list(namespaces):
            if item.count("/") > 1 or item.startswith("/") or item.endswith("/"):
                raise ConfigError(f"CHANNEL_NAMESPACES entry {entry!r}: {item!r} is not "
                                  "NAMESPACE, CLUSTER/NAMESPACE or CLUSTER/*")
            cluster = item.partition("/")[0] if "/" in item else None
            if cluster is not None and len(contexts) > 1 and cluster not in contexts:
                raise ConfigError(f"CHANNEL_NAMESPACES entry {entry!r}: no cluster "
                                  f"{cluster!r} in KUBE_CONTEXTS ({', '.join(contexts)})")
        if channel.strip() in result:
            raise ConfigError(f"CHANNEL_NAMESPACES names channel {channel.strip()} twice: "
                              "list all its namespaces in one entry")
        result[channel.strip()] = _split_list(namespaces)
    return result


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "": 1.0}


def _seconds(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    """A duration such as `30`, `30s`, `500ms`, `5m`, `1h` or `1d`, in seconds."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|)", raw)
    if match is None:
        raise ConfigError(f"{name}={raw!r} is not a duration (e.g. 500ms, 30s, 5m, 6h, 1d)")
    value = float(match.group(1)) * _SECONDS[match.group(2)]
    if value < minimum:
        raise ConfigError(f"{name}={raw} must be at least {minimum:g} s")
    return value


def _database_url(env: Mapping[str, str]) -> str:
    """DATABASE_URL, checked for the `dialect[+driver]://…` shape SQLAlchemy needs."""
    raw = env.get("DATABASE_URL", "").strip()
    if not raw:
        return DEFAULT_DATABASE_URL
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(\+[A-Za-z0-9_]+)?://\S*", raw):
        shown = "DATABASE_URL" if "@" in raw else f"DATABASE_URL={raw!r}"  # may hold a password
        raise ConfigError(
            f"{shown} is not a database URL (e.g. sqlite:///restart-patrol.db "
            "or postgresql+psycopg://user@host:5432/db)")
    return raw


def _patrol_namespaces(env: Mapping[str, str], contexts: tuple[str, ...]) -> tuple[str, ...]:
    """PATROL_NAMESPACES; with several KUBE_CONTEXTS every entry names its cluster
    (`prod/payments`, `prod/*`), since a namespace of one cluster may not exist in another."""
    entries = _split_list(env.get("PATROL_NAMESPACES", ""))
    for entry in entries:
        cluster, sep, namespace = entry.partition("/")
        several = len(contexts) > 1
        if (several and (not sep or cluster not in contexts or not namespace)) or (
                not several and sep):
            raise ConfigError(
                f"PATROL_NAMESPACES entry {entry!r}: " + (
                    f"with several KUBE_CONTEXTS name it CLUSTER/NAMESPACE or CLUSTER/*, "
                    f"CLUSTER one of {', '.join(contexts)}" if several
                    else "a namespace name has no '/'"))
    return entries


def _kube_contexts(env: Mapping[str, str]) -> tuple[str, ...]:
    """KUBE_CONTEXTS: several kubeconfig contexts served by one bot (empty: just the one
    KUBE_CONTEXT or the current context). Their names are the cluster names users type."""
    contexts = _split_list(env.get("KUBE_CONTEXTS", ""))
    if len(set(contexts)) != len(contexts):
        raise ConfigError(f"KUBE_CONTEXTS={env.get('KUBE_CONTEXTS')!r} names a context twice")
    bad = [c for c in contexts if "/" in c]
    if bad:
        raise ConfigError(f"KUBE_CONTEXTS: context {bad[0]!r} contains '/', which separates "
                          "cluster from namespace in /restarts; rename the context")
    if len(contexts) > 1 and env.get("CLUSTER_NAME", "").strip():
        raise ConfigError("CLUSTER_NAME names one cluster; with several KUBE_CONTEXTS each "
                          "cluster is named after its context (unset CLUSTER_NAME)")
    return contexts


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true/false)")


def _duration(env: Mapping[str, str], name: str, default: timedelta) -> timedelta:
    """`90s`, `30m`, `6h`, `1d`, or plain seconds; `0` turns the feature off."""
    return timedelta(seconds=_seconds(env, name, default.total_seconds(), minimum=0))


def _lease_namespace(env: Mapping[str, str]) -> str:
    """LEASE_NAMESPACE, else the pod's own namespace in a cluster, else `default`."""
    explicit = env.get("LEASE_NAMESPACE", "").strip()
    if explicit:
        return explicit
    if env.get("KUBERNETES_SERVICE_HOST"):
        try:
            return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
        except OSError:
            pass
    return "default"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from `env` (default: the process environment), validating each value."""
    env = os.environ if env is None else env
    timezone = env.get("PATROL_TIMEZONE", "").strip() or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"PATROL_TIMEZONE={timezone!r} is not an IANA time zone") from None
    channel_raw = env.get("CHANNEL_NAMESPACES", "").strip()
    contexts = _kube_contexts(env)
    return Settings(
        slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
        slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
        slack_app_token=env.get("SLACK_APP_TOKEN") or None,
        slack_api_url=env.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL,
        patrol_channel=env.get("PATROL_CHANNEL") or None,
        patrol_schedule=env.get("PATROL_SCHEDULE", "").strip() or "0 9 * * *",
        patrol_timezone=timezone,
        patrol_namespaces=_patrol_namespaces(env, contexts),
        channel_namespaces=parse_channel_namespaces(channel_raw, contexts) if channel_raw
        else None,
        database_url=_database_url(env),
        kubeconfig=env.get("KUBECONFIG") or None,
        kube_context=env.get("KUBE_CONTEXT") or None,
        kube_contexts=contexts,
        in_cluster=bool(env.get("KUBERNETES_SERVICE_HOST")),
        cluster_name=env.get("CLUSTER_NAME") or None,
        port=_int(env, "PORT", 3000, minimum=0),
        log_tail_lines=_int(env, "LOG_TAIL_LINES", 200, minimum=1),
        log_limit_bytes=_int(env, "LOG_LIMIT_BYTES", 256 * 1024, minimum=1024),
        redact_logs=_bool(env, "REDACT_LOGS", True),
        templates_dir=env.get("TEMPLATES_DIR") or None,
        min_delta=_int(env, "PATROL_MIN_DELTA", 1, minimum=1),
        ignore=_split_list(env.get("PATROL_IGNORE", "")),
        retention_days=_int(env, "RETENTION_DAYS", 30, minimum=8),
        recorder_log_interval_minutes=_int(env, "RECORDER_LOG_INTERVAL_MINUTES", 10),
        recorder_queue=_int(env, "RECORDER_QUEUE", 1000, minimum=1),
        recorder_workers=_int(env, "RECORDER_WORKERS", 4, minimum=1),
        crash_retention_days=_int(env, "CRASH_RETENTION_DAYS", 90, minimum=1),
        crash_retention_per_workload=_int(env, "CRASH_RETENTION_PER_WORKLOAD", 200,
                                          minimum=1),
        alert_new_crashes=_bool(env, "ALERT_NEW_CRASHES", False),
        alert_burst=_int(env, "ALERT_BURST", 5, minimum=1),
        alert_window=_seconds(env, "ALERT_WINDOW", 60.0, minimum=0.1),
        digest_catchup=_duration(env, "DIGEST_CATCHUP", timedelta(hours=6)),
        kube_connect_timeout=_seconds(env, "KUBE_CONNECT_TIMEOUT", 5.0, minimum=0.01),
        kube_read_timeout=_seconds(env, "KUBE_READ_TIMEOUT", 30.0, minimum=0.01),
        kube_retries=_int(env, "KUBE_RETRIES", 4, minimum=0),
        kube_retry_backoff=_seconds(env, "KUBE_RETRY_BACKOFF", 0.5, minimum=0),
        patrol_deadline=_seconds(env, "PATROL_DEADLINE", 300.0, minimum=0.1),
        query_deadline=_seconds(env, "QUERY_DEADLINE", 60.0, minimum=0.1),
        leader_election=_bool(env, "LEADER_ELECTION", False),
        lease_name=env.get("LEASE_NAME", "").strip() or "restart-patrol",
        lease_namespace=_lease_namespace(env),
        lease_duration=_int(env, "LEASE_DURATION", 15, minimum=2),
    )
