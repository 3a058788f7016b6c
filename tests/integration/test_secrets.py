"""No secret reaches the database (unencrypted), the logs or the history output.

Every platform gets a channel configured with recognisable fake secrets (every secret
value in tests/platforms/cases contains ``SECRET``); posts are published through the real
dispatcher, once successfully and once failing, with each platform's documented answers;
then the SQLite file, the captured logs and `promo history` are scanned.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from scheduler import cli
from scheduler.composer import Composer
from scheduler.config import load_settings
from scheduler.dispatch import Dispatcher
from scheduler.models import Channel, Post, PostStatus
from scheduler.planner import create_posts, find_source, resolve_channels
from scheduler.storage import channels as channel_store
from scheduler.storage.db import Database
from tests.helpers import image_bytes
from tests.platforms.test_contract import CASES

ROOT_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

PASSPHRASE = "correct horse battery staple promo"


def _env(tmp_path, ports):
    env = {"PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db", "PROMO_TEMPLATES_DIR": str(ROOT_TEMPLATES),
           "PROMO_SECRET_KEY": PASSPHRASE, "PROMO_MEDIA_DIR": str(tmp_path / "media"),
           "PROMO_PUBLIC_MEDIA_BASE_URL": "http://127.0.0.1:9/media", "PROMO_PUBLISH_TIMEOUT": "5",
           "PROMO_RETRY_BASE_SECONDS": "0", "PROMO_MAX_ATTEMPTS": "1", "PROMO_HEALTH_PORT": "0"}
    names = []
    for platform, case in sorted(CASES.items()):
        name = f"c_{platform}"
        names.append(name)
        env[f"PROMO_CHANNEL_{name.upper()}_PLATFORM"] = platform
        for k, v in case.options(tmp_path).items():
            env[f"PROMO_CHANNEL_{name.upper()}_{k}"] = v
        if case.success is not None:
            env[f"PROMO_CHANNEL_{name.upper()}_BASE_URL"] = f"http://127.0.0.1:{ports[platform]}"
    env["PROMO_CHANNELS"] = ",".join(names)
    return env


@pytest.fixture
def jpeg(tmp_path):
    path = tmp_path / "kue.jpg"
    path.write_bytes(image_bytes("JPEG", 48, 32))
    return path


def test_no_secret_in_database_logs_or_history(tmp_path, jpeg, caplog, capsys, monkeypatch):
    ports = {p: 20000 + i for i, p in enumerate(sorted(CASES))}
    by_port = {v: k for k, v in ports.items()}
    env = _env(tmp_path, ports)
    settings = load_settings(env)
    db = Database(settings.database_url)
    db.upgrade()
    mode = {"answer": "success"}
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        case = CASES[by_port[request.url.port]]
        seen.append(f"{case.PLATFORM} {request.method} {request.url.path}")
        answer = getattr(case, mode["answer"]) or case.success
        return answer(request)

    composer = Composer(settings.templates_dir, settings.timezone, settings.language)
    with db.session() as session:
        channels = resolve_channels(session, settings, [c.name for c in settings.channels])
        ids = {row.name: row.id for row, _cfg in channels}
    for platform, case in CASES.items():
        if hasattr(case, "state"):
            state = channel_store.DbChannelState(db, ids[f"c_{platform}"], settings.secret_key)
            asyncio.run(state.update(case.state()))

    def queue() -> None:
        with db.session() as session:
            for row, cfg in resolve_channels(session, settings, [c.name for c in settings.channels]):
                source = find_source(session, text="Kue lapis legit, Rp 25.000. https://umkm.example/kue #UMKM")
                create_posts(session, settings, composer, source, [(row, cfg)], now_flag=True, actor="test",
                             image=str(jpeg) if cfg.platform == "instagram" else None)

    async def publish_all() -> None:
        dispatcher = Dispatcher(settings, db, transport=httpx.MockTransport(handler), seed=1)
        dispatcher.start()
        await dispatcher.tick()
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            with db.session() as session:
                waiting = session.scalars(select(Post).where(Post.status.in_(
                    [PostStatus.SCHEDULED.value, PostStatus.PUBLISHING.value]))).all()
                paused = {c.id for c in session.scalars(select(Channel).where(Channel.status != "active"))}
            if all(p.channel_id in paused for p in waiting):
                break
            assert asyncio.get_running_loop().time() < deadline, "publishing did not finish"
            await asyncio.sleep(0.01)
            await dispatcher.tick()
        await dispatcher.drain()

    caplog.set_level(logging.DEBUG)
    queue()
    asyncio.run(publish_all())
    with db.session() as session:
        published = session.scalars(select(Post).where(Post.status == PostStatus.PUBLISHED.value)).all()
    assert len(published) == len(CASES), [(p.channel.name, p.status, p.error) for p in
                                          db.sessions().scalars(select(Post))]

    # Now every platform answers with its documented auth failure (or 5xx where it has none).
    mode["answer"] = "auth_failure"
    queue()
    asyncio.run(publish_all())
    mode["answer"] = "server_error"
    with db.session() as session:
        for c in session.scalars(select(Channel)):
            c.status = "active"
    queue()
    asyncio.run(publish_all())

    with db.session() as session:
        statuses = [p.status for p in session.scalars(select(Post))]
        errors = [p.error for p in session.scalars(select(Post)) if p.error]
    # Outbox has no failure mode, so it publishes in every round.
    assert statuses.count(PostStatus.PUBLISHED.value) >= len(CASES)
    assert len(errors) >= 2 * (len(CASES) - 2), "the failing rounds must have recorded errors"

    # A channel stored in the database keeps its secrets encrypted too.
    with db.session() as session:
        channel_store.add_channel(session, settings, "masto_db", "mastodon",
                                  {"BASE_URL": "https://mastodon.example", "ACCESS_TOKEN": "SECRET-db-stored-token"},
                                  "test")
    db.dispose()

    for suffix in ("", "-wal", "-shm"):
        f = tmp_path / f"promo.db{suffix}"
        if f.exists():
            assert b"SECRET-" not in f.read_bytes(), f"plaintext secret in {f.name}"
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "SECRET-" not in logs
    assert "post" in logs  # the dispatcher did log its attempts

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PROMO_ENV_FILE", str(tmp_path / "none.env"))
    capsys.readouterr()
    for args in (["history", "--all", "--format", "json"], ["history", "--format", "csv"], ["post", "list"],
                 ["channels", "list", "--format", "json"]):
        assert cli.main(args) == 0
        out = capsys.readouterr()
        assert "SECRET-" not in out.out + out.err, args
    history = json.loads(_run_json(capsys, ["history", "--format", "json"]))
    assert {h["outcome"] for h in history} >= {"published", "auth"}


def _run_json(capsys, args):
    assert cli.main(args) == 0
    return capsys.readouterr().out


def test_tokens_stored_by_an_earlier_run_are_redacted_after_a_restart(tmp_path) -> None:
    import os
    import secrets as pysecrets
    import subprocess
    import sys

    env = {"PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db", "PROMO_SECRET_KEY": "kunci-rahasia-kantor",
           "PROMO_CHANNELS": "bsky", "PROMO_CHANNEL_BSKY_PLATFORM": "bluesky",
           "PROMO_CHANNEL_BSKY_HANDLE": "kota.example", "PROMO_CHANNEL_BSKY_APP_PASSWORD": "abcd-efgh-ijkl-mnop"}
    settings = load_settings(env)
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as session:
        channel_id = channel_store.sync_configured(session, settings)["bsky"].id
    # A run refreshed its session and stored six credentials (more than ever fit one bucket before).
    tokens = {k: f"{k.lower()}-{pysecrets.token_hex(12)}" for k in (
        "ACCESS_JWT", "REFRESH_JWT", "ACCESS_TOKEN", "REFRESH_TOKEN", "ACCESS_SECRET", "SESSION_TOKEN")}
    asyncio.run(channel_store.DbChannelState(db, channel_id, settings.secret_key).update(tokens))
    db.dispose()
    # A new process (the restarted service) reads them back and logs a line that quotes them.
    script = ("import logging, sys\n"
              "from scheduler.config import load_settings\n"
              "from scheduler.logs import setup_logging\n"
              "from scheduler.storage.channels import DbChannelState\n"
              "from scheduler.storage.db import Database\n"
              "s = load_settings()\n"
              f"state = DbChannelState(Database(s.database_url), {channel_id}, s.secret_key)\n"
              "setup_logging('INFO')\n"
              "logging.getLogger('promo.test').warning('state: %s', sorted(state.values.items()))\n")
    res = subprocess.run([sys.executable, "-c", script], env={**env, "PATH": os.environ.get("PATH", "/usr/bin")},
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "ACCESS_JWT" in res.stdout + res.stderr  # the line was logged…
    for value in tokens.values():
        assert value not in res.stdout + res.stderr  # …with every stored token masked
