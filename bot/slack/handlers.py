"""What the bot answers, after ack: `/restarts` (summary, namespace table, drill-down),
the Why? button and `@restart-patrol why` mentions. Every request is authorised against
the channel's access (button values can be forged); failures are raised as `bot.errors`
(or `Forbidden`) and worded by the dispatcher in `bot.slack.app`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient

from bot.cluster.client import ClusterClient
from bot.cluster.fleet import Scope
from bot.errors import ClusterError, UsageError
from bot.render.blocks import render_message
from bot.render.environment import phrase
from bot.render.rows import namespace_totals
from bot.runner import investigate, run_patrol
from bot.slack.access import Access
from bot.slack.posting import Services, digest_message, full_table, notice, post_drilldown

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
        tokens = [t for t in tokens if t != "--all"]
        if not tokens:
            self.summary(channel, client, reply)
        elif len(tokens) == 1:
            self.namespace_table(channel, self._scope(channel, tokens[0]), client, show_all)
        elif len(tokens) <= 3:
            scope, target = self._scope(channel, tokens[0]), tokens[1]
            reports = investigate(scope.cluster, self.settings, scope.namespace, target,
                                  tokens[2] if len(tokens) == 3 else None,
                                  store=self.services.store)
            parent = _post(client, channel, notice("looking", self.settings,
                                                   namespace=tokens[0], target=target))
            post_drilldown(client, channel, parent, reports, self.services,
                           scope.cluster.name)
        else:
            raise UsageError(f"too many words in `/restarts {command.get('text', '')}`")

    def summary(self, channel: str, client: WebClient, reply: Reply) -> None:
        """One summary per served cluster the channel may see; a cluster that cannot be
        read is explained to the asker (ephemeral), and the others are still answered."""
        shown = 0
        for cluster in self.services.clusters:
            try:
                shown += self._cluster_summary(channel, cluster, client)
            except ClusterError as exc:
                if not self.services.clusters.several:
                    raise
                reply(notice("error", self.settings, message=f"{cluster.name}: {exc}"))
                shown += 1
        if not shown:
            raise Forbidden("any namespace", self.access.describe(channel))

    def _cluster_summary(self, channel: str, cluster: ClusterClient, client: WebClient
                         ) -> int:
        everything = self.access.allowed(channel) is None
        namespaces = [] if everything else [
            ns for ns in cluster.namespace_names()
            if self.access.allows(channel, ns, cluster.name)]
        if not everything and not namespaces:
            return 0
        run = run_patrol(cluster, self.services.store, self.settings,
                         namespaces=namespaces, record=False, diagnose_top=0)
        digest = run.digest
        _post(client, channel, render_message(
            "summary.blocks.j2", self.settings.templates_dir, cluster=digest.cluster,
            totals=namespace_totals(digest)[:40], first_run=digest.first_run,
            window_from=digest.window_from, window_to=digest.window_to))
        return 1

    def namespace_table(self, channel: str, scope: Scope, client: WebClient,
                        show_all: bool) -> None:
        namespace = scope.namespace
        run = run_patrol(scope.cluster, self.services.store, self.settings,
                         namespaces=[namespace], record=False, diagnose_top=15)
        _post(client, channel, digest_message(run, self.services, scope=namespace))
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
        reports = investigate(scope.cluster, self.settings, namespace, name,
                              store=self.services.store)
        post_drilldown(client, channel, str(thread_ts), reports, self.services,
                       scope.cluster.name)

    def mention(self, event: dict[str, Any], client: WebClient) -> None:
        tokens = _MENTION.sub(" ", event.get("text", "")).split()
        channel = event.get("channel", "")
        if len(tokens) < 3 or tokens[0].lower() != "why" or len(tokens) > 4:
            raise UsageError("ask me `@restart-patrol why <namespace> <pod|workload> "
                             "[container]`")
        scope, target = self._scope(channel, tokens[1]), tokens[2]
        reports = investigate(scope.cluster, self.settings, scope.namespace, target,
                              tokens[3] if len(tokens) == 4 else None,
                              store=self.services.store)
        thread_ts = event.get("thread_ts") or event.get("ts", "")
        post_drilldown(client, channel, thread_ts, reports, self.services,
                       scope.cluster.name)


def _post(client: WebClient, channel: str, message: dict[str, Any]) -> str:
    """Post in the channel and return the message's ts. The bot never joins channels by
    itself (the manifest does not request channels:join): `not_in_channel` becomes an
    ephemeral "invite me" in `guarded` (docs/design.md, "Slack")."""
    return str(client.chat_postMessage(channel=channel, **message)["ts"])
