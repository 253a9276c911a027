"""Settings: read once from the environment, frozen, passed down.

Nothing else in the package reads `os.environ`; this keeps configuration testable and
makes every knob visible in one place (and in `.env.example`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///restart-patrol.db"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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
    digest_catchup: timedelta = timedelta(hours=6)


def _split_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def parse_channel_namespaces(raw: str) -> dict[str, tuple[str, ...]]:
    """Parse `C01=ns1,ns2;C02=*` into {channel: namespaces}; `*` means every namespace."""
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
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    number, unit = (raw[:-1], raw[-1]) if raw[-1] in _UNITS else (raw, "s")
    if not number.isdigit():
        raise ConfigError(f"{name}={raw!r} is not a duration (e.g. 30m, 6h, 1d)")
    return timedelta(seconds=int(number) * _UNITS[unit])


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from `env` (default: the process environment), validating each value."""
    env = os.environ if env is None else env
    timezone = env.get("PATROL_TIMEZONE", "").strip() or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"PATROL_TIMEZONE={timezone!r} is not an IANA time zone") from None
    channel_raw = env.get("CHANNEL_NAMESPACES", "").strip()
    return Settings(
        slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
        slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
        slack_app_token=env.get("SLACK_APP_TOKEN") or None,
        slack_api_url=env.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL,
        patrol_channel=env.get("PATROL_CHANNEL") or None,
        patrol_schedule=env.get("PATROL_SCHEDULE", "").strip() or "0 9 * * *",
        patrol_timezone=timezone,
        patrol_namespaces=_split_list(env.get("PATROL_NAMESPACES", "")),
        channel_namespaces=parse_channel_namespaces(channel_raw) if channel_raw else None,
        database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        kubeconfig=env.get("KUBECONFIG") or None,
        kube_context=env.get("KUBE_CONTEXT") or None,
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
        digest_catchup=_duration(env, "DIGEST_CATCHUP", timedelta(hours=6)),
    )
