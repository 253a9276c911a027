"""Team routing (DIGEST_CHANNELS): team channels claim namespaces, the catch-all the rest."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.patrol.routing import Routes, channels_for, routed_to, teams_for
from bot.settings import load_settings

ROUTES = Routes(teams={"C0PAY": ("prod/payments", "prod/ledger-*"),
                       "C0STG": ("staging/*",),
                       "C0ANY": ("shared",)},
                catch_all="C0ALL")


@pytest.mark.parametrize(("cluster", "namespace", "expected"), [
    ("prod", "payments", ("C0PAY",)),
    ("prod", "ledger-eu", ("C0PAY",)),
    ("prod", "ledger", ("C0ALL",)),          # the glob needs the dash
    ("staging", "payments", ("C0STG",)),     # cluster/* claims every namespace there
    ("prod", "orders", ("C0ALL",)),          # nobody claims it: the catch-all
    ("prod", "shared", ("C0ANY",)),          # a bare namespace: any cluster
    ("staging", "shared", ("C0STG", "C0ANY")),  # two teams claim it: both, in order
    ("qa", "payments", ("C0ALL",)),          # prod/payments is not qa/payments
])
def test_channels_for(cluster: str, namespace: str, expected: tuple[str, ...]) -> None:
    assert channels_for(ROUTES, cluster, namespace) == expected


def test_no_catch_all_means_unclaimed_goes_nowhere() -> None:
    routes = Routes(teams={"C0PAY": ("prod/payments",)})
    assert channels_for(routes, "prod", "orders") == ()
    assert channels_for(routes, "prod", "payments") == ("C0PAY",)


def test_no_teams_everything_to_the_catch_all() -> None:
    routes = Routes(catch_all="C0ALL")
    assert channels_for(routes, "prod", "anything") == ("C0ALL",)
    assert routes.channels == ("C0ALL",)


def test_a_star_team_leaves_the_catch_all_nothing() -> None:
    routes = Routes(teams={"C0OPS": ("*",)}, catch_all="C0ALL")
    assert channels_for(routes, "any", "ns") == ("C0OPS",)
    assert not routed_to(routes, "C0ALL", "any", "ns")


def test_catch_all_that_is_also_a_team_channel_gets_both_and_one_digest() -> None:
    routes = Routes(teams={"C0ALL": ("prod/payments",), "C0STG": ("staging/*",)},
                    catch_all="C0ALL")
    assert routes.channels == ("C0ALL", "C0STG")
    assert channels_for(routes, "prod", "orders") == ("C0ALL",)
    assert teams_for(routes, "prod", "orders") == ()
    assert routed_to(routes, "C0ALL", "prod", "payments")
    assert not routed_to(routes, "C0STG", "prod", "payments")


def test_digest_channels_setting_uses_the_channel_namespaces_grammar() -> None:
    settings = load_settings({"DIGEST_CHANNELS": "C01ABC=prod/payments,prod/ledger-*;"
                                                 "C02DEF=staging/*"})
    assert settings.slack.digest_channels == {"C01ABC": ("prod/payments", "prod/ledger-*"),
                                              "C02DEF": ("staging/*",)}
    assert load_settings({}).slack.digest_channels is None


@pytest.mark.parametrize(("env", "message"), [
    ({"DIGEST_CHANNELS": "#payments=prod/payments"}, "DIGEST_CHANNELS entry .* is not a "
                                                     "Slack channel id"),
    ({"DIGEST_CHANNELS": "C01=prod//x"}, "DIGEST_CHANNELS entry .* is not NAMESPACE"),
    ({"DIGEST_CHANNELS": "C01="}, "DIGEST_CHANNELS entry 'C01=' is not CHANNEL=ns1,ns2"),
    ({"DIGEST_CHANNELS": "C01=a;C01=b"}, "DIGEST_CHANNELS names channel C01 twice"),
    ({"DIGEST_CHANNELS": "C01=qa/payments", "KUBE_CONTEXTS": "prod,staging"},
     "DIGEST_CHANNELS entry .*: no cluster 'qa' in KUBE_CONTEXTS"),
])
def test_bad_digest_channels_are_specific_config_errors(env: dict[str, str],
                                                         message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)
