"""The admin pages of the web app (Channels, Users and API tokens, Audit) and their JSON API, on a
real uvicorn on 127.0.0.1: who may do what (each route × role), CSRF, secrets never shown again,
a disabled user's session ends, API tokens shown once, audit pages by keyset."""

from __future__ import annotations

import datetime as dt
import re
import socket
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from scheduler.config import load_settings
from scheduler.models import AuditEntry, Channel
from scheduler.storage import accounts
from scheduler.storage.db import Database
from tests.webapp import PASSWORD, Served, add_user, csrf_of

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

ROLES = ("viewer", "editor", "approver", "admin")
SECRET = "s3cr3t-WEBHOOK-signing-9f2a"
TOKEN_SECRET = "mastodon-token-7c1e-rahasia"


def closed_port() -> int:
    """A port nothing listens on (a channel there is unreachable)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Site:
    def __init__(self, served: Served, db: Database, settings: Any):
        self.served, self.db, self.settings, self.url = served, db, settings, served.url

    def client(self, name: str | None = None, password: str = PASSWORD) -> tuple[httpx.Client, str]:
        """A browser-like client, logged in as ``name``; and its CSRF token."""
        client = httpx.Client(base_url=self.url, trust_env=False, timeout=30)
        if name is None:
            return client, ""
        answer = client.post("/login", data={"name": name, "password": password, "next": "/"})
        assert answer.status_code == 303, answer.text[:300]
        return client, csrf_of(client.get("/").text)

    def token(self, name: str) -> dict[str, str]:
        with self.db.session() as s:
            return {"Authorization": f"Bearer {accounts.create_token(s, name, 'test')[1]}"}


@pytest.fixture
def site(promo_env: Any, tmp_path: Any) -> Iterator[Site]:
    env = promo_env(channels={
        "outbox": {"PLATFORM": "outbox", "PATH": str(tmp_path / "outbox.jsonl"), "BUDGET": "1000/1h,3000/24h"},
        "mati": {"PLATFORM": "webhook", "URL": f"http://127.0.0.1:{closed_port()}/hook"}},
        SECRET_KEY=Fernet.generate_key().decode(), WEB_SESSION_IDLE_MINUTES="30")
    settings = load_settings(env)
    db = Database(settings.database_url)
    db.upgrade()
    for role in ROLES:
        add_user(db, role, role)
    served = Served(settings, db)
    try:
        yield Site(served, db, settings)
    finally:
        served.stop()
        db.dispose()


def flash(client: httpx.Client, answer: httpx.Response) -> str:
    """The page a form's redirect leads to, and the one-time message on it."""
    assert answer.status_code == 303, (answer.status_code, answer.text[:500])
    page = client.get(answer.headers["location"]).text
    found = re.search(r'<p class="flash" role="status">(.*?)</p>', page, re.S)
    assert found, page[:500]
    return found.group(1)


# --- who may do what -----------------------------------------------------------------------------

#: (method, path, form data, least role); data "csrf" is added for a session.
CASES: list[tuple[str, str, dict[str, str], str]] = [
    ("GET", "/channels", {}, "viewer"),
    ("GET", "/api/v1/channels", {}, "viewer"),
    ("GET", "/channels/new?platform=webhook", {}, "admin"),
    ("POST", "/channels/outbox/check", {}, "admin"),
    ("POST", "/channels/outbox/pause", {"reason": "uji"}, "admin"),
    ("POST", "/channels/outbox/resume", {}, "admin"),
    ("POST", "/channels/new", {"name": "hook", "platform": "webhook", "key_URL": "https://hooks.example/p"}, "admin"),
    ("POST", "/api/v1/channels/outbox/check", {}, "admin"),
    ("GET", "/users", {}, "admin"),
    ("GET", "/api/v1/users", {}, "admin"),
    ("POST", "/users", {"name": "baru", "role": "viewer", "password": "sandi-baru-panjang"}, "admin"),
    ("POST", "/users/viewer/role", {"role": "viewer"}, "admin"),
    ("POST", "/users/viewer/password", {"password": PASSWORD}, "admin"),
    ("POST", "/users/editor/enable", {}, "admin"),
    ("POST", "/users/editor/tokens", {"label": "laporan"}, "admin"),
    ("GET", "/audit", {}, "admin"),
]


