"""Block Kit messages: jinja2 templates in templates/*.blocks.j2 rendered to JSON, then
fitted to Slack's limits in one place, whatever the cluster size.

Limits (Slack docs): 50 blocks per message, section text 3000 chars, header 150, button
value 2000; the `text` fallback is always present. Over-long section text is cut (keeping
a code block closed); surplus blocks are replaced by one "… N more" context block.
"""

from __future__ import annotations

import json
from typing import Any

from bot.render.environment import environment, phrase, slack_escape

__all__ = ["INLINE_LOG", "MAX_BLOCKS", "MAX_BUTTON_VALUE", "MAX_HEADER", "MAX_SECTION",
           "MAX_TEXT", "fit_message", "fits_inline", "render_message", "slack_escape"]

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_BUTTON_VALUE = 2000
MAX_TEXT = 3000
INLINE_LOG = 2600  # log tails longer than this, once escaped, go up as a file


def fits_inline(log: str) -> bool:
    """Whether a log tail can be shown whole in a message. Measured once escaped: `<`, `>`
    and `&` grow up to five-fold, and a section cut to fit would lose the log's end —
    where the crash is."""
    return len(slack_escape(log)) <= INLINE_LOG


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    if text.rstrip().endswith("```") and text.count("```") % 2 == 0:
        body = text[: limit - 5].rstrip("`")
        return body + "…\n```"
    return text[: limit - 1] + "…"


def _fit_block(block: dict[str, Any]) -> dict[str, Any] | None:
    kind = block.get("type")
    if kind == "header":
        block["text"]["text"] = _clip(block["text"]["text"], MAX_HEADER)
    if kind == "section" and "text" in block:
        block["text"]["text"] = _clip(block["text"]["text"], MAX_SECTION)
        if not block["text"]["text"].strip():
            return None
    if kind == "section" and "fields" in block:
        block["fields"] = [f | {"text": _clip(f["text"], 2000)} for f in block["fields"][:10]]
    if kind == "context":
        for element in block.get("elements", []):
            if "text" in element:
                element["text"] = _clip(element["text"], MAX_SECTION)
    accessory = block.get("accessory")
    if accessory and len(accessory.get("value", "")) > MAX_BUTTON_VALUE:
        block.pop("accessory")  # never send a value Slack would reject
    return block


def fit_message(blocks: list[dict[str, Any]], text: str,
                templates_dir: str | None = None) -> dict[str, Any]:
    """{"blocks", "text"} within Slack's limits."""
    fitted = [b for b in (_fit_block(b) for b in blocks) if b is not None]
    if len(fitted) > MAX_BLOCKS:
        hidden = len(fitted) - (MAX_BLOCKS - 1)
        more = {"type": "context", "elements": [{
            "type": "mrkdwn", "text": phrase("more_blocks", templates_dir, hidden=hidden)}]}
        fitted = [*fitted[: MAX_BLOCKS - 1], more]
    return {"blocks": fitted, "text": _clip(text.strip() or "restart-patrol", MAX_TEXT)}


def render_message(name: str, templates_dir: str | None = None,
                   **context: object) -> dict[str, Any]:
    """Render templates/<name> (a JSON object with "blocks" and "text") and fit it."""
    raw = environment(templates_dir).get_template(name).render(**context)
    try:
        message = json.loads(raw)
    except json.JSONDecodeError as exc:  # a template bug, not user input
        raise ValueError(f"template {name} did not render to JSON: {exc}") from None
    return fit_message(message["blocks"], message.get("text", ""), templates_dir)
