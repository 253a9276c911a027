"""The one small exception tree of restart-patrol, typed by what the caller must decide.

Library errors (ApiException, urllib3, SQLAlchemy, Slack) are translated into these at the
edge that calls the library, with a one-line message a human can act on. The CLI and the
Slack layer print `str(error)`; they never show a traceback unless `--debug` is given.

Two decisions matter to callers, so they are types, never message matching:
- **Transient** (`TransientError`): timeout, unreachable, 5xx/429 after retries, a deadline,
  a database that dropped its connection. Trying again later may succeed: retry within a
  budget, keep the work queued, answer from the record meanwhile.
- **Permanent** (everything else): forbidden, not found, bad input or configuration, Slack
  refusing a call. Trying again cannot change the answer: say so and move on.

```
PatrolError
├── UsageError                   the user asked for something malformed (exit 2)
│   ├── ConfigError              a setting or the kubeconfig is wrong
│   ├── UnknownClusterError      a cluster name this bot does not serve
│   └── UnknownCrashError        no recorded crash with that id
├── ClusterError (status)        the Kubernetes API refused the request (permanent)
│   ├── NotFoundError            a namespace, pod or workload that does not exist
│   ├── ForbiddenError (resource) RBAC refused (403)
│   └── ClusterUnavailable       + TransientError: no usable answer (timeout, 5xx, …)
│       └── DeadlineExceeded     the patrol's or query's overall budget ran out
├── StoreError                   the database refused (permanent: schema, constraint)
│   └── StoreUnavailable         + TransientError: the database cannot be reached now
└── SlackError                   Slack refused a call (permanent: invalid_auth, …)
    └── SlackUnavailable         + TransientError: no usable answer; a post may have landed
```
"""

from __future__ import annotations


class PatrolError(Exception):
    """Base class: a failure whose message is fit to show to the user as it is."""


class TransientError(PatrolError):
    """Marker: the failure may go away by itself; retrying later (within a budget) can
    succeed. Every concrete transient error also derives from its subsystem's class."""


class UsageError(PatrolError):
    """The user asked for something malformed (bad flag, bad duration, bad setting)."""


class ConfigError(UsageError):
    """A setting (environment variable, .env or kubeconfig) is missing or malformed."""


class UnknownClusterError(UsageError):
    """A cluster name that this bot does not serve (`/restarts prod/payments`)."""

    def __init__(self, message: str, *, suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.suggestions = suggestions


class UnknownCrashError(UsageError):
    """No recorded crash with the id the user gave (`why … --log ID`)."""


class ClusterError(PatrolError):
    """The Kubernetes API refused the request, or (as `ClusterUnavailable`) gave no usable
    answer. `status` is the HTTP status it answered with (None when it never answered)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFoundError(ClusterError):
    """A namespace, pod or workload the user named does not exist."""

    def __init__(self, message: str, *, suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(message, status=404)
        self.suggestions = suggestions


class ForbiddenError(ClusterError):
    """RBAC refused the request (403): this service account may not read `resource`
    (e.g. "pods/log"). Callers that can do without it say so and carry on."""

    def __init__(self, message: str, *, resource: str) -> None:
        super().__init__(message, status=403)
        self.resource = resource


class ClusterUnavailable(ClusterError, TransientError):
    """No usable answer from the API server: unreachable, timed out, 429/5xx after the
    retries, a stream that broke. The cluster may answer later."""


class DeadlineExceeded(ClusterUnavailable):
    """The overall budget of a patrol or a query (PATROL_DEADLINE, QUERY_DEADLINE, a
    command's --timeout) ran out before the answer was complete."""


class StoreError(PatrolError):
    """The database refused: it could not be opened, migrated or written as asked."""


class StoreUnavailable(StoreError, TransientError):
    """The database cannot be reached right now (connection refused or lost)."""


class SlackError(PatrolError):
    """Slack refused a call (invalid_auth, not_in_channel, channel_not_found, …)."""


class SlackUnavailable(SlackError, TransientError):
    """Slack did not give a usable answer (5xx, timeout, dropped connection, rate limit
    after retries): a post may or may not have been accepted."""
