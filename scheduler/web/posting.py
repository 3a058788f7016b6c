"""Compose, Approvals and the post page's actions, and the JSON API's writes for posts.

Every change goes through :mod:`scheduler.actions.posts` as the logged-in person (the same
functions the `promo` command calls; the action checks the role again). The compose page's
live preview asks ``POST /api/v1/preview`` (the `promo compose` path: nothing stored) as the
staff member types (``static/compose.js``); without script, its "Preview" button renders the
same previews on the server. Saving queues one post per channel, all or none.

Forms: a refused change (text too long, a time in the past, a post in the wrong state) shows
the page again with the reason and what was typed. API: the app's handlers answer 400/403/404/409
with ``{"error": …}``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import FastAPI, File, Form, Query, UploadFile
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from scheduler import post_images
from scheduler.actions import Actor, images
from scheduler.actions import posts as actions
from scheduler.composer.filters import number
from scheduler.errors import ComposeError, NotFoundError, StateError, ValidationError
from scheduler.media import inspect_image
from scheduler.models import PostStatus
from scheduler.storage import channels as channel_store
from scheduler.storage import posts as post_store
from scheduler.textrules import UNIT_NAMES
from scheduler.views import HistoryFilter, history_rows, post_row
from scheduler.web.core import Who, _local_path
from scheduler.web.params import PostRef
from scheduler.web.posting_api import (
    MAX_TEXT,
    Approver,
    Editor,
    ImageRef,
    PostCreate,
    PostId,
    Source,
    When,
    _when,
)
from scheduler.web.reports import COUNTER_WORDS, metric_offsets, post_engagement, post_reads
from scheduler.web.webapp import WebApp

#: Where a form goes back to afterwards (a path on this site), e.g. /approvals.
Next = Annotated[str, Form(max_length=500)]


def _(message: str) -> str:
    """Marks a string for extraction (pybabel); translated where shown."""
    return message


#: Units as shown next to a count (the msgid is English; Indonesian in the catalog).
UNIT_WORDS = {"graphemes": _("characters"), "codepoints": _("characters"), "utf16": _("UTF-16 units"),
              "bytes": _("bytes"), "x_weighted": _("weighted characters")}
for _method in UNIT_NAMES:
    UNIT_WORDS.setdefault(_method, UNIT_NAMES[_method])
#: What was done to an image's shape for a platform (ImageFit.reshaped, or sent as attached, or neither).
FIT_WORDS = {"padded": _("padded to the platform's shape"), "cropped": _("cropped to the platform's shape"),
             "as_attached": _("sent as is"), "changed": _("not padded or cropped")}


# --- pages ---------------------------------------------------------------------------------------

def _channel_choices(board: WebApp, session: Session) -> list[dict[str, str]]:
    return [{"name": c.name, "platform": c.platform}
            for c in sorted(channel_store.channel_configs(session, board.settings).values(), key=lambda c: c.name)]


def _template_names(board: WebApp) -> list[str]:
    root = board.settings.templates_dir
    with contextlib.suppress(OSError):
        return sorted(str(p.relative_to(root)) for p in root.rglob("*.j2") if p.is_file())[:500]
    return []


def _num(request: Request) -> Callable[[int], str]:
    """Numbers with the thousand separator of the reader's language (10.000 in Indonesian)."""
    who: Who | None = getattr(request.state, "who", None)
    return lambda value: number(value, who.language if who else "id")


def _size(request: Request) -> Callable[[int], str]:
    """Bytes as people read them, in the reader's language: 1,5 MB, 820 KB (1 MB = 1,048,576 bytes,
    as the platforms count their limits)."""
    from babel.numbers import format_decimal

    who: Who | None = getattr(request.state, "who", None)

    def size(value: int) -> str:
        for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
            if value >= scale:
                return f"{format_decimal(value / scale, format='#,##0.#', locale=who.language if who else 'id')} {unit}"
        return f"{value} B"

    return size


def _may(who: Who) -> Callable[[str], bool]:
    actor = Actor(who.name, who.role)
    return actor.may


async def post_page(board: WebApp, request: Request, q: PostRef) -> Response:
    """GET /posts/{id} (a route of ``ROUTES``)."""
    return await render_post(board, request, q.id)


async def render_post(board: WebApp, request: Request, post_id: int, status: int = 200, **extra: Any) -> Response:
    """The post page: facts, text with its counts, history, and the actions ``who`` may take."""
    who: Who = request.state.who

    def load(session: Session) -> dict[str, Any]:
        post = post_store.get_post(session, post_id)
        return {"post": post_row(post, board.tz), "counts": actions.text_counts(board.ctx, session, post),
                "history": history_rows(session, HistoryFilter(all=True, post_id=post.id), board.tz),
                "reads": post_reads(session, post.id, board)}

    data = await board.read(load)
    return board.render(request, "post.html", status=status, may=_may(who), units=UNIT_WORDS, num=_num(request),
                        editable=actions.EDITABLE, engagement=post_engagement(data.pop("reads"), who.language),
                        counter_words=COUNTER_WORDS, offsets=metric_offsets(board, who.language), **data, **extra)


