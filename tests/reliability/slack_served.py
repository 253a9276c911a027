"""The served bot (`restart-patrol serve`, HTTP mode) as a process against bot/sim and the
fake Slack, for the Slack reliability cases; and Slack's documented Block Kit limits,
checked independently of the limits the renderer enforces."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.test_slack_served import SECRET, Bot, served_bot
from tests.fakes.slack_api import FakeSlack

__all__ = ["SECRET", "Bot", "block_kit_limit_problems", "percentile", "sent_to_slack",
           "served_bot"]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# Slack's documented limits (api.slack.com/reference/block-kit): written out here on
# purpose, not imported from bot.render.blocks, so a wrong constant there is caught.
SLACK_MAX_BLOCKS = 50
SLACK_MAX_TEXT_OBJECT = 3000  # any text object: section text, context elements
SLACK_MAX_HEADER = 150
SLACK_MAX_FIELDS, SLACK_MAX_FIELD = 10, 2000
SLACK_MAX_CONTEXT_ELEMENTS = 10
SLACK_MAX_BUTTON_TEXT = 75
SLACK_MAX_BUTTON_VALUE = 2000
SLACK_MAX_ID = 255  # action_id, block_id
SLACK_MAX_MESSAGE_TEXT = 40_000  # chat.postMessage truncates `text` beyond this


def block_kit_limit_problems(message: dict[str, Any]) -> list[str]:
    """Every way `message` (chat.postMessage/ephemeral arguments) breaks Slack's limits."""
    problems: list[str] = []
    blocks = message.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    text = message.get("text") or ""
    if not text.strip():
        problems.append("no text fallback")
    if len(text) > SLACK_MAX_MESSAGE_TEXT:
        problems.append(f"text {len(text)} > {SLACK_MAX_MESSAGE_TEXT}")
    if len(blocks) > SLACK_MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks > {SLACK_MAX_BLOCKS}")
    for i, block in enumerate(blocks):
        kind = block.get("type")
        where = f"block {i} ({kind})"
        if len(block.get("block_id", "")) > SLACK_MAX_ID:
            problems.append(f"{where}: block_id > {SLACK_MAX_ID}")
        if kind == "header":
            header = block["text"]["text"]
            if not 0 < len(header) <= SLACK_MAX_HEADER:
                problems.append(f"{where}: header text of {len(header)}")
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"{where}: neither text nor fields")
            if "text" in block:
                size = len(block["text"].get("text", ""))
                if not 0 < size <= SLACK_MAX_TEXT_OBJECT:
                    problems.append(f"{where}: section text of {size}")
            fields = block.get("fields") or []
            if len(fields) > SLACK_MAX_FIELDS or any(
                    len(f.get("text", "")) > SLACK_MAX_FIELD for f in fields):
                problems.append(f"{where}: fields over {SLACK_MAX_FIELDS}×{SLACK_MAX_FIELD}")
        if kind == "context":
            elements = block.get("elements") or []
            if not 0 < len(elements) <= SLACK_MAX_CONTEXT_ELEMENTS:
                problems.append(f"{where}: {len(elements)} elements")
            for e in elements:
                if "text" in e and not 0 < len(e["text"]) <= SLACK_MAX_TEXT_OBJECT:
                    problems.append(f"{where}: context text of {len(e['text'])}")
        accessory = block.get("accessory") or {}
        buttons = [accessory] + [e for e in block.get("elements") or []
                                 if e.get("type") == "button"]
        for button in buttons:
            if button.get("type") != "button":
                continue
            if len(button.get("value", "")) > SLACK_MAX_BUTTON_VALUE:
                problems.append(f"{where}: button value of {len(button['value'])}")
            if len(button.get("text", {}).get("text", "")) > SLACK_MAX_BUTTON_TEXT:
                problems.append(f"{where}: button text > {SLACK_MAX_BUTTON_TEXT}")
            if len(button.get("action_id", "")) > SLACK_MAX_ID:
                problems.append(f"{where}: action_id > {SLACK_MAX_ID}")
    return problems


def sent_to_slack(slack: FakeSlack) -> str:
    """Everything the bot sent to Slack: every Web API call's arguments, every
    response_url post, every uploaded file (decoded as text)."""
    parts = [json.dumps(c.args, ensure_ascii=False) for c in slack.calls]
    parts += [json.dumps(r, ensure_ascii=False) for r in slack.responses]
    parts += [data.decode("utf-8", "replace") for data in slack.uploads.values()]
    return "\n".join(parts)
