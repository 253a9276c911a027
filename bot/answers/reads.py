"""The pool an answer reads a few API objects at a time on (evidence of the top
workloads, the pods a recorder-counted digest slot reads).

The pool is the cluster's runtime's when the cluster has one, else one of the call's own;
either way it is stopped when the block ends, so no reader thread outlives the answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from bot.cluster.client import ClusterClient
from bot.runtime import Workers

READERS = 4  # reads in flight at once: the API's politeness
READ_GRACE = 2.0  # seconds past the deadline a read may take to notice it


@contextmanager
def read_pool(cluster: ClusterClient, name: str, reads: int) -> Iterator[Workers]:
    """A pool of at most `READERS` threads for `reads` reads of `cluster`. Raises
    `RuntimeStopped` when the cluster's runtime is shutting down (no new pool then)."""
    workers = max(1, min(READERS, reads))
    pool = (cluster.runtime.executor(name, workers) if cluster.runtime is not None
            else Workers(name, workers))
    try:
        yield pool
    finally:
        pool.stop(time.monotonic() + READ_GRACE)