async def _compose_page(board: WebApp, request: Request, form: dict[str, Any], *, status: int = 200,
                        previews: list[actions.Preview] | None = None, error: str | None = None,
                        matches: list[actions.SourceMatch] | None = None) -> Response:
    channels = await board.read(lambda s: _channel_choices(board, s))
    return board.render(request, "compose.html", status=status, form=form, channels=channels,
                        templates=_template_names(board), previews=previews, error=error, matches=matches,
                        units=UNIT_WORDS, max_image_bytes=board.settings.max_image_bytes, num=_num(request),
                        size=_size(request), FIT_WORDS=FIT_WORDS)


async def _read_image(board: WebApp, image: UploadFile | None) -> tuple[bytes | None, str]:
    """The upload's bytes, checked as `--image` is: its size, and Pillow decodes it whole."""
    if image is None or not image.filename:
        return None, ""
    limit = board.settings.max_image_bytes
    data = await image.read(limit + 1)
    name = FilePath(image.filename).name
    if not data:
        raise ValidationError(f"image {name}: the file is empty")
    if len(data) > limit:
        raise ValidationError(f"image {name}: over the {limit:,}-byte limit (PROMO_MAX_IMAGE_BYTES)")
    inspect_image(data, f"image {name}")  # ImageError (a ValidationError) names what is wrong
    return data, name


