"""The dispatcher sends the copy fitted at queue time, and never fits in its burst path."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
import pytest
import time_machine
from PIL import Image

from scheduler import fitting
from scheduler.composer import Composer
from scheduler.config import load_settings
from scheduler.dispatch import Dispatcher
from scheduler.models import Post, PostStatus
from scheduler.planner import create_posts, find_source, resolve_channels
from scheduler.storage.db import Database
from tests.helpers import image_bytes
from tests.platforms.multipart_util import form_parts

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_x_receives_the_fitted_copy_made_when_queued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db", "PROMO_TEMPLATES_DIR": str(TEMPLATES),
           "PROMO_MEDIA_DIR": str(tmp_path / "media"), "PROMO_HEALTH_PORT": "0", "PROMO_MAX_ATTEMPTS": "1",
           "PROMO_CHANNELS": "x_kota", "PROMO_CHANNEL_X_KOTA_PLATFORM": "x",
           "PROMO_CHANNEL_X_KOTA_ACCESS_TOKEN": "x-token-value-123456",
           "PROMO_CHANNEL_X_KOTA_BASE_URL": "http://127.0.0.1:9"}
    settings = load_settings(env)
    db = Database(settings.database_url)
    db.upgrade()
    photo = tmp_path / "phone.jpg"
    photo.write_bytes(image_bytes("JPEG", 640, 480, orientation=6, gps=True))
    composer = Composer(settings.templates_dir, settings.timezone, settings.language)
    with db.session() as session:
        chans = resolve_channels(session, settings, ["x_kota"])
        source = find_source(session, text="Kue lapis legit, Rp 25.000")
        [post] = create_posts(session, settings, composer, source, chans, now_flag=True, actor="test",
                              image=str(photo), image_alt="Kue lapis")
        fitted = Path(str(post.image_path))
    uploads: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/2/media/upload":
            uploads.append(form_parts(request)["media"][2])
            return httpx.Response(200, json={"data": {"id": "1880028106020515840", "media_key": "3_1880028106020515840"}})
        if request.url.path == "/2/media/metadata":
            return httpx.Response(200, json={"data": {"id": "1880028106020515840"}})
        return httpx.Response(201, json={"data": {"id": "1445880548472328192", "text": "Kue lapis legit"}})

    def no_fitting(*args: object, **kwargs: object) -> None:
        raise AssertionError("fitting in the dispatcher's burst path")

    monkeypatch.setattr(fitting, "fit_image", no_fitting)

    async def publish() -> None:
        dispatcher = Dispatcher(settings, db, transport=httpx.MockTransport(handler), seed=1)
        dispatcher.start()
        await dispatcher.tick()
        await dispatcher.drain()

    with time_machine.travel(post.scheduled_at, tick=True):
        asyncio.run(publish())
    with db.session() as session:
        done = session.get(Post, post.id)
        assert done is not None and done.status == PostStatus.PUBLISHED.value, done and done.error
    assert uploads == [fitted.read_bytes()]
    sent = Image.open(io.BytesIO(uploads[0]))
    assert sent.size == (480, 640) and not sent.getexif()
    db.dispose()
