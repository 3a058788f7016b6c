"""One post with five images queued on X, Telegram, Facebook, LinkedIn, Discord, Instagram and Threads,
then sent by the
dispatcher (each platform's documented answers, httpx.MockTransport; Instagram and Threads
fetch them from PROMO_PUBLIC_MEDIA_BASE_URL): every platform receives the
copies fitted for it when queued, byte for byte, in the order given (the cover first), as many as
one post of it takes, each within its ImageRules; nothing is fitted while sending. (The request
shapes of each album are checked field by field in tests/platforms/test_<platform>.py; Mastodon's
and Bluesky's whole paths in test_mastodon_album.py and tests/platforms/test_bluesky_pds.py.)"""

from __future__ import annotations

import io
import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from scheduler import fitting
from scheduler.composer import Composer
from scheduler.config import load_settings
from scheduler.errors import ValidationError
from scheduler.media import MIME
from scheduler.models import Post, PostStatus
from scheduler.planner import create_posts, find_source, resolve_channels
from scheduler.platforms import adapter_class
from scheduler.storage.db import Database
from tests.helpers import album_photos, image_bytes, publish_due
from tests.platforms.multipart_util import form_parts

ROOT = Path(__file__).resolve().parents[2]
PAGE = "104857600123"
IG, TH = "17841400000000001", "25012345678901234"
CHANNELS = {
    "x": {"ACCESS_TOKEN": "SECRET-x-access-token-123"},
    "telegram": {"BOT_TOKEN": "123456789:SECRET-telegram-token-abcdef", "CHAT_ID": "@umkmbalikpapan"},
    "facebook": {"PAGE_ID": PAGE, "ACCESS_TOKEN": "EAAB-SECRET-page-token"},
    "linkedin": {"ORGANIZATION_ID": "2414183", "ACCESS_TOKEN": "SECRET-linkedin-token"},
    "discord": {"WEBHOOK_URL": "https://discord.com/api/webhooks/1143334455667788990/SECRET-discord-webhook-token"},
    "instagram": {"IG_USER_ID": IG, "ACCESS_TOKEN": "IGAA-SECRET-ig-token", "GRAPH_HOST": "graph.instagram.com",
                  "POLL_INTERVAL": "0"},
    "threads": {"USER_ID": TH, "ACCESS_TOKEN": "THAA-SECRET-threads-token", "POLL_INTERVAL": "0"},
}
PUBLIC = "https://media.example/promo"  # PROMO_PUBLIC_MEDIA_BASE_URL: Instagram and Threads fetch from it
ALTS = ["Sampul: kue lapis legit", "Irisan kue lapis", "Kotak hadiah", "Etalase toko", "Pembeli antre"]
WEBHOOK = {"type": 1, "id": "1143334455667788990", "name": "Promo Kota", "channel_id": "1100000000000000002",
           "guild_id": "1000000000000000001", "application_id": None}


def sources(folder: Path) -> list[Path]:
    """The album's five files, the last a wide banner."""
    return album_photos(folder, ("banner.jpg", image_bytes("JPEG", 6000, 250)))


