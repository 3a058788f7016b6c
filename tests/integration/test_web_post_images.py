"""Posts made through the API with images, on a real uvicorn on 127.0.0.1: images sent to
/api/v1/images, then POST /api/v1/posts names them by id, several in order (the first the cover),
each with its alt text, exactly as `promo post new --image … --alt …` stores them; the dispatcher
then sends the copies fitted at queue time, in that order, with their alt texts. An id that names
no stored image is refused naming it, and a viewer may not create posts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine
from PIL import Image

from scheduler import web
from scheduler.config import load_settings
from scheduler.dispatch import Dispatcher
from scheduler.models import Post, PostStatus
from scheduler.storage.db import Database
from tests.helpers import image_bytes
from tests.platforms.multipart_util import form_parts
from tests.webapp import bearer, free_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


class Served:
    def __init__(self, url: str, settings: Any, db: Database) -> None:
        self.url, self.settings, self.db = url, settings, db

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, trust_env=False, timeout=60)

    def posts(self) -> list[Post]:
        with self.db.read_session() as s:
            return list(s.query(Post).order_by(Post.id))


@pytest.fixture
async def served(promo_env: Any, tmp_path: Path) -> AsyncIterator[Served]:
    settings = load_settings(promo_env(
        channels={"x_kota": {"PLATFORM": "x", "ACCESS_TOKEN": "x-token-value-123456",
                             "BASE_URL": "http://127.0.0.1:9"},
                  "outbox": {"PLATFORM": "outbox", "PATH": str(tmp_path / "outbox.jsonl")}},
        MEDIA_DIR=str(tmp_path / "media"), MAX_ATTEMPTS="1", SECRET_KEY="kunci-rahasia-kantor-uji"))
    db = Database(settings.database_url)
    db.upgrade()
    port = free_port()
    handle = await web.start(settings, db, "127.0.0.1", port)
    try:
        yield Served(f"http://127.0.0.1:{port}", settings, db)
    finally:
        await handle.cleanup()
        db.dispose()


async def upload(client: httpx.AsyncClient, token: dict[str, str], name: str, data: bytes) -> str:
    sent = await client.post("/api/v1/images", headers=token, files={"image": (name, data, "image/jpeg")})
    assert sent.status_code == 201, sent.text
    return str(sent.json()["id"])


async def test_the_api_queues_two_images_in_order_with_alt_texts_and_x_receives_the_fitted_copies(
        served: Served) -> None:
    token = bearer(served.db, "bot", "editor")
    # Phone photos (turned by EXIF, with a GPS position): X receives upright copies without metadata.
    cover = image_bytes("JPEG", 640, 480, orientation=6, gps=True)
    second = image_bytes("JPEG", 300, 200, gps=True)
    async with served.client() as client:
        ids = [await upload(client, token, "sampul.jpg", cover), await upload(client, token, "kedua.jpg", second)]
        made = await client.post("/api/v1/posts", headers=token, json={
            "channels": ["x_kota", "outbox"], "source": "text", "text": "Kue lapis legit, Rp 25.000", "when": "now",
            "images": [{"id": ids[0], "alt": "Kue lapis di piring"}, {"id": ids[1], "alt": "Penjualnya"}]})
        assert made.status_code == 201, made.text
    x_post, outbox_post = served.posts()
    media = served.settings.media_dir
    # X: both images, fitted for X (new files in the media folder), in order, each with its alt text.
    assert x_post.image_alt == "Kue lapis di piring"
    (more_path, more_alt), = json.loads(str(x_post.more_images))
    assert more_alt == "Penjualnya"
    fitted = [Path(str(x_post.image_path)), Path(more_path)]
    assert all(p.parent == media and p.name.startswith("fit-") for p in fitted)
    assert Image.open(fitted[0]).size == (480, 640) and not Image.open(fitted[0]).getexif()
    assert Image.open(fitted[1]).size == (300, 200)
    # The outbox takes the cover alone, as it was stored.
    assert Path(str(outbox_post.image_path)) == media / ids[0] and outbox_post.more_images is None
    assert outbox_post.image_alt == "Kue lapis di piring"

    uploads: list[bytes] = []
    alts: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/2/media/upload":
            uploads.append(form_parts(request)["media"][2])
            media_id = str(1880028106020515840 + len(uploads))
            return httpx.Response(200, json={"data": {"id": media_id, "media_key": "3_" + media_id}})
        if request.url.path == "/2/media/metadata":
            body = json.loads(request.content)
            alts.append((body["id"], body["metadata"]["alt_text"]["text"]))
            return httpx.Response(200, json={"data": {"id": body["id"]}})
        return httpx.Response(201, json={"data": {"id": "1445880548472328192", "text": "Kue lapis legit"}})

    async def publish() -> None:
        dispatcher = Dispatcher(served.settings, served.db, transport=httpx.MockTransport(handler), seed=1)
        dispatcher.start()
        await dispatcher.tick()
        await dispatcher.drain()

    assert x_post.scheduled_at is not None
    with time_machine.travel(x_post.scheduled_at, tick=True):
        await asyncio.get_running_loop().run_in_executor(None, lambda: asyncio.run(publish()))
    done = {p.channel_id: p for p in served.posts()}
    assert done[x_post.channel_id].status == PostStatus.PUBLISHED.value, done[x_post.channel_id].error
    assert uploads == [p.read_bytes() for p in fitted]
    assert alts == [("1880028106020515841", "Kue lapis di piring"), ("1880028106020515842", "Penjualnya")]


async def test_an_unknown_image_id_is_refused_naming_it_and_a_viewer_may_not_create(served: Served) -> None:
    editor = bearer(served.db, "bot", "editor")
    viewer = bearer(served.db, "laporan", "viewer")
    body = {"channels": ["outbox"], "source": "text", "text": "Bazar Ramadan", "when": "draft"}
    async with served.client() as client:
        known = await upload(client, editor, "a.jpg", image_bytes("JPEG"))
        missing = "0123456789abcdef01234567.jpg"
        refused = await client.post("/api/v1/posts", headers=editor, json={
            **body, "images": [{"id": known}, {"id": missing, "alt": "hilang"}]})
        assert refused.status_code == 404 and missing in refused.json()["error"]
        assert served.posts() == []  # nothing queued, not even with the known image
        denied = await client.post("/api/v1/posts", headers=viewer, json={**body, "images": [{"id": known}]})
        assert denied.status_code == 403 and served.posts() == []
        too_long = await client.post("/api/v1/posts", headers=editor, json={
            **body, "images": [{"id": known, "alt": "x" * 1501}]})
        assert too_long.status_code in (400, 422) and served.posts() == []
        made = await client.post("/api/v1/posts", headers=editor, json={**body, "images": [{"id": known, "alt": "A"}]})
        assert made.status_code == 201, made.text
        (post,) = served.posts()
        assert post.image_path == str(served.settings.media_dir / known) and post.image_alt == "A"
