"""Slack: the only package that imports slack_bolt / slack_sdk.

`app.build_app` wires the Bolt app (slash command, buttons, mentions); `server` serves it
over HTTP with health and metrics endpoints; `posting` turns patrol results into messages.
"""
