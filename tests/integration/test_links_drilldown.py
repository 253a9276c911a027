"""The drill-down's way out to other tools, in-process (signed requests to the Bolt app,
the fake Slack Web API, the simulated cluster): the exact kubectl lines for the pod it
answers about (with `--context` when several clusters are served) and the LINK_TEMPLATES
buttons, filled for that pod and the answer's window; a click on a link is acked and
nothing else happens."""
# ruff: noqa: F811 (the rig, clusters and bot fixtures are imported, then requested by name)

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.integration.test_multi_cluster import Bot, bot, clusters  # noqa: F401 (fixtures)
from tests.integration.test_slack_app import OPS
from tests.integration.test_slack_controls import Rig, make_app, rig  # noqa: F401 (fixture)
from tests.support.settings import amend

LINKS = ("Logs=https://grafana.example.com/explore?cl={cluster}&ns={namespace}&w={workload}"
         "&pod={pod}&c={container}&from={since}&to={until};Runbook=https://wiki.example.com/"
         "rb/{workload}")


def blocks_text(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


def kubectl_of(message: dict[str, Any]) -> list[str]:
    """The commands of the reply's "To look yourself" section."""
    (section,) = [b["text"]["text"] for b in message["blocks"]
                  if b["type"] == "section" and b["text"]["text"].startswith("*To look")]
    return section.split("```")[1].split("\n")


def test_the_drilldown_gives_kubectl_lines_and_link_buttons_for_its_pod(rig: Rig) -> None:
    rig.settings = amend(rig.settings, LINK_TEMPLATES=LINKS)
    rig.bot.app = make_app(rig.settings, rig.store)
    rig.bot.command("qld2-production pod1-deployment")
    (parent,) = [m for m in rig.slack.messages(OPS) if not m.get("thread_ts")]
    replies = rig.slack.replies(OPS, parent["ts"])
    assert replies
    for reply in replies:  # one per container answered: each names its own pod
        pod, container = re.findall(r"^\*([^*]+)\* · container `([^`]+)`",
                                    reply["blocks"][0]["text"]["text"])[0]
        assert kubectl_of(reply) == [
            f"kubectl logs --previous -n qld2-production {pod} -c {container}",
            f"kubectl describe pod -n qld2-production {pod}"]
        (links,) = [b for b in reply["blocks"] if b.get("block_id") == "links"]
        logs, runbook = links["elements"]
        assert (logs["type"], logs["action_id"], logs["text"]["text"]) == (
            "button", "link-0", "Logs")
        assert runbook["url"] == "https://wiki.example.com/rb/pod1-deployment"
        url = urlsplit(logs["url"])
        assert url.netloc == "grafana.example.com"
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        since = datetime.fromisoformat(query.pop("from").replace("Z", "+00:00"))
        until = datetime.fromisoformat(query.pop("to").replace("Z", "+00:00"))
        assert until - since == timedelta(hours=24)  # the answer's window (default 24 h)
        assert query == {"cl": "sim-qld2", "ns": "qld2-production", "w": "pod1-deployment",
                         "pod": pod, "c": container}

    clicked = rig.act({"action_id": "link-0", "type": "button", "value": "",
                       "url": logs["url"]}, OPS, replies[0]["ts"])
    assert (clicked.status, clicked.body) == (200, "")
    assert rig.ephemeral() == []
    assert len(rig.slack.messages(OPS)) == 1 + len(replies)  # nothing else was posted


def test_without_link_templates_there_are_no_link_buttons(rig: Rig) -> None:
    rig.bot.command("qld2-production pod1-deployment")
    (parent,) = [m for m in rig.slack.messages(OPS) if not m.get("thread_ts")]
    (first, *_) = rig.slack.replies(OPS, parent["ts"])
    assert '"block_id": "links"' not in blocks_text(first)
    assert kubectl_of(first)[0].startswith("kubectl logs --previous -n qld2-production ")


def test_with_several_clusters_the_kubectl_lines_name_the_context(bot: Bot) -> None:
    bot.click(json.dumps({"cl": "west", "ns": "qld2-production", "kind": "Deployment",
                          "name": "pod1-deployment"}), "CALL", "1700000000.000100")
    (reply, *_) = [m for m in bot.slack.messages("CALL") if m.get("thread_ts")]
    pod, container = re.findall(r"^\*([^*]+)\* · container `([^`]+)`",
                                reply["blocks"][0]["text"]["text"])[0]
    assert kubectl_of(reply) == [
        f"kubectl logs --previous --context west -n qld2-production {pod} -c {container}",
        f"kubectl describe pod --context west -n qld2-production {pod}"]
