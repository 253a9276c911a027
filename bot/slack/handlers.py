"""What the bot answers, after ack: `/restarts` (summary, namespace table, drill-down),
the Why? button and `@restart-patrol why` mentions. Every request is authorised against
the channel's access (button values can be forged); failures are raised as `bot.errors`
(or `Forbidden`) and worded by the dispatcher in `bot.slack.app`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient

from bot.answers.investigation import DEFAULT_WINDOW, Question, investigate
from bot.answers.restarts import restarts_by_namespace, restarts_in
from bot.cluster.client import ClusterClient
from bot.cluster.fleet import Scope
from bot.errors import ClusterError, UsageError
from bot.patrol.durations import parse_duration
from bot.render.environment import phrase
from bot.slack.access import Access
from bot.slack.alerts import slack_permalink
from bot.slack.posting import (
    Services,
    digest_message,
    full_table,
    notice,
    post_drilldown,
    summary_message,
)

Reply = Callable[[dict[str, Any]], None]  # an ephemeral answer to the asker
_MENTION = re.compile(r"<@[A-Z0-9]+(\|[^>]*)?>")


class Forbidden(Exception):
    """The channel may not see this namespace (worded as an ephemeral explanation)."""

    def __init__(self, namespace: str, allowed: str) -> None:
        super().__init__(namespace)
        self.namespace = namespace
        self.allowed = allowed


class Answers:
    """The work behind each listener: one method per kind of question."""

    def __init__(self, services: Services, access: Access) -> None:
        self.services = services
        self.settings = services.settings
        self.access = access

    def _authorize(self, channel: str, namespace: str, cluster: str | None = None) -> None:
        if not self.access.allows(channel, namespace, cluster):
            shown = f"{cluster}/{namespace}" if cluster and self.services.clusters.several \
                else namespace
            raise Forbidden(shown, self.access.describe(channel))

    def _scope(self, channel: str, text: str) -> Scope:
        """Where `[cluster/]namespace` lives, checked against the channel's access."""
        scope = self.services.clusters.locate(text)
        self._authorize(channel, scope.namespace, scope.cluster.name)
        return scope

    # ---- /restarts ------------------------------------------------------------------
    def command(self, command: dict[str, Any], client: WebClient, reply: Reply) -> None:
        channel = command.get("channel_id", "")
        tokens = command.get("text", "").split()
        if tokens[:1] in (["help"], ["-h"], ["--help"]):
            reply(notice("help", self.settings))
            return
        show_all = "--all" in tokens
        tokens, since = _since(t for t in tokens if t != "--all")
        if not tokens:
            self.summary(channel, client, reply, since)
        elif len(tokens) == 1:
            self.namespace_table(channel, self._scope(channel, tokens[0]), client, show_all,
                                 since)
        elif len(tokens) <= 3:
            scope, target = self._scope(channel, tokens[0]), tokens[1]
            found = investigate(scope.cluster, self.settings, Question(
                scope.namespace, target, tokens[2] if len(tokens) == 3 else None,
                since=since), store=self.services.store)
            parent = _post(client, channel, notice("looking", self.settings,
                                                   namespace=tokens[0], target=target))
            post_drilldown(client, channel, parent, found, self.services)
        else:
            raise UsageError(f"too many words in `/restarts {command.get('text', '')}`")

    def summary(self, channel: str, client: WebClient, reply: Reply,
                since: timedelta = DEFAULT_WINDOW) -> None:
        """One summary per served cluster the channel may see; a cluster that cannot be
        read (and has no record to answer from) is explained to the asker (ephemeral),
        and the others are still answered."""
        if self.access.allowed(channel) == ():
            raise Forbidden("any namespace", self.access.describe(channel))
        shown = 0
        for cluster in self.services.clusters:
            try:
                shown += self._cluster_summary(channel, cluster, client, since)
            except ClusterError as exc:
                if not self.services.clusters.several:
                    raise
                reply(notice("error", self.settings, message=str(exc)))
                shown += 1
        if not shown:
            raise Forbidden("any namespace", self.access.describe(channel))

    def _cluster_summary(self, channel: str, cluster: ClusterClient, client: WebClient,
                         since: timedelta) -> int:
        if not self._may_see(channel, cluster.name):
            return 0
        allowed = None if self.access.allowed(channel) is None else (
            lambda ns: self.access.allows(channel, ns, cluster.name))
        view = restarts_by_namespace(cluster, self.services.store, self.settings, allowed,
                                     since)
        if view is None:
            return 0
        _post(client, channel, summary_message(view, self.settings))
        return 1

    def _may_see(self, channel: str, cluster: str) -> bool:
        """Whether an entry of the channel's access can match a namespace of `cluster`."""
        allowed = self.access.allowed(channel)
        return allowed is None or any("/" not in entry or entry.startswith(f"{cluster}/")
                                      for entry in allowed)

    def namespace_table(self, channel: str, scope: Scope, client: WebClient,
                        show_all: bool, since: timedelta = DEFAULT_WINDOW) -> None:
        namespace = scope.namespace
        run = restarts_in(scope.cluster, self.services.store, self.settings, [namespace],
                          since)
        _post(client, channel, digest_message(run, self.services, scope=namespace,
                                              channel=channel,
                                              permalink=slack_permalink(client)))
        if show_all:
            client.files_upload_v2(channel=channel, content=full_table(run, self.settings),
                                   filename=f"restarts-{namespace}.txt",
                                   title=phrase("table_file_title", self.settings.templates_dir,
                                                namespace=namespace))

    # ---- buttons and mentions -------------------------------------------------------
    def button(self, body: dict[str, Any], client: WebClient) -> None:
        channel = (body.get("channel") or {}).get("id", "")
        message = body.get("message") or {}
        thread_ts = message.get("thread_ts") or message.get("ts") or (
            body.get("container") or {}).get("message_ts")
        try:
            value = json.loads(body["actions"][0]["value"])
            namespace, name = str(value["ns"]), str(value["name"])
            cluster_name = str(value.get("cl") or self.services.cluster.name)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise UsageError("this button carries no workload I can read") from None
        if "/" in namespace or "/" in cluster_name:
            raise UsageError("this button carries no workload I can read")
        scope = self._scope(channel, f"{cluster_name}/{namespace}")
        found = investigate(scope.cluster, self.settings, Question(namespace, name),
                            store=self.services.store)
        post_drilldown(client, channel, str(thread_ts), found, self.services)

    def mention(self, event: dict[str, Any], client: WebClient) -> None:
        tokens = _MENTION.sub(" ", event.get("text", "")).split()
        channel = event.get("channel", "")
        if len(tokens) < 3 or tokens[0].lower() != "why" or len(tokens) > 4:
            raise UsageError("ask me `@restart-patrol why <namespace> <pod|workload> "
                             "[container]`")
        scope, target = self._scope(channel, tokens[1]), tokens[2]
        found = investigate(scope.cluster, self.settings, Question(
            scope.namespace, target, tokens[3] if len(tokens) == 4 else None),
            store=self.services.store)
        thread_ts = event.get("thread_ts") or event.get("ts", "")
        post_drilldown(client, channel, thread_ts, found, self.services)


def _since(tokens: Iterable[str]) -> tuple[list[str], timedelta]:
    """The words without `--since DUR`, and the window it asks for (default 24 h)."""
    words = list(tokens)
    if "--since" not in words:
        return words, DEFAULT_WINDOW
    at = words.index("--since")
    if at + 1 >= len(words):
        raise UsageError("`--since` needs a duration, e.g. `--since 6h` or `--since 3d`")
    try:
        since = parse_duration(words[at + 1])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if since <= timedelta(0):
        raise UsageError("`--since` needs a duration longer than zero")
    return words[:at] + words[at + 2:], since


def _post(client: WebClient, channel: str, message: dict[str, Any]) -> str:
    """Post in the channel and return the message's ts. The bot never joins channels by
    itself (the manifest does not request channels:join): `not_in_channel` becomes an
    ephemeral "invite me" in `guarded` (docs/design.md, "Slack")."""
    return str(client.chat_postMessage(channel=channel, **message)["ts"])
