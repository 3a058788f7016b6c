"""Every error promo-scheduler raises on purpose has one root, :class:`PromoError`.

The tree::

    PromoError
     ├── ConfigError              bad or missing settings; ``problems`` names every bad key
     ├── ValidationError          bad user input (CLI arguments, media files, times)
     │    └── ImportValidationError   a whole import file's bad rows (line, column, reason)
     ├── NotFoundError            a record, post or channel that does not exist
     ├── StateError               a post status change the lifecycle does not allow
     ├── PermissionDenied         the acting user's role may not do this (web app and API; the CLI has full rights)
     ├── ComposeError             a post cannot be composed
     │    ├── TemplateError       template missing, syntax error, unknown field, unsafe access
     │    └── TooLongError        does not fit the platform's text rule even when shortened
     └── PublishError             raised by platform adapters; the dispatcher decides from the class alone
          ├── AuthError           token invalid/expired/revoked: pause the channel (needs_reauth)
          ├── RateLimited         wait until ``retry_at`` before sending to this channel again
          ├── RejectedContent     the platform refused this content: failed at once
          ├── Duplicate           the platform already has this post (``remote_id`` when it names it)
          ├── Transient           nothing was published (5xx, connection refused): retry with backoff
          └── UnknownOutcome      the request may have gone through (timeout after sending):
                                  reconcile, or needs_review; never re-sent blindly

Messages never contain secret values: adapters redact tokens before raising, and
:func:`scheduler.redact.redact` is applied again wherever an error is stored or logged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


class PromoError(Exception):
    """Root of every error promo-scheduler raises deliberately."""


class ConfigError(PromoError):
    """Bad configuration. ``problems`` holds one line per bad key, each naming the key."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(
            "invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems)
            if len(self.problems) > 1
            else f"invalid configuration: {self.problems[0]}"
        )


class ValidationError(PromoError):
    """Bad input from a user: an argument, a time, a media file."""


@dataclass(frozen=True)
class RowProblem:
    """One problem in one row of an import file."""

    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column!r}: {self.reason}"


class ImportValidationError(ValidationError):
    """An import file has bad rows; nothing was written."""

    def __init__(self, path: str, problems: list[RowProblem]):
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s), nothing imported:\n{lines}")


class NotFoundError(PromoError):
    """A record, post or channel that does not exist."""


class StateError(PromoError):
    """A post status change that the lifecycle does not allow."""


class PermissionDenied(PromoError):
    """The acting user's role does not allow the action (``action`` names it, ``role`` is theirs)."""

    def __init__(self, actor: str, role: str, action: str, needs: str):
        self.actor, self.role, self.action, self.needs = actor, role, action, needs
        super().__init__(f"{actor} ({role}) may not {action}: that needs the {needs} role or higher")


class ComposeError(PromoError):
    """A post cannot be composed."""


class TemplateError(ComposeError):
    """A template is missing, does not parse, names a missing field or tries unsafe access."""

    def __init__(self, message: str, template: str | None = None, line: int | None = None):
        self.template = template
        self.line = line
        where = ""
        if template:
            where = f"{template}" + (f", line {line}" if line else "") + ": "
        super().__init__(f"{where}{message}")


class TooLongError(ComposeError):
    """The text does not fit the platform's rule, even shortened at a word boundary."""

    def __init__(self, message: str, length: int | None = None, limit: int | None = None):
        self.length = length
        self.limit = limit
        super().__init__(message)


class PublishError(PromoError):
    """Raised by adapters. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None):
        self.status = status
        super().__init__(message)


class AuthError(PublishError):
    """The credentials are invalid, expired or revoked. Nothing is retried until re-checked."""


class RateLimited(PublishError):
    """The platform asked us to wait. ``retry_at`` is an aware UTC datetime."""

    def __init__(self, message: str, *, retry_at: dt.datetime, status: int | None = None):
        if retry_at.tzinfo is None:
            raise ValueError("retry_at must be timezone-aware")
        self.retry_at = retry_at
        super().__init__(message, status=status)


class RejectedContent(PublishError):
    """The platform refused this content (validation, policy, media). Not retried."""


class Duplicate(PublishError):
    """The platform says this post already exists; ``remote_id``/``remote_url`` when it names it."""

    def __init__(
        self,
        message: str,
        *,
        remote_id: str | None = None,
        remote_url: str | None = None,
        status: int | None = None,
    ):
        self.remote_id = remote_id
        self.remote_url = remote_url
        super().__init__(message, status=status)


class Transient(PublishError):
    """Nothing was published and trying again later may work (5xx, refused connection)."""


class UnknownOutcome(PublishError):
    """The request may or may not have been published (timeout or reset after sending)."""
