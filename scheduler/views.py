"""What staff look at, built once for the `promo` command and the dashboard: post and history
rows (the JSON fields the README promises), history filters, the service status, channel states,
and the daily highlight's preview and history.

Times come out in the organisation's timezone with their offset; the database holds UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from scheduler.config import Settings
from scheduler.errors import ValidationError
from scheduler.models import (
    AuditEntry,
    Channel,
    Heartbeat,
    HistoryEntry,
    Post,
    PostStatus,
    utcnow,
)
from scheduler.redact import redact
from scheduler.rows import HISTORY_FIELDS as HISTORY_FIELDS
from scheduler.rows import HistoryRow, PostRow
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database

if TYPE_CHECKING:
    pass

#: ``error`` is an attempt's (or a failure's) error, null otherwise; ``note`` says why a status changed.
AUDIT_FIELDS = ("id", "at", "actor", "action", "entity", "entity_id", "detail")
#: ``promo audit --entity`` → what the audit rows store (imports record the file kind).
AUDIT_ENTITIES: dict[str, tuple[str, ...]] = {
    "channel": ("channel",), "event": ("event", "events"), "highlight": ("highlight",), "post": ("post",),
    "product": ("product", "products"), "umkm": ("umkm",), "user": ("user",)}
#: An attempt's outcome besides the status it led to (``history --status`` accepts both).
OUTCOMES = ("published", "duplicate", "rate_limited", "budget", "auth", "config", "rejected", "transient",
            "unknown", "absent", "lease_expired")
#: Transitions whose reason is an error (the rest carry a note: "created", "rescheduled to …").
_ERROR_STATES = frozenset({PostStatus.FAILED, PostStatus.NEEDS_REVIEW, PostStatus.RETRY_WAIT})
#: A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A value for a CSV cell: "" for nothing, and text a spreadsheet would run as a formula
    (``=HYPERLINK(…)`` from a platform's answer) prefixed with ``'`` so it stays text."""
    s = "" if value is None else str(value)
    return "'" + s if s.startswith(_FORMULA_START) else s


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, bom: bool = True) -> str:
    """Every CSV the project writes (CLI and dashboard): formula-safe cells, and a UTF-8 byte
    order mark first so Excel reads Indonesian text as UTF-8."""
    out = io.StringIO()
    if bom:
        out.write("\ufeff")
    w = csv.writer(out)
    w.writerow(columns)
    for r in rows:
        w.writerow([csv_cell(r.get(c)) for c in columns])
    return out.getvalue()


def local(value: dt.datetime | None, tz: ZoneInfo) -> str:
    """ISO 8601 in the organisation's timezone, with its offset; "" for no time."""
    if value is None:
        return ""
    return value.astimezone(tz).isoformat(timespec="seconds")


def post_row(p: Post, tz: ZoneInfo) -> dict[str, Any]:
    return vars(PostRow(
        id=p.id, channel=p.channel.name, platform=p.channel.platform, kind=p.kind, status=p.status,
        scheduled_at=local(p.scheduled_at, tz) or None, published_at=local(p.published_at, tz) or None,
        text=p.text, link=p.link, remote_id=p.remote_id, remote_url=p.remote_url,
        attempts=p.attempts, error=p.error, image=p.image_path, template=p.template,
        created_by=p.created_by, next_attempt_at=local(p.next_attempt_at, tz) or None, image_alt=p.image_alt,
    ))


def history_row(h: HistoryEntry, tz: ZoneInfo) -> dict[str, Any]:
    p = h.post
    # The column holds an attempt's error, or a transition's reason ("created", "approved").
    is_error = h.action == "attempt" or h.to_status in _ERROR_STATES
    return vars(HistoryRow(
        id=h.id, post_id=h.post_id, channel=h.channel.name, platform=h.channel.platform,
        action=h.action, started_at=local(h.started_at, tz), finished_at=local(h.finished_at, tz) or None,
        from_status=h.from_status, to_status=h.to_status, outcome=h.outcome, http_status=h.http_status,
        status=p.status, scheduled_at=local(p.scheduled_at, tz) or None,
        published_at=local(p.published_at, tz) or None, text=p.text,
        remote_id=h.remote_id, remote_url=h.remote_url, attempts=p.attempts,
        error=h.error if is_error else None, actor=h.actor, note=None if is_error else h.error,
    ))


