"""What the JSON API answers, declared once per shape: the OpenAPI description at
``/api/v1/openapi.json`` is generated from these (and from the rows they reuse: a post and a
history row of :mod:`scheduler.rows`, an import's result and its problems, a source match), so
the description says what every answer holds, errors included, and schemathesis checks each
answer against it.

Routes that build their answer themselves (``WebApp.as_json``) declare the model for the
description only; routes that return data are serialized through it by FastAPI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from scheduler.actions.images import ImageFit
from scheduler.actions.posts import SourceMatch
from scheduler.errors import RowProblem
from scheduler.import_rows import COLUMNS
from scheduler.importer import ImportResult
from scheduler.rows import HistoryRow, PostRow


class Closed(BaseModel):
    """An answer with exactly the fields declared (an unexpected key is a mismatch)."""

    model_config = ConfigDict(extra="forbid")


# --- errors ------------------------------------------------------------------------------------------

class Error(Closed):
    """Every error answer: what went wrong, in words (400 bad request, 401 not logged in, 403 role
    or CSRF token, 404 no such thing, 409 not in a state that allows it, 500 see the service log)."""

    error: str


class Problems(Closed):
    """An import file or a record change with bad cells: nothing was written."""

    error: str
    problems: list[RowProblem]


_WHY = {400: "a parameter or the body is not valid, or the action refused it (the message says why)",
        401: "not logged in: send Authorization: Bearer <API token>",
        403: "the user's role does not allow this (or a session's CSRF token is missing)",
        404: "no such post, record, channel or user", 409: "not in a state that allows this"}


def errors(*codes: int, problems: bool = False) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: 400, 401 and 403 (every route takes parameters and a login) and
    ``codes``; with ``problems`` a 400 lists the bad cells."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted({400, 401, 403, *codes}):
        out[code] = {"model": Problems | Error if problems and code == 400 else Error, "description": _WHY[code]}
    return out


# --- posts ---------------------------------------------------------------------------------------------

@dataclass
class PostDetail(PostRow):
    """A post and its history (status changes and attempts), oldest first."""

    history: list[HistoryRow]


class Created(Closed):
    """The posts made, one per channel, as /api/v1/posts rows."""

    posts: list[PostRow]


class Changed(Closed):
    """A post after an action: its state and when it is to go out (local time with offset)."""

    id: int
    status: str
    scheduled_at: str | None


class Count(Closed):
    """A text's count under one rule (graphemes, UTF-16 units, weighted characters …) and its limit."""

    count: int
    limit: int
    method: str


class Edited(Closed):
    id: int
    status: str
    counts: list[Count]


class PreviewCount(Count):
    fits: bool


class ChannelPreview(Closed):
    """One channel's text as it would go out, or why it cannot (``error``)."""

    channel: str
    platform: str
    text: str | None
    template: str | None
    shortened: bool
    link: str | None
    hashtags: list[str]
    counts: list[PreviewCount]
    error: str | None
    image: ImageFit | None = Field(description="with image_id: what the platform receives of the image")


class Previews(Closed):
    channels: list[ChannelPreview]


Sources = list[SourceMatch]


# --- history, calendar, status, highlights ---------------------------------------------------------------

class HistoryPage(Closed):
    """One page of history rows, newest first, and the address of the next (null on the last)."""

    rows: list[HistoryRow]
    next: str | None


class CalendarPost(Closed):
    id: int
    at: str = Field(description="local time with offset")
    channel: str
    status: str
    kind: str


class CalendarDay(Closed):
    date: str
    total: int = Field(description="posts that day (the list may hold fewer)")
    posts: list[CalendarPost]


class Calendar(Closed):
    model_config = ConfigDict(populate_by_name=True)

    start: str = Field(alias="from")
    end: str = Field(alias="to")
    timezone: str
    days: list[CalendarDay]


class Worker(Closed):
    worker: str
    last_tick: str
    seconds_since_tick: float
    stalled: bool


class ChannelState(Closed):
    name: str
    platform: str
    status: str
    reason: str | None
    rate_limited_until: str | None


class Status(Closed):
    """`promo status`: the service's processes, posts per state, and the channels."""

    now: str
    counts: dict[str, int] = Field(description="posts per state")
    workers: list[Worker]
    channels: list[ChannelState]


class Highlight(Closed):
    """A recorded highlight day of one channel."""

    day: str
    channel: str
    slot: int
    status: str
    product: str | None
    product_name: str | None
    umkm: str | None
    umkm_name: str | None
    post_id: int | None
    post_status: str | None
    reason: str | None
    created_at: str


# --- records, users, me ----------------------------------------------------------------------------------

#: A record of each kind as the cells of its import file (every column, "" when empty).
def _record_model(kind: str) -> type[Closed]:
    cells: dict[str, Any] = {c: (str, ...) for c in COLUMNS[kind]}
    return create_model(f"Record_{kind}", __base__=Closed, __doc__=f"A record of {kind}: its import file's cells.",
                        **cells)


RECORD_MODELS = tuple(_record_model(kind) for kind in COLUMNS)
Record = RECORD_MODELS[0] | RECORD_MODELS[1] | RECORD_MODELS[2]
assert len(RECORD_MODELS) == 3  # noqa: S101 - one per kind of COLUMNS


class RecordsPage(Closed):
    rows: list[Record]  # type: ignore[valid-type]
    next: str | None = Field(description="the next page's address; null on the last")


class RecordSaved(Closed):
    record: Record  # type: ignore[valid-type]
    changed: list[str]


Imported = ImportResult


class Me(Closed):
    name: str
    role: str
    language: str


class Disabled(Closed):
    name: str
    disabled: bool


def described(spec: dict[str, Any]) -> dict[str, Any]:
    """The generated description as the app answers: a request that does not validate is a 400
    with ``{"error": …}`` (:mod:`scheduler.web.answers`), never FastAPI's 422, so that is dropped."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = spec.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return spec
