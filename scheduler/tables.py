"""The tables read most, in SQLAlchemy Core: channels, posts, history and the service's heartbeats.

:mod:`scheduler.models` maps its classes onto these (``__table__``) and declares the other
tables itself, all in one :data:`metadata`. They live apart so that a command that only reads
(``promo history``, ``promo post list``, ``promo status``) runs on Core alone: importing the ORM
and mapping every class costs more than the query. The partial indexes over claimable posts are
declared in :mod:`scheduler.models` (their dialect options load the PostgreSQL dialect, which
SQLite never needs).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Computed, ForeignKey, Index, Integer, MetaData, String, Table, Text

from scheduler.dbtime import UTCDateTime, utcnow
from scheduler.states import ChannelStatus

metadata = MetaData()


def _when(name: str, *, nullable: bool = True, **kw: Any) -> Column[Any]:
    """A timestamp column (UTC, timezone-aware in Python)."""
    return Column(name, UTCDateTime(), nullable=nullable, **kw)


channels = Table(
    "channels", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(60), nullable=False, unique=True),
    Column("platform", String(30), nullable=False),
    Column("source", String(10), nullable=False, default="env"),  # env | db
    # Non-secret options of a DB channel, plus the adapter's plain state under ``__state__``.
    Column("options", JSON, nullable=False, default=dict),
    # Fernet-encrypted JSON: secret options of DB channels and tokens the adapter refreshed.
    Column("secrets_enc", Text),
    Column("status", String(20), nullable=False, default=ChannelStatus.ACTIVE),
    Column("status_reason", Text),
    _when("rate_limited_until"),
    _when("last_alert_at"),
    _when("created_at", nullable=False, default=utcnow),
    _when("updated_at", nullable=False, default=utcnow),
)

posts = Table(
    "posts", metadata,
    Column("id", Integer, primary_key=True),
    Column("channel_id", ForeignKey("channels.id"), nullable=False),
    Column("kind", String(30), nullable=False),  # a PostKind
    Column("product_id", ForeignKey("products.id")),
    Column("event_id", ForeignKey("events.id")),
    Column("template", String(200)),
    Column("text", Text, nullable=False),
    Column("link", String(500)),
    Column("title", String(300)),
    Column("summary", Text),
    Column("image_path", String(500)),
    Column("image_alt", Text),
    # Images after the cover (albums, carousels), fitted for this channel: JSON [[path, alt|null], …] or None.
    Column("more_images", Text),
    Column("status", String(20), nullable=False, index=True),
    _when("scheduled_at"),
    _when("next_attempt_at"),
    # Computed by the database on every write (migration 0008): what the claim and the idle poll order by.
    Column("due_at", UTCDateTime(), Computed("coalesce(next_attempt_at, scheduled_at)", True)),
    _when("published_at"),
    Column("remote_id", String(300)),
    Column("remote_url", String(500)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("failures", Integer, nullable=False, default=0),
    Column("lease_owner", String(100)),
    _when("lease_expires_at"),
    Column("idempotency_key", String(64), nullable=False, unique=True),
    # The jobs' natural key ("highlight:2026-11-28:fb").
    Column("dedupe_key", String(200), unique=True),
    Column("error", Text),
    Column("created_by", String(100), nullable=False, default="system"),
    _when("created_at", nullable=False, default=utcnow),
    _when("updated_at", nullable=False, default=utcnow),
    Index("ix_posts_status_scheduled", "status", "scheduled_at"),
    Index("ix_posts_channel_status", "channel_id", "status"),
    Index("ix_posts_product_id", "product_id"),
    Index("ix_posts_event_id", "event_id"),
    Index("ix_posts_scheduled_at", "scheduled_at"),  # 0007: the calendar
)

history = Table(
    "history", metadata,
    Column("id", Integer, primary_key=True),
    Column("post_id", ForeignKey("posts.id"), nullable=False, index=True),
    Column("channel_id", ForeignKey("channels.id"), nullable=False),
    Column("action", String(20), nullable=False),  # attempt | transition
    _when("started_at", nullable=False, default=utcnow, index=True),
    _when("finished_at"),
    Column("from_status", String(20)),
    Column("to_status", String(20)),
    Column("outcome", String(30)),
    Column("http_status", Integer),
    Column("remote_id", String(300)),
    Column("remote_url", String(500)),
    Column("error", Text),
    Column("actor", String(100), nullable=False, default="system"),
    # Send budgets count one channel's attempts in a recent window (scheduler.budget, migration
    # 0002); the filters of `promo history` and the web app (migration 0004).
    Index("ix_history_channel_started", "channel_id", "started_at"),
    Index("ix_history_to_status_started", "to_status", "started_at"),
    Index("ix_history_outcome_started", "outcome", "started_at"),
    Index("ix_history_action_id", "action", "id"),
)

#: The dispatch loop's last tick per service process (`promo status`, /healthz's neighbour).
heartbeats = Table(
    "heartbeats", metadata,
    Column("worker", String(100), primary_key=True),
    _when("started_at", nullable=False, default=utcnow),
    _when("last_tick", nullable=False, default=utcnow),
)
