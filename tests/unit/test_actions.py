"""The actions layer: each action checks the actor's role, writes, leaves its history/audit row,
and writes nothing when it fails (one transaction)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from cryptography.fernet import Fernet
from sqlalchemy import select

from scheduler.actions import NEEDS, ROLES, Actor, Role, require
from scheduler.actions import channels as channel_actions
from scheduler.actions import media as media_actions
from scheduler.actions import posts as post_actions
from scheduler.actions import records as record_actions
from scheduler.actions import templates as template_actions
from scheduler.actions import users as user_actions
from scheduler.errors import NotFoundError, PermissionDenied, StateError, TooLongError, ValidationError
from scheduler.models import AuditEntry, Channel, ChannelStatus, HistoryEntry, Post, PostStatus, Umkm, User
from scheduler.storage import channels as channel_store
from scheduler.storage import posts as post_store
from tests.unit.test_planner import NOW, World, env  # noqa: F401  (env: the fixture)

S = PostStatus


@pytest.fixture
def world(env: dict[str, str], tmp_path: Path) -> Iterator[World]:  # noqa: F811
    with time_machine.travel(NOW, tick=False):
        w = World({**env, "PROMO_SECRET_KEY": Fernet.generate_key().decode()}, tmp_path)
        yield w
        w.db.dispose()


def snapshot(w: World) -> tuple[Any, ...]:
    """Everything an action may write."""
    with w.db.session() as s:
        return (
            [(p.id, p.status, p.text, p.scheduled_at) for p in s.scalars(select(Post).order_by(Post.id))],
            [(h.id, h.to_status) for h in s.scalars(select(HistoryEntry))],
            [(a.id, a.action) for a in s.scalars(select(AuditEntry))],
            [(u.name, u.role) for u in s.scalars(select(User))],
            [(c.name, c.status, c.secrets_enc) for c in s.scalars(select(Channel).order_by(Channel.name))],
            sorted(s.scalars(select(Umkm.external_id))),
        )


def post_in(w: World, status: PostStatus) -> int:
    """A post on outbox in ``status`` (reached through the lifecycle's own arrows)."""
    [p] = w.new(text="Kantor tutup.", when="2023-10-25 19:00",
                status=S.PENDING_APPROVAL if status == S.PENDING_APPROVAL else
                S.DRAFT if status == S.DRAFT else S.SCHEDULED)
    if status in (S.FAILED, S.NEEDS_REVIEW):
        with w.db.session() as s:
            post = post_store.get_post(s, p.id)
            post_store.transition(s, post, S.PUBLISHING, actor="dispatcher", reason="claimed")
            post_store.transition(s, post, status, actor="dispatcher", reason="boom")
    return p.id


def last_history(w: World, post_id: int) -> tuple[str | None, str | None, str]:
    with w.db.session() as s:
        h = s.scalars(select(HistoryEntry).where(HistoryEntry.post_id == post_id).order_by(HistoryEntry.id.desc())
                      ).first()
        assert h is not None
        return h.to_status, h.error, h.actor


def last_audit(w: World) -> tuple[str, str, str | None]:
    with w.db.session() as s:
        a = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert a is not None
        return a.actor, a.action, a.entity_id


def umkm_in(w: World) -> str:
    """A stored UMKM record (imported by the operator); its id."""
    record_actions.import_upload(w.ctx, Actor("op"), "umkm", "u.csv", b"id,name,curated\nU9,Warung Lama,ya\n")
    return "U9"


#: Per action: set-up (returns what the call needs) and the call itself.
Setup = Callable[[World], Any]
CASES: dict[str, tuple[Setup, Callable[[World, Actor, Any], Any]]] = {
    "records.list": (lambda w: None, lambda w, a, _: record_actions.list_records(w.ctx, a, "products")),
    "channels.list": (lambda w: None, lambda w, a, _: channel_actions.list_channels(w.ctx, a, schema=True)),
    "post.queue": (lambda w: None, lambda w, a, _: post_actions.queue_posts(
        w.ctx, a, channels=["outbox"], text="Halo", at="2023-10-26 09:00")),
    "post.preview": (lambda w: None, lambda w, a, _: post_actions.preview(w.ctx, a, channels=["outbox"], text="Halo")),
    "post.edit": (lambda w: post_in(w, S.SCHEDULED), lambda w, a, pid: post_actions.edit_text(w.ctx, a, pid, "Baru")),
    "post.reschedule": (lambda w: post_in(w, S.SCHEDULED),
                        lambda w, a, pid: post_actions.reschedule(w.ctx, a, pid, "2023-10-26 09:00")),
    "post.submit": (lambda w: post_in(w, S.DRAFT), lambda w, a, pid: post_actions.submit(w.ctx, a, [pid])),
    "post.cancel": (lambda w: post_in(w, S.SCHEDULED), lambda w, a, pid: post_actions.cancel(w.ctx, a, [pid])),
    "records.import": (lambda w: w.tmp / "u.csv",
                       lambda w, a, path: record_actions.import_records(w.ctx, a, "umkm", path)),
    "records.edit": (lambda w: umkm_in(w), lambda w, a, ext: record_actions.update_record(
        w.ctx, a, "umkm", ext, {"name": "Warung Baru"})),
    "post.approve": (lambda w: post_in(w, S.PENDING_APPROVAL),
                     lambda w, a, pid: post_actions.approve(w.ctx, a, [pid])),
    "post.reject": (lambda w: post_in(w, S.PENDING_APPROVAL),
                    lambda w, a, pid: post_actions.reject(w.ctx, a, [pid], "harga salah")),
    "post.retry": (lambda w: post_in(w, S.FAILED), lambda w, a, pid: post_actions.retry(w.ctx, a, [pid])),
    "post.published": (lambda w: post_in(w, S.NEEDS_REVIEW),
                       lambda w, a, pid: post_actions.mark_published(w.ctx, a, [pid], "https://x.example/1")),
    "channels.add": (lambda w: None, lambda w, a, _: channel_actions.add_channel(
        w.ctx, a, "hook", "webhook", {"URL": "https://hooks.example/p", "SECRET": "s3cr3t-value"})),
    "channels.check": (lambda w: None, lambda w, a, _: channel_actions.check_channels(w.ctx, a, "outbox")),
    "channels.pause": (lambda w: None, lambda w, a, _: channel_actions.pause(w.ctx, a, "outbox")),
    "channels.resume": (lambda w: channel_actions.pause(w.ctx, Actor("op"), "outbox"),
                        lambda w, a, _: channel_actions.resume(w.ctx, a, "outbox")),
    "secrets.rotate": (lambda w: None, lambda w, a, _: channel_actions.rotate_secrets(w.ctx, a)),
    "users.add": (lambda w: None, lambda w, a, _: user_actions.add_user(w.ctx, a, "rina", "editor")),
    "users.list": (lambda w: None, lambda w, a, _: user_actions.list_users(w.ctx, a)),
    "users.passwd": (lambda w: user_actions.add_user(w.ctx, Actor("op"), "rina", "editor"),
                     lambda w, a, _: user_actions.set_password(w.ctx, a, "rina", "kata-sandi-baru-1")),
    "users.disable": (lambda w: user_actions.add_user(w.ctx, Actor("op"), "rina", "editor"),
                      lambda w, a, _: user_actions.set_disabled(w.ctx, a, "rina")),
    "users.token": (lambda w: user_actions.add_user(w.ctx, Actor("op"), "rina", "editor"),
                    lambda w, a, _: user_actions.create_token(w.ctx, a, "rina", "laporan")),
    "templates.export": (lambda w: w.tmp / "tpl", lambda w, a, dest: template_actions.export(a, dest)),
    "media.prune": (lambda w: None, lambda w, a, _: media_actions.prune_media(w.ctx, a)),
}


def test_every_action_has_a_case_and_a_role() -> None:
    assert set(CASES) == set(NEEDS)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(NEEDS))
