"""CHANNEL_NAMESPACES: who may see what."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings, parse_channel_namespaces
from bot.slack.access import Access


def test_rules_restrict_channels_and_star_allows_all() -> None:
    access = Access(parse_channel_namespaces("C01=qld2-production,qld2-staging;C02=*"))
    assert access.allows("C01", "qld2-production")
    assert not access.allows("C01", "payments")
    assert access.allows("C02", "anything")
    assert not access.allows("C99", "qld2-production")
    assert access.describe("C01") == "`qld2-production`, `qld2-staging`"
    assert "CHANNEL_NAMESPACES" in access.describe("C99")
    assert access.allowed("C02") is None


def test_unset_means_open() -> None:
    access = Access(load_settings({}).slack.channel_namespaces)
    assert access.open and access.allows("C1", "kube-system")


@pytest.mark.parametrize("raw", ["C01", "C01=", "=ns", "C01:ns"])
def test_malformed_rules_are_config_errors(raw: str) -> None:
    with pytest.raises(ConfigError, match="CHANNEL_NAMESPACES"):
        parse_channel_namespaces(raw)
