"""Rotated tokens survive a restart: stored encrypted in the channel row, used by the next process.

X rotates its OAuth 2.0 refresh token on every refresh, so losing the new pair on restart
would lock the channel out. The dispatcher publishes, the adapter refreshes (the access
token was rejected), the new pair is persisted; a second dispatcher (a restarted service)
publishes with the stored token, without another refresh, and nothing is in plaintext.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from sqlalchemy import select

from scheduler.composer import Composer
from scheduler.config import load_settings
from scheduler.dispatch import Dispatcher
from scheduler.models import Channel, Post, PostStatus
from scheduler.planner import create_posts, find_source, resolve_channels
from scheduler.storage.db import Database

ROOT = Path(__file__).resolve().parents[2]


class FakeX:
    def __init__(self) -> None:
        self.valid = {"SECRET-old-access"}
        self.refresh = "SECRET-old-refresh"
        self.rotations = 0
        self.bearers: list[str] = []
        self.rejected_first = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/2/oauth2/token":
            form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
            if form.get("refresh_token") != self.refresh:
                return httpx.Response(400, json={"error": "invalid_request",
                                                 "error_description": "Value passed for the token was invalid."})
            self.rotations += 1
            access, self.refresh = f"SECRET-access-{self.rotations}", f"SECRET-refresh-{self.rotations}"
            self.valid = {access}
            return httpx.Response(200, json={"token_type": "bearer", "expires_in": 7200, "access_token": access,
                                             "refresh_token": self.refresh, "scope": "tweet.write offline.access"})
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.bearers.append(bearer)
        if not self.rejected_first:  # the seed access token has expired on X's side
            self.rejected_first = True
            self.valid.discard("SECRET-old-access")
        if bearer not in self.valid:
            return httpx.Response(401, json={"title": "Unauthorized", "type": "about:blank", "status": 401,
                                             "detail": "Unauthorized"})
        n = len(self.bearers)
        return httpx.Response(201, json={"data": {"id": f"18{n:017d}", "text": json.loads(request.content)["text"]}})


async def publish_due(settings, db, transport) -> None:
    dispatcher = Dispatcher(settings, db, transport=transport, seed=1)
    dispatcher.start()
    await dispatcher.tick()
    while dispatcher.inflight:
        await asyncio.sleep(0.01)
    await dispatcher.drain()


def test_rotated_x_tokens_are_persisted_encrypted_and_used_after_restart(tmp_path):
    env = {"PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db", "PROMO_TEMPLATES_DIR": str(ROOT / "templates"),
           "PROMO_SECRET_KEY": "another long passphrase for tests", "PROMO_CHANNELS": "x_kota",
           "PROMO_CHANNEL_X_KOTA_PLATFORM": "x", "PROMO_CHANNEL_X_KOTA_BASE_URL": "http://127.0.0.1:9",
           "PROMO_CHANNEL_X_KOTA_ACCESS_TOKEN": "SECRET-old-access",
           "PROMO_CHANNEL_X_KOTA_REFRESH_TOKEN": "SECRET-old-refresh", "PROMO_CHANNEL_X_KOTA_CLIENT_ID": "client-1"}
    settings = load_settings(env)
    db = Database(settings.database_url)
    db.upgrade()
    fake = FakeX()
    composer = Composer(settings.templates_dir, settings.timezone, settings.language)

    def queue(text: str) -> None:
        with db.session() as session:
            create_posts(session, settings, composer, find_source(session, text=text),
                         resolve_channels(session, settings, ["x_kota"]), now_flag=True, actor="test")

    queue("Pertama: promo UMKM Balikpapan #UMKM")
    asyncio.run(publish_due(settings, db, httpx.MockTransport(fake)))
    assert fake.rotations == 1
    assert fake.bearers == ["SECRET-old-access", "SECRET-access-1"]

    # A restarted service: new dispatcher, new adapter, same database.
    queue("Kedua: kopi robusta Teluk #UMKM")
    asyncio.run(publish_due(settings, db, httpx.MockTransport(fake)))
    assert fake.rotations == 1, "the stored token was used; no second refresh with a spent refresh token"
    assert fake.bearers[-1] == "SECRET-access-1"

    with db.session() as session:
        assert {p.status for p in session.scalars(select(Post))} == {PostStatus.PUBLISHED.value}
        row = session.scalars(select(Channel)).one()
        assert row.secrets_enc and "SECRET" not in row.secrets_enc and row.status == "active"
    db.dispose()
    for f in tmp_path.glob("promo.db*"):
        assert b"SECRET-" not in f.read_bytes()