def test_each_role_may_do_what_its_rank_allows_and_is_refused_the_rest(world: World, action: str,
                                                                        role: str) -> None:
    setup, call = CASES[action]
    arg = setup(world)
    before = snapshot(world)
    allowed = ROLES.index(role) >= ROLES.index(NEEDS[action].value)
    if not allowed:
        with pytest.raises(PermissionDenied) as info:
            call(world, Actor("tamu", role), arg)
        assert info.value.needs == NEEDS[action].value and "tamu" in str(info.value)
        assert snapshot(world) == before  # refused before anything was written
        assert not (world.tmp / "tpl").exists()
    else:
        call(world, Actor("tamu", role), arg)


def test_the_operator_has_full_rights_and_an_unknown_role_none() -> None:
    for action in NEEDS:
        require(Actor("op"), action)
        with pytest.raises(PermissionDenied):
            require(Actor("x", "superuser"), action)
    assert [Actor("v", Role.VIEWER).may(a) for a in ("records.list", "post.queue")] == [True, False]
    assert Actor("e", "editor").may("post.cancel") and not Actor("e", "editor").may("post.approve")
    assert Actor("a", "approver").may("post.reject") and not Actor("a", "approver").may("users.add")


# --- the write and its row, per action ---------------------------------------------------------

def test_post_actions_write_their_history_row_as_the_actor(world: World) -> None:
    who = Actor("boss", "approver")
    pid = post_in(world, S.PENDING_APPROVAL)
    assert [c.status for c in post_actions.approve(world.ctx, who, [pid])] == ["scheduled"]
    assert last_history(world, pid) == ("scheduled", "approved", "boss")
    pid = post_in(world, S.PENDING_APPROVAL)
    assert [c.status for c in post_actions.reject(world.ctx, who, [pid], " harga salah ")] == ["draft"]
    assert last_history(world, pid) == ("draft", "rejected: harga salah", "boss")
    assert post_actions.submit(world.ctx, who, [pid])[0].status == "scheduled"
    assert last_history(world, pid) == ("scheduled", "draft submitted", "boss")
    assert post_actions.cancel(world.ctx, who, [pid], "acara diundur")[0].status == "cancelled"
    assert last_history(world, pid) == ("cancelled", "acara diundur", "boss")
    pid = post_in(world, S.FAILED)
    assert post_actions.retry(world.ctx, who, [pid])[0].status == "scheduled"
    assert last_history(world, pid) == ("scheduled", "retry requested", "boss")
    pid = post_in(world, S.NEEDS_REVIEW)
    assert post_actions.mark_published(world.ctx, who, [pid], "https://x.example/1")[0].status == "published"
    assert last_history(world, pid) == ("published", "confirmed on the platform by staff", "boss")
    assert world.post(pid).remote_url == "https://x.example/1"
    pid = post_in(world, S.SCHEDULED)
    moved = post_actions.reschedule(world.ctx, who, pid, "2023-10-26 09:00")
    assert last_history(world, pid) == ("scheduled", "rescheduled to 2023-10-26T09:00:00+08:00", "boss")
    assert moved.scheduled_at == world.post(pid).scheduled_at


