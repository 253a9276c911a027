"""`KubeApi`: the surface of the Kubernetes API that the application layers use.

`bot.cluster.client.ClusterClient` implements it over a `Transport` (every request through
one function: timeouts, deadline, retries, error translation). Tests build the same client
over an in-memory wire on the simulator (`tests/support/fake_kube.py`), so patrol,
investigation, recorder and lease logic get fast tests without HTTP; the sim-over-HTTP
tier stays for contract and end-to-end tests.

Errors are `bot.errors` types: `ClusterUnavailable` (transient: timeouts, unreachable,
5xx after retries) and its `DeadlineExceeded`; `NotFoundError`, `ForbiddenError` and
`ClusterError` (permanent; `status` carries the HTTP status, e.g. 409 on a lease write
that lost, 410 on a watch whose version expired).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import msgspec

from bot.cluster import wire

if TYPE_CHECKING:
    from bot.cluster.client import Listing, Progress
    from bot.cluster.transport import Deadline, Stream

T = TypeVar("T", bound=msgspec.Struct)
R = TypeVar("R")


class KubeApi(Protocol):
    """One cluster's API, as restart-patrol reads it (and writes its Lease)."""

    name: str
    server: str
    deadline: Deadline | None

    def close(self) -> None: ...

    def bounded(self, seconds: float, setting: str) -> KubeApi:
        """A view whose requests all end within `seconds` from now (`setting` names the
        knob in the error, e.g. PATROL_DEADLINE)."""
        ...

    def relisted(self, read: Callable[[], R]) -> R:
        """Run `read`; once more if a list in it expired mid-way (410)."""
        ...

    def server_now(self) -> datetime:
        """The API server's clock (its Date header)."""
        ...

    def check_namespace(self, namespace: str) -> None:
        """NotFoundError (with close names) when the namespace does not exist."""
        ...

    def namespace_names(self) -> list[str]: ...

    def pods(self, namespace: str | None = None, progress: Progress | None = None,
             label_selector: str | None = None) -> Listing:
        """Every pod of a namespace (or all), streamed page by page."""
        ...

    def list_pages(self, what: str, path: str, kind: type[T],
                   query: dict[str, Any] | None = None, *,
                   page_size: int | None = None) -> Iterator[T]:
        """Decoded pages of one list pass (with the list's metadata); `page_size` items
        a page instead of the client's."""
        ...

    def owners(self, namespace: str | None = None
               ) -> dict[tuple[str, str, str], wire.ObjectMeta]:
        """ReplicaSets and Jobs keyed by (kind, namespace, name)."""
        ...

    def owner(self, kind: str, namespace: str, name: str) -> wire.ObjectMeta | None: ...

    def previous_log(self, namespace: str, pod: str, container: str, *, tail_lines: int,
                     limit_bytes: int, previous: bool = True) -> str | None:
        """The crashed container's log tail; None when the kubelet keeps none."""
        ...

    def events_for(self, namespace: str, name: str, uid: str | None = None
                   ) -> list[wire.Event]: ...

    def watch_pods(self, namespace: str | None, resource_version: str, seconds: int
                   ) -> Stream:
        """A watch of pods from `resource_version` (newline-delimited JSON frames)."""
        ...

    def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def write_lease(self, lease: dict[str, Any], *, create: bool) -> dict[str, Any]:
        """Create, or replace at the lease's resourceVersion (409 when another won)."""
        ...