def register(api: FastAPI, board: WebApp) -> None:  # noqa: C901, PLR0915 - one small closure per route
    """Compose, Approvals, the post page's actions, and the posts API's writes."""
    tz = board.tz

    # --- compose ---------------------------------------------------------------------------

    @api.get("/compose", include_in_schema=False)
    async def compose_page(request: Request, who: Editor,
                           q: Annotated[str | None, Query(max_length=200)] = None,
                           product: Annotated[str | None, Query(max_length=100)] = None,
                           event: Annotated[str | None, Query(max_length=100)] = None) -> Response:
        form: dict[str, Any] = {"source": "text", "when": "queue", "channels": []}
        if product:
            form.update(source="product", product=product)
        elif event:
            form.update(source="event", event=event)
        matches = await board.act(who, actions.find_sources, q) if q else None
        previews = None
        if product or event:
            names = await board.read(lambda s: [c["name"] for c in _channel_choices(board, s)])
            form["channels"] = names
            with contextlib.suppress(NotFoundError, ValidationError, ComposeError):
                previews = await board.act(who, actions.preview, channels=names, product=product, event=event)
        return await _compose_page(board, request, {**form, "q": q or ""}, matches=matches, previews=previews)

    @api.post("/compose", include_in_schema=False)
    async def compose_submit(
            request: Request, who: Editor,
            channels: Annotated[list[str], Form(max_length=50)] = [],  # noqa: B006 (FastAPI copies it)
            source: Annotated[Source, Form()] = "text",
            product: Annotated[str, Form(max_length=100)] = "",
            event: Annotated[str, Form(max_length=100)] = "",
            text: Annotated[str, Form(max_length=MAX_TEXT)] = "",
            link: Annotated[str, Form(max_length=2000)] = "",
            template: Annotated[str, Form(max_length=200)] = "",
            shorten: Annotated[bool, Form()] = False,
            when: Annotated[When, Form()] = "queue",
            at: Annotated[str, Form(max_length=40)] = "",
            alt: Annotated[str, Form(max_length=post_images.MAX_ALT)] = "",
            do: Annotated[Literal["preview", "save"], Form()] = "save",
            image: Annotated[UploadFile | None, File()] = None) -> Response:
        body = PostCreate(channels=channels or ["-"], source=source, product=product, event=event, text=text,
                          link=link, kind=None, template=template, shorten=shorten, when=when, at=at)
        form = {**body.model_dump(), "channels": channels, "alt": alt}
        previews: list[actions.Preview] | None = None
        try:
            data, name = await _read_image(board, image)
            # Stored by content hash as queueing stores it: the copies fitted for the preview are the ones queued.
            staged = await board.act(who, images.stage_image, data, name) if data is not None else None
            if channels:
                previews = await board.act(who, actions.preview, channels=channels, image=data is not None,
                                           image_id=staged.id if staged else None, **body.source_args())
            if do == "preview":
                return await _compose_page(board, request, form, previews=previews)
            if not channels:
                raise ValidationError("choose at least one channel")
            # Queued by the stored image's id, as the API's images are (POST /api/v1/posts).
            if staged is not None:
                body.images = [ImageRef(id=staged.id, alt=alt.strip() or None)]
            queued = await board.act(who, actions.queue_posts, channels=channels, **_when(body),
                                     **body.image_args(), **body.source_args())
        except (ComposeError, ValidationError, NotFoundError, StateError) as exc:
            return await _compose_page(board, request, form, status=400, previews=previews, error=str(exc))
        ids = [r["id"] for r in queued.rows]
        message = (f"post #{ids[0]} saved ({queued.rows[0]['status']})" if len(ids) == 1 else
                   f"posts {', '.join(f'#{i}' for i in ids)} saved ({queued.rows[0]['status']})")
        return board.done(f"/posts/{ids[0]}" if len(ids) == 1 else "/posts", message)

    # --- approvals -------------------------------------------------------------------------

    @api.get("/approvals", include_in_schema=False)
    async def approvals_page(request: Request, who: Approver) -> Response:
        def load(session: Session) -> list[dict[str, Any]]:
            rows = []
            for p in post_store.list_posts(session, status=[PostStatus.PENDING_APPROVAL.value], limit=500):
                rows.append({**post_row(p, tz), "counts": actions.text_counts(board.ctx, session, p)})
            return rows

        return board.render(request, "approvals.html", rows=await board.read(load), units=UNIT_WORDS,
                            may=_may(who), num=_num(request))

    # --- the post page's forms -------------------------------------------------------------

    async def run_form(request: Request, who: Who, post_id: int, next_page: str,
                       work: Callable[[], Awaitable[str]]) -> Response:
        try:
            message = await work()
        except (ComposeError, ValidationError, StateError) as exc:
            status = 409 if isinstance(exc, StateError) else 400
            return await render_post(board, request, post_id, status=status, problem=str(exc),
                                     typed=getattr(request.state, "typed", None))
        return board.done(_local_path(next_page) if next_page else f"/posts/{post_id}", message)

    @api.post("/posts/{id}/edit", include_in_schema=False)
    async def edit_form(request: Request, who: Editor, id: PostId,
                        text: Annotated[str, Form(max_length=MAX_TEXT)], next: Next = "") -> Response:
        request.state.typed = text

        async def work() -> str:
            await board.act(who, actions.edit_text, id, text)
            return f"post #{id}: text changed"

        return await run_form(request, who, id, next, work)

    @api.post("/posts/{id}/cancel", include_in_schema=False)
    async def cancel_form(request: Request, who: Editor, id: PostId, next: Next = "") -> Response:
        async def work() -> str:
            await board.act(who, actions.cancel, [id], f"cancelled by {who.name}")
            return f"post #{id} cancelled"

        return await run_form(request, who, id, next, work)

    @api.post("/posts/{id}/submit", include_in_schema=False)
    async def submit_form(request: Request, who: Editor, id: PostId, next: Next = "") -> Response:
        async def work() -> str:
            (c,) = await board.act(who, actions.submit, [id])
            return f"post #{id} submitted ({c.status})"

        return await run_form(request, who, id, next, work)

    @api.post("/posts/{id}/reschedule", include_in_schema=False)
    async def reschedule_form(request: Request, who: Editor, id: PostId,
                              at: Annotated[str, Form(max_length=40)] = "", now: Annotated[bool, Form()] = False,
                              next: Next = "") -> Response:
        async def work() -> str:
            c = await board.act(who, actions.reschedule, id, at.strip() or None, asap=now)
            when = c.scheduled_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if c.scheduled_at else "–"
            return f"post #{id} moved to {when}"

        return await run_form(request, who, id, next, work)

    @api.post("/posts/{id}/retry", include_in_schema=False)
    async def retry_form(request: Request, who: Approver, id: PostId, next: Next = "") -> Response:
        async def work() -> str:
            await board.act(who, actions.retry, [id])
            return f"post #{id} queued again"

        return await run_form(request, who, id, next, work)

    @api.post("/posts/{id}/published", include_in_schema=False)
    async def published_form(request: Request, who: Approver, id: PostId,
                             url: Annotated[str, Form(max_length=2000)] = "", next: Next = "") -> Response:
        async def work() -> str:
            await board.act(who, actions.mark_published, [id], url.strip() or None)
            return f"post #{id} marked published"

        return await run_form(request, who, id, next, work)

    @api.post("/posts/{id}/approve", include_in_schema=False)
    async def approve_form(request: Request, who: Approver, id: PostId, next: Next = "") -> Response:
        async def work() -> str:
            await board.act(who, actions.approve, [id])
            return f"post #{id} approved"

        return await run_form(request, who, id, next, work)

    @api.post("/posts/{id}/reject", include_in_schema=False)
    async def reject_form(request: Request, who: Approver, id: PostId,
                          comment: Annotated[str, Form(max_length=2000)] = "", next: Next = "") -> Response:
        async def work() -> str:
            await board.act(who, actions.reject, [id], comment)
            return f"post #{id} rejected"

        return await run_form(request, who, id, next, work)


__all__ = ["register", "render_post"]