def test_each_route_lets_in_the_roles_it_names_and_refuses_the_others(site: Site) -> None:
    for role in ROLES:
        client, csrf = site.client(role)
        with closing(client):
            for method, path, data, least in CASES:
                if method == "GET":
                    answer = client.get(path)
                else:
                    answer = client.post(path, data={**data, "csrf": csrf})
                allowed = ROLES.index(role) >= ROLES.index(least)
                if allowed:
                    assert answer.status_code in (200, 303), (role, path, answer.status_code, answer.text[-600:])
                else:
                    assert answer.status_code == 403, (role, path, answer.status_code)
                    assert "admin" in answer.text
        if role == "viewer":  # a viewer sees the channels but no button to act on them
            with closing(site.client(role)[0]) as again:
                page = again.get("/channels").text
                assert 'id="channel-outbox"' in page and 'id="check-outbox"' not in page and "/channels/new" not in page
    # With an API token too (no CSRF there), by the token's role.
    for role in ("viewer", "admin"):
        token = site.token(role)
        with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as api:
            assert api.get("/api/v1/channels", headers=token).status_code == 200
            assert api.get("/api/v1/users", headers=token).status_code == (200 if role == "admin" else 403)
            check = api.post("/api/v1/channels/outbox/check", headers=token)
            assert check.status_code == (200 if role == "admin" else 403), check.text
            assert api.get("/users", headers=token).status_code == 303  # a token is for the API, not pages


def test_a_form_without_the_csrf_token_changes_nothing(site: Site) -> None:
    client, csrf = site.client("admin")
    with closing(client):
        for path, data in (("/users", {"name": "tamu", "role": "admin", "password": "sandi-tamu-panjang"}),
                           ("/users/viewer/disable", {}), ("/channels/outbox/pause", {"reason": "x"}),
                           ("/channels/new", {"name": "hook", "platform": "webhook",
                                              "key_URL": "https://hooks.example/p"}),
                           ("/users/viewer/tokens", {"label": "curian"})):
            for forged in ({}, {"csrf": "palsu"}):
                refused = client.post(path, data={**data, **forged})
                assert refused.status_code == 403 and "CSRF" in refused.text, path
    with site.db.read_session() as s:
        assert [u["name"] for u in accounts.list_users(s)] == list(sorted(ROLES))
        assert not any(u["disabled"] for u in accounts.list_users(s))
        assert accounts.list_tokens(s) == []
        stored = {c.name: c.status for c in s.scalars(select(Channel))}
        assert "hook" not in stored and "paused" not in stored.values()


# --- channels ------------------------------------------------------------------------------------

def test_the_channels_page_checks_pauses_and_resumes(site: Site) -> None:
    client, csrf = site.client("admin")
    with closing(client):
        page = client.get("/channels").text
        assert "aktif" in page and "outbox" in page and "mati" in page
        assert "per 24 h" in page or "tidak ada batas" in page  # each channel's send budget or none
        assert "OK" in flash(client, client.post("/channels/outbox/check", data={"csrf": csrf}))
        message = flash(client, client.post("/channels/mati/check", data={"csrf": csrf}))
        assert message.startswith("mati: tidak terjangkau")  # unreachable, in Indonesian
        evil = "<script>alert(1)</script>"
        message = flash(client, client.post("/channels/outbox/pause", data={"csrf": csrf, "reason": evil}))
        assert "outbox" in message and "dijeda" in message
        page = client.get("/channels").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and evil not in page
        assert 'id="resume-outbox"' in page and 'id="pause-outbox"' not in page
        assert "aktif kembali" in flash(client, client.post("/channels/outbox/resume", data={"csrf": csrf}))
        with site.db.read_session() as s:
            actions = [(a.actor, a.action, a.entity_id) for a in s.scalars(select(AuditEntry)
                                                                            .where(AuditEntry.entity == "channel"))]
        assert ("admin", "channel.paused", "outbox") in actions and ("admin", "channel.active", "outbox") in actions
        missing = client.post("/channels/nope/pause", data={"csrf": csrf})
        assert missing.status_code == 404 and "nope" in missing.text
    api = site.token("admin")
    with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as c:
        rows = {r["name"]: r for r in c.get("/api/v1/channels", headers=api).json()}
        assert rows["outbox"]["status"] == "active" and rows["mati"]["configured_keys"] == ["PLATFORM", "URL"] or \
            "URL" in rows["mati"]["configured_keys"]
        bad = c.post("/api/v1/channels/mati/check", headers=api).json()
        assert (bad["verdict"], bad["ok"]) == ("unreachable", False)
        assert c.post("/api/v1/channels/nope/check", headers=api).status_code == 404
        described = c.get("/api/v1/openapi.json", headers=api).json()
        assert "/api/v1/channels" in described["paths"] and "/api/v1/users" in described["paths"]
        assert "ChannelOut" in described["components"]["schemas"] and "UserOut" in described["components"]["schemas"]


