"""Settings: grouped by concern, each default written once, `.env` read at start-up with
the real environment winning, channel ids validated, `.env.example` sourceable."""

from __future__ import annotations

import os
import subprocess
from dataclasses import fields
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import GROUPS, Settings, load_settings, namespaces_for, variables
from tests.conftest import ROOT


def test_defaults_are_the_dataclass_defaults() -> None:
    assert load_settings({}) == Settings()
    assert Settings().schedule.cron == "0 9 * * *"
    assert Settings().store.database_url == "sqlite:///restart-patrol.db"


def test_every_variable_is_documented_in_env_example() -> None:
    example = (ROOT / ".env.example").read_text()
    documented = {line.split("=", 1)[0].lstrip("# ").strip() for line in example.splitlines()
                  if "=" in line and line.lstrip("# ")[:1].isupper()}
    missing = set(variables()) - documented
    assert not missing, f"not in .env.example: {sorted(missing)}"


def test_each_group_field_declares_its_variable() -> None:
    for group in GROUPS:
        for f in fields(group):
            assert f.name == "in_cluster" or "env" in f.metadata, (group.__name__, f.name)


def test_env_example_sources_in_sh_and_loads(tmp_path: Path) -> None:
    """`set -a; . ./.env.example` must work in a POSIX shell, and what it exports must
    load (no value is mangled by quoting)."""
    script = f'set -a; . "{ROOT / ".env.example"}"; env -0'
    done = subprocess.run(["sh", "-c", script], capture_output=True, env={"PATH": os.defpath})
    assert done.returncode == 0, done.stderr.decode()
    env = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    assert env["PATROL_SCHEDULE"] == "0 9 * * *"
    assert load_settings(env).schedule.cron == "0 9 * * *"


def test_dot_env_is_read_and_the_environment_wins(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text('PATROL_SCHEDULE="30 7 * * *"\nPORT=4000\n'
                                   "export LOG_TAIL_LINES=50  # a comment\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORT", "5000")
    for name in ("PATROL_SCHEDULE", "LOG_TAIL_LINES", "ENV_FILE"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.schedule.cron == "30 7 * * *"
    assert settings.limits.log_tail_lines == 50
    assert settings.slack.port == 5000


def test_env_file_names_another_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "prod.env").write_text("PATROL_MIN_DELTA=3\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENV_FILE", str(tmp_path / "prod.env"))
    monkeypatch.delenv("PATROL_MIN_DELTA", raising=False)
    assert load_settings().schedule.min_delta == 3


@pytest.mark.parametrize(("env", "message"), [
    ({"PATROL_CHANNEL": "#ops"}, "'#ops' is not a Slack channel id ('#ops' is a channel name)"),
    ({"PATROL_CHANNEL": "ops"}, "is not a Slack channel id"),
    ({"CHANNEL_NAMESPACES": "#ops=payments"}, "is not a Slack channel id"),
])
def test_channel_names_are_refused_with_a_hint(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as exc:
        load_settings(env)
    assert "the id is at the bottom" in str(exc.value)


def test_channel_ids_are_accepted() -> None:
    settings = load_settings({"PATROL_CHANNEL": "C01ABCDEF",
                              "CHANNEL_NAMESPACES": "C01ABCDEF=payments;G0PRIVATE=*"})
    assert settings.slack.patrol_channel == "C01ABCDEF"
    assert settings.slack.channel_namespaces == {"C01ABCDEF": ("payments",), "G0PRIVATE": ("*",)}


def test_cluster_slash_namespace_works_with_one_cluster() -> None:
    settings = load_settings({"PATROL_NAMESPACES": "sim-qld2/payments,orders"})
    assert namespaces_for(settings, "sim-qld2") == ("payments", "orders")
    with pytest.raises(ConfigError, match="names cluster 'sim-qld2', but this bot serves "
                                          "cluster 'prod'"):
        namespaces_for(settings, "prod")


def test_quoted_values_are_unquoted() -> None:
    settings = load_settings({"PATROL_SCHEDULE": "'0 8 * * 1-5'", "PORT": '"3100"'})
    assert settings.schedule.cron == "0 8 * * 1-5"
    assert settings.slack.port == 3100
