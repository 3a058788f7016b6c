"""The posts API's writes (``/api/v1/posts`` and its actions, ``/api/v1/preview``,
``/api/v1/sources``): bodies declared as pydantic models, so the OpenAPI description is generated
from them; each route runs the same action as its page form (:mod:`scheduler.web.posting`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, Path, Query, UploadFile
from pydantic import BaseModel, Field

from scheduler import post_images
from scheduler.actions import images
from scheduler.actions import posts as actions
from scheduler.errors import ValidationError
from scheduler.web.apimodels import Changed, Created, Edited, Previews, Sources, errors
from scheduler.web.core import Who, require
from scheduler.web.webapp import WebApp

#: Largest id a database row can have (SQLite and PostgreSQL BIGINT: signed 64 bits).
MAX_ID = 2**63 - 1
MAX_TEXT = 20_000
PostId = Annotated[int, Path(ge=1, le=MAX_ID, description="the post's id")]
Source = Literal["product", "event", "text"]
When = Literal["at", "queue", "now", "draft"]
# Module-level: FastAPI resolves the (string) annotations of the routes in this module's globals.
Editor = Annotated[Who, Depends(require("editor"))]
Approver = Annotated[Who, Depends(require("approver"))]
#: What an action on one post answers: the post's state after it; 404 no such post, 409 wrong state.
CHANGE: dict[str, Any] = {"response_model": Changed, "responses": errors(404, 409)}


# --- what a request carries (pydantic: the OpenAPI description is generated from these) -------------

class SourceFields(BaseModel):
    """What a post is made from, and for which channels (as `promo compose` / `promo post new`)."""

    channels: list[str] = Field(min_length=1, max_length=50, description="channel names")
    source: Source = Field("text", description="which of product, event and text the post is made from")
    product: str | None = Field(None, max_length=100, description="a product's id (source=product)")
    event: str | None = Field(None, max_length=100, description="an event's id (source=event)")
    text: str | None = Field(None, max_length=MAX_TEXT, description="free text (source=text)")
    link: str | None = Field(None, max_length=2000, description="a link for free text")
    kind: str | None = Field(None, max_length=60, description="post kind (default from the source)")
    template: str | None = Field(None, max_length=200, description="template name instead of <kind>/<platform>.j2")
    shorten: bool = Field(False, description="cut free text at a word boundary to fit (otherwise refused)")

    def source_args(self) -> dict[str, Any]:
        return {"product": (self.product or "").strip() or None if self.source == "product" else None,
                "event": (self.event or "").strip() or None if self.source == "event" else None,
                "text": self.text if self.source == "text" else None,
                "link": (self.link or "").strip() or None if self.source == "text" else None,
                "kind": (self.kind or "").strip() or None, "template": (self.template or "").strip() or None,
                "shorten": self.shorten}


class PreviewBody(SourceFields):
    image: bool = Field(False, description="compose as an image caption (some platforms' limits differ)")
    image_id: str | None = Field(None, pattern=images.STAGED.pattern,
                                 description="an image sent to POST /api/v1/images: each channel's preview says "
                                             "what its platform receives of it (implies image)")


class ImageRef(BaseModel):
    """An image sent to POST /api/v1/images, and its alt text."""

    id: str = Field(pattern=images.STAGED.pattern, description="the ``id`` POST /api/v1/images answered")
    alt: str | None = Field(None, max_length=post_images.MAX_ALT,
                            description="what the image shows, for people who cannot see it")


class PostCreate(SourceFields):
    """A new post per channel: the compose form's fields."""

    when: When = Field("draft", description="at a local time (at), the next free slot (queue), now, or a draft")
    at: str | None = Field(None, max_length=40, description='"YYYY-MM-DD HH:MM" local time, or ISO 8601 with offset')
    images: list[ImageRef] = Field(default_factory=list, max_length=20,
                                   description="images sent to POST /api/v1/images, in order (the first is the "
                                               "cover), as `--image`/`--alt` repeated: each fitted per channel, "
                                               "and each platform gets as many as it takes per post")

    def image_args(self) -> dict[str, Any]:
        """The images as :func:`scheduler.actions.posts.queue_posts` takes them (ids and alts in order)."""
        if not self.images:
            return {}
        return {"image_ids": [i.id for i in self.images], "alt": [(i.alt or "").strip() or None for i in self.images]}


class TextEdit(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="the post's new text, as it is to go out")


class Rejection(BaseModel):
    comment: str = Field(min_length=1, max_length=2000, description="why (its author reads it in the history)")


class Reschedule(BaseModel):
    at: str | None = Field(None, max_length=40, description='"YYYY-MM-DD HH:MM" local time, or ISO 8601 with offset')
    now: bool = Field(False, description="publish as soon as possible instead")


class Published(BaseModel):
    url: str | None = Field(None, max_length=2000, description="where the post is on the platform")


class Cancellation(BaseModel):
    reason: str | None = Field(None, max_length=500, description="why (into the history)")


def _changed(c: actions.Changed, tz: Any) -> dict[str, Any]:
    return {"id": c.id, "status": c.status,
            "scheduled_at": c.scheduled_at.astimezone(tz).isoformat(timespec="seconds") if c.scheduled_at else None}