def test_a_channel_added_on_the_page_keeps_its_secrets_out_of_every_answer(site: Site) -> None:
    nowhere = f"http://127.0.0.1:{closed_port()}"
    client, csrf = site.client("admin")
    with closing(client):
        form = client.get("/channels/new?platform=webhook").text
        assert 'name="key_SECRET"' in form and 'type="password"' in form
        # A mistake: the form comes back with what was typed, but never the secret.
        wrong = client.post("/channels/new", data={"csrf": csrf, "name": "9hook", "platform": "webhook",
                                                  "key_URL": "https://hooks.example/p", "key_SECRET": SECRET,
                                                  "key_TIMEOUT": "12"})
        assert wrong.status_code == 400 and "9hook" in wrong.text and SECRET not in wrong.text
        # A webhook's URL may hold a token: a secret too, so it is not sent back either.
        assert 'value="12"' in wrong.text and "hooks.example" not in wrong.text
        message = flash(client, client.post("/channels/new", data={
            "csrf": csrf, "name": "hook", "platform": "webhook", "key_URL": nowhere + "/hook",
            "key_SECRET": SECRET}))
        assert "hook" in message
        masto = client.post("/channels/new", data={
            "csrf": csrf, "name": "masto", "platform": "mastodon", "key_BASE_URL": nowhere,
            "key_ACCESS_TOKEN": TOKEN_SECRET})
        assert masto.status_code == 303, masto.text[:500]
        page = client.get("/channels").text
        assert "SECRET" in page and "ACCESS_TOKEN" in page  # which keys are set …
        bodies = [page, client.get("/channels/new?platform=mastodon").text, client.get("/audit").text,
                  client.get("/").text, client.get("/api/v1/channels").text, client.get("/api/v1/status").text]
        bodies.append(flash(client, client.post("/channels/hook/check", data={"csrf": csrf})))
    token = site.token("admin")
    with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as api:
        bodies += [api.get("/api/v1/channels", headers=token).text,
                   api.post("/api/v1/channels/masto/check", headers=token).text]
    for body in bodies:  # … never their values (a webhook's URL is one of its secrets)
        assert SECRET not in body and TOKEN_SECRET not in body and nowhere + "/hook" not in body
    with site.db.read_session() as s:
        stored = {c.name: c for c in s.scalars(select(Channel))}
        assert stored["hook"].source == "db" and stored["hook"].secrets_enc
        assert SECRET not in str(stored["hook"].options) + stored["hook"].secrets_enc
        assert TOKEN_SECRET not in str(stored["masto"].options) + str(stored["masto"].secrets_enc)


# --- users and tokens ----------------------------------------------------------------------------