def test_queue_posts_stores_one_post_per_channel_created_by_the_actor(world: World) -> None:
    rows = post_actions.queue_posts(world.ctx, Actor("rina", "editor"), channels=["outbox", "tg"], text="Halo",
                                    at="2023-10-26 09:00").rows
    assert [(r["channel"], r["status"]) for r in rows] == [("outbox", "scheduled"), ("tg", "scheduled")]
    assert {last_history(world, r["id"]) for r in rows} == {("scheduled", "created", "rina")}


def test_edit_writes_history_and_audit_and_keeps_the_text_as_written(world: World) -> None:
    pid = post_in(world, S.SCHEDULED)
    done = post_actions.edit_text(world.ctx, Actor("rina", "editor"), pid, "  Kantor buka lagi besok.  ")
    assert (done.status, world.post(pid).text) == ("scheduled", "Kantor buka lagi besok.")
    assert [count for count, _, _ in done.counts] == [23] * len(done.counts)
    assert last_history(world, pid) == ("scheduled", "text edited (13 → 23 characters)", "rina")
    assert last_audit(world) == ("rina", "post.edit", str(pid))


def test_channel_and_user_actions_write_their_audit_row(world: World) -> None:
    admin = Actor("ani", "admin")
    assert channel_actions.pause(world.ctx, admin, "outbox", "diperiksa").changed
    assert last_audit(world) == ("ani", "channel.paused", "outbox")
    again = channel_actions.pause(world.ctx, admin, "outbox")
    assert (again.status, again.changed) == ("paused", False)
    assert channel_actions.resume(world.ctx, admin, "outbox").status == "active"
    assert last_audit(world) == ("ani", "channel.active", "outbox")
    added = channel_actions.add_channel(world.ctx, admin, "Hook", "WEBHOOK", {"URL": "https://hooks.example/p",
                                                                             "SECRET": "s3cr3t-value"})
    assert (added.name, added.platform) == ("hook", "webhook")
    assert last_audit(world) == ("ani", "channel.add", "hook")
    assert "s3cr3t-value" not in repr(snapshot(world))
    assert channel_actions.rotate_secrets(world.ctx, admin) == 1
    assert last_audit(world)[:2] == ("ani", "secrets.rotate")
    user = user_actions.add_user(world.ctx, admin, "rina", "editor")
    assert (user.name, user.role) == ("rina", "editor")
    assert last_audit(world) == ("ani", "user_set", "rina")
    user_actions.add_user(world.ctx, admin, "rina", "approver")
    assert [(u.name, u.role) for u in user_actions.list_users(world.ctx, admin)] == [("rina", "approver")]


