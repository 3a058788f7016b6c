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
from typing import Any, BinaryIO, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from scheduler.config import Settings
from scheduler.errors import ValidationError
from scheduler.history_read import (
    HistoryFilter as HistoryFilter,  # re-exported: views is the read models' home
)
from scheduler.history_read import HistoryPage as HistoryPage
from scheduler.history_read import _filtered as _filtered
from scheduler.history_read import _history_dict as _history_dict
from scheduler.history_read import csv_cell as csv_cell
from scheduler.history_read import csv_text as csv_text
from scheduler.history_read import day_bound as day_bound
from scheduler.history_read import history_page as history_page
from scheduler.history_read import history_rows as history_rows
from scheduler.history_read import iter_history as iter_history
from scheduler.history_read import local as local
from scheduler.history_read import write_csv as write_csv
from scheduler.history_read import write_jsonl as write_jsonl
from scheduler.models import (
    AuditEntry,
    Channel,
    HistoryEntry,
    Post,
    utcnow,
)
from scheduler.redact import redact
from scheduler.rows import HISTORY_FIELDS as HISTORY_FIELDS
from scheduler.states import OPEN
from scheduler.storage import post_read
from scheduler.storage.db import Database
from scheduler.storage.post_read import status_report as status_report

#: ``error`` is an attempt's (or a failure's) error, null otherwise; ``note`` says why a status changed.
AUDIT_FIELDS = ("id", "at", "actor", "action", "entity", "entity_id", "detail")
#: ``promo audit --entity`` → what the audit rows store (imports record the file kind).
AUDIT_ENTITIES: dict[str, tuple[str, ...]] = {
    "channel": ("channel",), "event": ("event", "events"), "highlight": ("highlight",), "post": ("post",),
    "product": ("product", "products"), "umkm": ("umkm",), "user": ("user",)}
#: An attempt's outcome besides the status it led to (``history --status`` accepts both).
OUTCOMES = ("published", "duplicate", "rate_limited", "budget", "auth", "config", "rejected", "transient",
            "unknown", "absent", "lease_expired")


def post_row(p: Post, tz: ZoneInfo) -> dict[str, Any]:
    """A mapped post as staff read it (:func:`scheduler.storage.post_read.post_row`)."""
    return post_read.post_row(p, tz, p.channel.name, p.channel.platform)


def export_history(session: Session, f: HistoryFilter, tz: ZoneInfo, out: TextIO, *, fmt: str = "csv",
                   newest_first: bool = False) -> int:
    """``promo history --format csv|jsonl`` for any size: streamed, constant memory."""
    rows = iter_history(session, f, tz, newest_first=newest_first)
    if fmt == "csv":
        return write_csv(rows, HISTORY_FIELDS, out)
    if fmt == "jsonl":
        return write_jsonl(rows, HISTORY_FIELDS, out)
    raise ValidationError(f"format {fmt!r}: csv or jsonl")


def archive_history(db: Database, before: dt.datetime, out: BinaryIO, *, tz: ZoneInfo = ZoneInfo("UTC"),
                    batch: int = 2000) -> int:
    """Move history rows that started before ``before`` into a gzip CSV (``out``), deleting them
    ``batch`` at a time, each batch its own short transaction, so a running dispatcher never
    waits long. Rows of posts still in play (waiting, publishing, in review) stay. A post's
    attempt count lives on the post (``posts.attempts``), so it is unchanged. The rows are
    written and flushed before the transaction deleting them commits: an interruption leaves
    at worst a row both in the file and in the database, never in neither. Returns the count."""
    f = HistoryFilter(all=True)
    total = 0
    after = 0
    with gzip.GzipFile(fileobj=out, mode="wb") as gz, io.TextIOWrapper(gz, encoding="utf-8", newline="") as text:
        w = csv.writer(text)
        w.writerow(HISTORY_FIELDS)
        while True:
            with db.session() as session:
                q = (_filtered(f).where(HistoryEntry.started_at < before, HistoryEntry.id > after,
                                        Post.status.notin_(OPEN))
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
