"""The daily digest job against bot/sim and the fake Slack (real HTTP both ways)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from bot.slack.posting import sparkline
from tests.conftest import Sim, start_sim
from tests.fakes.slack_api import FakeSlack
from tests.integration.test_slots import DAY0, Rig


def digest_rig(sim: Sim, slack: FakeSlack, tmp_path: Path) -> Rig:
    return Rig(sim, slack, f"sqlite:///{tmp_path}/d.db")


def post_digest(rig: Rig, day: int) -> None:
    rig.now = DAY0 + timedelta(days=day, seconds=1)
    rig.job().run_slot(DAY0 + timedelta(days=day))


def rows_of(message: dict) -> dict[str, str]:
    return {b["accessory"]["value"]: b["text"]["text"] for b in message["blocks"]
            if b.get("accessory")}


def test_digest_first_run_then_a_day_then_streaks(sim: Sim, slack: FakeSlack,
                                                  tmp_path: Path) -> None:
    rig = digest_rig(sim, slack, tmp_path)
    try:
        post_digest(rig, 0)
        first = slack.messages("CALL")[-1]
        assert [s.message_ts for s in rig.store.slots.history(rig.cluster.name, "CALL")] == [
            first["ts"]]
        assert first["blocks"][0]["text"]["text"] == "Restart patrol · sim-qld2"
        assert "baseline set" in json.dumps(first["blocks"][1])
        for day in (1, 2):
            sim.world.advance(timedelta(days=1))
            post_digest(rig, day)
    finally:
        rig.close()
    last = slack.messages("CALL")[-1]
    key = json.dumps({"cl": "sim-qld2", "ns": "qld2-production", "kind": "Deployment",
                      "name": "pod1-deployment"}, separators=(",", ":"))
    pod1 = rows_of(last)[key]
    assert "`+3` · 146 total · age 48d" in pod1
    assert "exit 2 Error — Go panic: runtime error: invalid memory address" in pod1
    assert "same crash ×3" in pod1
    assert "██" in pod1  # +3 and +3 on the two days with history
    assert "Window" in json.dumps(last["blocks"][1]) and "(24h)" in json.dumps(last["blocks"][1])


def test_all_quiet_when_nothing_restarted(slack: FakeSlack, tmp_path: Path) -> None:
    quiet = start_sim(tmp_path, {"cluster": "calm", "nodes": ["n1"], "namespaces": {
        "web": {"healthy": {"deployments": 3, "replicas": 2}}}})
    rig = digest_rig(quiet, slack, tmp_path)
    try:
        post_digest(rig, 0)
        quiet.world.advance(timedelta(days=1))
        post_digest(rig, 1)
        assert "All quiet" in slack.text_of(slack.messages("CALL")[-1])
    finally:
        rig.close()
        quiet.server.stop()


def test_sparkline() -> None:
    assert sparkline([]) == "" and sparkline([4]) == ""
    assert sparkline([0, 4, 8]) == "▁▅█"