def test_a_passing_check_reactivates_a_needs_reauth_channel(world: World) -> None:
    with world.db.session() as s:
        channel_store.sync_configured(s, world.settings)
        channel_store.set_status(s, channel_store.get_channel(s, "outbox"), ChannelStatus.NEEDS_REAUTH, "x", "t")
    [checked] = channel_actions.check_channels(world.ctx, Actor("ani", "admin"), "outbox")
    assert (checked.verdict, checked.reactivated) == ("OK", True)
    assert last_audit(world) == ("ani", "channel.active", "outbox")


# --- nothing written when an action fails ------------------------------------------------------

def test_failures_write_nothing(world: World) -> None:
    approver, admin = Actor("boss", "approver"), Actor("ani", "admin")
    pending = post_in(world, S.PENDING_APPROVAL)
    scheduled = post_in(world, S.SCHEDULED)
    bad = world.tmp / "bad.csv"
    bad.write_text("id,name,city\nu9,Baru,Balikpapan\n,Tanpa id,Samarinda\n")
    before = snapshot(world)
    failures: list[tuple[type[Exception], Callable[[], Any]]] = [
        # one of several posts cannot change: none of them does
        (StateError, lambda: post_actions.approve(world.ctx, approver, [pending, scheduled])),
        (StateError, lambda: post_actions.reject(world.ctx, approver, [pending, scheduled], "salah")),
        (NotFoundError, lambda: post_actions.cancel(world.ctx, approver, [scheduled, 999])),
        (ValidationError, lambda: post_actions.reject(world.ctx, approver, [pending], "  ")),
        (TooLongError, lambda: post_actions.edit_text(world.ctx, approver, scheduled, "x" * 70_000)),
        (StateError, lambda: post_actions.retry(world.ctx, approver, [scheduled])),
        (ValidationError, lambda: post_actions.reschedule(world.ctx, approver, scheduled, "2023-10-24 09:00")),
        (ValidationError, lambda: post_actions.queue_posts(world.ctx, approver, channels=["outbox", "tg"],
                                                           text="x", queue=True)),  # tg has no slots
        (NotFoundError, lambda: channel_actions.pause(world.ctx, admin, "nope")),
        (ValidationError, lambda: user_actions.add_user(world.ctx, admin, "rina", "boss")),
        (ValidationError, lambda: record_actions.import_records(world.ctx, admin, "umkm", bad)),
    ]
    for error, call in failures:
        with pytest.raises(error):
            call()
        assert snapshot(world) == before, call


def test_resume_refuses_a_channel_that_needs_reauth(world: World) -> None:
    with world.db.session() as s:
        channel_store.sync_configured(s, world.settings)
        channel_store.set_status(s, channel_store.get_channel(s, "tg"), ChannelStatus.NEEDS_REAUTH, "revoked", "t")
    before = snapshot(world)
    with pytest.raises(StateError, match="promo channels check tg"):
        channel_actions.resume(world.ctx, Actor("ani", "admin"), "tg")
    assert snapshot(world) == before


