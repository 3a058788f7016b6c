"""The dispatcher's hot path on posts: claim due posts under a lease, renew leases, finish
attempts, and when the next post comes due. Core statements, in bulk: they write the same
history rows as :func:`scheduler.storage.posts.transition`, and only the arrows it allows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Engine,
    Integer,
    bindparam,
    case,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import aliased

from scheduler import tables
from scheduler.models import (
    ChannelStatus,
    Post,
    PostStatus,
    UTCDateTime,
    utcnow,
)
from scheduler.redact import redact
from scheduler.storage.finish_pg import FINISH_PG, arrays
from scheduler.storage.posts import CLAIMABLE


@dataclass(frozen=True)
class Claimed:
    """A post claimed under a lease, with what the adapter needs."""

    id: int
    channel_id: int
    kind: str
    text: str
    link: str | None
    title: str | None
    summary: str | None
    image_path: str | None
    image_alt: str | None
    idempotency_key: str
    created_at: dt.datetime
    scheduled_at: dt.datetime
    attempts: int
    failures: int
    history_id: int = 0
    #: The images after the cover (JSON, see :attr:`Post.more_images`).
    more_images: str | None = None
    #: When this attempt was claimed (its history row's ``started_at``).
    claimed_at: dt.datetime | None = None
    #: When the first earlier attempt that may have reached the platform started (see
    #: :func:`uncertain_since`); None when no earlier attempt may have published anything.
    uncertain_since: dt.datetime | None = None


_P, _C, _H = tables.posts, tables.channels, tables.history
#: Claimable (and waiting: the same two) in literals, as the partial indexes on ``due_at`` say it: with
#: bound parameters neither SQLite nor a generic PostgreSQL plan can tell that those indexes apply.
_CLAIMABLE_ROW = _P.c.status.in_([literal_column(f"'{s}'") for s in CLAIMABLE])


def _claim_statement(*, only_locked_channels: bool = False) -> Any:
    """The claim, built once: the earliest due post of every free channel, under a lease.

    With ``only_locked_channels`` (PostgreSQL) it picks only from the channels whose rows
    this transaction has locked (``c_channels``).
    """
    q = aliased(Post)
    now = bindparam("c_now", type_=UTCDateTime())
    # "Has a post in flight" as NOT IN (one uncorrelated list, hashed once), not a correlated NOT
    # EXISTS: statistics gathered at rest see no publishing posts, and mid-burst PostgreSQL then
    # rescanned every in-flight post for every channel (375 ms a claim at 512 in flight).
    busy = _P.c.channel_id.in_(select(q.channel_id).where(q.status == PostStatus.PUBLISHING.value))
    rank = func.row_number().over(partition_by=_P.c.channel_id, order_by=(_P.c.scheduled_at, _P.c.id))
    ranked = (select(_P.c.id, rank.label("rn")).join(_C, _C.c.id == _P.c.channel_id)
              .where(_CLAIMABLE_ROW, _P.c.due_at <= now, _C.c.status == ChannelStatus.ACTIVE.value,
                     or_(_C.c.rate_limited_until.is_(None), _C.c.rate_limited_until <= now), ~busy))
    if only_locked_channels:
        ranked = ranked.where(_P.c.channel_id.in_(bindparam("c_channels", expanding=True)))
    sub = ranked.subquery()
    pick = select(sub.c.id).where(sub.c.rn == 1).limit(bindparam("c_limit", type_=Integer))
    return (
        update(_P)
        .where(_P.c.id.in_(pick), _P.c.status.in_(CLAIMABLE))
        .values(status=PostStatus.PUBLISHING.value, lease_owner=bindparam("c_worker"),
                lease_expires_at=bindparam("c_expires", type_=UTCDateTime()),
                attempts=_P.c.attempts + 1, updated_at=now)
        .returning(_P.c.id, _P.c.channel_id, _P.c.kind, _P.c.text, _P.c.link, _P.c.title, _P.c.summary,
                   _P.c.image_path, _P.c.image_alt, _P.c.idempotency_key, _P.c.created_at,
                   _P.c.scheduled_at, _P.c.attempts, _P.c.failures, _P.c.next_attempt_at, _P.c.more_images)
    )


def _lock_free_channels_statement() -> Any:
    """PostgreSQL: lock the rows of channels that look free and have a due post, skipping any
    channel another claimer holds at this moment (``FOR UPDATE SKIP LOCKED``)."""
    now = bindparam("c_now", type_=UTCDateTime())
    has_due = select(_P.c.id).where(_P.c.channel_id == _C.c.id, _CLAIMABLE_ROW, _P.c.due_at <= now).exists()
    busy = _C.c.id.in_(select(_P.c.channel_id).where(_P.c.status == PostStatus.PUBLISHING.value))
    return (select(_C.c.id)
            .where(_C.c.status == ChannelStatus.ACTIVE.value,
                   or_(_C.c.rate_limited_until.is_(None), _C.c.rate_limited_until <= now), has_due, ~busy)
            .order_by(_C.c.id).limit(bindparam("c_limit", type_=Integer))
            # FOR NO KEY UPDATE: exclusive among claimers, yet it lets other transactions insert rows
            # that point at the channel (a post, a history row: FOR KEY SHARE), so an expiry or a
            # person queueing a post neither waits for a claim nor deadlocks with one.
            .with_for_update(skip_locked=True, of=_C, key_share=True))


def _attempts_from(claimed: Any) -> Any:
    """INSERT of the attempts' history rows of the posts in ``claimed`` (just claimed: their
    status is already ``publishing``, so where they came from is told by ``next_attempt_at``)."""
    from_status = case((claimed.c.next_attempt_at.is_not(None), PostStatus.RETRY_WAIT.value),
                       else_=PostStatus.SCHEDULED.value)
    return insert(_H).from_select(
        ["post_id", "channel_id", "action", "started_at", "from_status", "to_status", "actor"],
        select(claimed.c.id, claimed.c.channel_id, literal("attempt"), bindparam("c_now", type_=UTCDateTime()),
               from_status, literal(PostStatus.PUBLISHING.value), bindparam("c_worker"))
        .where(*([claimed.c.id.in_(bindparam("c_ids", expanding=True))] if claimed is _P else [])),
    ).returning(_H.c.id, _H.c.post_id)


def _with_attempts(claim: Any) -> Any:
    """PostgreSQL: the claim and its attempts' history rows in one statement and round trip (a
    data-modifying CTE), each claimed row with its ``history_id``."""
    claimed = claim.cte("claimed")
    attempts = _attempts_from(claimed).cte("attempts")
    return select(claimed, attempts.c.id.label("history_id")).join(attempts, attempts.c.post_id == claimed.c.id)


_CLAIM = _claim_statement()
_CLAIM_LOCKED = _claim_statement(only_locked_channels=True)
_CLAIM_LOCKED_WITH_ATTEMPTS = _with_attempts(_CLAIM_LOCKED)
#: SQLite (no data-modifying CTE): the attempts of the posts ``c_ids``, one statement all the same.
_ATTEMPTS_OF_IDS = _attempts_from(_P)
_LOCK_CHANNELS = _lock_free_channels_statement()


def claim_due(engine: Engine, *, worker: str, now: dt.datetime, lease: dt.timedelta,
              limit: int = 1000) -> list[Claimed]:
    """Atomically claim the earliest due post of every free channel (one in flight per channel).

    A channel is free when it is active, not rate-limited and has no post in
    ``publishing``. The claim and the attempt's history rows are one transaction.

    SQLite: the transaction holds the database's write lock (BEGIN IMMEDIATE), so claims are
    one at a time. PostgreSQL: each claimer first locks the rows of the channels it will take
    (``SKIP LOCKED``: channels another claimer holds are left to it, nobody waits), then, in a
    second statement under READ COMMITTED (a fresh snapshot, taken after the locks), checks
    again that each channel has nothing in flight and takes its earliest due post. Claimers on
    different channels run side by side; two can never both take a post of one channel.
    """
    params: dict[str, object] = {"c_now": now, "c_limit": limit, "c_worker": worker, "c_expires": now + lease}
    with engine.connect() as connection:
        conn = connection.execution_options(isolation_level="READ COMMITTED") \
            if connection.dialect.name == "postgresql" else connection
        with conn.begin():
            if conn.dialect.name == "postgresql":
                channel_ids = list(conn.execute(_LOCK_CHANNELS, params).scalars())
                if not channel_ids:
                    return []
                rows = conn.execute(_CLAIM_LOCKED_WITH_ATTEMPTS, {**params, "c_channels": channel_ids}).all()
                ids = [(r.history_id, r.id) for r in rows]
            else:
                rows = conn.execute(_CLAIM, params).all()
                ids = [(h, post_id) for h, post_id in conn.execute(
                    _ATTEMPTS_OF_IDS, {**params, "c_ids": [r.id for r in rows]})] if rows else []
            if not rows:
                return []
            retried = [r.id for r in rows if r.attempts > 1]
            uncertain = uncertain_since(conn, retried) if retried else {}
    hid = {post_id: h for h, post_id in ids}
    out = []
    for r in rows:
        out.append(Claimed(
            id=r.id, channel_id=r.channel_id, kind=r.kind, text=r.text, link=r.link, title=r.title,
            summary=r.summary, image_path=r.image_path, image_alt=r.image_alt, more_images=r.more_images,
            idempotency_key=r.idempotency_key, created_at=r.created_at, scheduled_at=r.scheduled_at,
            attempts=r.attempts, failures=r.failures, history_id=hid[r.id],
            claimed_at=now, uncertain_since=uncertain.get(r.id),
        ))
    return out


#: Attempt outcomes after which the post may be on the platform without us knowing: an unknown
#: outcome (timeout after sending, 5xx on a create call), a reconcile that found nothing right
#: after one (the platform may show it late), and a claimer that died mid-publish.
UNCERTAIN_OUTCOMES = ("unknown", "absent", "lease_expired")


def uncertain_since(conn: Any, post_ids: Sequence[int]) -> dict[int, dt.datetime]:
    """Per post: when its first attempt that may have reached the platform started.

    Counted since the post last left ``needs_review`` (a person checked the platform then),
    so an idempotency window is measured from the first request that may have created it.
    """
    reviewed = (select(_H.c.post_id, func.max(_H.c.id).label("hid"))
                .where(_H.c.post_id.in_(list(post_ids)), _H.c.from_status == PostStatus.NEEDS_REVIEW.value)
                .group_by(_H.c.post_id).subquery())
    q = (select(_H.c.post_id, func.min(_H.c.started_at))
         .select_from(_H.outerjoin(reviewed, reviewed.c.post_id == _H.c.post_id))
         .where(_H.c.post_id.in_(list(post_ids)), _H.c.action == "attempt",
                _H.c.outcome.in_(UNCERTAIN_OUTCOMES), or_(reviewed.c.hid.is_(None), _H.c.id > reviewed.c.hid))
         .group_by(_H.c.post_id))
    out: dict[int, dt.datetime] = {}
    for post_id, started in conn.execute(q).all():
        if started is not None:
            out[post_id] = started if started.tzinfo else started.replace(tzinfo=dt.UTC)
    return out


@dataclass
class Outcome:
    """What one attempt came to; written by :func:`finish_attempts`."""

    post_id: int
    history_id: int
    to: PostStatus
    outcome: str
    finished_at: dt.datetime
    error: str | None = None
    http_status: int | None = None
    remote_id: str | None = None
    remote_url: str | None = None
    next_attempt_at: dt.datetime | None = None
    failures: int | None = None


@dataclass
class ChannelChange:
    channel_id: int
    rate_limited_until: dt.datetime | None = None
    status: ChannelStatus | None = None
    reason: str | None = None


def finish_attempts(engine: Engine, worker: str, outcomes: Sequence[Outcome],
                    channel_changes: Sequence[ChannelChange] = ()) -> list[int]:
    """Record attempts' outcomes in one transaction. Returns ids whose lease had been lost.

    Posts still held under our lease are updated in one executemany; a post whose lease
    was taken over (housekeeping decided it meanwhile) still gets its history row, and a
    success then wins over ``needs_review``/``retry_wait`` because we now know.
    """
    if not outcomes and not channel_changes:
        return []
    with engine.begin() as conn:
        for ch in channel_changes:
            values: dict[str, object] = {"updated_at": utcnow()}
            if ch.rate_limited_until is not None:
                later = func.max if conn.dialect.name == "sqlite" else func.greatest
                values["rate_limited_until"] = later(
                    func.coalesce(_C.c.rate_limited_until, ch.rate_limited_until), ch.rate_limited_until)
            if ch.status is not None:
                values["status"] = ch.status.value
                values["status_reason"] = redact(ch.reason)
            conn.execute(update(_C).where(_C.c.id == ch.channel_id).values(**values))
        rows = [_post_values(o) for o in outcomes]
        history = [_history_values(o) for o in outcomes]
        if conn.dialect.name == "postgresql" and outcomes:
            # One statement for every post still held and every history row (arrays, unnest).
            held = set(conn.execute(FINISH_PG, {"worker": worker, **arrays(rows, "p_"), **arrays(history, "h_")})
                       .scalars())
        else:
            ids = [o.post_id for o in outcomes]
            held = set(conn.scalars(select(_P.c.id).where(
                _P.c.id.in_(ids), _P.c.status == PostStatus.PUBLISHING.value, _P.c.lease_owner == worker)))
            mine = [r for r, o in zip(rows, outcomes, strict=True) if o.post_id in held]
            if mine:
                conn.execute(_FINISH_POST, mine)
            if history:
                conn.execute(_FINISH_HISTORY, history)
        lost = [o.post_id for o in outcomes if o.post_id not in held]
        for r, o in zip(rows, outcomes, strict=True):
            if o.post_id in held or o.to != PostStatus.PUBLISHED:
                continue
            conn.execute(update(_P).where(
                _P.c.id == o.post_id,
                _P.c.status.in_([PostStatus.NEEDS_REVIEW.value, PostStatus.RETRY_WAIT.value,
                                 PostStatus.PUBLISHING.value]),
            ).values(**{k.removeprefix("b_"): v for k, v in r.items()
                        if k != "b_id" and not (k == "b_failures" and v is None)}))
    return lost


def _history_values(o: Outcome) -> dict[str, object]:
    return {"b_id": o.history_id, "b_finished_at": o.finished_at, "b_to_status": o.to.value,
            "b_outcome": o.outcome, "b_error": redact(o.error) if o.error else None,
            "b_http_status": o.http_status, "b_remote_id": o.remote_id, "b_remote_url": o.remote_url}


def _post_values(o: Outcome) -> dict[str, object]:
    published = o.to == PostStatus.PUBLISHED
    return {
        "b_id": o.post_id, "b_status": o.to.value, "b_updated_at": o.finished_at,
        "b_error": None if published or not o.error else redact(o.error),
        "b_lease_owner": None, "b_lease_expires_at": None,
        # a paused channel's post goes back to waiting for its own time, not a retry time
        "b_next_attempt_at": None if o.to == PostStatus.SCHEDULED else o.next_attempt_at,
        "b_failures": o.failures,
        "b_remote_id": o.remote_id if published else None, "b_remote_url": o.remote_url if published else None,
        "b_published_at": o.finished_at if published else None,
    }


_FINISH_POST = (
    update(_P).where(_P.c.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), updated_at=bindparam("b_updated_at"), error=bindparam("b_error"),
            lease_owner=bindparam("b_lease_owner"), lease_expires_at=bindparam("b_lease_expires_at"),
            next_attempt_at=bindparam("b_next_attempt_at"),
            failures=func.coalesce(bindparam("b_failures", type_=Integer), _P.c.failures),
            remote_id=bindparam("b_remote_id"), remote_url=bindparam("b_remote_url"),
            published_at=bindparam("b_published_at"))
)
_FINISH_HISTORY = (
    update(_H).where(_H.c.id == bindparam("b_id"))
    .values(finished_at=bindparam("b_finished_at"), to_status=bindparam("b_to_status"),
            outcome=bindparam("b_outcome"), error=bindparam("b_error"), http_status=bindparam("b_http_status"),
            remote_id=bindparam("b_remote_id"), remote_url=bindparam("b_remote_url"))
)


def renew_leases(engine: Engine, worker: str, post_ids: Sequence[int], until: dt.datetime) -> None:
    if not post_ids:
        return
    with engine.begin() as conn:
        conn.execute(update(_P).where(_P.c.id.in_(list(post_ids)), _P.c.lease_owner == worker,
                                      _P.c.status == PostStatus.PUBLISHING.value).values(lease_expires_at=until))


def _next_due_statement() -> Any:
    """The earliest of: the first due time of a post on an active channel that no rate limit holds
    back (walking ``ix_posts_due_at`` in order), and the end of the earliest rate limit that holds
    back a post (few channels are rate-limited). Together: min over waiting posts of
    max(due_at, rate_limited_until), without computing it for every waiting post at every poll."""
    free = (select(_P.c.due_at).select_from(_P.join(_C, _C.c.id == _P.c.channel_id))
            .where(_CLAIMABLE_ROW, _P.c.due_at.is_not(None), _C.c.status == ChannelStatus.ACTIVE.value,
                   or_(_C.c.rate_limited_until.is_(None), _C.c.rate_limited_until <= _P.c.due_at))
            .order_by(_P.c.due_at).limit(1))
    held = select(_P.c.id).where(_P.c.channel_id == _C.c.id, _CLAIMABLE_ROW, _P.c.due_at < _C.c.rate_limited_until)
    limited = select(func.min(_C.c.rate_limited_until)).where(
        _C.c.status == ChannelStatus.ACTIVE.value, _C.c.rate_limited_until.is_not(None), held.exists())
    return select(free.scalar_subquery(), limited.scalar_subquery())


_NEXT_DUE = _next_due_statement()


def next_due(engine: Engine, now: dt.datetime) -> dt.datetime | None:
    """When the next waiting post on an active channel comes due (rate limits included)."""
    with engine.connect() as conn:
        row = conn.execute(_NEXT_DUE).one()
    values = [_aware(v) for v in row if v is not None]
    return min(values) if values else None


def _aware(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):  # SQLite's min() over a column may lose its type
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
