"""The served bot (`restart-patrol serve`, HTTP mode) with ALERT_NEW_CRASHES and
LINK_TEMPLATES against bot/sim with its clock moving: the new-crash alert carries the link
buttons of its crash; Why? on it answers in the thread with the kubectl lines, the links
and the workload's crash-history chart, whose embedded data are the crashes the served
recorder stored."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from bot.render.chart import DATA_KEY
from bot.store import Store
from tests.conftest import start_sim
from tests.e2e.test_slack_controls_served import ALERTS, ENV, act, wait
from tests.e2e.test_slack_served import served_bot
from tests.fakes.slack_api import FakeSlack
from tests.integration.test_recorder import shop

LINKS = "Logs=https://logs.example.com/q?ns={namespace}&pod={pod}&c={container}&to={until}"


def test_alert_links_and_the_drilldown_chart_of_a_served_bot(tmp_path: Path) -> None:
    scenario = shop()  # never restarted before the bot was installed: its crash is new
    scenario["namespaces"]["shop"]["workloads"][0]["containers"][0]["restarts"] = 0
    sim = start_sim(tmp_path, scenario)
    slack = FakeSlack().start()
    try:
        with served_bot(tmp_path, sim, slack, **ENV, LINK_TEMPLATES=LINKS) as bot:
            wait(slack, lambda: any("watch=true" in r for r in list(sim.server.requests)))
            sim.world.advance(timedelta(hours=1))
            parent = wait(slack, lambda: next(
                (m for m in slack.messages(ALERTS) if not m.get("thread_ts")), None))
            (links,) = [b for b in parent["blocks"] if b.get("block_id") == "links"]
            (button,) = links["elements"]
            query = parse_qs(urlsplit(button["url"]).query)
            assert query["ns"] == ["shop"] and query["c"] == ["orders"]
            assert query["pod"][0].startswith("orders-") and query["to"][0].endswith("Z")

            (actions,) = [b for b in parent["blocks"] if b.get("block_id") == "alert"]
            why = next(e for e in actions["elements"] if e["action_id"] == "why")
            assert act(bot, {"action_id": "why", "type": "button", "value": why["value"]},
                       ALERTS, parent["ts"], "why") == 200
            reply = wait(slack, lambda: next(iter(slack.replies(ALERTS, parent["ts"])), None))
            text = json.dumps(reply["blocks"])
            assert "kubectl logs --previous -n shop orders-" in text
            assert "kubectl describe pod -n shop orders-" in text
            assert '"block_id": "links"' in text and "logs.example.com" in text
            assert "chart uploaded below" in text
            done = wait(slack, lambda: [
                f for c in slack.calls_to("files.completeUploadExternal")
                for f in json.loads(c.args["files"]) if "restarts per hour" in f["title"]])
            image = Image.open(io.BytesIO(slack.uploads[done[0]["id"]]))
            image.load()
            assert image.format == "PNG" and image.size == (1200, 500)
            data = json.loads(image.text[DATA_KEY])
        store = Store.open(f"sqlite:///{tmp_path}/bot.db")
        try:
            recorded = store.history.history(data["cluster"], "shop",
                                             workload=("Deployment", "orders"), limit=1000)
        finally:
            store.close()
        start, until = (datetime.fromisoformat(data[k].replace("Z", "+00:00"))
                        for k in ("from", "to"))
        shown = [c for c in recorded if start < (c.finished_at or c.recorded_at) <= until]
        assert shown, "the served recorder stored the crash, and the chart's window has it"
        assert (data["namespace"], data["name"]) == ("shop", "orders")
        assert sum(s["total"] for s in data["series"]) == sum(c.restarts for c in shown)
    finally:
        slack.stop()
        sim.server.stop()