def day_bound(value: str, tz: ZoneInfo, *, end: bool, what: str = "date") -> dt.datetime:
    """``YYYY-MM-DD`` (the whole day in the organisation's timezone) or a time → UTC bound."""
    from scheduler.planner import parse_when

    value = value.strip()
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            if end:
                day += dt.timedelta(days=1)
            return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)
        return parse_when(value, tz)
    except (ValueError, ValidationError):
        raise ValidationError(f"{what} {value!r}: not a date (YYYY-MM-DD) or time (YYYY-MM-DD HH:MM)") from None
    except OverflowError:  # 0001-01-01 east of UTC, or the day after 9999-12-31
        raise ValidationError(f"{what} {value!r}: out of range") from None


@dataclass(frozen=True)
class HistoryFilter:
    channel: str | None = None
    #: outcomes or resulting statuses (published, failed, needs_review, …)
    statuses: tuple[str, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    #: status changes too, not only publish attempts
    all: bool = False
    post_id: int | None = None

    @classmethod
    def parse(cls, tz: ZoneInfo, *, channel: str | None = None, status: str | None = None,
              since: str | None = None, until: str | None = None, all: bool = False,
              post_id: int | None = None) -> HistoryFilter:
        """From what a person typed (``--since 2027-01-01``, ``?status=failed,expired``)."""
        return cls(channel=(channel or "").strip().lower() or None,
                   statuses=tuple(s.strip() for s in (status or "").split(",") if s.strip()),
                   since=day_bound(since, tz, end=False, what="since") if since else None,
                   until=day_bound(until, tz, end=True, what="until") if until else None,
                   all=all, post_id=post_id)

    def conditions(self) -> list[Any]:
        """The WHERE clauses (over history joined with its channel and post)."""
        c: list[Any] = []
        if self.channel:
            c.append(Channel.name == self.channel)
        if self.statuses:
            c.append(HistoryEntry.to_status.in_(self.statuses) | HistoryEntry.outcome.in_(self.statuses))
        if self.since:
            c.append(HistoryEntry.started_at >= self.since)
        if self.until:
            c.append(HistoryEntry.started_at < self.until)
        if not self.all:
            c.append(HistoryEntry.action == "attempt")
        if self.post_id is not None:
            c.append(HistoryEntry.post_id == self.post_id)
        return c

    def query(self) -> Select[HistoryEntry]:
        return (select(HistoryEntry).join(Channel, Channel.id == HistoryEntry.channel_id)
                .join(Post, Post.id == HistoryEntry.post_id).where(*self.conditions()))


def _history_columns() -> Select[Any]:
    """History rows with their channel and post columns: one query (joins), no lazy loads."""
    columns = cast("Select[Any]", select(HistoryEntry.id, HistoryEntry.post_id, HistoryEntry.action, HistoryEntry.started_at,
                   HistoryEntry.finished_at, HistoryEntry.from_status, HistoryEntry.to_status,
                   HistoryEntry.outcome, HistoryEntry.http_status, HistoryEntry.remote_id, HistoryEntry.remote_url,
                   HistoryEntry.error, HistoryEntry.actor, Channel.name.label("channel"),
                   Channel.platform.label("platform"), Post.status.label("post_status"),
                   Post.scheduled_at.label("post_scheduled_at"), Post.published_at.label("post_published_at"),
                   Post.text.label("post_text"), Post.attempts.label("post_attempts"))
            .select_from(HistoryEntry)
            .join(Channel, Channel.id == HistoryEntry.channel_id)
            .join(Post, Post.id == HistoryEntry.post_id))
    return columns


def _filtered(f: HistoryFilter) -> Select[Any]:
    return _history_columns().where(*f.conditions())


def _history_dict(r: Any, tz: ZoneInfo) -> dict[str, Any]:
    """A row of :func:`_history_columns` as :func:`history_row` gives it."""
    is_error = r.action == "attempt" or r.to_status in _ERROR_STATES
    return vars(HistoryRow(
        id=r.id, post_id=r.post_id, channel=r.channel, platform=r.platform,
        action=r.action, started_at=local(r.started_at, tz), finished_at=local(r.finished_at, tz) or None,
        from_status=r.from_status, to_status=r.to_status, outcome=r.outcome, http_status=r.http_status,
        status=r.post_status, scheduled_at=local(r.post_scheduled_at, tz) or None,
        published_at=local(r.post_published_at, tz) or None, text=r.post_text,
        remote_id=r.remote_id, remote_url=r.remote_url, attempts=r.post_attempts,
        error=r.error if is_error else None, actor=r.actor, note=None if is_error else r.error,
    ))


def history_rows(session: Session, f: HistoryFilter, tz: ZoneInfo, *, newest_first: bool = False,
                 limit: int | None = None) -> list[dict[str, Any]]:
    """Every matching row (or the first ``limit``), in one query. For big histories use
    :func:`history_page` or :func:`iter_history`."""
    q = _filtered(f).order_by(HistoryEntry.id.desc() if newest_first else HistoryEntry.id)
    if limit is not None:
        q = q.limit(limit)
    return [_history_dict(r, tz) for r in session.execute(q)]


@dataclass(frozen=True)
class HistoryPage:
    rows: list[dict[str, Any]]
    #: Pass as ``after`` for the next page; None when this page is the last.
    next_after: int | None


def history_page(session: Session, f: HistoryFilter, tz: ZoneInfo, *, after: int | None = None,
                 limit: int = 100, newest_first: bool = True) -> HistoryPage:
    """One page of history, keyset-paginated on the row id: ``after`` is the last id of the
    previous page (rows with a smaller id newest first, a larger one oldest first). A page
    deep in a million rows costs what the first one does: no OFFSET, one indexed query."""
    if limit < 1:
        raise ValidationError(f"limit {limit}: must be at least 1")
    q = _filtered(f)
    if newest_first:
        q = q.order_by(HistoryEntry.id.desc())
        if after is not None:
            q = q.where(HistoryEntry.id < after)
    else:
        q = q.order_by(HistoryEntry.id)
        if after is not None:
            q = q.where(HistoryEntry.id > after)
    rows = [_history_dict(r, tz) for r in session.execute(q.limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    return HistoryPage(rows, rows[-1]["id"] if more else None)


def iter_history(session: Session, f: HistoryFilter, tz: ZoneInfo, *, newest_first: bool = False,
                 batch: int = 2000) -> Iterator[dict[str, Any]]:
    """Every matching row, fetched ``batch`` at a time (keyset pages): memory stays flat however
    long the history is. Rows committed while it runs may or may not appear."""
    after: int | None = None
    while True:
        page = history_page(session, f, tz, after=after, limit=batch, newest_first=newest_first)
        yield from page.rows
        if page.next_after is None:
            return
        after = page.next_after


def write_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str], out: TextIO, *, bom: bool = True) -> int:
    """Stream rows as CSV (formula-safe cells, the BOM of :func:`csv_text`); returns the row count."""
    if bom:
        out.write("\ufeff")
    w = csv.writer(out)
    w.writerow(columns)
    n = 0
    for r in rows:
        w.writerow([csv_cell(r.get(c)) for c in columns])
        n += 1
    return n


def write_jsonl(rows: Iterable[dict[str, Any]], columns: Sequence[str], out: TextIO) -> int:
    """Stream rows as JSON lines (one object per line, the given columns); returns the row count."""
    n = 0
    for r in rows:
        out.write(json.dumps({c: r.get(c) for c in columns}, ensure_ascii=False))
        out.write("\n")
        n += 1
    return n


def export_history(session: Session, f: HistoryFilter, tz: ZoneInfo, out: TextIO, *, fmt: str = "csv",
                   newest_first: bool = False) -> int:
    """``promo history --format csv|jsonl`` for any size: streamed, constant memory."""
    rows = iter_history(session, f, tz, newest_first=newest_first)
    if fmt == "csv":
        return write_csv(rows, HISTORY_FIELDS, out)
    if fmt == "jsonl":
        return write_jsonl(rows, HISTORY_FIELDS, out)
    raise ValidationError(f"format {fmt!r}: csv or jsonl")


#: Posts whose history may still be read by the dispatcher (an earlier attempt's outcome decides
#: whether a retry may double-post): their rows are never archived.
_LIVE = (PostStatus.DRAFT, PostStatus.PENDING_APPROVAL, PostStatus.SCHEDULED, PostStatus.PUBLISHING,
         PostStatus.RETRY_WAIT, PostStatus.NEEDS_REVIEW)


def archive_history(db: Database, before: dt.datetime, out: BinaryIO, *, tz: ZoneInfo = ZoneInfo("UTC"),
                    batch: int = 2000) -> int:
    """Move history rows that started before ``before`` into a gzip CSV (``out``), deleting them
    ``batch`` at a time, each batch its own short transaction, so a running dispatcher never
    waits long. Rows of posts still in play (waiting, publishing, in review) stay. A post's
    attempt count lives on the post (``posts.attempts``), so it is unchanged. The rows are
    written and flushed before the transaction deleting them commits: an interruption leaves
    at worst a row both in the file and in the database, never in neither. Returns the count."""
    live = [s.value for s in _LIVE]
    f = HistoryFilter(all=True)
    total = 0
    after = 0
    with gzip.GzipFile(fileobj=out, mode="wb") as gz, io.TextIOWrapper(gz, encoding="utf-8", newline="") as text:
        w = csv.writer(text)
        w.writerow(HISTORY_FIELDS)
        while True:
            with db.session() as session:
                q = (_filtered(f).where(HistoryEntry.started_at < before, HistoryEntry.id > after,
                                        Post.status.notin_(live))
                     .order_by(HistoryEntry.id).limit(batch))
                rows = [_history_dict(r, tz) for r in session.execute(q)]
                if not rows:
                    break
                for r in rows:
                    w.writerow([csv_cell(r.get(c)) for c in HISTORY_FIELDS])
                text.flush()
                gz.flush()
                out.flush()
                ids = [r["id"] for r in rows]
                session.execute(delete(HistoryEntry).where(HistoryEntry.id.in_(ids)))
            total += len(rows)
            after = ids[-1]
    return total


def stalled(last_tick: dt.datetime | None, settings: Settings, now: dt.datetime | None = None) -> bool:
    if last_tick is None:
        return True
    return ((now or utcnow()) - last_tick).total_seconds() > settings.health_stall_seconds


def status_report(session: Session, settings: Settings, now: dt.datetime | None = None) -> dict[str, Any]:
    """What `promo status` prints: each service process's last tick, and posts per state."""
    now = now or utcnow()
    tz = settings.timezone
    counts = post_store.counts_by_status(session)
    beats = list(session.scalars(select(Heartbeat).order_by(Heartbeat.started_at)))
    return {"now": local(now, tz), "counts": counts, "workers": [
        {"worker": b.worker, "last_tick": local(b.last_tick, tz),
         "seconds_since_tick": round((now - b.last_tick).total_seconds(), 1),
         "stalled": stalled(b.last_tick, settings, now)} for b in beats]}


def channel_states(session: Session, settings: Settings, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Each stored channel: active or paused (and why), and a rate limit still running."""
    # Here, not at the top: the channel store brings the adapters' base (httpx) and the
    # secrets' cipher (cryptography), which `promo history` and `promo post list` never need.
    from scheduler.storage import channels as channel_store

    now = now or utcnow()
    rows = []
    for c in session.scalars(select(Channel).order_by(Channel.name)):
        limited = channel_store.rate_limited_until(c, now)
        rows.append({"name": c.name, "platform": c.platform, "status": c.status, "reason": c.status_reason,
                     "rate_limited_until": local(limited, settings.timezone) or None})
    return rows


def audit_rows(session: Session, tz: ZoneInfo, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
               actor: str | None = None, entity: str | None = None, before: int | None = None,
               limit: int | None = None, newest_first: bool = False) -> list[dict[str, Any]]:
    """Who changed what (`promo audit`), oldest first; ``entity`` is a key of AUDIT_ENTITIES.
    The web app's pages: ``newest_first`` with ``limit``, the next page ``before`` the last id shown (keyset)."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc() if newest_first else AuditEntry.id)
    if before is not None:
        q = q.where(AuditEntry.id < before)
    if limit is not None:
        q = q.limit(limit)
    if since:
        q = q.where(AuditEntry.at >= since)
    if until:
        q = q.where(AuditEntry.at < until)
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if entity:
        q = q.where(AuditEntry.entity.in_(AUDIT_ENTITIES[entity]))
    return [{"id": a.id, "at": local(a.at, tz), "actor": a.actor, "action": a.action, "entity": a.entity,
             "entity_id": a.entity_id, "detail": a.detail} for a in session.scalars(q)]


def detail_text(detail: object) -> str:
    """An audit row's detail on one line (secrets masked, should one ever have got in)."""
    return redact(json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)) if detail else ""


# --- the daily highlight: `promo highlight preview|history` and the dashboard ----------------
