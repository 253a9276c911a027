"""Label and field selectors, and Go-style boolean query values, as the API server parses them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bot.sim.world import Obj

Predicate = Callable[[Obj], bool]

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class SelectorError(ValueError):
    """A selector or query value the API server would reject with 400."""


def parse_bool(name: str, raw: str | None) -> bool:
    """Go's strconv.ParseBool: 1/t/T/TRUE/true/True and 0/f/F/FALSE/false/False."""
    if raw is None or raw == "":
        return False
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SelectorError(f'strconv.ParseBool: parsing "{raw}": invalid syntax for {name}')


_SET_TERM = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_terms(selector: str) -> list[str]:
    terms: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t.strip() for t in terms if t.strip()]


Requirement = tuple[str, str, frozenset[str]]  # (operator, key, values)


def _requirement(term: str) -> Requirement:
    m = _SET_TERM.match(term)
    if m:
        return m.group(2), m.group(1), frozenset(v.strip() for v in m.group(3).split(","))
    if "!=" in term:
        key, value = (x.strip() for x in term.split("!=", 1))
        return "!=", key, frozenset({value})
    if "=" in term:
        key, value = (x.strip() for x in term.replace("==", "=").split("=", 1))
        return "=", key, frozenset({value})
    if term.startswith("!"):
        return "!", term[1:].strip(), frozenset()
    if re.fullmatch(r"[\w./-]+", term):
        return "exists", term, frozenset()
    raise SelectorError(f"unable to parse requirement: {term!r}")


def _satisfied(req: Requirement, labels: dict[str, str]) -> bool:
    op, key, values = req
    if op in ("=", "in"):
        return labels.get(key) in values
    if op in ("!=", "notin"):
        return labels.get(key) not in values
    if op == "!":
        return key not in labels
    return key in labels


def label_selector(selector: str | None) -> Predicate:
    """Equality (=, ==, !=), set (in, notin) and existence (k, !k) terms, ANDed."""
    if not selector:
        return lambda _obj: True
    requirements = [_requirement(term) for term in _split_terms(selector)]

    def matches(obj: Obj) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(_satisfied(req, labels) for req in requirements)

    return matches


FIELDS: dict[str, set[str]] = {
    "pods": {"metadata.name", "metadata.namespace", "spec.nodeName", "status.phase",
             "spec.restartPolicy", "status.podIP", "spec.serviceAccountName"},
    "events": {"metadata.name", "metadata.namespace", "involvedObject.kind",
               "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion",
               "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"},
}


def _lookup(obj: Obj, path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return ""
        value = value.get(part, "")
    if path == "source" and isinstance(value, dict):
        return value.get("component", "")
    return "" if value is None else value


def field_selector(resource: str, selector: str | None) -> Predicate:
    """`a=b`, `a==b`, `a!=b` on the fields the API server indexes for `resource`."""
    if not selector:
        return lambda _obj: True
    allowed = FIELDS.get(resource, {"metadata.name", "metadata.namespace"})
    checks: list[tuple[str, str, bool]] = []
    for term in _split_terms(selector):
        negate = "!=" in term
        key, _, value = term.replace("!=", "=").replace("==", "=").partition("=")
        key = key.strip()
        if key not in allowed:
            raise SelectorError(f'field label not supported: {key}')
        checks.append((key, value.strip(), negate))

    def matches(obj: Obj) -> bool:
        return all((str(_lookup(obj, k)) == v) != neg for k, v, neg in checks)

    return matches
