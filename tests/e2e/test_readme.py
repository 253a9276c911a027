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


def test_the_layout_lists_the_enforced_layers_in_order() -> None:
    import re
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    enforced = [[m.strip(" ()") for m in layer.split("|")] for layer in layers]
    layout = (ROOT / "README.md").read_text().split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in layout.splitlines() if line.startswith("| `bot/")]
    listed = [[m.removesuffix(".py").replace("/", ".") for m in re.findall(r"`(bot/[\w/.]+)`",
                                                                           row.split("|")[1])]
              for row in rows]
    assert listed == enforced
