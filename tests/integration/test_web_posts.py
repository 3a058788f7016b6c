"""Compose, Approvals, the post page's actions and the posts API's writes, on a real uvicorn on
127.0.0.1: each action allowed for its role and refused (403) below it, CSRF refused without
the token, text never shortened behind anyone's back, previews counted per platform, and a
product's name shown as text, never as markup."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from scheduler import web
from scheduler.actions import Actor, Context
from scheduler.actions import posts as actions
from scheduler.actions.records import import_records
from scheduler.config import load_settings
from scheduler.models import Post, PostStatus
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database
from tests.webapp import PASSWORD, add_user, bearer, csrf_of, free_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

XSS = "<script>alert(1)</script>"
UMKM = "id,name,city,curated\nu1,Amplang Kakak,Balikpapan,ya\n"
LONG = " ".join(["Kerupuk ikan tenggiri yang renyah dan gurih, dibuat setiap pagi."] * 12)
PRODUCTS = ("id;umkm_id;name;description;price;url;tags;curation\n"
            f"p1;u1;Amplang Ikan;{LONG};25000;https://amplang.co.id/p1;oleholeh;approved\n"
            f"p2;u1;{XSS};Kue <b>lapis</b>;15000;;;approved\n")
OP = Actor("operator")


class App:
    def __init__(self, settings: Any, db: Database, port: int):
        self.settings, self.db, self.url = settings, db, f"http://127.0.0.1:{port}"
        self.ctx = Context(settings, db)

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, trust_env=False, timeout=30, **kw)

    async def login(self, name: str) -> tuple[httpx.AsyncClient, str]:
        client = self.client()
        answer = await client.post("/login", data={"name": name, "password": PASSWORD, "next": "/"})
        assert answer.status_code == 303, answer.text[:300]
        return client, csrf_of((await client.get("/")).text)

    def post(self, status: PostStatus, text: str = "Pameran UMKM hari Sabtu #UMKM", channel: str = "outbox") -> int:
        """A post in ``status`` (set up as the operator, the way the service would get it there)."""
        row = actions.queue_posts(self.ctx, OP, channels=[channel], text=text, draft=True).rows[0]
        with self.db.session() as s:
            post = post_store.get_post(s, row["id"], lock=True)
            post.scheduled_at = post.created_at
            path = {PostStatus.DRAFT: [], PostStatus.PENDING_APPROVAL: [PostStatus.PENDING_APPROVAL],
                    PostStatus.SCHEDULED: [PostStatus.SCHEDULED],
                    PostStatus.FAILED: [PostStatus.SCHEDULED, PostStatus.PUBLISHING, PostStatus.FAILED],
                    PostStatus.NEEDS_REVIEW: [PostStatus.SCHEDULED, PostStatus.PUBLISHING, PostStatus.NEEDS_REVIEW]}
            for step in path[status]:
                post_store.transition(s, post, step, actor="test", reason="set up")
            return int(row["id"])

    def status(self, post_id: int) -> str:
        with self.db.read_session() as s:
            return str(post_store.get_post(s, post_id).status)

    def count(self) -> int:
        with self.db.read_session() as s:
            return len(list(s.query(Post)))


@pytest.fixture
async def app(promo_env: Any, tmp_path: Path) -> AsyncIterator[App]:
    settings = load_settings(promo_env(
        channels={"outbox": {"PLATFORM": "outbox", "PATH": str(tmp_path / "outbox.jsonl"), "SLOTS": "09:00,19:00"},
                  "x_kota": {"PLATFORM": "x", "ACCESS_TOKEN": "x-token-value-123456", "SLOTS": "10:00"},
                  "bsky": {"PLATFORM": "bluesky", "HANDLE": "kota.example", "APP_PASSWORD": "abcd-efgh-ijkl-mnop"}},
        REQUIRE_APPROVAL="true", MEDIA_DIR=str(tmp_path / "media"), SECRET_KEY="kunci-rahasia-kantor-uji"))
    db = Database(settings.database_url)
    db.upgrade()
    (tmp_path / "umkm.csv").write_text(UMKM)
    (tmp_path / "products.csv").write_text(PRODUCTS)
    ctx = Context(settings, db)
    import_records(ctx, OP, "umkm", tmp_path / "umkm.csv")
    import_records(ctx, OP, "products", tmp_path / "products.csv")
    for name, role in (("vina", "viewer"), ("edo", "editor"), ("apri", "approver")):
        add_user(db, name, role)
    port = free_port()
    handle = await web.start(settings, db, "127.0.0.1", port)
    try:
        yield App(settings, db, port)
    finally:
        await handle.cleanup()
        db.dispose()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


# --- the preview --------------------------------------------------------------------------------

async def test_the_preview_counts_each_platform_its_own_way_and_stores_nothing(app: App) -> None:
    client, csrf = await app.login("edo")
    async with contextlib.aclosing(client):
        body = {"channels": ["outbox", "x_kota", "bsky"], "source": "product", "product": "p1"}
        answer = await client.post("/api/v1/preview", json=body, headers={"X-CSRF-Token": csrf})
        assert answer.status_code == 200, answer.text
        rows = {r["channel"]: r for r in answer.json()["channels"]}
        counts = {name: [(c["method"], c["limit"]) for c in r["counts"]] for name, r in rows.items()}
        assert counts["x_kota"] == [("x_weighted", 280)] and counts["bsky"][0] == ("graphemes", 300)
        assert counts["outbox"] == [("graphemes", 10_000)]
        # The long description is cut for X and Bluesky, marked so; the outbox takes it whole.
        assert rows["x_kota"]["shortened"] and rows["bsky"]["shortened"] and not rows["outbox"]["shortened"]
        assert all(c["fits"] and c["count"] <= c["limit"] for r in rows.values() for c in r["counts"])
        assert rows["outbox"]["link"] == "https://amplang.co.id/p1" and "#UMKM" in rows["outbox"]["hashtags"]
        assert len(rows["outbox"]["text"]) > len(LONG) > rows["x_kota"]["counts"][0]["count"]
        # Free text that does not fit is refused per channel, saying by how much (not cut).
        free = {"channels": ["x_kota", "outbox"], "source": "text", "text": LONG}
        rows = {r["channel"]: r for r in (await client.post("/api/v1/preview", json=free,
                                                             headers={"X-CSRF-Token": csrf})).json()["channels"]}
        assert "over the limit" in rows["x_kota"]["error"] and "shorten" in rows["x_kota"]["error"]
        assert rows["outbox"]["text"] == LONG
        # Without the CSRF header a session may not ask (JSON or not).
        refused = await client.post("/api/v1/preview", json=body)
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    assert app.count() == 0
    viewer, csrf = await app.login("vina")
    async with contextlib.aclosing(viewer):
        answer = await viewer.post("/api/v1/preview", json=body, headers={"X-CSRF-Token": csrf})
        assert answer.status_code == 403


async def test_the_search_finds_products_by_name_and_the_names_show_as_text(app: App) -> None:
    client, _csrf = await app.login("edo")
    async with contextlib.aclosing(client):
        found = (await client.get("/api/v1/sources", params={"q": "amplang"})).json()
        assert [(m["kind"], m["id"]) for m in found] == [("product", "p1")]
        page = await client.get("/compose", params={"q": "script"})
        assert page.status_code == 200
        assert XSS not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        # The preview of that product, rendered on the server (what the page shows without script).
        page = await client.get("/compose", params={"product": "p2"})
        assert "<b>lapis</b>" not in page.text and "&lt;b&gt;lapis&lt;/b&gt;" in page.text
        assert XSS not in page.text and 'class="preview"' in page.text
        assert "Tautan: " in page.text and "karakter" in page.text  # Indonesian words (Link was "Masuk")
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert '<script src="/static/compose.js" defer></script>' in page.text  # the only script: no inline JS


# --- composing and saving -----------------------------------------------------------------------

async def test_too_long_free_text_is_refused_with_the_reason_and_nothing_is_queued(app: App) -> None:
    client, csrf = await app.login("edo")
    async with contextlib.aclosing(client):
        form = {"csrf": csrf, "source": "text", "text": LONG, "channels": ["outbox", "x_kota"], "when": "queue"}
        answer = await client.post("/compose", data=form)
        assert answer.status_code == 400
        assert "x_kota" in answer.text and "over the limit" in answer.text and "nothing queued" in answer.text
        assert LONG in answer.text  # what was typed is still there
        assert app.count() == 0
        answer = await client.post("/api/v1/posts", headers={"X-CSRF-Token": csrf},
                                   json={"channels": ["outbox", "x_kota"], "source": "text", "text": LONG,
                                         "when": "queue"})
        assert answer.status_code == 400 and "over the limit" in answer.json()["error"]
        assert app.count() == 0
        # Asked to shorten, it is cut to fit and queued on both.
        answer = await client.post("/compose", data={**form, "shorten": "true"})
        assert answer.status_code == 303 and answer.headers["location"] == "/posts", answer.text[answer.text.find("<main>"):][:1500]
        assert app.count() == 2
        page = await client.get("/posts")
        assert "saved" in page.text  # the one-time message


async def test_compose_saves_one_post_per_channel_with_the_uploaded_image(app: App) -> None:
    client, csrf = await app.login("edo")
    async with contextlib.aclosing(client):
        form = {"csrf": csrf, "source": "product", "product": "p1", "channels": ["outbox", "bsky"],
                "when": "at", "at": "2099-05-01T09:30", "alt": "amplang"}
        bad = await client.post("/compose", data=form, files={"image": ("foto.png", b"not an image", "image/png")})
        assert bad.status_code == 400 and "foto.png" in bad.text and app.count() == 0
        preview = await client.post("/compose", data={**form, "do": "preview"})
        assert preview.status_code == 200 and preview.text.count('class="preview"') == 2 and app.count() == 0
        saved = await client.post("/compose", data=form, files={"image": ("foto.png", png(), "image/png")})
        assert saved.status_code == 303, saved.text[:500]
        rows = (await client.get("/api/v1/posts")).json()
        assert sorted(r["channel"] for r in rows) == ["bsky", "outbox"]
        assert {r["status"] for r in rows} == {"pending_approval"}  # PROMO_REQUIRE_APPROVAL
        assert all(r["scheduled_at"].startswith("2099-05-01T09:30") for r in rows)
        assert all(r["image"] and Path(r["image"]).parent == app.settings.media_dir for r in rows)
        assert not list(Path("/tmp").glob("promo-upload-*/foto.png"))  # the upload's copy is gone


async def test_the_api_creates_posts_with_a_token_and_refuses_a_viewer(app: App) -> None:
    token = bearer(app.db, "bot", "editor")
    async with app.client() as client:
        made = await client.post("/api/v1/posts", headers=token, json={
            "channels": ["outbox"], "source": "text", "text": "Bazar Ramadan di Lapangan Merdeka", "when": "draft"})
        assert made.status_code == 201, made.text
        (row,) = made.json()["posts"]
        assert row["status"] == "draft" and row["created_by"] == "bot"
        viewer = bearer(app.db, "laporan", "viewer")
        refused = await client.post("/api/v1/posts", headers=viewer, json={
            "channels": ["outbox"], "source": "text", "text": "x", "when": "draft"})
        assert refused.status_code == 403
        assert app.count() == 1
        spec = (await client.get("/api/v1/openapi.json", headers=token)).json()
        assert {"post", "patch"} <= set(spec["paths"]["/api/v1/posts/{id}"]) | set(spec["paths"]["/api/v1/posts"])
        assert "text" in spec["components"]["schemas"]["TextEdit"]["properties"]
        for action in ("approve", "reject", "cancel", "reschedule", "retry", "published"):
            assert "post" in spec["paths"][f"/api/v1/posts/{{id}}/{action}"]


# --- each action, each role ---------------------------------------------------------------------

#: (action, the state a post needs for it, the least role, JSON body, the state after)
ACTIONS = [
    ("approve", PostStatus.PENDING_APPROVAL, "approver", None, "scheduled"),
    ("reject", PostStatus.PENDING_APPROVAL, "approver", {"comment": "Harga salah"}, "draft"),
    ("cancel", PostStatus.SCHEDULED, "editor", None, "cancelled"),
    ("reschedule", PostStatus.SCHEDULED, "editor", {"at": "2099-01-02 10:00"}, "scheduled"),
    ("retry", PostStatus.FAILED, "approver", None, "scheduled"),
    ("published", PostStatus.NEEDS_REVIEW, "approver", {"url": "https://kota.example/p/1"}, "published"),
]
RANK = {"viewer": 0, "editor": 1, "approver": 2}
USERS = {"viewer": "vina", "editor": "edo", "approver": "apri"}


async def test_each_api_action_is_allowed_for_its_role_and_refused_below_it(app: App) -> None:
    clients = {role: await app.login(name) for role, name in USERS.items()}
    try:
        for action, state, least, body, after in ACTIONS:
            for role, (client, csrf) in clients.items():
                post_id = app.post(state)
                answer = await client.post(f"/api/v1/posts/{post_id}/{action}", json=body,
                                           headers={"X-CSRF-Token": csrf})
                if RANK[role] >= RANK[least]:
                    assert answer.status_code == 200, (action, role, answer.text)
                    assert answer.json()["status"] == after == app.status(post_id), (action, role)
                else:
                    assert answer.status_code == 403, (action, role, answer.text)
                    assert app.status(post_id) == state.value, (action, role)
            # A session without the CSRF token may do nothing, whatever its role.
            post_id = app.post(state)
            client, _ = clients["approver"]
            refused = await client.post(f"/api/v1/posts/{post_id}/{action}", json=body)
            assert refused.status_code == 403 and app.status(post_id) == state.value, action
        # Editing text: editor and up; a viewer may not.
        for role, (client, csrf) in clients.items():
            post_id = app.post(PostStatus.DRAFT)
            answer = await client.patch(f"/api/v1/posts/{post_id}", json={"text": "Teks baru #UMKM"},
                                        headers={"X-CSRF-Token": csrf})
            assert answer.status_code == (403 if role == "viewer" else 200), (role, answer.text)
        # The wrong state is a conflict, named.
        client, csrf = clients["approver"]
        post_id = app.post(PostStatus.DRAFT)
        answer = await client.post(f"/api/v1/posts/{post_id}/approve", headers={"X-CSRF-Token": csrf})
        assert answer.status_code == 409 and "not pending_approval" in answer.json()["error"]
        answer = await client.post(f"/api/v1/posts/{post_id}/reject", json={"comment": ""},
                                   headers={"X-CSRF-Token": csrf})
        assert answer.status_code == 400
    finally:
        for client, _ in clients.values():
            await client.aclose()


async def test_each_form_action_is_allowed_for_its_role_and_refused_below_it(app: App) -> None:
    clients = {role: await app.login(name) for role, name in USERS.items()}
    try:
        for action, state, least, body, after in ACTIONS:
            for role, (client, csrf) in clients.items():
                post_id = app.post(state)
                form = {"csrf": csrf, **(body or {})}
                if action == "reschedule":
                    form["at"] = "2099-01-02T10:00"
                answer = await client.post(f"/posts/{post_id}/{action}", data=form)
                if RANK[role] >= RANK[least]:
                    assert answer.status_code == 303, (action, role, answer.text[:500])
                    assert answer.headers["location"] == f"/posts/{post_id}"
                    assert app.status(post_id) == after, (action, role)
                else:
                    assert answer.status_code == 403, (action, role)
                    assert app.status(post_id) == state.value
            post_id = app.post(state)
            client, _ = clients["approver"]
            refused = await client.post(f"/posts/{post_id}/{action}", data=body or {})
            assert refused.status_code == 403 and "CSRF" in refused.text and app.status(post_id) == state.value
    finally:
        for client, _ in clients.values():
            await client.aclose()


async def test_rejecting_needs_a_comment_and_the_comment_is_in_the_history(app: App) -> None:
    client, csrf = await app.login("apri")
    async with contextlib.aclosing(client):
        post_id = app.post(PostStatus.PENDING_APPROVAL)
        page = await client.get("/approvals")
        assert f'id="approval-{post_id}"' in page.text
        answer = await client.post(f"/posts/{post_id}/reject", data={"csrf": csrf, "comment": "  ",
                                                                      "next": "/approvals"})
        assert answer.status_code == 400 and "say why" in answer.text
        assert app.status(post_id) == "pending_approval"
        answer = await client.post(f"/posts/{post_id}/reject", data={"csrf": csrf, "next": "/approvals",
                                                                      "comment": f"Harga salah {XSS}"})
        assert answer.status_code == 303 and answer.headers["location"] == "/approvals"
        page = await client.get(f"/posts/{post_id}")
        assert "rejected: Harga salah &lt;script&gt;" in page.text and XSS not in page.text
        assert app.status(post_id) == "draft"
        assert f'id="approval-{post_id}"' not in (await client.get("/approvals")).text


async def test_editing_text_that_does_not_fit_is_refused_with_the_reason(app: App) -> None:
    client, csrf = await app.login("edo")
    async with contextlib.aclosing(client):
        post_id = app.post(PostStatus.SCHEDULED, channel="x_kota")
        before = (await client.get(f"/api/v1/posts/{post_id}")).json()["text"]
        answer = await client.post(f"/posts/{post_id}/edit", data={"csrf": csrf, "text": LONG})
        assert answer.status_code == 400
        assert "over the limit of 280" in answer.text and "nothing changed" in answer.text
        assert LONG in answer.text  # the typed text is kept in the form
        answer = await client.patch(f"/api/v1/posts/{post_id}", json={"text": LONG}, headers={"X-CSRF-Token": csrf})
        assert answer.status_code == 400 and "over the limit" in answer.json()["error"]
        assert (await client.get(f"/api/v1/posts/{post_id}")).json()["text"] == before
        answer = await client.post(f"/posts/{post_id}/edit", data={"csrf": csrf, "text": "Amplang baru! #UMKM"})
        assert answer.status_code == 303
        # With PROMO_REQUIRE_APPROVAL an edited post needs approval again.
        assert app.status(post_id) == "pending_approval"


async def test_the_post_page_offers_only_what_the_role_may_do(app: App) -> None:
    pending = app.post(PostStatus.PENDING_APPROVAL)
    review = app.post(PostStatus.NEEDS_REVIEW)
    with app.db.session() as s:
        post = post_store.get_post(s, review, lock=True)
        post.next_attempt_at = post.created_at
    seen: dict[str, tuple[str, str]] = {}
    for role, name in USERS.items():
        client, _ = await app.login(name)
        async with contextlib.aclosing(client):
            seen[role] = ((await client.get(f"/posts/{pending}")).text, (await client.get(f"/posts/{review}")).text)
    viewer, editor, approver = seen["viewer"], seen["editor"], seen["approver"]
    assert 'id="actions"' in viewer[0] and "<form method=\"post\" action=\"/posts/" not in viewer[0] + viewer[1]
    assert 'id="edit"' in editor[0] and 'id="cancel"' in editor[0] and 'id="approve"' not in editor[0]
    assert 'id="retry"' not in editor[1] and 'id="published"' not in editor[1]
    assert 'id="approve"' in approver[0] and 'id="reject"' in approver[0]
    assert 'id="retry"' in approver[1] and 'id="published"' in approver[1] and 'id="edit"' not in approver[1]
    assert 'id="next-try"' in approver[1]  # the next retry time is shown
    assert 'id="counts"' in editor[0]


async def test_the_pages_need_their_roles(app: App) -> None:
    expected = {"viewer": {"/compose": 403, "/approvals": 403}, "editor": {"/compose": 200, "/approvals": 403},
                "approver": {"/compose": 200, "/approvals": 200}}
    for role, name in USERS.items():
        client, csrf = await app.login(name)
        async with contextlib.aclosing(client):
            for path, status in expected[role].items():
                assert (await client.get(path)).status_code == status, (role, path)
            saved = await client.post("/compose", data={"csrf": csrf, "source": "text", "text": "Halo",
                                                        "channels": ["outbox"], "when": "draft"})
            assert saved.status_code == (403 if role == "viewer" else 303), role
            found = await client.get("/api/v1/sources", params={"q": "amplang"})
            assert found.status_code == (403 if role == "viewer" else 200), role
    async with app.client() as stranger:
        refused = await stranger.post("/compose", data={"source": "text", "text": "Halo", "channels": ["outbox"],
                                                         "when": "draft"})
        assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    assert app.count() == 2
    client, _csrf = await app.login("edo")
    async with contextlib.aclosing(client):
        no_token = await client.post("/compose", data={"source": "text", "text": "Halo", "channels": ["outbox"],
                                                        "when": "draft"})
        assert no_token.status_code == 403 and "CSRF" in no_token.text
    assert app.count() == 2
