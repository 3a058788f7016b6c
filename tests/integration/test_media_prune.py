"""Media pruning with a fake clock (time-machine), on SQLite and PostgreSQL: the images of a post
done longer ago than PROMO_MEDIA_KEEP_DAYS go (original, fitted copies and their notes), those of a
post still waiting stay, an upload no post uses stays for a day, a file two posts share stays while
one of them waits, and a file being queued right now is never deleted. Housekeeping does it once a day
for the whole cluster and says how much it freed; `promo media prune --dry-run` only lists."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from jobs import housekeeping
from scheduler import post_images
from scheduler.actions import Actor, Context
from scheduler.actions import images as image_actions
from scheduler.actions import posts as actions
from scheduler.actions.media import prune_media
from scheduler.cli import main
from scheduler.config import load_settings
from scheduler.errors import PermissionDenied, StateError
from scheduler.mediaprune import prune
from scheduler.models import AuditEntry, PostStatus
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database
from tests.helpers import image_bytes

T0 = dt.datetime(2027, 1, 10, 9, 0, tzinfo=dt.UTC)
OP = Actor("operator")
DONE = {PostStatus.PUBLISHED: (PostStatus.SCHEDULED, PostStatus.PUBLISHING, PostStatus.PUBLISHED),
        PostStatus.FAILED: (PostStatus.SCHEDULED, PostStatus.PUBLISHING, PostStatus.FAILED),
        PostStatus.SCHEDULED: (PostStatus.SCHEDULED,)}


@pytest.fixture
def ctx(any_db: Database, promo_env: Any, tmp_path: Path) -> Context:
    env = promo_env(channels={
        "outbox": {"PLATFORM": "outbox", "PATH": str(tmp_path / "outbox.jsonl")},
        "x_kota": {"PLATFORM": "x", "ACCESS_TOKEN": "x-token-value-123456", "BASE_URL": "http://127.0.0.1:9"}},
        MEDIA_DIR=str(tmp_path / "media"), MEDIA_KEEP_DAYS="30")
    env["PROMO_DATABASE_URL"] = any_db.url
    return Context(load_settings(env), any_db)


def photo(tmp_path: Path, name: str, seed: int) -> Path:
    """A phone photo (EXIF turned, GPS: X gets a fitted copy), different bytes per ``seed``."""
    path = tmp_path / name
    path.write_bytes(image_bytes("JPEG", 64 + seed, 48, orientation=6, gps=True))
    return path


def queued(ctx: Context, image: Path, status: PostStatus, channels: tuple[str, ...] = ("outbox",)) -> list[int]:
    """Posts with ``image`` brought to ``status`` (as the dispatcher would), their ids."""
    rows = actions.queue_posts(ctx, OP, channels=list(channels), text="Kue lapis legit", draft=True,
                               image=str(image), alt="Kue lapis").rows
    with ctx.db.session() as s:
        for row in rows:
            post = post_store.get_post(s, row["id"], lock=True)
            post.scheduled_at = post.created_at
            for step in DONE[status]:
                post_store.transition(s, post, step, actor="test", reason="set up")
    return [int(r["id"]) for r in rows]


def files(ctx: Context) -> set[str]:
    return {p.name for p in ctx.settings.media_dir.iterdir()}


def images_of(ctx: Context, post_ids: list[int]) -> set[str]:
    with ctx.db.read_session() as s:
        return {Path(str(post_store.get_post(s, i).image_path)).name for i in post_ids}


def test_prune_keeps_what_posts_need_and_deletes_the_rest_after_the_keep_period(
        ctx: Context, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    media = ctx.settings.media_dir
    with time_machine.travel(T0, tick=False):
        published = queued(ctx, photo(tmp_path, "lama.jpg", 1), PostStatus.PUBLISHED, ("outbox", "x_kota"))
        waiting = queued(ctx, photo(tmp_path, "nanti.jpg", 2), PostStatus.SCHEDULED)
        # the same bytes under two names: one stored file, used by a published and a waiting post
        shared_done = queued(ctx, photo(tmp_path, "bersama-1.jpg", 3), PostStatus.PUBLISHED)
        shared_waiting = queued(ctx, photo(tmp_path, "bersama-2.jpg", 3), PostStatus.SCHEDULED)
        old_upload = image_actions.stage_image(ctx, OP, image_bytes("PNG", 30, 30), "lupa.png").id
        (media / "catatan.txt").write_text("not promo's: never touched")
    gone_later = images_of(ctx, published)  # the outbox's original and X's fitted copy
    fitted = next(n for n in gone_later if n.startswith("fit-"))
    assert f"{Path(fitted).stem}.json" in files(ctx)  # its note
    assert images_of(ctx, shared_done) == images_of(ctx, shared_waiting)

    # Day 20: the published post is within PROMO_MEDIA_KEEP_DAYS; the upload nobody used is a day old.
    with time_machine.travel(T0 + dt.timedelta(days=20), tick=False):
        first = prune_media(ctx, OP)
        assert first.removed == [old_upload]
        assert gone_later <= files(ctx)

    # Day 31: the published post's files go (original, fitted copy and its note); the rest stay.
    with time_machine.travel(T0 + dt.timedelta(days=31), tick=False):
        fresh_upload = image_actions.stage_image(ctx, OP, image_bytes("PNG", 31, 31), "baru.png").id
        before = {n: (media / n).stat().st_size for n in files(ctx)}
        with caplog.at_level(logging.INFO, logger="promo.media"):
            done = prune_media(ctx, OP)
    left = files(ctx)
    assert not gone_later & left and f"{Path(fitted).stem}.json" not in left
    assert images_of(ctx, waiting) <= left and images_of(ctx, shared_waiting) <= left
    assert fresh_upload in left and "catatan.txt" in left
    assert done.bytes == sum(before[n] for n in done.removed) > 0
    assert set(done.removed) == gone_later | {f"{Path(fitted).stem}.json"}
    assert f"{done.files} file(s), {done.bytes:,} bytes freed" in caplog.text
    with ctx.db.read_session() as s:
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "media.prune")
                          .order_by(AuditEntry.id.desc())).first()
        assert audit is not None and audit.actor == "operator"
        assert audit.detail["files"] == done.files and audit.detail["bytes"] == done.bytes


def test_an_old_file_being_queued_right_now_is_kept(ctx: Context, tmp_path: Path) -> None:
    """Storing an image again marks the stored file used, before any post references it: a prune
    running between that and the post's commit (another process) leaves it alone."""
    source = photo(tmp_path, "foto.jpg", 4)
    with time_machine.travel(T0, tick=False):
        stored, _mime = post_images.store_image(ctx.settings, source)
    with time_machine.travel(T0 + dt.timedelta(days=3), tick=False):
        assert post_images.store_image(ctx.settings, source)[0] == stored  # queueing it again, not committed yet
        assert prune_media(ctx, OP).removed == []
        assert stored.exists()
    with time_machine.travel(T0 + dt.timedelta(days=5), tick=False):
        assert prune_media(ctx, OP).removed == [stored.name]