def test_an_admin_adds_a_user_who_then_logs_in_and_is_managed_from_the_page(site: Site) -> None:
    admin, csrf = site.client("admin")
    with closing(admin):
        short = admin.post("/users", data={"csrf": csrf, "name": "rina", "role": "editor", "password": "pendek"})
        assert short.status_code == 400 and "at least 10" in short.text and "pendek" not in short.text
        assert 'value="rina"' in short.text  # the name typed comes back, the password never
        assert "rina" in flash(admin, admin.post("/users", data={
            "csrf": csrf, "name": "rina", "role": "editor", "password": "sandi-rina-2027", "language": "en"}))
        again = admin.post("/users", data={"csrf": csrf, "name": "rina", "role": "admin", "password": "x" * 12})
        assert again.status_code == 409
        rina, _ = site.client("rina", "sandi-rina-2027")
        with closing(rina):
            assert rina.get("/api/v1/me").json() == {"name": "rina", "role": "editor", "language": "en"}
            assert rina.get("/users").status_code == 403
            assert "rina sekarang penyetuju" in flash(admin, admin.post("/users/rina/role", data={"csrf": csrf, "role": "approver"}))
            assert rina.get("/api/v1/me").json()["role"] == "approver"  # at once
            flash(admin, admin.post("/users/rina/password", data={"csrf": csrf, "password": "sandi-baru-rina-1"}))
            assert rina.get("/api/v1/me").status_code == 401  # a new password ends her sessions
        # Disabling: the session dies at once, and she cannot log in; enabling lets her back.
        rina, _ = site.client("rina", "sandi-baru-rina-1")
        with closing(rina):
            assert rina.get("/api/v1/me").status_code == 200
            assert "rina" in flash(admin, admin.post("/users/rina/disable", data={"csrf": csrf}))
            assert rina.get("/api/v1/me").status_code == 401
            assert rina.get("/channels").status_code == 303
            assert rina.post("/login", data={"name": "rina", "password": "sandi-baru-rina-1"}).status_code == 401
        page = admin.get("/users").text
        assert 'id="enable-rina"' in page and "nonaktif" in page
        flash(admin, admin.post("/users/rina/enable", data={"csrf": csrf}))
        site.client("rina", "sandi-baru-rina-1")[0].close()
        # An admin cannot lock themselves out from the page.
        assert admin.post("/users/admin/disable", data={"csrf": csrf}).status_code == 400
        assert admin.post("/users/admin/role", data={"csrf": csrf, "role": "viewer"}).status_code == 400
        assert admin.post("/users/nobody/role", data={"csrf": csrf, "role": "viewer"}).status_code == 404
        assert 'id="disable-admin"' not in admin.get("/users").text
        myself = admin.post("/api/v1/users/admin/disable", headers={"X-CSRF-Token": csrf})
        assert myself.status_code == 400 and "yourself" in myself.json()["error"]  # the API alike
        assert admin.post("/api/v1/users/nobody/disable", headers={"X-CSRF-Token": csrf}).status_code == 404
        listed = admin.get("/api/v1/users").json()
        assert {u["name"]: (u["role"], u["password"], u["disabled"]) for u in listed}["rina"] == (
            "approver", True, False)
        assert "hash" not in str(listed) and "argon2" not in admin.get("/users").text
    with site.db.read_session() as s:
        done = [(a.actor, a.action) for a in s.scalars(select(AuditEntry).where(AuditEntry.entity_id == "rina"))]
    assert ("admin", "disabled") in done and ("admin", "enabled") in done and ("admin", "password_set") in done


def test_an_api_token_is_shown_once_works_and_can_be_revoked_from_the_page(site: Site) -> None:
    admin, csrf = site.client("admin")
    with closing(admin):
        made = admin.post("/users/editor/tokens", data={"csrf": csrf, "label": "laporan <b>bulanan</b>"})
        assert made.status_code == 200
        token = re.search(r'<code id="token">(promo_[^<]+)</code>', made.text).group(1)  # type: ignore[union-attr]
        assert "laporan &lt;b&gt;bulanan&lt;/b&gt;" in made.text
        listing = admin.get("/users").text
        assert token not in listing and "laporan &lt;b&gt;bulanan" in listing  # never again
        with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as api:
            me = api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert me.json()["name"] == "editor"
            token_id = int(re.search(r'id="revoke-(\d+)"', listing).group(1))  # type: ignore[union-attr]
            wrong_owner = admin.post(f"/users/viewer/tokens/{token_id}/revoke", data={"csrf": csrf})
            assert wrong_owner.status_code == 404  # a token of another user is never revoked by a slip
            assert "dicabut" in flash(admin, admin.post(f"/users/editor/tokens/{token_id}/revoke",
                                                        data={"csrf": csrf}))
            assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        assert 'id="revoke-' not in admin.get("/users").text


