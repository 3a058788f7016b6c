"""Health: /healthz answers 200 with the last tick while the loop ticks and 503 once it stalls;
`promo status` shows the same and the post counts, and exits 1 when the service stalled."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import time_machine

from scheduler.config import load_settings
from scheduler.models import PostStatus
from scheduler.service import Service
from scheduler.storage import channels as channel_store
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database
from tests.helpers import wait_for

S = PostStatus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_healthz_is_503_while_the_dispatch_loop_is_stuck(promo_env, tmp_path: Path, wait_until) -> None:
    port = free_port()
    settings = load_settings(promo_env(HEALTH_PORT=str(port), HEALTH_STALL_SECONDS="1", POLL_SECONDS="0.1"))
    db = Database(settings.database_url)
    db.upgrade()
    service = Service(settings, db)
    runner = asyncio.create_task(service.run())
    url = f"http://127.0.0.1:{port}/healthz"
    answers: list[httpx.Response] = []

    async with httpx.AsyncClient(timeout=5) as client:
        async def answer_is(code: int) -> None:
            async def probe() -> None:
                try:
                    answers.append(await client.get(url))
                except httpx.ConnectError:  # not listening yet
                    pass

            await wait_until(lambda: bool(answers) and answers[-1].status_code == code, 15, tick=probe, poll=0.1)

        try:
            await answer_is(200)
            body = answers[-1].json()
            assert body["status"] == "ok" and body["worker"] == service.dispatcher.worker
            last = dt.datetime.fromisoformat(body["last_tick"])
            assert abs((dt.datetime.now(dt.UTC) - last).total_seconds()) < 5

            # The dispatch job hangs (a stuck query, a wedged adapter): ticks stop.
            release = asyncio.Event()
            real_tick = service.dispatcher.tick

            async def stuck_tick() -> int:
                await release.wait()
                return await real_tick()

            service.dispatcher.tick = stuck_tick  # type: ignore[method-assign]
            await answer_is(503)
            stalled = answers[-1].json()
            assert stalled["status"] == "stalled" and stalled["seconds_since_tick"] > 1
            assert dt.datetime.fromisoformat(stalled["last_tick"]) >= last

            service.dispatcher.tick = real_tick  # type: ignore[method-assign]
            release.set()
            await answer_is(200)
            assert (await client.get(f"http://127.0.0.1:{port}/other")).status_code == 404
        finally:
            service.request_stop()
            await asyncio.wait_for(runner, 30)


def test_promo_status_shows_the_last_tick_and_counts_and_exits_1_when_stalled(promo_env, tmp_path: Path) -> None:
    port = free_port()
    # 3 s: a loaded CI machine can leave a healthy process a second between ticks.
    env = promo_env(HEALTH_PORT=str(port), HEALTH_STALL_SECONDS="3", POLL_SECONDS="0.1")
    settings = load_settings(env)
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as session:
        outbox = channel_store.sync_configured(session, settings)["outbox"]
        now = dt.datetime.now(dt.UTC)
        for n in range(2):
            post_store.create_post(session, channel=outbox, kind="free_text", text=f"Promo {n}",
                                   status=S.SCHEDULED, scheduled_at=now, actor="test")
        post_store.create_post(session, channel=outbox, kind="free_text", text="later", status=S.DRAFT,
                               scheduled_at=None, actor="test")
    proc_env = {**env, "PATH": os.environ.get("PATH", "/usr/bin")}

    def promo(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "scheduler.cli", *args], env=proc_env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)

    assert "not running" in promo("status").stdout
    serve = subprocess.Popen([sys.executable, "-m", "scheduler.cli", "serve"], env=proc_env, cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def healthz() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            except httpx.TransportError:
                return None

        ok = wait_for(lambda: (r := healthz()) is not None and r.status_code == 200 and r, 30, "/healthz 200")
        assert isinstance(ok, httpx.Response)
        worker = ok.json()["worker"]
        status = wait_for(lambda: (r := promo("status", "--format", "json")).returncode == 0
                          and json.loads(r.stdout)["counts"].get("published") == 2 and r, 30, "both published")
        assert isinstance(status, subprocess.CompletedProcess)
        report = json.loads(status.stdout)
        assert report["counts"] == {"published": 2, "draft": 1}
        assert [w["worker"] for w in report["workers"]] == [worker] and report["workers"][0]["stalled"] is False
        text = promo("status")
        assert text.returncode == 0 and f"service {worker}: last tick" in text.stdout
        assert "posts: draft 1, published 2" in text.stdout and "STALLED" not in text.stdout

        serve.send_signal(signal.SIGSTOP)  # the process hangs: no more ticks
        try:
            stalled = wait_for(lambda: (r := promo("status")).returncode == 1 and r, 30, "status to report a stall")
            assert isinstance(stalled, subprocess.CompletedProcess)
            assert "STALLED" in stalled.stdout and "posts: draft 1, published 2" in stalled.stdout
        finally:
            serve.send_signal(signal.SIGCONT)
        wait_for(lambda: promo("status").returncode == 0, 30, "status to recover")
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(30) == 0
        assert "not running" in promo("status").stdout
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_read_commands_answer_while_a_hung_process_holds_the_write_lock(promo_env, tmp_path: Path) -> None:
    # What CI once hit: `promo serve` was frozen (SIGSTOP) in the middle of a write
    # transaction, and `promo status` waited for the lock, then died with
    # "database is locked" instead of reporting the stall.
    env = promo_env()
    settings = load_settings(env)
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as session:
        outbox = channel_store.sync_configured(session, settings)["outbox"]
        post = post_store.create_post(session, channel=outbox, kind="free_text", text="Promo Nusakraf",
                                      status=S.SCHEDULED, scheduled_at=dt.datetime.now(dt.UTC), actor="test")
    proc_env = {**env, "PATH": os.environ.get("PATH", "/usr/bin")}

    def promo(*args: str) -> subprocess.CompletedProcess[str]:
        # Well under SQLite's 30 s busy timeout: a command that waits for the lock times out here.
        return subprocess.run([sys.executable, "-m", "scheduler.cli", *args], env=proc_env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=20)

    with db.session() as holder:  # BEGIN IMMEDIATE: the write lock is held until the block ends
        post_store.create_post(holder, channel=outbox, kind="free_text", text="not committed yet",
                               status=S.DRAFT, scheduled_at=None, actor="test")
        status = promo("status", "--format", "json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["counts"] == {"scheduled": 1}  # the committed state only
        listed = promo("post", "list", "--format", "json")
        assert listed.returncode == 0, listed.stderr
        assert [p["id"] for p in json.loads(listed.stdout)] == [post.id]
        shown = promo("post", "show", str(post.id))
        assert shown.returncode == 0 and "Promo Nusakraf" in shown.stdout, shown.stderr
        assert promo("history", "--all", "--format", "json").returncode == 0
        assert promo("records", "list", "products").returncode == 0
        preview = promo("compose", "--text", "Pameran UMKM hari ini", "--channel", "outbox")
        assert preview.returncode == 0 and "Pameran UMKM hari ini" in preview.stdout, preview.stderr
        assert promo("highlight", "preview").returncode == 0
        assert promo("highlight", "history").returncode == 0
        channels = promo("channels", "list")  # the web app's Channels page reads the same way
        assert channels.returncode == 0 and "outbox" in channels.stdout, channels.stderr
    with db.read_session() as reader:  # and a read session writes nothing
        assert post_store.counts_by_status(reader) == {"scheduled": 1, "draft": 1}
    db.dispose()


def test_a_write_command_gives_up_with_a_clear_message_when_the_lock_stays_held(promo_env, tmp_path: Path) -> None:
    env = promo_env(DB_BUSY_SECONDS="0.5")
    settings = load_settings(env)
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as session:
        channel_store.sync_configured(session, settings)
    proc_env = {**env, "PATH": os.environ.get("PATH", "/usr/bin")}
    with db.session() as holder:
        post_store.counts_by_status(holder)  # BEGIN IMMEDIATE already holds the write lock
        res = subprocess.run([sys.executable, "-m", "scheduler.cli", "post", "new", "--text", "Promo batik",
                              "--channel", "outbox", "--now"], env=proc_env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=20)
    assert res.returncode == 1
    assert "the database is busy" in res.stderr and "PROMO_DB_BUSY_SECONDS" in res.stderr
    assert "Traceback" not in res.stderr and "[SQL:" not in res.stderr
    with db.read_session() as reader:
        assert post_store.counts_by_status(reader) == {}  # nothing half-written
    # Once the lock is free the same command goes through.
    again = subprocess.run([sys.executable, "-m", "scheduler.cli", "post", "new", "--text", "Promo batik",
                            "--channel", "outbox", "--now"], env=proc_env, cwd=tmp_path, capture_output=True,
                           text=True, timeout=20)
    assert again.returncode == 0, again.stderr
    db.dispose()


def test_a_stalled_answer_never_prints_the_threshold_itself(promo_env) -> None:
    """Just past the limit (1.0004 s after a tick, limit 1 s) the answer is 'stalled' and its age
    reads above the limit: rounding to the nearest millisecond printed 1.0, which contradicts it."""
    settings = load_settings(promo_env(HEALTH_STALL_SECONDS="1"))
    db = Database(settings.database_url)
    db.upgrade()
    service = Service(settings, db)
    tick = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)
    service.dispatcher.last_tick = tick
    with time_machine.travel(tick + dt.timedelta(seconds=1, microseconds=400), tick=False):
        ok, body = service.health()
    assert not ok and body["status"] == "stalled"
    assert body["seconds_since_tick"] > body["stall_after_seconds"]
    with time_machine.travel(tick + dt.timedelta(seconds=1), tick=False):
        ok, body = service.health()
    assert ok and body["seconds_since_tick"] == 1.0
