"""SQLAlchemy 2.x tables. All timestamps are stored in UTC and are timezone-aware in Python.

The post lifecycle (one :class:`PostStatus`; only :mod:`scheduler.storage.posts` writes it).
Every arrow there is, each with what takes it (``tests/unit/test_lifecycle.py`` holds the same list,
written out by hand, so a change needs a deliberate edit in both places)::

    draft ──► pending_approval ──► scheduled ──► publishing ──► published
                                       ▲  │            │
                 (staff retry) ────────┘  │            ├──► retry_wait ──► publishing
                 from failed, expired,    │            ├──► failed
                 needs_review             │            ├──► needs_review
                                          ├──► cancelled   └──► scheduled (channel paused)
                                          └──► expired

    draft            → pending_approval | scheduled (submitted) | cancelled
    pending_approval → scheduled (approved) | draft (sent back) | cancelled | expired (not approved in time)
    scheduled        → publishing (claimed) | cancelled | expired (too late) | scheduled (rescheduled)
                       | pending_approval (text edited while approval is required)
    publishing       → published | retry_wait (transient, rate limit) | failed (rejected, retries used up)
                       | needs_review (outcome unknown) | scheduled (channel paused: auth or config)
    retry_wait       → publishing (next try) | scheduled (rescheduled) | failed | cancelled | expired
    failed           → scheduled (staff retry)
    needs_review     → published (staff confirm) | scheduled (staff retry) | cancelled
    expired          → scheduled (staff retry)
    published, cancelled: final
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from scheduler import tables
from scheduler.dbtime import UTCDateTime as UTCDateTime  # re-exported: models is where they are used
from scheduler.dbtime import utcnow as utcnow
from scheduler.states import TERMINAL as TERMINAL  # re-exported: the words beside the tables
from scheduler.states import ChannelStatus as ChannelStatus
from scheduler.states import HighlightStatus as HighlightStatus
from scheduler.states import PostKind as PostKind
from scheduler.states import PostStatus as PostStatus

CLAIMABLE_WHERE: dict[str, Any] = {f"{d}_where": text("status IN ('scheduled', 'retry_wait')") for d in ("postgresql", "sqlite")}


class Base(DeclarativeBase):
    metadata = tables.metadata
    type_annotation_map = {dt.datetime: UTCDateTime()}


class Umkm(Base):
    __tablename__ = "umkm"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(100))
    city: Mapped[str | None] = mapped_column(String(100))
    district: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(50))
    instagram: Mapped[str | None] = mapped_column(String(100))
    website: Mapped[str | None] = mapped_column(String(300))
    curated: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    products: Mapped[list[Product]] = relationship(back_populates="umkm")


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    umkm_id: Mapped[int] = mapped_column(ForeignKey("umkm.id"), index=True)  # 0009: the import hook
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price: Mapped[int | None] = mapped_column(BigInteger)
    image: Mapped[str | None] = mapped_column(String(500))
    #: Alt text of each image, in the order of ``image`` (``;``-separated).
    image_alt: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(500))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    curation: Mapped[str] = mapped_column(String(20), default="pending")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    umkm: Mapped[Umkm] = relationship(back_populates="products")


class Event(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    venue: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime | None]
    url: Mapped[str | None] = mapped_column(String(500))
    image: Mapped[str | None] = mapped_column(String(500))
    #: Alt text of each image, in the order of ``image`` (``;``-separated).
    image_alt: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Channel(Base):
    """A channel's row: where it came from, its state, and (DB channels) its options."""

    __table__ = tables.channels
    id: Mapped[int]
    name: Mapped[str]
    platform: Mapped[str]
    source: Mapped[str]  #: env | db
    #: Non-secret options of a DB channel, plus the adapter's plain state under ``__state__``.
    options: Mapped[dict[str, Any]]
    #: Fernet-encrypted JSON: secret options of DB channels and tokens the adapter refreshed.
    secrets_enc: Mapped[str | None]
    status: Mapped[str]
    status_reason: Mapped[str | None]
    rate_limited_until: Mapped[dt.datetime | None]
    last_alert_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class Post(Base):
    """One post on one channel (columns: :data:`scheduler.tables.posts`)."""

    __table__ = tables.posts
    id: Mapped[int]
    channel_id: Mapped[int]
    kind: Mapped[str]  #: a :class:`PostKind`
    product_id: Mapped[int | None]
    event_id: Mapped[int | None]
    template: Mapped[str | None]
    text: Mapped[str]
    link: Mapped[str | None]
    title: Mapped[str | None]
    summary: Mapped[str | None]
    image_path: Mapped[str | None]
    image_alt: Mapped[str | None]
    #: Images after the cover (albums, carousels), fitted for this channel: JSON ``[[path, alt|null], …]`` or None.
    more_images: Mapped[str | None]
    status: Mapped[str]
    scheduled_at: Mapped[dt.datetime | None]
    next_attempt_at: Mapped[dt.datetime | None]
    #: coalesce(next_attempt_at, scheduled_at), computed by the database on every write (0008)
    due_at: Mapped[dt.datetime | None]
    published_at: Mapped[dt.datetime | None]
    remote_id: Mapped[str | None]
    remote_url: Mapped[str | None]
    attempts: Mapped[int]
    failures: Mapped[int]
    lease_owner: Mapped[str | None]
    lease_expires_at: Mapped[dt.datetime | None]
    idempotency_key: Mapped[str]
    dedupe_key: Mapped[str | None]  #: jobs' natural key ("highlight:2026-11-28:fb")
    error: Mapped[str | None]
    created_by: Mapped[str]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    channel: Mapped[Channel] = relationship()