class Platforms:
    """Answers each platform's calls as documented; keeps the image bytes each received, in order."""

    def __init__(self) -> None:
        self.received: dict[str, list[bytes]] = defaultdict(list)
        self.posted: dict[str, Any] = {}
        self.ids = itertools.count(1)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, host = request.url.path, request.url.host
        if host == "discord.com" or "/webhooks/" in path:
            return self.discord(request)
        if path.startswith("/bot"):
            return self.telegram(request)
        if path.startswith("/2/"):
            return self.x(request)
        if path.startswith("/rest/") or path.startswith("/up/"):
            return self.linkedin(request)
        if IG in path or TH in path or path.startswith(("/v21.0/1788", "/v1.0/1788", "/v21.0/1792", "/v1.0/1792")):
            return self.graph(request)
        if path.startswith("/v"):
            return self.facebook(request)
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    def x(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/2/media/upload":
            self.received["x"].append(form_parts(request)["media"][2])
            media_id = str(1880028106020515840 + next(self.ids))
            return httpx.Response(200, json={"data": {"id": media_id, "media_key": f"3_{media_id}"}})
        if request.url.path == "/2/media/metadata":
            return httpx.Response(200, json={"data": {"id": json.loads(request.content)["id"]}})
        assert request.url.path == "/2/tweets", request.url
        self.posted["x"] = json.loads(request.content)["media"]["media_ids"]
        return httpx.Response(201, json={"data": {"id": "1445880548472328192", "text": "Kue lapis"}})

    def telegram(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/sendMediaGroup"), request.url
        parts = form_parts(request)
        media = json.loads(parts["media"][2])
        self.received["telegram"] = [parts[m["media"].removeprefix("attach://")][2] for m in media]
        chat = {"id": -1001234567890, "title": "UMKM Balikpapan", "username": "umkmbalikpapan", "type": "channel"}
        return httpx.Response(200, json={"ok": True, "result": [
            {"message_id": 330 + i, "date": 1772413200, "chat": chat, "media_group_id": "13911",
             "photo": [{"file_id": f"AgAC{i}", "file_unique_id": f"AQAD{i}", "width": 90, "height": 90}]}
            for i in range(len(media))]})

    def facebook(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"id": PAGE, "name": "Diskominfo Kota"})
        if request.url.path.endswith("/photos"):
            self.received["facebook"].append(form_parts(request)["source"][2])
            return httpx.Response(200, json={"id": f"77889{next(self.ids)}"})
        assert request.url.path.endswith("/feed"), request.url
        self.posted["facebook"] = json.loads(form_parts(request)["attached_media"][2]) \
            if request.headers["content-type"].startswith("multipart") else json.loads(
                httpx.QueryParams(request.content.decode())["attached_media"])
        return httpx.Response(200, json={"id": f"{PAGE}_112233",
                                         "permalink_url": f"https://www.facebook.com/{PAGE}/posts/112233"})

    def linkedin(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/rest/images":
            n = next(self.ids)
            return httpx.Response(200, json={"value": {"uploadUrl": f"http://127.0.0.1:9/up/{n}",
                                                       "image": f"urn:li:image:C4E10AQ{n}"}})
        if request.method == "PUT":
            self.received["linkedin"].append(request.content)
            return httpx.Response(201)
        assert request.url.path == "/rest/posts", request.url
        self.posted["linkedin"] = json.loads(request.content)["content"]
        return httpx.Response(201, headers={"x-restli-id": "urn:li:share:7141138937766391808"})

    def graph(self, request: httpx.Request) -> httpx.Response:
        """Instagram and Threads: a container per image (is_carousel_item), the CAROUSEL one, publish."""
        platform = "instagram" if request.url.path.startswith("/v21.0/") else "threads"
        version = request.url.path.split("/")[1]
        if request.method == "GET":
            container = request.url.path.rsplit("/", 1)[-1]
            if container == "17920238422030506":
                return httpx.Response(200, json={"id": container, "permalink": f"https://{platform}.example/p/1"})
            return httpx.Response(200, json={"id": container, "status_code": "FINISHED", "status": "FINISHED"})
        form = dict(httpx.QueryParams(request.content.decode()))
        if request.url.path.endswith("_publish"):
            return httpx.Response(200, json={"id": "17920238422030506"})
        if form.get("is_carousel_item") == "true":
            self.received[platform].append(form["image_url"].encode())
            self.posted.setdefault(platform + " alts", []).append(form.get("alt_text"))
        elif form.get("media_type") == "CAROUSEL":
            self.posted[platform] = form["children"].split(",")
        assert version in ("v21.0", "v1.0")
        return httpx.Response(200, json={"id": f"178894555600{next(self.ids):05d}"})

    def discord(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=WEBHOOK)
        parts = form_parts(request)
        payload = json.loads(parts["payload_json"][2])
        self.received["discord"] = [parts[f"files[{a['id']}]"][2] for a in payload["attachments"]]
        self.posted["discord"] = payload["attachments"]
        return httpx.Response(200, json={"id": "1200000000000000003", "type": 0, "content": "x",
                                         "channel_id": WEBHOOK["channel_id"], "webhook_id": WEBHOOK["id"],
                                         "timestamp": "2026-08-22T01:00:00.000000+00:00"})


@pytest.mark.parametrize("names", [("x", "telegram", "facebook", "linkedin", "discord"), ("instagram", "threads")],
                         ids=["uploaded", "by-url"])
def test_each_platform_receives_its_fitted_copies_in_order_as_many_as_it_takes(
        names: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db", "PROMO_TEMPLATES_DIR": str(ROOT / "templates"),
           "PROMO_MEDIA_DIR": str(tmp_path / "media"), "PROMO_HEALTH_PORT": "0", "PROMO_MAX_ATTEMPTS": "1",
           "PROMO_SECRET_KEY": "a long passphrase for the album tests", "PROMO_CHANNELS": ",".join(names)}
    if "instagram" in names:  # with a public media URL, Discord would link the images instead of uploading them
        env["PROMO_PUBLIC_MEDIA_BASE_URL"] = PUBLIC
    for platform, options in ((n, CHANNELS[n]) for n in names):
        env[f"PROMO_CHANNEL_{platform.upper()}_PLATFORM"] = platform
        env[f"PROMO_CHANNEL_{platform.upper()}_BASE_URL"] = "http://127.0.0.1:9"
        env.update({f"PROMO_CHANNEL_{platform.upper()}_{k}": v for k, v in options.items()})
    settings = load_settings(env)
    db = Database(settings.database_url)
    db.upgrade()
    photos = sources(tmp_path)
    composer = Composer(settings.templates_dir, settings.timezone, settings.language)
    with db.session() as session:
        chans = resolve_channels(session, settings, list(names))
        source = find_source(session, text="Kue lapis legit, Rp 25.000 #UMKM")
        posts = create_posts(session, settings, composer, source, chans, now_flag=True, actor="test",
                             image=[str(p) for p in photos], image_alt=ALTS)
        ids = {p.id: name for p, (_, cfg) in zip(posts, chans, strict=True) for name in [cfg.platform]}

    def no_fitting(*args: object, **kwargs: object) -> None:
        raise AssertionError("fitting in the dispatcher's burst path")

    monkeypatch.setattr(fitting, "fit_image", no_fitting)
    platforms = Platforms()

    publish_due(settings, db, httpx.MockTransport(platforms))
    copies: dict[str, list[bytes]] = {}
    with db.session() as session:
        for post_id, platform in ids.items():
            post = session.get(Post, post_id)
            assert post is not None and post.status == PostStatus.PUBLISHED.value, (platform, post and post.error)
            paths = [Path(str(post.image_path))] + [Path(p) for p, _ in json.loads(post.more_images or "[]")]
            copies[platform] = [p.read_bytes() for p in paths]
            if adapter_class(platform).rules.images.by_url:  # type: ignore[union-attr]
                assert platforms.received[platform] == [f"{PUBLIC}/{p.name}".encode() for p in paths], platform
                platforms.received[platform] = copies[platform]  # what the platform fetches from there
    db.dispose()

    for platform in names:
        rules = adapter_class(platform).rules.images
        assert rules is not None
        sent = platforms.received[platform]
        assert len(sent) == min(len(photos), rules.per_post), platform  # X: 4; the others take all 5
        assert sent == copies[platform], platform  # the copies made when queued, in the order given
        shown = [Image.open(io.BytesIO(data)) for data in sent]
        for img, data in zip(shown, sent, strict=True):
            assert MIME[str(img.format)] in rules.formats and len(data) <= rules.max_bytes, platform
            assert fitting._size_ok(rules, img.width, img.height), (platform, img.size)
            assert not img.getexif().get_ifd(0x8825), platform  # no GPS position left
        cover = 0.8 if platform == "instagram" else 0.75  # the upright phone photo first (padded to 4:5 there)
        assert round(shown[0].width / shown[0].height, 2) == cover, platform
        assert sent[2] == photos[2].read_bytes()  # already fine everywhere: sent as attached
    if "x" in names:
        assert len(platforms.posted["x"]) == 4
        assert [a.get("description") for a in platforms.posted["discord"]] == ALTS
        assert [i.get("altText") for i in platforms.posted["linkedin"]["multiImage"]["images"]] == ALTS
        assert len(platforms.posted["facebook"]) == 5
    else:
        for platform in names:
            assert len(platforms.posted[platform]) == 5 and platforms.posted[platform + " alts"] == ALTS, platform




def test_an_alt_text_over_xs_1000_characters_is_refused_when_queued_naming_the_channel(tmp_path: Path) -> None:
    env = {"PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db", "PROMO_TEMPLATES_DIR": str(ROOT / "templates"),
           "PROMO_MEDIA_DIR": str(tmp_path / "media"), "PROMO_CHANNELS": "x,telegram",
           "PROMO_CHANNEL_X_PLATFORM": "x", "PROMO_CHANNEL_X_ACCESS_TOKEN": "SECRET-x-access-token-123",
           "PROMO_CHANNEL_TELEGRAM_PLATFORM": "telegram", "PROMO_CHANNEL_TELEGRAM_BOT_TOKEN": "1:SECRET-tg-token",
           "PROMO_CHANNEL_TELEGRAM_CHAT_ID": "@umkmbalikpapan"}
    settings = load_settings(env)
    db = Database(settings.database_url)
    db.upgrade()
    photo = tmp_path / "kue.jpg"
    photo.write_bytes(image_bytes("JPEG", 640, 480))
    composer = Composer(settings.templates_dir, settings.timezone, settings.language)
    with db.session() as session:
        chans = resolve_channels(session, settings, ["x", "telegram"])
        source = find_source(session, text="Kue lapis legit")
        with pytest.raises(ValidationError, match="channel x \\(x\\): alt text of 1,001 characters is over the "
                                                  "platform's 1,000"):
            create_posts(session, settings, composer, source, chans, now_flag=True, actor="test",
                         image=[str(photo)], image_alt=["a" * 1001])
        posts = create_posts(session, settings, composer, source, chans, now_flag=True, actor="test",
                             image=[str(photo)], image_alt=["a" * 1000])
        assert [p.image_alt for p in posts] == ["a" * 1000] * 2
    db.dispose()
