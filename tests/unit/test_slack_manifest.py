"""The Slack app manifest requests exactly the bot scopes the code needs: every Web API
method the bot calls is covered, and no scope is requested that no call uses (the bot
never joins channels, so `channels:join` is not asked for). It subscribes to exactly the
events the Bolt app listens to, and enables the Home tab it publishes."""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT

# Web API method (as slack_sdk names it) → the bot scopes it needs
NEEDS: dict[str, set[str]] = {
    "chat_postMessage": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_getPermalink": set(),  # a link to the bot's own alert thread needs no scope
    "files_upload_v2": {"files:write"},
    "conversations_history": {"channels:history", "groups:history"},
    "conversations_join": {"channels:join"},
    "users_conversations": {"channels:read", "groups:read"},
    "views_publish": set(),  # publishing the bot's own Home tab needs no scope
}
# scopes that no Web API call of ours uses but the app's features need
FEATURES = {"commands", "app_mentions:read"}
CALL = re.compile(r"\.((?:chat|files|conversations|users|reactions|pins|views)_\w+)\(")


def called_methods() -> set[str]:
    return {m for path in (ROOT / "bot").rglob("*.py")
            for m in CALL.findall(path.read_text())}


def test_the_manifest_requests_exactly_the_scopes_the_calls_need() -> None:
    manifest = yaml.safe_load((ROOT / "deploy" / "slack-app-manifest.yaml").read_text())
    requested = set(manifest["oauth_config"]["scopes"]["bot"])
    methods = called_methods()
    assert "chat_postMessage" in methods and "files_upload_v2" in methods  # the scan works
    unknown = methods - set(NEEDS)
    assert not unknown, f"add the scopes of {unknown} to NEEDS (and to the manifest)"
    needed = set().union(*(NEEDS[m] for m in methods)) | FEATURES
    assert requested == needed
    assert "conversations_join" not in methods and "channels:join" not in requested


def test_env_example_names_the_same_scopes() -> None:
    manifest = yaml.safe_load((ROOT / "deploy" / "slack-app-manifest.yaml").read_text())
    text = (ROOT / ".env.example").read_text()
    comment = text.split("SLACK_BOT_TOKEN=", 1)[0]
    for scope in manifest["oauth_config"]["scopes"]["bot"]:
        assert scope in comment


EVENT = re.compile(r"@app\.event\(\"(\w+)\"\)")
ACTION = re.compile(r"@app\.action\(\"(\w+)\"\)")


def test_the_manifest_subscribes_to_the_events_the_app_listens_to() -> None:
    manifest = yaml.safe_load((ROOT / "deploy" / "slack-app-manifest.yaml").read_text())
    source = (ROOT / "bot" / "slack" / "app.py").read_text()
    listened = set(EVENT.findall(source))
    assert {"app_mention", "app_home_opened"} <= listened  # the scan works
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == listened
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True  # buttons, menus
    assert {"why", "silence", "acknowledge", "unsilence"} <= set(ACTION.findall(source))
