"""Placeholder package: filled by the Slack issue."""
