"""The CLI's streamed JSON writer and the patrol's compact set of listed pods."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from bot.answers.patrol import PresentPods
from bot.cli import _dump_json


def streamed(data: object, monkeypatch: pytest.MonkeyPatch) -> bytes:
    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", text)
    _dump_json(data)
    text.flush()
    return raw.getvalue()


def rows(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {"name": f"w{i}", "pods": [{"uid": str(i), "containers": []}], "x": {}}


@pytest.mark.parametrize("count", [0, 1, 3])
def test_streamed_rows_are_written_exactly_as_the_whole_document(
        count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    lazy = {"cluster": "c", "workloads": rows(count), "after": [1, "é\n"]}
    whole = {"cluster": "c", "workloads": list(rows(count)), "after": [1, "é\n"]}
    assert streamed(lazy, monkeypatch) == orjson.dumps(whole, option=orjson.OPT_INDENT_2) + b"\n"


def test_a_list_of_digests_streams_each_one(monkeypatch: pytest.MonkeyPatch) -> None:
    lazy = [{"cluster": "a", "workloads": rows(2)}, {"cluster": "b", "workloads": rows(0)}]
    whole = [{"cluster": "a", "workloads": list(rows(2))},
             {"cluster": "b", "workloads": []}]
    out = streamed(lazy, monkeypatch)
    assert out == orjson.dumps(whole, option=orjson.OPT_INDENT_2) + b"\n"
    assert orjson.loads(out) == whole


def test_a_value_that_looks_like_a_placeholder_is_left_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = {"w": iter([1]), "text": "\x00stream-0"}
    assert orjson.loads(streamed(data, monkeypatch)) == {"w": [1], "text": "\x00stream-0"}


def test_present_pods_answers_like_a_set_of_namespace_uid_pairs() -> None:
    uid = "5179b334-0c5d-44ee-9117-44a1eff2fb89"
    present = PresentPods()
    for ns, pod in (("a", uid), ("a", "not-a-uuid"), ("a", uid), ("b", uid)):
        present.add(ns, pod)
    assert len(present) == 3
    assert ("a", uid) in present and ("b", uid) in present
    assert ("a", "not-a-uuid") in present and ("b", "not-a-uuid") not in present
    assert ("c", uid) not in present and "a" not in present
    assert sorted(present) == [("a", uid), ("a", "not-a-uuid"), ("b", uid)]