def test_a_failed_post_can_be_retried_within_the_keep_period_and_is_refused_after(
        ctx: Context, tmp_path: Path) -> None:
    with time_machine.travel(T0, tick=False):
        early, late = (queued(ctx, photo(tmp_path, f"gagal-{n}.jpg", 5 + n), PostStatus.FAILED)[0] for n in (0, 1))
    with time_machine.travel(T0 + dt.timedelta(days=29), tick=False):
        assert prune_media(ctx, OP).removed == []
        assert actions.retry(ctx, OP, [early])[0].status == PostStatus.SCHEDULED.value
    with time_machine.travel(T0 + dt.timedelta(days=31), tick=False):
        assert prune_media(ctx, OP).removed == sorted(images_of(ctx, [late]))
        assert images_of(ctx, [early]) <= files(ctx)  # retried: waiting again
        with pytest.raises(StateError, match="no longer stored.*queue it again"):
            actions.retry(ctx, OP, [late])


def test_housekeeping_prunes_once_a_day_for_the_cluster_and_a_viewer_may_not(ctx: Context) -> None:
    housekeeping._next_media_check.clear()
    with time_machine.travel(T0, tick=False):
        ctx.settings.media_dir.mkdir(parents=True, exist_ok=True)
        run = asyncio.run(housekeeping.prune_media_when_due(ctx.settings, ctx.db, "p1"))
        assert run is not None
        # another process of the cluster, and this one again after its 10 minutes: not due
        assert asyncio.run(housekeeping.prune_media_when_due(ctx.settings, ctx.db, "p2")) is None
    with time_machine.travel(T0 + dt.timedelta(hours=23), tick=False):
        assert asyncio.run(housekeeping.prune_media_when_due(ctx.settings, ctx.db, "p1")) is None
    with time_machine.travel(T0 + dt.timedelta(days=1, minutes=1), tick=False):
        assert asyncio.run(housekeeping.prune_media_when_due(ctx.settings, ctx.db, "p2")) is not None
    with ctx.db.read_session() as s:
        runs = s.scalars(select(AuditEntry).where(AuditEntry.action == "media.prune")).all()
        assert [r.actor for r in runs] == ["system", "system"]
    with pytest.raises(PermissionDenied):
        prune_media(ctx, Actor("vina", "viewer"))


def test_two_processes_checking_at_the_same_moment_prune_once(ctx: Context) -> None:
    start = threading.Barrier(2)
    results: list[object] = []

    def run() -> None:
        start.wait()
        results.append(prune(ctx.settings, ctx.db, now=T0, only_if_due=True))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2 and sum(r is not None for r in results) == 1
    with ctx.db.read_session() as s:
        assert len(s.scalars(select(AuditEntry).where(AuditEntry.action == "media.prune")).all()) == 1


def test_promo_media_prune_dry_run_lists_and_deletes_nothing(
        promo_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env = promo_env(MEDIA_DIR=str(tmp_path / "media"))
    settings = load_settings(env)
    db = Database(settings.database_url)
    db.upgrade()
    with time_machine.travel(T0, tick=False):
        upload = image_actions.stage_image(Context(settings, db), OP, image_bytes("PNG", 30, 30), "lupa.png").id
    db.dispose()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    media = settings.media_dir
    with time_machine.travel(T0 + dt.timedelta(days=2), tick=False):
        assert main(["media", "prune", "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert f"would delete {media / upload}" in out and "1 file(s)" in out
        assert (media / upload).exists()
        assert main(["media", "prune"]) == 0
        assert not (media / upload).exists() and "1 file(s)" in capsys.readouterr().out