# 0008: the claim and the idle poll, over claimable posts only (here, not in scheduler.tables:
# their dialect options load the PostgreSQL dialect).
Index("ix_posts_claim_due", tables.posts.c.channel_id, tables.posts.c.due_at, **CLAIMABLE_WHERE)
Index("ix_posts_due_at", tables.posts.c.due_at, **CLAIMABLE_WHERE)


class HistoryEntry(Base):
    """The history log: every publish attempt and every status change, with who and why."""

    __table__ = tables.history
    id: Mapped[int]
    post_id: Mapped[int]
    channel_id: Mapped[int]
    action: Mapped[str]  #: attempt | transition
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    from_status: Mapped[str | None]
    to_status: Mapped[str | None]
    outcome: Mapped[str | None]
    http_status: Mapped[int | None]
    remote_id: Mapped[str | None]
    remote_url: Mapped[str | None]
    error: Mapped[str | None]
    actor: Mapped[str]
    post: Mapped[Post] = relationship()
    channel: Mapped[Channel] = relationship()


class AuditEntry(Base):
    """Who changed what: imports, edits, approvals, channel changes."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    entity: Mapped[str] = mapped_column(String(30))
    entity_id: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: argon2 hash of the web app password; None: cannot log in to the web app.
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    #: A disabled user's sessions and tokens stop working at once.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Language of the web app's pages: "id" or "en".
    language: Mapped[str] = mapped_column(String(5), default="id")


class WebSession(Base):
    """A web app login: the cookie holds a random secret, the row only its SHA-256."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    client: Mapped[str | None] = mapped_column(String(100))


class ApiToken(Base):
    """A user's API token (``Authorization: Bearer``), stored as its SHA-256; shown once."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class LoginFailure(Base):
    """A wrong password, per account and client address: the throttle all web processes share."""

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    account: Mapped[str] = mapped_column(String(100), index=True)
    client: Mapped[str] = mapped_column(String(100), index=True)


class WebKey(Base):
    """The key signing session cookies: made on first use, shared by every web process."""

    __tablename__ = "web_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(128))


class Highlight(Base):
    """One day's highlight decision per channel; the unique key makes the job idempotent."""

    __tablename__ = "highlights"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[dt.date]
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    #: 0 … PROMO_HIGHLIGHT_COUNT-1: which of the day's picks this is.
    slot: Mapped[int] = mapped_column(Integer, default=0)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    umkm_id: Mapped[int | None] = mapped_column(ForeignKey("umkm.id"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id"))
    #: A :class:`HighlightStatus`.
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("day", "channel_id", "slot", name="uq_highlight_day_channel_slot"),)


class Heartbeat(Base):
    """The dispatch loop's last tick per service process (for `promo status`)."""

    __table__ = tables.heartbeats
    worker: Mapped[str]
    started_at: Mapped[dt.datetime]
    last_tick: Mapped[dt.datetime]


class Metric(Base):
    """One engagement counter of a published post as read back from its platform at ``fetched_at``.

    ``name`` is the common vocabulary (views, likes, shares, replies, saves, clicks, reach, quotes;
    see ``MetricsSpec``), ``platform_name`` the platform's own (``favourites_count``, ``saved``…).
    """

    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_post_fetched", "post_id", "fetched_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    fetched_at: Mapped[dt.datetime] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(20))
    value: Mapped[int] = mapped_column(BigInteger)
    platform_name: Mapped[str] = mapped_column(String(60))


class MetricSchedule(Base):
    """When a published post's counters are read next (PROMO_METRICS_AT after publishing).

    ``done`` counts the offsets already read; ``next_at`` is None once all are read or the post is
    gone from the platform (``gone_at``: deleted there; never asked again).
    """

    __tablename__ = "metric_schedule"
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    done: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    gone_at: Mapped[dt.datetime | None]
    #: Why the last read failed, or why the post is gone.
    note: Mapped[str | None] = mapped_column(Text)


class MetricChannel(Base):
    """A channel's collection state, apart from its publishing state (``channels.status``):
    an AuthError pauses reading counters only; a rate limit makes reading wait."""

    __tablename__ = "metric_channels"
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), primary_key=True)
    paused_at: Mapped[dt.datetime | None]
    paused_reason: Mapped[str | None] = mapped_column(Text)
    wait_until: Mapped[dt.datetime | None]
