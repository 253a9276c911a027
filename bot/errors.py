"""The one small exception tree of restart-patrol.

Library errors (ApiException, urllib3, SQLAlchemy, Slack) are translated into these at the
edge that calls the library, with a one-line message a human can act on. The CLI and the
Slack layer print `str(error)`; they never show a traceback unless `--debug` is given.
"""

from __future__ import annotations


class PatrolError(Exception):
    """Base class: a failure whose message is fit to show to the user as it is."""


class UsageError(PatrolError):
    """The user asked for something malformed (bad flag, bad duration, bad setting)."""


class ConfigError(UsageError):
    """A setting (environment variable or kubeconfig) is missing or malformed."""


class ClusterError(PatrolError):
    """The Kubernetes API could not be reached or refused the request.

    `status` is the HTTP status the API server answered with (None when it never answered),
    so callers decide by status, never by matching message text.
    """

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


class StoreError(PatrolError):
    """The snapshot database could not be opened, migrated or written."""


class SlackError(PatrolError):
    """Slack refused or could not be reached."""


class SlackUnavailable(SlackError):
    """Slack did not give a usable answer (5xx, timeout, dropped connection, rate limit
    after retries): a post may or may not have been accepted."""
