"""The shapes of the rows staff read, declared once: a post and a history row, as the `promo`
command prints them (JSON, CSV) and the web app's API answers them. :mod:`scheduler.views` fills
them; the API's OpenAPI description is generated from these declarations."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class PostRow:
    """A post as `promo posts --format json`, `promo post show` and /api/v1/posts give it (times in
    the organisation's timezone with their offset). The one declaration of these fields: the
    API's description is generated from it."""

    id: int
    channel: str
    platform: str
    kind: str
    status: str
    scheduled_at: str | None
    published_at: str | None
    text: str
    link: str | None
    remote_id: str | None
    remote_url: str | None
    attempts: int
    error: str | None
    #: the image as attached (a path in the media folder)
    image: str | None
    template: str | None
    created_by: str
    next_attempt_at: str | None
    image_alt: str | None


@dataclass
class HistoryRow:
    """A history row (`promo history`, /api/v1/history): an attempt or a status change, with its
    post's state now. ``error`` is an attempt's (or a failure's) error, ``note`` why a status changed."""

    id: int
    post_id: int
    channel: str
    platform: str
    #: attempt | transition
    action: str
    started_at: str
    finished_at: str | None
    from_status: str | None
    to_status: str | None
    outcome: str | None
    http_status: int | None
    status: str
    scheduled_at: str | None
    published_at: str | None
    text: str
    remote_id: str | None
    remote_url: str | None
    attempts: int
    error: str | None
    actor: str
    note: str | None


HISTORY_FIELDS = tuple(f.name for f in fields(HistoryRow))