def test_a_user_name_with_markup_shows_as_text(site: Site) -> None:
    evil = "<script>alert(1)</script>"
    admin, csrf = site.client("admin")
    with closing(admin):
        flash(admin, admin.post("/users", data={"csrf": csrf, "name": evil, "role": "viewer",
                                                "password": "sandi-panjang-sekali"}))
        for path in ("/users", "/audit"):
            page = admin.get(path).text
            assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path


# --- audit ---------------------------------------------------------------------------------------

def test_the_audit_page_filters_and_pages_by_keyset(site: Site) -> None:
    with site.db.session() as s:
        for n in range(130):
            s.add(AuditEntry(actor="budi" if n % 2 else "sari", action="post.approve", entity="post",
                             entity_id=str(n), detail={"n": n}))
        s.add(AuditEntry(actor="lama", action="post.cancel", entity="post", entity_id="old",
                         at=dt.datetime(2020, 1, 5, 3, 0, tzinfo=dt.UTC)))
    admin, _ = site.client("admin")
    with closing(admin):
        first = admin.get("/audit").text
        ids = [int(i) for i in re.findall(r'id="audit-(\d+)"', first)]
        assert len(ids) == 100 and ids == sorted(ids, reverse=True)  # newest first
        older = re.search(r'id="older" href|href="([^"]+)" id="older"', first)
        assert older is not None
        second = admin.get(older.group(1).replace("&amp;", "&")).text
        rest = [int(i) for i in re.findall(r'id="audit-(\d+)"', second)]
        assert rest and max(rest) < min(ids) and 'id="older"' not in second and 'id="newest"' in second
        assert len(set(ids) | set(rest)) == len(ids) + len(rest)  # no row twice, none skipped
        with site.db.read_session() as s:
            assert len(ids) + len(rest) == len(list(s.scalars(select(AuditEntry.id))))
        budi = admin.get("/audit", params={"actor": "budi", "entity": "post"}).text
        assert len(re.findall(r'id="audit-', budi)) == 65 and "sari" not in budi
        # Days in the organisation's timezone, as `promo audit --since/--until` reads them.
        old = admin.get("/audit", params={"until": "2020-01-05"}).text
        assert len(re.findall(r'id="audit-', old)) == 1 and "lama" in old
        assert len(re.findall(r'id="audit-', admin.get("/audit", params={"since": "2020-01-06"}).text)) > 100 - 1
        for bad, named in (({"since": "kemarin"}, "since"), ({"entity": "produk"}, "entity"),
                           ({"before": "abc"}, "before")):
            answer = admin.get("/audit", params=bad)
            assert answer.status_code == 400 and named in answer.text, bad


def test_send_budget_use_and_the_last_error_are_shown_per_channel(site: Site) -> None:
    from scheduler.models import HistoryEntry, PostStatus
    from scheduler.storage import channels as channel_store
    from scheduler.storage import posts as post_store

    now = dt.datetime.now(dt.UTC)
    with site.db.session() as s:
        outbox = channel_store.sync_configured(s, site.settings)["outbox"]
        post = post_store.create_post(s, channel=outbox, kind="free_text", text="Promo", status=PostStatus.FAILED,
                                      scheduled_at=now, actor="t")
        for minutes, outcome, error in ((5, "published", None), (30, "transient", "HTTP 503 dari server"),
                                        (50, "budget", None), (120, "published", None), (60 * 25, "published", None)):
            s.add(HistoryEntry(post_id=post.id, channel_id=outbox.id, action="attempt", outcome=outcome, error=error,
                               started_at=now - dt.timedelta(minutes=minutes)))
    admin, _ = site.client("admin")
    with closing(admin):
        [row] = [r for r in admin.get("/api/v1/channels").json() if r["name"] == "outbox"]
        # Sends counted as the dispatcher counts them: attempts in the window, not those the budget held back.
        assert row["budget"] == [{"limit": 1000, "window": "1 h", "used": 2}, {"limit": 3000, "window": "24 h",
                                                                                "used": 3}]
        assert row["last_error"] == "HTTP 503 dari server" and row["last_error_at"]
        page = admin.get("/channels").text
        assert "2 dari 1.000 per 1 h" in page and "3 dari 3.000 per 24 h" in page  # thousands, Indonesian
        assert "HTTP 503 dari server" in page