def test_a_record_edit_is_checked_like_an_import_row_and_audited(world: World) -> None:
    ext = umkm_in(world)
    before = snapshot(world)
    with pytest.raises(ValidationError, match="line 1, column 'website': 'ftp://x' is not an http"):
        record_actions.update_record(world.ctx, Actor("edo", "editor"), "umkm", ext, {"website": "ftp://x"})
    with pytest.raises(ValidationError, match="id of a record cannot change"):
        record_actions.update_record(world.ctx, Actor("edo", "editor"), "umkm", ext, {"id": "U10"})
    with pytest.raises(NotFoundError):
        record_actions.update_record(world.ctx, Actor("edo", "editor"), "umkm", "NOPE", {"name": "x"})
    assert snapshot(world) == before
    saved = record_actions.update_record(world.ctx, Actor("edo", "editor"), "umkm", ext,
                                         {"name": "Warung Baru", "curated": "ya"})
    assert saved.changed == ("name",) and saved.fields["name"] == "Warung Baru"
    assert last_audit(world) == ("edo", "record.update", ext)
    again = record_actions.update_record(world.ctx, Actor("edo", "editor"), "umkm", ext, {"name": "Warung Baru"})
    assert again.changed == () and last_audit(world) == ("edo", "record.update", ext)


def test_an_upload_is_imported_like_a_file_and_refuses_other_types(world: World) -> None:
    with pytest.raises(ValidationError, match="unknown file type"):
        record_actions.import_upload(world.ctx, Actor("edo", "editor"), "umkm", "u.xlsx", b"id,name\nU1,A\n")
    result = record_actions.import_upload(world.ctx, Actor("edo", "editor"), "umkm", "../../u.csv",
                                          b"id,name\nZZ7,A\n")
    assert result.created == 1
    page = record_actions.search_records(world.ctx, Actor("v", "viewer"), "umkm", "zz7")
    assert [r["id"] for r in page.rows] == ["ZZ7"] and page.next_after is None


def test_an_untouched_record_form_saves_as_no_change_for_every_kind(world: World) -> None:
    editor = Actor("edo", "editor")
    files = {"umkm": b"id,name,curated,website\nW1,Warung,ya,https://w.example\n",
             "products": b"id,umkm_id,name,price,tags,active,description\nWP1,W1,Kue,\"25.000\",kue;lapis,,Enak\n",
             "events": b"id,name,starts_at,ends_at,tags\nWE1,Pasar,2027-03-20 19:00:30,2027-03-21 22:00,pasar\n"}
    for kind, content in files.items():
        record_actions.import_upload(world.ctx, editor, kind, f"{kind}.csv", content)
    for kind, ext in (("umkm", "W1"), ("products", "WP1"), ("events", "WE1")):
        cells = record_actions.get_record(world.ctx, editor, kind, ext)
        assert record_actions.update_record(world.ctx, editor, kind, ext, cells).changed == (), kind
    assert record_actions.get_record(world.ctx, editor, "events", "WE1")["starts_at"] == "2027-03-20 19:00:30"
def test_preview_is_what_queueing_would_store_and_stores_nothing(world: World) -> None:
    before = snapshot(world)
    editor = Actor("rina", "editor")
    [p] = post_actions.preview(world.ctx, editor, channels=["outbox"], product="p1")
    assert snapshot(world) == before
    assert p.error is None and "Amplang Ikan" in (p.text or "") and p.link == "https://amplang.co.id/p1"
    assert "#oleholeh" in p.hashtags and p.counts == ((len(p.text or ""), 10_000, "graphemes"),)
    [stored] = post_actions.queue_posts(world.ctx, editor, channels=["outbox"], product="p1", draft=True).rows
    assert stored["text"] == p.text  # the preview is the text that goes out
    with pytest.raises(NotFoundError, match="no channel named 'nowhere'"):
        post_actions.preview(world.ctx, editor, channels=["nowhere"], text="Halo")


def test_find_sources_matches_ids_and_names_of_products_and_events(world: World) -> None:
    editor = Actor("rina", "editor")
    assert [(m.kind, m.id) for m in post_actions.find_sources(world.ctx, editor, "amplang")] == [("product", "p1")]
    assert [(m.kind, m.id) for m in post_actions.find_sources(world.ctx, editor, "E1")] == [("event", "e1")]
    assert post_actions.find_sources(world.ctx, editor, "%") == []  # a wildcard is a character here
    assert post_actions.find_sources(world.ctx, editor, "  ") == []
    with pytest.raises(PermissionDenied):
        post_actions.find_sources(world.ctx, Actor("tamu", "viewer"), "amplang")
