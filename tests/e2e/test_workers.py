"""`promo serve --workers 2`: two dispatch processes share a burst, each post goes out once.

Claims are atomic in the database, so the extra dispatch-only process never publishes a
post the main one claimed; both show in `promo status`; stopping the main process stops
the worker it started.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from scheduler.config import load_settings
from scheduler.models import Channel, HistoryEntry, Post, utcnow
from scheduler.storage.channels import add_channel, sync_configured
from scheduler.storage.db import Database
from scheduler.storage.posts import new_key
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
BURST = 600


@pytest.mark.slow
def test_two_dispatch_processes_publish_each_post_once(tmp_path, fake_platform, promo_env):
    fake_platform.configure(None, latency=0.05)
    channels = {f"w{i}": {"PLATFORM": "webhook", "URL": fake_platform.url(f"w{i}")} for i in range(8)}
    env = {**promo_env(channels, HEALTH_PORT="0", POLL_SECONDS="0.5", LOG_LEVEL="INFO",
                       SECRET_KEY="a passphrase for the stored channels"),
           "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "PROMO_ENV_FILE": str(tmp_path / "x.env")}
    settings = load_settings(env)
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as session:
        sync_configured(session, settings)
        # Many accounts, as a national highlight has: more due posts than one claim takes.
        for i in range(BURST):
            add_channel(session, settings, f"r{i}", "webhook", {"URL": fake_platform.url(f"r{i}")}, "test")
    server = subprocess.Popen([sys.executable, "-m", "scheduler.cli", "serve", "--workers", "2"], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def status() -> dict:
            out = subprocess.run([sys.executable, "-m", "scheduler.cli", "status", "--format", "json"], cwd=tmp_path,
                                 env=env, capture_output=True, text=True, timeout=30).stdout
            return json.loads(out) if out.strip().startswith("{") else {}

        wait_for(lambda: len(status().get("workers", [])) == 2, 30, "two dispatch processes ticking")
        # 20 posts on each of 8 channels, one on each of BURST more, all due a moment from now.
        due = utcnow() + dt.timedelta(seconds=1.5)
        with db.engine.begin() as conn:
            ids = dict(conn.execute(select(Channel.name, Channel.id)).all())
            work = [(name, n) for name in channels for n in range(20)] + [(f"r{i}", 0) for i in range(BURST)]
            conn.execute(insert(Post.__table__), [
                dict(channel_id=ids[name], kind="free_text", text=f"{name} #{n}", status="scheduled",
                     scheduled_at=due, idempotency_key=new_key(), created_by="test", created_at=utcnow(),
                     updated_at=utcnow(), attempts=0, failures=0)
                for name, n in work])
        total = 160 + BURST
        wait_for(lambda: status().get("counts", {}).get("published") == total, 60, f"all {total} published")
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output
    assert "started 1 extra dispatch worker" in output

    with db.session() as session:
        attempts = session.scalars(select(HistoryEntry).where(HistoryEntry.action == "attempt")).all()
        workers = {a.actor for a in attempts}
        assert len(attempts) == total and all(a.outcome == "published" for a in attempts)
    assert len(workers) == 2, "both processes published part of the burst"
    for i in range(BURST):
        assert len(fake_platform.requests_for(f"r{i}")) == 1
    for name in channels:
        requests = fake_platform.requests_for(name)
        assert len(requests) == 20 and len({r.key for r in requests}) == 20  # once each
        assert [r.body["text"] for r in requests] == [f"{name} #{n}" for n in range(20)], \
            "a channel's posts go out one at a time, in order"
    assert status_after_stop(env, tmp_path) == [], "the extra worker stopped with the main process"


def status_after_stop(env, cwd) -> list:
    out = subprocess.run([sys.executable, "-m", "scheduler.cli", "status", "--format", "json"], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=30).stdout
    return json.loads(out)["workers"]


@pytest.mark.slow
def test_a_killed_main_process_takes_its_worker_with_it(tmp_path, promo_env):
    env = {**promo_env(HEALTH_PORT="0"), "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT),
           "PROMO_ENV_FILE": str(tmp_path / "x.env")}
    subprocess.run([sys.executable, "-m", "scheduler.cli", "db", "upgrade"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    server = subprocess.Popen([sys.executable, "-m", "scheduler.cli", "serve", "--workers", "2"], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def children() -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    try:
        kids = wait_for(children, 30, "the extra dispatch worker")
    finally:
        server.kill()
        server.communicate(timeout=30)
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid) for pid in kids), 30,
         "the worker to exit after its parent was killed")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "gone"
