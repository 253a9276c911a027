"""A cluster that does not answer: failures that name their cluster, and the record as
the answer's source meanwhile (docs/design.md, "When a cluster is down").

With several clusters a message without the cluster's name cannot be acted on ("get
/version: cannot reach …" — which one?), so every cluster failure that leaves a use case
names it. A transient failure (`ClusterUnavailable`: unreachable, timed out, the query's
deadline) does not end a question the record can answer: `ClusterDown` says so, with when
the recorder last heard from the cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from bot.errors import ClusterError, ClusterUnavailable, NotFoundError
from bot.patrol.story import ClusterDown
from bot.store import Store


@contextmanager
def naming(cluster: str) -> Iterator[None]:
    """Cluster failures raised inside name `cluster` (type and attributes unchanged). A
    not-found already names what is missing, and where."""
    try:
        yield
    except ClusterError as exc:
        if not isinstance(exc, NotFoundError) and not str(exc).startswith(
                f"cluster {cluster}"):
            exc.args = (f"cluster {cluster}: {exc}", *exc.args[1:])
        raise


def last_known_moment(down: ClusterDown) -> datetime:
    """Where a window ends when its cluster does not answer: when the recorder last heard
    from it (the record knows nothing later), else our own clock."""
    return down.last_seen or datetime.now(UTC)


def cluster_down(cluster: str, failure: ClusterUnavailable, store: Store | None
                 ) -> ClusterDown | None:
    """What to say when `cluster` did not answer and the record may: None when there is
    no record to answer from (no store, or the recorder never ran for it). It was last
    seen at the recorder's last heartbeat or its newest recorded crash, the later."""
    if store is None:
        return None
    coverage = store.history.coverage(cluster)
    if coverage is None:
        return None
    reason = str(failure).removeprefix(f"cluster {cluster}: ")
    newest = store.history.last_recorded(cluster)
    return ClusterDown(cluster, reason, max(coverage.seen_at, newest or coverage.seen_at))
