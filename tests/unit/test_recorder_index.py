"""What the recorder's detector keeps for a digest counted from the record: marks (an
epoch and a sequence, never a clock), the pods whose counts changed after a mark, the pods
gone, the pods with restarts and the census (pods and controllers per namespace)."""

from __future__ import annotations

import msgspec

from bot.cluster.podwatch import WatchedPod
from bot.patrol.model import KnownPod
from bot.recording import detect
from bot.recording.detect import Detector, Found


def pod(name: str, restarts: int, *, namespace: str = "shop", owner: str | None = "api-7f",
        kind: str = "ReplicaSet") -> WatchedPod:
    refs = ([{"kind": kind, "name": owner, "controller": True, "apiVersion": "apps/v1",
              "uid": f"o-{owner}"}] if owner else [])
    return msgspec.json.decode(msgspec.json.encode({
        "metadata": {"name": name, "namespace": namespace, "uid": f"u-{name}",
                     "ownerReferences": refs},
        "spec": {"containers": [{"name": "app", "image": "api:1"}]},
        "status": {"containerStatuses": [{"name": "app", "restartCount": restarts,
                                          "image": "api:1"}]}}), type=WatchedPod)


def detector() -> Detector:
    found: list[Found] = []
    d = Detector((None,), found.append, lambda scope, version: None)
    return d


def test_a_mark_tells_what_changed_after_it_and_a_relist_ends_its_epoch() -> None:
    d = detector()
    d.listed(None, iter([pod("a", 0), pod("b", 2), pod("c", 0, owner="db", kind="StatefulSet"),
                         pod("debug", 1, owner=None)]))
    assert sorted(p.name for p in d.restarting(["shop"])) == ["b", "debug"]
    start = d.mark()
    assert d.changed_since(start) == ([], [])
    d.changed("MODIFIED", pod("a", 1))  # first restart
    d.changed("MODIFIED", pod("c", 0, owner="db", kind="StatefulSet"))  # no count change
    middle = d.mark()
    d.changed("MODIFIED", pod("b", 3))
    d.changed("DELETED", pod("debug", 1, owner=None))
    d.changed("ADDED", pod("e", 0))  # born without restarts: nothing to count
    changed, gone = d.changed_since(start) or ([], [])
    assert sorted(changed) == [KnownPod("shop", "a", "u-a", "ReplicaSet", "api-7f"),
                               KnownPod("shop", "b", "u-b", "ReplicaSet", "api-7f")]
    assert gone == [("shop", "u-debug")]
    assert [p.name for p in (d.changed_since(middle) or ([], []))[0]] == ["b"]
    assert d.changed_since(d.mark()) == ([], [])
    assert d.changed_since("another-run.0:1") is None
    d.listed(None, iter([pod("a", 1), pod("b", 4)]))  # a relist: a new epoch
    assert d.changed_since(middle) is None
    assert d.changed_since(d.mark()) == ([], [])


def test_the_census_counts_pods_and_controllers_as_they_come_and_go() -> None:
    d = detector()
    d.listed(None, iter([pod("a", 0), pod("b", 0), pod("c", 0, owner="api-9c"),
                         pod("x", 0, owner=None), pod("y", 0, owner=None),
                         pod("q", 0, namespace="edge", owner="gw-1")]))
    assert d.census() == {"shop": (5, 4), "edge": (1, 1)}  # api-7f, api-9c, x, y
    d.changed("DELETED", pod("c", 0, owner="api-9c"))
    d.changed("DELETED", pod("q", 0, namespace="edge", owner="gw-1"))
    d.changed("ADDED", pod("z", 0, owner=None))
    assert d.census() == {"shop": (5, 4)}  # api-7f, x, y, z


def test_a_mark_older_than_the_deletions_remembered_says_nothing(monkeypatch) -> None:
    monkeypatch.setattr(detect, "DELETIONS_KEPT", 4)  # a module constant, not a client
    d = detector()
    d.listed(None, iter([pod(f"p{i}", 0) for i in range(8)]))
    old = d.mark()
    for i in range(3):
        d.changed("DELETED", pod(f"p{i}", 0))
    assert len((d.changed_since(old) or ([], []))[1]) == 3
    for i in range(3, 8):
        d.changed("DELETED", pod(f"p{i}", 0))
    assert d.changed_since(old) is None  # the first deletions after it are forgotten
    assert d.changed_since(d.mark()) == ([], [])
