"""The compose preview's image details, on a real uvicorn on 127.0.0.1: an image sent once to
/api/v1/images, then each channel's preview says what its platform will receive (type, pixels,
bytes, padded or cropped per IMAGE_FIT, or sent as is), or why it cannot be fitted, naming the
platform; and it is what queueing then stores, fitted once (the preview's copies are the ones queued)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from scheduler import fitting, web
from scheduler.config import load_settings
from scheduler.storage.db import Database
from tests.webapp import PASSWORD, add_user, csrf_of, free_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def wide_transparent_png() -> bytes:
    """1600×400 (4:1, wider than Instagram's 1.91:1), half of it transparent."""
    img = Image.new("RGBA", (1600, 400), (30, 120, 200, 255))
    img.paste((0, 0, 0, 0), (800, 0, 1600, 400))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def noise_strip() -> bytes:
    """70×6000 of noise: over Bluesky's 1,000,000 bytes, and too narrow to be scaled under it."""
    out = io.BytesIO()
    Image.frombytes("RGB", (70, 6000), os.urandom(70 * 6000 * 3)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Each time the fitting code really fits an image (the web app runs in this process)."""
    done: list[str] = []
    real = fitting.fit_image

    def counted(data: bytes, rules: Any, option: Any = None, name: str = "image",
                cache: Any = None) -> fitting.Fitted:
        done.append(rules.key())
        return real(data, rules, option, name, cache)

    monkeypatch.setattr(fitting, "fit_image", counted)
    yield done


@pytest.fixture
async def served(promo_env: Any, tmp_path: Path) -> AsyncIterator[tuple[str, Path, Database]]:
    ig = {"PLATFORM": "instagram", "IG_USER_ID": "17841400000000", "ACCESS_TOKEN": "ig-token-value-123456",
          "SLOTS": "09:00"}
    settings = load_settings(promo_env(
        channels={"ig": ig, "ig_crop": {**ig, "IMAGE_FIT": "crop"},
                  "outbox": {"PLATFORM": "outbox", "PATH": str(tmp_path / "outbox.jsonl"), "SLOTS": "09:00"},
                  "bsky": {"PLATFORM": "bluesky", "HANDLE": "kota.example", "APP_PASSWORD": "abcd-efgh-ijkl-mnop"}},
        MEDIA_DIR=str(tmp_path / "media"), PUBLIC_MEDIA_BASE_URL="https://media.example.id",
        SECRET_KEY="kunci-rahasia-kantor-uji"))
    db = Database(settings.database_url)
    db.upgrade()
    add_user(db, "edo", "editor")
    add_user(db, "vina", "viewer")
    port = free_port()
    handle = await web.start(settings, db, "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}", tmp_path / "media", db
    finally:
        await handle.cleanup()
        db.dispose()


async def login(url: str, name: str) -> tuple[httpx.AsyncClient, str]:
    client = httpx.AsyncClient(base_url=url, trust_env=False, timeout=60)
    answer = await client.post("/login", data={"name": name, "password": PASSWORD, "next": "/"})
    assert answer.status_code == 303, answer.text[:300]
    return client, csrf_of((await client.get("/compose" if name == "edo" else "/")).text)


async def test_the_preview_says_what_each_platform_receives_of_the_image(
        served: tuple[str, Path, Database], fits: list[str]) -> None:
    url, media, db = served
    client, csrf = await login(url, "edo")
    async with contextlib.aclosing(client):
        png = wide_transparent_png()
        sent = await client.post("/api/v1/images", files={"image": ("banner.png", png, "image/png")},
                                 headers={"X-CSRF-Token": csrf})
        assert sent.status_code == 201, sent.text
        staged = sent.json()
        assert staged["format"] == "image/png" and (staged["width"], staged["height"]) == (1600, 400)
        assert staged["bytes"] == len(png) and fits == []  # stored, not fitted yet
        body = {"channels": ["ig", "ig_crop", "outbox"], "text": "Pameran UMKM Sabtu", "image_id": staged["id"]}
        answer = await client.post("/api/v1/preview", json=body, headers={"X-CSRF-Token": csrf})
        assert answer.status_code == 200, answer.text
        images = {r["channel"]: r["image"] for r in answer.json()["channels"]}
        ig, crop, outbox = images["ig"], images["ig_crop"], images["outbox"]
        # Instagram takes JPEG only, 320–1440 px wide, 4:5 to 1.91:1: converted, and padded or cropped.
        assert ig["format"] == crop["format"] == "image/jpeg" and not ig["as_attached"]
        assert ig["reshaped"] == "padded" and crop["reshaped"] == "cropped"
        assert any("PNG → JPEG" in c for c in ig["changes"]) and any("transparency" in c for c in ig["changes"])
        assert 1.8 < ig["width"] / ig["height"] <= 1.91 and crop["height"] == 400 and crop["width"] < 800
        # The outbox declares no image rules: it gets the image as attached.
        assert outbox == {"format": "image/png", "width": 1600, "height": 400, "bytes": len(png), "changes": [],
                          "as_attached": True, "reshaped": None, "error": None}
        assert len(fits) == 2  # once per Instagram channel (two IMAGE_FITs)
        # Typing on: the same image is not fitted again.
        for text in ("Pameran UMKM Sabtu ini", "Pameran UMKM Sabtu ini!"):
            again = await client.post("/api/v1/preview", json={**body, "text": text}, headers={"X-CSRF-Token": csrf})
            assert [r["image"] for r in again.json()["channels"]] == [ig, crop, outbox]
        assert len(fits) == 2
        # Queued with the same image: the copies the preview fitted are the ones stored, fitted once.
        page = await client.post("/compose", data={"channels": ["ig", "ig_crop"], "source": "text", "csrf": csrf,
                                                   "text": "Pameran UMKM Sabtu", "when": "draft", "do": "save"},
                                 files={"image": ("banner.png", png, "image/png")})
        assert page.status_code == 303, page.text[:500]
        assert len(fits) == 2
        posts = (await client.get("/api/v1/posts")).json()
        sent_files = {p["channel"]: Path(p["image"]) for p in posts}
        for name, facts in (("ig", ig), ("ig_crop", crop)):
            data = sent_files[name].read_bytes()
            with Image.open(io.BytesIO(data)) as img:
                assert (img.format, img.size, len(data)) == ("JPEG", (facts["width"], facts["height"]), facts["bytes"])
        # The no-script Preview button shows the same, in the reader's words (Indonesian by default).
        page = await client.post("/compose", data={"channels": ["ig_crop"], "source": "text", "csrf": csrf,
                                                   "text": "Pameran UMKM Sabtu", "when": "draft", "do": "preview"},
                                 files={"image": ("banner.png", png, "image/png")})
        assert page.status_code == 200
        assert "JPEG</span>" in page.text and f"{crop['width']}×400 px" in page.text
        assert "dipotong agar sesuai bentuk platform" in page.text
        assert len(fits) == 2


async def test_an_image_that_cannot_be_fitted_is_named_with_its_platform(served: tuple[str, Path, Database]) -> None:
    url, _media, _db = served
    client, csrf = await login(url, "edo")
    async with contextlib.aclosing(client):
        sent = await client.post("/api/v1/images", files={"image": ("strip.png", noise_strip(), "image/png")},
                                 headers={"X-CSRF-Token": csrf})
        assert sent.status_code == 201, sent.text
        body = {"channels": ["bsky", "outbox"], "text": "Pameran UMKM", "image_id": sent.json()["id"]}
        rows = {r["channel"]: r for r in (await client.post("/api/v1/preview", json=body,
                                                             headers={"X-CSRF-Token": csrf})).json()["channels"]}
        error = rows["bsky"]["image"]["error"]
        assert error.startswith("bluesky (channel bsky): the image cannot be fitted") and "1,000,000 bytes" in error
        assert rows["bsky"]["text"] == "Pameran UMKM" and rows["outbox"]["image"]["as_attached"]
        # Not an image, an id nobody sent: said so.
        bad = await client.post("/api/v1/images", files={"image": ("a.png", b"not an image", "image/png")},
                                headers={"X-CSRF-Token": csrf})
        assert bad.status_code == 400 and "a.png" in bad.json()["error"]
        unknown = await client.post("/api/v1/preview", json={**body, "image_id": "0" * 24 + ".png"},
                                    headers={"X-CSRF-Token": csrf})
        assert unknown.status_code == 404 and "send it again" in unknown.json()["error"]
    viewer, csrf = await login(url, "vina")
    async with contextlib.aclosing(viewer):
        refused = await viewer.post("/api/v1/images", files={"image": ("strip.png", b"x", "image/png")},
                                    headers={"X-CSRF-Token": csrf})
        assert refused.status_code == 403
