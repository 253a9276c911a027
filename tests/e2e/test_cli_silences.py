"""`restart-patrol silences [list|add|remove]` as a process: what Slack users set is
listed, added and lifted from the terminal; bad input is one line on stderr and a
non-zero exit, never a traceback."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.patrol.history import CrashRecord
from bot.store import Store
from tests.e2e.test_cli import run


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path}/bot.db"
    store = Store.open(url)
    now = datetime.now(UTC)
    for kind, name in (("Deployment", "orders"), ("StatefulSet", "ledger"),
                       ("Deployment", "ledger")):
        store.crashes.record(CrashRecord("prod", "shop", f"{name}-0", f"uid-{kind}-{name}",
                                         "app", "container", kind, name, 1, finished_at=now,
                                         recorded_at=now, fingerprint="f00d"))
    store.close()
    return {"DATABASE_URL": url}


def test_add_list_and_remove(env: dict[str, str]) -> None:
    assert run("silences", env=env).stdout.strip() == "No active silences."
    added = run("silences", "add", "shop", "orders", "--for", "24h", "--reason",
                "known bug, fix Monday", "--by", "alice", env=env)
    assert added.returncode == 0, added.stderr
    assert "Silenced #1: prod/shop Deployment/orders (whole workload) until" in added.stdout
    one = run("silences", "add", "prod/shop", "StatefulSet/ledger", "--for", "1h",
              "--reason", "r", "--fingerprint", "f00d", env=env)
    assert one.returncode == 0 and "crash f00d" in one.stdout
    listed = run("silences", "list", env=env).stdout
    assert listed.startswith("2 active silences:") and "by alice at" in listed
    assert "— known bug, fix Monday" in listed and "by cli:" in listed
    data = json.loads(run("silences", "list", "--json", env=env).stdout)
    assert [(s["id"], s["kind"], s["fingerprint"]) for s in data] == [
        (2, "StatefulSet", "f00d"), (1, "Deployment", None)]  # ending soonest first
    removed = run("silences", "remove", "1", env=env)
    assert removed.returncode == 0 and "Lifted silence #1" in removed.stdout
    assert [s["id"] for s in json.loads(run("silences", "--json", env=env).stdout)] == [2]
    # the record says who lifted it, for the bot and the digest to read
    store = Store.open(env["DATABASE_URL"])
    try:
        lifted = store.silences.get(1)
        assert lifted is not None and lifted.lifted_by is not None
        assert lifted.lifted_by.startswith("cli:")
    finally:
        store.close()


@pytest.mark.parametrize(("args", "code", "needle"), [
    (("silences", "add", "shop", "orders", "--for", "0s", "--reason", "x"), 2,
     "longer than zero"),
    (("silences", "add", "shop", "orders", "--for", "soon", "--reason", "x"), 2,
     "bad duration"),
    (("silences", "add", "shop", "orders", "--for", "1h"), 2, "--reason"),
    (("silences", "add", "shop", "nosuch", "--for", "1h", "--reason", "x"), 1,
     "no crash of shop nosuch is recorded"),
    (("silences", "add", "shop", "ledger", "--for", "1h", "--reason", "x"), 2,
     "is ambiguous: prod/shop Deployment/ledger, prod/shop StatefulSet/ledger"),
    (("silences", "remove", "99"), 1, "silence #99 does not exist"),
    (("silences", "remove", "one"), 2, "invalid int value"),
    (("silences", "mute"), 2, "invalid choice"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(env: dict[str, str], args: tuple[str, ...],
                                                   code: int, needle: str) -> None:
    proc = run(*args, env=env)
    assert proc.returncode == code, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
