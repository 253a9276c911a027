"""The diagnosis knowledge is data: categories, detectors, wording, and stable fingerprints."""

from __future__ import annotations

import re

import pytest

from bot.diagnosis.categories import REAL_CRASHES, Category
from bot.diagnosis.detectors import DETECTORS
from bot.diagnosis.engine import Evidence, diagnose
from bot.diagnosis.fingerprint import fingerprint
from bot.diagnosis.wording import WORDING, Facts

DOCUMENTED = (  # ARCHITECTURE.md, "Categories"
    "go-panic", "go-fatal-error", "python-exception", "jvm-exception", "jvm-oom",
    "node-exception", "node-heap-oom", "rust-panic", "native-crash", "exec-error", "port-in-use",
    "dependency-unavailable", "config-error", "app-fatal", "oom-killed", "probe-kill",
    "evicted-or-preempted", "graceful-shutdown", "clean-exit", "unknown")


def test_categories_are_exactly_the_documented_strings() -> None:
    assert [c.value for c in Category] == list(DOCUMENTED)
    assert Category("go-panic") is Category.GO_PANIC and Category.GO_PANIC == "go-panic"
    assert set(Category) >= REAL_CRASHES


@pytest.mark.parametrize("category", list(Category))
def test_every_category_has_wording_that_renders(category: Category) -> None:
    summary, hints = WORDING[category].render(Facts(head="", subject="", meaning="Exit 1"))
    assert summary and "{" not in summary
    assert all(hint and "{" not in hint.replace("${", "") for hint in hints)


def test_detectors_are_declared_once_with_a_category() -> None:
    names = [d.name for d in DETECTORS]
    assert len(names) == len(set(names))
    assert all(isinstance(d.category, Category) for d in DETECTORS)


def test_the_json_category_is_a_plain_string() -> None:
    out = diagnose(Evidence(exit_code=143)).to_json()
    assert type(out["category"]) is str and out["category"] == "graceful-shutdown"
    assert set(out) >= {"exit_code", "signal", "reason", "meaning", "category", "runtime",
                        "signature", "summary", "hints"}


@pytest.mark.parametrize(("category", "signature", "expected"), [
    # values computed before the Category enum existed; stored histories depend on them
    ("go-panic", ("panic: runtime error: invalid memory address or nil pointer dereference",
                  "goroutine 1 [running]:", "main.handler(0x0)", "\t/src/main.go:12 +0x1c"),
     "3732c3e2c153"),
    ("python-exception", ("KeyError: 'region'",), "1ccde13b4177"),
    ("dependency-unavailable", ("dial tcp 10.0.0.9:5432: connect: connection refused",),
     "35b9f56f8d0e"),
])
def test_unchanged_signatures_keep_their_fingerprints(category: str, signature: tuple[str, ...],
                                                      expected: str) -> None:
    assert fingerprint(category, signature) == expected
    assert fingerprint(Category(category), signature) == expected


def test_no_detector_pattern_names_a_project() -> None:
    """A guard against fixture-fitting: detector sources name no project from the fixtures."""
    projects = {"kargo", "kubeblocks", "fider", "listmonk", "sippy", "tuwunel", "gathio",
                "hortusfox", "fief", "dallinger", "cvat", "sedna", "egg", "treetracker",
                "gnomad", "fluentbit", "dawarich", "itflow", "unifi", "zeiterfassung",
                # crash_logs_3.jsonl
                "krakend", "coroot", "dockerize", "customeros", "convoy", "wochenende",
                "mdstudio", "4cat", "komga", "monitee", "locast2tuner", "cloudpub", "scotty",
                "golem", "trueblocks", "nofx", "glint", "meshcentral", "unraidapi", "signet",
                "interactsh", "bosun", "autotune", "serverpackcreator", "languagetool",
                "servicecomb", "lifebank", "novu", "teable", "firefly", "mycryptobot",
                "droppedneedle", "langflow", "reviewboard", "streampusher", "czkawka", "logdna",
                "crewlink", "pypicloud", "kitchenowl", "vernemq", "jdownloader", "mqtt",
                # local_crashes.jsonl: modules and programs its cases invent
                "mojolicious", "pyarrow_s3fs", "sentry_sdk", "exporterd",
                # local_crashes_5.jsonl
                "shipper", "sidekiq", "fastify", "session_registry", "proxy_passs",
                # local_crashes_6.jsonl
                "gunicornx", "redis_connect", "invoices", "mailboxes",
                # local_crashes_7.jsonl
                "pg_dumpx", "olympus", "turbo",
                # local_crashes_8.jsonl
                "mounter", "catalogue",
                # local_crashes_10.jsonl
                "pg_auditlog", "libcodec", "start_listener",
                # local_crashes_12.jsonl
                "nanoid-lite", "relayd", "ledger_srv", "ledger_rw", "invoice_lines",
                "workersettings", "wal-shipper", "orders-projector", "shipments_v2"}
    from pathlib import Path

    import bot.diagnosis as package

    source = "\n".join(p.read_text().lower() for p in Path(package.__file__).parent.rglob("*.py"))
    found = {name for name in projects if re.search(rf"\b{name}\b", source)}
    assert not found
