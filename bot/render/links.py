"""LINK_TEMPLATES filled for one answer: the link buttons of the drill-down and the
new-crash alerts (templates/_blocks.j2 `links`). Each value is URL-encoded whole (a `/`
or `&` in it cannot change the URL's shape); `since` and `until` are the answer's window
as RFC 3339 UTC (`2026-12-04T09:00:00Z`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from bot.patrol.timestamps import json_time
from bot.settings import LinkTemplate

MAX_URL = 3000  # Block Kit's limit for a button's url: a longer link is left out


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str


def fill_links(templates: Sequence[LinkTemplate], *, cluster: str, namespace: str,
               workload: str, pod: str, container: str, since: datetime,
               until: datetime) -> list[Link]:
    """The links of `templates` for this pod's container and window (aware datetimes)."""
    values = {"cluster": cluster, "namespace": namespace, "workload": workload, "pod": pod,
              "container": container, "since": json_time(since), "until": json_time(until)}
    encoded = {key: quote(value or "", safe="") for key, value in values.items()}
    links = [Link(t.label, t.url.format(**encoded)) for t in templates]
    return [link for link in links if len(link.url) <= MAX_URL]
