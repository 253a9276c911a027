"""The README keeps exactly two set-up commands at the top, and CI runs the test one."""

from __future__ import annotations

from tests.conftest import ROOT


def setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    head = text.split("\n## ", 1)[0]
    blocks = head.split("```sh\n")[1:]
    return [block.split("\n```", 1)[0].strip() for block in blocks]


def test_two_setup_commands_demo_then_tests() -> None:
    demo, tests = setup_commands()
    assert demo.endswith("restart-patrol demo")
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = setup_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci
