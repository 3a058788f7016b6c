"""Engagement counters: which published posts are due a read (PROMO_METRICS_AT after publishing),
recording what was read, posts gone from their platform, and each channel's collection state.

Nothing here touches a post's status or its claim: reading counters runs beside publishing.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from scheduler.models import Channel, Metric, MetricChannel, MetricSchedule, Post, PostStatus

#: How long after the last offset a read that keeps failing is still tried.
GIVE_UP = dt.timedelta(days=2)
#: New posts put on the schedule per call (a first run after enabling catches up over a few runs).
ENROL_BATCH = 5000


@dataclass(frozen=True)
class Due:
    """A post whose counters are due now."""

    post_id: int
    channel_id: int
    remote_id: str


def passed(offsets: Sequence[dt.timedelta], published_at: dt.datetime, now: dt.datetime) -> int:
    """How many of ``offsets`` (sorted) lie at or before ``now`` counted from ``published_at``."""
    return bisect.bisect_right([published_at + o for o in offsets], now)


def next_read(offsets: Sequence[dt.timedelta], published_at: dt.datetime, done: int) -> dt.datetime | None:
    return published_at + offsets[done] if done < len(offsets) else None


def enrol(session: Session, platforms: Iterable[str], offsets: Sequence[dt.timedelta], now: dt.datetime) -> int:
    """Put published posts of ``platforms`` that have no schedule row yet on the schedule.

    A post found late (the feature just turned on, the service was down) is read once now for
    the latest offset already past, not once per missed offset.
    """
    rows = session.execute(
        select(Post.id, Post.channel_id, Post.published_at)
        .join(Channel, Channel.id == Post.channel_id)
        .outerjoin(MetricSchedule, MetricSchedule.post_id == Post.id)
        .where(Post.status == PostStatus.PUBLISHED.value, Post.remote_id.is_not(None),
               Post.published_at.is_not(None), Channel.platform.in_(list(platforms)),
               MetricSchedule.post_id.is_(None))
        .order_by(Post.id).limit(ENROL_BATCH)).all()
    for post_id, channel_id, published_at in rows:
        assert published_at is not None  # the query asks for it
        done = max(0, passed(offsets, published_at, now) - 1)
        session.add(MetricSchedule(post_id=post_id, channel_id=channel_id, done=done,
                                   next_at=next_read(offsets, published_at, done)))
    session.flush()
    return len(rows)


def due(session: Session, channel_id: int, now: dt.datetime, limit: int) -> list[Due]:
    """The channel's posts due a read, earliest first."""
    rows = session.execute(
        select(MetricSchedule.post_id, Post.remote_id)
        .join(Post, Post.id == MetricSchedule.post_id)
        .where(MetricSchedule.channel_id == channel_id, MetricSchedule.next_at <= now,
               MetricSchedule.gone_at.is_(None))
        .order_by(MetricSchedule.next_at, MetricSchedule.post_id).limit(limit)).all()
    return [Due(post_id, channel_id, str(remote_id)) for post_id, remote_id in rows]


def channels_with_due(session: Session, now: dt.datetime) -> list[int]:
    """Channels with a post due a read whose collection is neither paused nor waiting."""
    rows = session.execute(
        select(MetricSchedule.channel_id).distinct()
        .outerjoin(MetricChannel, MetricChannel.channel_id == MetricSchedule.channel_id)
        .where(MetricSchedule.next_at <= now, MetricSchedule.gone_at.is_(None),
               MetricChannel.paused_at.is_(None),
               (MetricChannel.wait_until.is_(None)) | (MetricChannel.wait_until <= now))
    ).scalars().all()
    return sorted(rows)


def record(session: Session, post_id: int, counts: Mapping[str, int], names: Mapping[str, str],
           offsets: Sequence[dt.timedelta], now: dt.datetime) -> None:
    """Store one read (platform names mapped to the common ones) and move the post to its next offset."""
    for platform_name, value in counts.items():
        session.add(Metric(post_id=post_id, fetched_at=now, name=names.get(platform_name, platform_name),
                           platform_name=platform_name, value=int(value)))
    row = session.get(MetricSchedule, post_id)
    post = session.get(Post, post_id)
    if row is None or post is None or post.published_at is None:
        return
    row.done = max(row.done + 1, passed(offsets, post.published_at, now))
    row.next_at = next_read(offsets, post.published_at, row.done)
    row.note = None


def mark_gone(session: Session, post_id: int, reason: str, now: dt.datetime) -> None:
    """The post was deleted on its platform: never asked for again (its earlier reads stay)."""
    row = session.get(MetricSchedule, post_id)
    if row is not None:
        row.gone_at, row.next_at, row.note = now, None, reason[:500]


def postpone(session: Session, post_ids: Iterable[int], until: dt.datetime, note: str,
             offsets: Sequence[dt.timedelta]) -> None:
    """A read failed for a reason of its own (a 5xx, a timeout): try these posts again at ``until``,
    but not past ``GIVE_UP`` after the last offset (then the post keeps the reads it has)."""
    rows = session.execute(select(MetricSchedule, Post.published_at).join(Post, Post.id == MetricSchedule.post_id)
                           .where(MetricSchedule.post_id.in_(list(post_ids)))).all()
    for row, published_at in rows:
        last = published_at + offsets[-1] + GIVE_UP if published_at is not None else until
        row.next_at, row.note = (until if until <= last else None), note[:500]


def _state(session: Session, channel_id: int) -> MetricChannel:
    row = session.get(MetricChannel, channel_id)
    if row is None:
        row = MetricChannel(channel_id=channel_id)
        session.add(row)
    return row


def pause(session: Session, channel_id: int, reason: str, now: dt.datetime) -> None:
    """Credentials refused for reading: stop reading this channel's counters (publishing goes on)."""
    row = _state(session, channel_id)
    row.paused_at, row.paused_reason = now, reason[:500]


def resume(session: Session, channel_id: int) -> None:
    """Read the channel's counters again (after `promo channels check` succeeded)."""
    row = session.get(MetricChannel, channel_id)
    if row is not None:
        row.paused_at = row.paused_reason = None
        row.wait_until = None


def wait(session: Session, channel_id: int, until: dt.datetime) -> None:
    """The platform rate-limited a read: nothing more is asked of it before ``until``."""
    _state(session, channel_id).wait_until = until


def collection_states(session: Session) -> dict[int, MetricChannel]:
    return {r.channel_id: r for r in session.scalars(select(MetricChannel))}


def gone_ids(session: Session) -> set[int]:
    return set(session.scalars(select(MetricSchedule.post_id).where(and_(MetricSchedule.gone_at.is_not(None)))))
