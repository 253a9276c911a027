"""Slack: the only package that imports slack_bolt / slack_sdk.

`app.build_app` wires the Bolt app (slash command, buttons, mentions); `serving` exposes it
over HTTP (a WSGI endpoint) or Socket Mode; `posting` turns patrol results into messages.
The process around them is built in `bot.service`.
"""