def register(api: FastAPI, board: WebApp) -> None:  # noqa: C901 - one small closure per route
    """The posts API's writes."""
    tz = board.tz

    # --- API -------------------------------------------------------------------------------

    @api.post("/api/v1/preview", tags=["api"], response_model=Previews, responses=errors(404))
    async def api_preview(body: PreviewBody, who: Editor) -> dict[str, Any]:
        """Each channel's text as it would go out (the `promo compose` path; nothing is stored): the
        text, its count per rule against the platform's limit, whether it was shortened, or why not."""
        previews = await board.act(who, actions.preview, channels=body.channels, image=body.image,
                                   image_id=body.image_id, **body.source_args())
        return {"channels": [p.as_dict() for p in previews]}

    @api.post("/api/v1/images", tags=["api"], status_code=201, response_model=images.Staged, responses=errors())
    async def api_image(who: Editor, image: Annotated[UploadFile, File(description="JPEG, PNG, GIF or WebP")]
                        ) -> images.Staged:
        """Store an image for a post (checked as `--image` is; the same bytes twice are one file): its
        ``id`` goes to /api/v1/preview as ``image_id``, which then says what each platform receives."""
        data = await image.read(board.settings.max_image_bytes + 1)
        staged: images.Staged = await board.act(who, images.stage_image, data, image.filename or "image")
        return staged

    @api.get("/api/v1/sources", tags=["api"], response_model=Sources, responses=errors())
    async def api_sources(who: Editor, q: Annotated[str, Query(min_length=1, max_length=200,
                                                                 description="part of an id or name")]
                          ) -> list[actions.SourceMatch]:
        """Products and events whose id or name contains ``q``: what a post can be made from."""
        return list(await board.act(who, actions.find_sources, q))

    @api.post("/api/v1/posts", tags=["api"], status_code=201, response_model=Created,
              responses=errors(404, 409))
    async def api_create(body: PostCreate, who: Editor) -> dict[str, Any]:
        """One post per channel, all or none (like `promo post new`); the posts as /api/v1/posts rows.
        An image id that names no stored image is refused (404, naming it): nothing is queued."""
        queued = await board.act(who, actions.queue_posts, channels=body.channels, **_when(body),
                                 **body.image_args(), **body.source_args())
        return {"posts": queued.rows}

    @api.patch("/api/v1/posts/{id}", tags=["api"], response_model=Edited, responses=errors(404, 409))
    async def api_edit(id: PostId, body: TextEdit, who: Editor) -> dict[str, Any]:
        """Replace an unsent post's text, as written: refused (400, saying by how much) if it does not fit."""
        edited = await board.act(who, actions.edit_text, id, body.text)
        return {"id": edited.id, "status": edited.status,
                "counts": [{"count": n, "limit": limit, "method": m} for n, limit, m in edited.counts]}

    @api.post("/api/v1/posts/{id}/approve", tags=["api"], **CHANGE)
    async def api_approve(id: PostId, who: Approver) -> dict[str, Any]:
        """pending_approval → scheduled."""
        (c,) = await board.act(who, actions.approve, [id])
        return _changed(c, tz)

    @api.post("/api/v1/posts/{id}/reject", tags=["api"], **CHANGE)
    async def api_reject(id: PostId, body: Rejection, who: Approver) -> dict[str, Any]:
        """pending_approval → draft, the comment in its history."""
        (c,) = await board.act(who, actions.reject, [id], body.comment)
        return _changed(c, tz)

    @api.post("/api/v1/posts/{id}/cancel", tags=["api"], **CHANGE)
    async def api_cancel(id: PostId, who: Editor, body: Cancellation | None = None) -> dict[str, Any]:
        """Withdraw a post not yet published."""
        reason = (body.reason if body else None) or f"cancelled by {who.name}"
        (c,) = await board.act(who, actions.cancel, [id], reason)
        return _changed(c, tz)

    @api.post("/api/v1/posts/{id}/reschedule", tags=["api"], **CHANGE)
    async def api_reschedule(id: PostId, body: Reschedule, who: Editor) -> dict[str, Any]:
        """Move a post to another time (or now)."""
        c = await board.act(who, actions.reschedule, id, (body.at or "").strip() or None, asap=body.now)
        return _changed(c, tz)

    @api.post("/api/v1/posts/{id}/retry", tags=["api"], **CHANGE)
    async def api_retry(id: PostId, who: Approver) -> dict[str, Any]:
        """Queue a failed, expired or needs_review post again, now."""
        (c,) = await board.act(who, actions.retry, [id])
        return _changed(c, tz)

    @api.post("/api/v1/posts/{id}/published", tags=["api"], **CHANGE)
    async def api_published(id: PostId, who: Approver, body: Published | None = None) -> dict[str, Any]:
        """Confirm a needs_review post is on the platform (with its URL)."""
        (c,) = await board.act(who, actions.mark_published, [id], (body.url if body else None) or None)
        return _changed(c, tz)



def _when(body: PostCreate) -> dict[str, Any]:
    if body.when == "at":
        if not (body.at or "").strip():
            raise ValidationError("give the time to publish at (YYYY-MM-DD HH:MM)")
        return {"at": (body.at or "").strip()}
    return {"queue": body.when == "queue", "now": body.when == "now", "draft": body.when == "draft"}


