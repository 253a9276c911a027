"""LINK_TEMPLATES: the grammar (`Label=URL;Label=URL`), each refusal with its own message,
and the links filled for an answer (values URL-encoded, the window as RFC 3339)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.errors import ConfigError
from bot.patrol.history import CrashRecord
from bot.render.links import MAX_URL, Link, fill_links
from bot.settings import LinkTemplate, load_settings
from bot.slack.alerts import new_crash_message

GRAFANA = ("https://grafana.example.com/explore?ns={namespace}&pod={pod}&c={container}"
           "&from={since}&to={until}")


def test_the_grammar_reads_labels_and_urls_with_their_own_equals_signs() -> None:
    settings = load_settings({"LINK_TEMPLATES": f" Logs={GRAFANA} ; Runbook=https://wiki/"
                                                "runbooks/{workload}?cluster={cluster};"})
    assert settings.slack.links == (LinkTemplate("Logs", GRAFANA),
                                    LinkTemplate("Runbook",
                                                 "https://wiki/runbooks/{workload}?cluster={cluster}"))
    assert load_settings({}).slack.links == ()


@pytest.mark.parametrize(("raw", "message"), [
    ("Logs", "entry 'Logs' is not Label=https://…"),
    ("=https://x", "entry '=https://x' is not Label=https://…"),
    ("Logs=", "entry 'Logs=' is not Label=https://…"),
    ("Logs=https://x/{podname}", "link 'Logs': unknown placeholder {podname} (use {cluster} "
                                 "{namespace} {workload} {pod} {container} {since} {until})"),
    ("Logs=https://x/{}", "unknown placeholder {}"),
    ("Logs=https://x/{pod!r}", "unknown placeholder {pod!r}"),
    ("Logs=https://x/{since:%Y}", "unknown placeholder {since:%Y}"),
    ("Logs=https://x/{pod", "link 'Logs': unbalanced '{' or '}'"),
    ("Logs=ftp://x/{pod}", "link 'Logs': 'ftp://x/{pod}' is not an http:// or https:// URL"),
    ("Logs=javascript:alert(1)", "is not an http:// or https:// URL"),
    ("Logs=https:///path", "is not an http:// or https:// URL with a host"),
    ("Logs=grafana/{pod}", "is not an http:// or https:// URL"),
    ("Logs=https://x/a b", "is not an http:// or https:// URL"),
    ("A=https://a;A=https://b", "names the label 'A' twice"),
    ("L" * 76 + "=https://a", "is longer than 75 characters"),
    (";".join(f"L{n}=https://a" for n in range(6)), "gives 6 links; at most 5"),
])
def test_bad_templates_are_refused_at_start_with_a_specific_message(raw: str,
                                                                   message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"LINK_TEMPLATES": raw})
    assert str(refused.value).startswith("LINK_TEMPLATES")
    assert message in str(refused.value)


def test_links_are_filled_url_encoded_with_the_window_in_rfc3339() -> None:
    (link,) = fill_links(
        [LinkTemplate("Logs", GRAFANA)], cluster="prod", namespace="shop",
        workload="orders", pod="orders-7d9f-x2k", container="app&x=1 /y",
        since=datetime(2026, 12, 3, 9, tzinfo=UTC),
        until=datetime(2026, 12, 4, 9, 30, tzinfo=UTC))
    assert link == Link("Logs", "https://grafana.example.com/explore?ns=shop"
                                "&pod=orders-7d9f-x2k&c=app%26x%3D1%20%2Fy"
                                "&from=2026-12-03T09%3A00%3A00Z&to=2026-12-04T09%3A30%3A00Z")


def test_a_link_longer_than_a_button_takes_is_left_out() -> None:
    long_pod = "p" * (MAX_URL + 1)
    links = fill_links([LinkTemplate("Pod", "https://x/{pod}"),
                        LinkTemplate("Home", "https://x/")],
                       cluster="c", namespace="n", workload="w", pod=long_pod, container="a",
                       since=datetime(2026, 12, 3, tzinfo=UTC),
                       until=datetime(2026, 12, 4, tzinfo=UTC))
    assert links == [Link("Home", "https://x/")]


def test_an_alert_shows_the_links_of_its_crash_as_url_buttons() -> None:
    crash = CrashRecord(cluster="prod", namespace="shop", pod_name="orders-7d9f-x2k",
                        pod_uid="u", container="app", container_kind="container",
                        workload_kind="Deployment", workload_name="orders",
                        restart_count=3, exit_code=2, category="go-panic",
                        finished_at=datetime(2026, 12, 4, 9, 40, tzinfo=UTC))
    settings = load_settings({"LINK_TEMPLATES": f"Logs={GRAFANA};Runbook=https://wiki/x"})
    message = new_crash_message(crash, settings)
    (links,) = [b for b in message["blocks"] if b.get("block_id") == "links"]
    assert links["elements"] == [
        {"type": "button", "action_id": "link-0", "text": {"type": "plain_text",
                                                           "text": "Logs"},
         "url": "https://grafana.example.com/explore?ns=shop&pod=orders-7d9f-x2k&c=app"
                "&from=2026-12-04T08%3A40%3A00Z&to=2026-12-04T09%3A45%3A00Z"},
        {"type": "button", "action_id": "link-1", "text": {"type": "plain_text",
                                                           "text": "Runbook"},
         "url": "https://wiki/x"}]
    plain = new_crash_message(crash, load_settings({}))
    assert not [b for b in plain["blocks"] if b.get("block_id") == "links"]
