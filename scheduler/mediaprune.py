"""Media pruning: the files in PROMO_MEDIA_DIR that no post needs any more are deleted.

What the media folder holds, all written by promo: originals stored by content hash
(``<hash>.jpg``: ``--image``, a record's image, a web upload), the copies fitted per platform
(``fit-<key>.jpg``) with their notes (``fit-<key>.json``), and images downloaded by URL
(``url-<key>.jpg``). Any other file is never touched.

A file is kept while

- a post that may still be sent references it (draft, pending_approval, scheduled,
  publishing, retry_wait, needs_review: its ``image_path`` or ``more_images``);
- a post that is done (published, cancelled, failed, expired) references it and changed
  status less than PROMO_MEDIA_KEEP_DAYS ago (a failed or expired post may be retried);
- a product's or event's ``image`` names it;
- it was stored or used in the last day (:data:`GRACE`): an upload not yet queued, and the
  file another process is queueing right now (storing or reusing a file marks it used:
  :func:`scheduler.media.touch`).

Several processes (a cluster, a `promo media prune` by hand) may prune at once. A file is first
renamed aside (``.prune-<name>``, atomic), then its time is read again: one that was marked used
meanwhile is put back. A process that reuses a file just renamed aside finds it missing and
stores it again. So a file a waiting post references is never deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from scheduler.config import Settings
from scheduler.models import AuditEntry, Event, Post, Product, utcnow
from scheduler.states import OPEN
from scheduler.storage.db import Database

log = logging.getLogger("promo.media")

#: A file stored or used this recently is kept whatever references it (uploads not yet queued).
GRACE = dt.timedelta(days=1)
#: The names promo gives the files it stores (and their ``.part`` while being written).
OURS = re.compile(r"^(?:fit-|url-)?[0-9a-f]{24}\.(?:jpg|png|gif|webp|json)(?:\.part)?$|^fit-[0-9a-f]{24}\.part$")
ASIDE = ".prune-"


@dataclass
class Pruned:
    """What a prune removed (or, with ``dry_run``, would remove): file names and bytes."""

    removed: list[str] = field(default_factory=list)
    bytes: int = 0
    kept: int = 0
    dry_run: bool = False

    @property
    def files(self) -> int:
        return len(self.removed)

    def describe(self) -> str:
        what = "would free" if self.dry_run else "freed"
        return f"{self.files} file(s), {self.bytes:,} bytes {what}; {self.kept} kept"


def _names(paths: Iterable[str | None]) -> set[str]:
    return {Path(p.strip()).name for p in paths if p and p.strip()}


def needed_names(session: Session, now: dt.datetime, keep_days: int) -> set[str]:
    """The names of the media files a post or record still needs (see the module's rules)."""
    since = now - dt.timedelta(days=keep_days)
    rows = session.execute(
        select(Post.image_path, Post.more_images)
        .where(or_(Post.image_path.is_not(None), Post.more_images.is_not(None)))
        .where(or_(Post.status.in_(OPEN), Post.updated_at >= since)))
    paths: list[str | None] = []
    for cover, more in rows:
        paths.append(cover)
        if more:
            paths.extend(str(p) for p, _alt in json.loads(more))
    for model in (Product, Event):
        for (image,) in session.execute(select(model.image).where(model.image.is_not(None))):
            paths.extend(str(image).split(";"))
    names = _names(paths)
    # a fitted copy's note goes with it
    names |= {f"{Path(n).stem}.json" for n in names if n.startswith("fit-")}
    return names


def _stamp(path: Path) -> tuple[float, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime, st.st_size


def _put_back(aside: Path, path: Path) -> None:
    if path.exists():  # stored again meanwhile (the same bytes): the copy set aside is not needed
        aside.unlink(missing_ok=True)
    else:
        os.replace(aside, path)


def prune_media(media_dir: Path, needed: set[str], now: dt.datetime, *, dry_run: bool = False) -> Pruned:
    """Delete the files of ``media_dir`` promo stored that are not in ``needed`` and were not used
    within :data:`GRACE` of ``now``; with ``dry_run`` only say which."""
    out = Pruned(dry_run=dry_run)
    if not media_dir.is_dir():
        return out
    fresh_after = (now - GRACE).timestamp()
    for aside in media_dir.glob(ASIDE + "*"):  # a prune that stopped half-way: put back, judged again below
        if not dry_run:
            _put_back(aside, media_dir / aside.name[len(ASIDE):])
    kept_copies: set[str] = set()
    # images before notes: a fitted copy that stays keeps its note (asking again reads it, fitting nothing)
    for path in sorted(media_dir.iterdir(), key=lambda p: (p.name.endswith(".json"), p.name)):
        name = path.name
        if not OURS.match(name) or not path.is_file():
            continue
        stamp = _stamp(path)
        if name in needed or stamp is None or stamp[0] >= fresh_after or path.stem in kept_copies:
            out.kept += stamp is not None
            kept_copies.add(path.stem)
            continue
        if dry_run:
            out.removed.append(name)
            out.bytes += stamp[1]
            continue
        aside = media_dir / (ASIDE + name)
        try:
            os.replace(path, aside)
        except FileNotFoundError:  # another prune took it
            continue
        again = _stamp(aside)
        if again is None:
            continue
        if again[0] >= fresh_after:  # marked used while we looked: put back
            _put_back(aside, path)
            out.kept += 1
            kept_copies.add(path.stem)
            continue
        aside.unlink(missing_ok=True)
        out.removed.append(name)
        out.bytes += again[1]
    return out


#: The audit row each prune leaves (who, when, how many files and bytes): the daily run looks
#: for the last one, so a cluster prunes once a day, whichever process comes first.
ACTION = "media.prune"
#: How often housekeeping prunes.
EVERY = dt.timedelta(days=1)
#: pg_advisory_xact_lock key taken while deciding whether a prune is due ("media" in ASCII).
LOCK_KEY = 0x6D65646961


def prune(settings: Settings, db: Database, *, actor: str = "system", now: dt.datetime | None = None,
          dry_run: bool = False, only_if_due: bool = False) -> Pruned | None:
    """Prune PROMO_MEDIA_DIR (see the module) and leave an audit row saying what was freed.

    With ``only_if_due`` (housekeeping), nothing happens (None) when some process pruned less than
    :data:`EVERY` ago; deciding it and claiming the run is one transaction under the database's
    write lock (SQLite) or an advisory lock (PostgreSQL), so two processes never both prune."""
    now = now or utcnow()
    entry_id: int | None = None
    if only_if_due:  # most checks find it done: answered without the write lock
        with db.read_session() as session:
            if not _due(session, now):
                return None
    if not dry_run:
        with db.session() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            if only_if_due and not _due(session, now):  # another process claimed it meanwhile
                return None
            entry = AuditEntry(actor=actor, action=ACTION, entity="media", at=now, detail={"started": True})
            session.add(entry)
            session.flush()
            entry_id = entry.id
    with db.read_session() as session:
        needed = needed_names(session, now, settings.media_keep_days)
    result = prune_media(settings.media_dir, needed, now, dry_run=dry_run)
    if entry_id is not None:
        with db.session() as session:
            row = session.get(AuditEntry, entry_id)
            if row is not None:
                row.detail = {"files": result.files, "bytes": result.bytes, "kept": result.kept}
        log.info("media prune: %s (PROMO_MEDIA_KEEP_DAYS=%d)", result.describe(), settings.media_keep_days)
    return result


def _due(session: Session, now: dt.datetime) -> bool:
    last = session.scalar(select(func.max(AuditEntry.at)).where(AuditEntry.action == ACTION))
    return last is None or last <= now - EVERY
