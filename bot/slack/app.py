"""The Bolt app: `/restarts`, the digest's and alerts' Why? buttons, `@restart-patrol why`
mentions, the alerts' Silence / Acknowledge, `/restarts silences` with its Unsilence
buttons, and the App Home tab (`bot.slack.interactions`).

Every listener acks first (Bolt answers Slack as soon as `ack()` is called; the work runs
after, on a bounded pool the caller owns) and turns every failure into an ephemeral
message — never silence. A question still unanswered when the process stops is told
"restarting — ask again in a minute" (the pool abandons it at its deadline). What each
question is answered with lives in `bot.slack.handlers`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import NotFoundError, PatrolError, UnknownClusterError, UsageError
from bot.runtime import RuntimeStopped, Workers
from bot.slack.access import Access
from bot.slack.handlers import Answers, Forbidden, Reply
from bot.slack.interactions import Controls
from bot.slack.posting import Services, notice

log = logging.getLogger("restart_patrol.slack")


def build_app(services: Services, client: WebClient, access: Access, *,
              executor: Executor, listeners: Executor | None = None) -> App:
    """The Bolt app; request verification (signing secret, 5-minute window) is on in HTTP
    mode and off in Socket Mode, where Slack authenticates the socket instead.

    `executor` runs the work after ack, `listeners` Bolt's listeners (default: the same
    executor). `serve` passes two runtime pools (`bot.runtime.Workers`: a question
    abandoned at shutdown is told so); tests pass one executor that runs tasks inline, so
    `app.dispatch()` returns only after every reply has been sent."""
    settings = services.settings
    app = App(client=client, signing_secret=settings.slack.signing_secret or "socket-mode",
              request_verification_enabled=settings.slack.app_token is None,
              token_verification_enabled=True, process_before_response=False,
              name="restart-patrol", listener_executor=listeners or executor)
    bot = _Dispatch(services, access, executor)

    @app.command("/restarts")
    def on_command(ack: Ack, command: dict[str, Any], respond: Respond,
                   client: WebClient) -> None:
        ack()
        reply = _responder(respond)
        if command.get("text", "").split() == ["silences"]:
            channel = command.get("channel_id", "")
            bot.later(reply, lambda: reply(bot.controls.silence_list(channel)))
            return
        bot.later(reply, lambda: bot.answers.command(command, client, reply))

    @app.action("why")
    def on_why(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        reply = _responder(respond)
        bot.later(reply, lambda: bot.answers.button(body, client))

    @app.action("silence")
    def on_silence(ack: Ack, body: dict[str, Any], respond: Respond,
                   client: WebClient) -> None:
        ack()
        bot.later(_responder(respond), lambda: bot.controls.silence(body, client))

    @app.action("acknowledge")
    def on_acknowledge(ack: Ack, body: dict[str, Any], respond: Respond,
                       client: WebClient) -> None:
        ack()
        bot.later(_responder(respond), lambda: bot.controls.acknowledge(body, client))

    @app.action("unsilence")
    def on_unsilence(ack: Ack, body: dict[str, Any], respond: Respond,
                     client: WebClient) -> None:
        ack()
        reply = _responder(respond)
        bot.later(reply, lambda: bot.controls.unsilence(body, client, reply))

    @app.action(re.compile(r"^link-\d+$"))
    def on_link(ack: Ack) -> None:
        """A LINK_TEMPLATES button opens its URL in the browser; Slack still tells the app
        of the click, which only needs its ack (nothing else happens)."""
        ack()

    @app.event("app_home_opened")
    def on_home(ack: Ack, event: dict[str, Any], client: WebClient) -> None:
        ack()
        user = str(event.get("user", ""))

        def reply(message: dict[str, Any]) -> None:  # nobody to answer: a Home tab
            log.warning("the Home tab of %s was not published: %s", user,
                        message.get("text", ""))

        if event.get("tab", "home") == "home":
            bot.later(reply, lambda: bot.controls.home(user, client))

    @app.event("app_mention")
    def on_mention(ack: Ack, event: dict[str, Any], client: WebClient) -> None:
        ack()
        channel, user = event.get("channel", ""), event.get("user", "")

        def reply(message: dict[str, Any]) -> None:
            # in the thread the question was asked in (Slack shows it there, to the asker)
            thread = event.get("thread_ts")
            client.chat_postEphemeral(channel=channel, user=user,
                                      **({"thread_ts": thread} if thread else {}), **message)

        bot.later(reply, lambda: bot.answers.mention(event, client))

    return app


def _responder(respond: Respond) -> Reply:
    def reply(message: dict[str, Any]) -> None:
        respond(response_type="ephemeral", replace_original=False, **message)
    return reply


class _Dispatch:
    """Runs each question's work after ack, and words every failure for the asker."""

    def __init__(self, services: Services, access: Access, executor: Executor) -> None:
        self.services = services
        self.settings = services.settings
        self.access = access
        self.answers = Answers(services, access)
        self.controls = Controls(services, access)
        self.pool = executor

    def later(self, reply: Reply, work: Callable[[], None]) -> None:
        """Queue the work after ack. Bolt acks from its listener threads: keeping them free
        keeps acks fast (milliseconds) however many slow questions are in flight. A
        question the pool abandons at shutdown (or refuses: it is stopping) is told
        "restarting — ask again in a minute"."""
        def restarting() -> None:
            self.restarting(reply)

        try:
            if isinstance(self.pool, Workers):
                self.pool.submit(self.guarded, reply, work, on_abandon=restarting)
            else:
                self.pool.submit(self.guarded, reply, work)
        except RuntimeStopped:
            restarting()

    def restarting(self, reply: Reply) -> None:
        try:
            reply(notice("restarting", self.settings))
        except Exception:
            log.exception("could not tell the asker that the bot is restarting")

    def guarded(self, reply: Reply, work: Callable[[], None]) -> None:
        """Run `work`; any failure becomes an ephemeral explanation to the user."""
        try:
            work()
        except Forbidden as refused:
            reply(notice("forbidden", self.settings, namespace=refused.namespace,
                         allowed=refused.allowed))
        except (NotFoundError, UnknownClusterError) as exc:
            reply(notice("not_found", self.settings, message=str(exc),
                         suggestions=", ".join(f"`{s}`" for s in exc.suggestions)))
        except UsageError as exc:
            reply(notice("usage", self.settings, message=str(exc)))
        except PatrolError as exc:
            reply(notice("error", self.settings, message=str(exc)))
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown_error")
            kind = "not_in_channel" if error in ("not_in_channel", "channel_not_found") else (
                "slack_refused")
            reply(notice(kind, self.settings, error=error))
        except Exception:
            log.exception("unexpected failure while answering Slack")
            reply(notice("unexpected", self.settings))
