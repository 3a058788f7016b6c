"""Several images to a strict Mastodon server (tests/mastodonfake.py) through the whole path:
`promo channels check` learns the server's image_size_limit and image_matrix_limit from
/api/v2/instance, `promo post new` fits each image to them when queued, and the dispatcher
uploads each copy (POST /api/v2/media, its alt text as description), then posts one status with
all the media ids in the order given, the cover first, at most 4. Nothing is fitted while sending."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from PIL import Image

from scheduler import fitting
from scheduler.config import load_settings
from scheduler.models import Post, PostStatus
from scheduler.storage.db import Database
from tests.helpers import album_photos, cli_in, image_bytes, publish_due, run_cli
from tests.mastodonfake import StrictMastodon

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "SECRET-mastodon-album-token"
SIZE_LIMIT = 1_500_000  # a small server's limits, so that phone photos must be fitted
MATRIX_LIMIT = 2_073_600  # 1920×1080
ALTS = ["Sampul: kue lapis legit", "Irisan kue lapis", "Kotak hadiah", "Etalase toko", "Tidak terkirim"]


def photos(folder: Path) -> list[Path]:
    """The album's five files (one more than Mastodon takes)."""
    return album_photos(folder, ("fifth.jpg", image_bytes("JPEG", 640, 480)))


@pytest.fixture
def masto():
    with StrictMastodon(token=TOKEN, image_size_limit=SIZE_LIMIT, image_matrix_limit=MATRIX_LIMIT) as server:
        yield server


def test_an_album_is_fitted_to_the_servers_limits_then_uploaded_and_posted_in_order(
        masto: StrictMastodon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    values = {"PROMO_ENV_FILE": str(tmp_path / "none.env"), "PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db",
              "PROMO_TEMPLATES_DIR": str(ROOT / "templates"), "PROMO_MEDIA_DIR": str(tmp_path / "media"),
              "PROMO_HEALTH_PORT": "0", "PROMO_MAX_ATTEMPTS": "1", "PROMO_CHANNELS": "kota",
              "PROMO_CHANNEL_KOTA_PLATFORM": "mastodon", "PROMO_CHANNEL_KOTA_BASE_URL": masto.base_url,
              "PROMO_CHANNEL_KOTA_ACCESS_TOKEN": TOKEN, "PROMO_CHANNEL_KOTA_POLL_INTERVAL": "0"}
    cli_in(monkeypatch, tmp_path, values)
    sources = photos(tmp_path)
    assert len(sources[0].read_bytes()) > SIZE_LIMIT  # the photo as taken would be refused
    code, out = run_cli(capsys, "channels", "check", "kota")
    assert code == 0, out
    args = ["post", "new", "--text", "Kue lapis legit, Rp 25.000 #UMKM", "--channel", "kota", "--now", "--format", "json"]
    for path, alt in zip(sources, ALTS, strict=True):
        args += ["--image", str(path), "--alt", alt]
    code, out = run_cli(capsys, *args)
    assert code == 0, out
    (post_id,) = [row["id"] for row in json.loads(out)]

    def no_fitting(*args: object, **kwargs: object) -> None:
        raise AssertionError("fitting in the dispatcher's burst path")

    monkeypatch.setattr(fitting, "fit_image", no_fitting)
    settings = load_settings(values)
    db = Database(settings.database_url)

    publish_due(settings, db)
    with db.session() as session:
        post = session.get(Post, post_id)
        assert post is not None and post.status == PostStatus.PUBLISHED.value, post and post.error
        copies = [Path(str(post.image_path))] + [Path(p) for p, _ in json.loads(str(post.more_images))]
        remote_id = post.remote_id
    db.dispose()

    assert masto.unexpected == [] and masto.refused == []
    uploads = masto.uploads
    assert [u.description for u in uploads] == ALTS[:4]  # four: the server's max_media_attachments
    assert [u.data for u in uploads] == [c.read_bytes() for c in copies]  # the copies made when queued
    for u in uploads:
        assert len(u.data) <= SIZE_LIMIT and u.width * u.height <= MATRIX_LIMIT
    assert [(u.mime, round(u.width / u.height, 2)) for u in uploads] == [
        ("image/jpeg", 0.75), ("image/png", 1.33), ("image/jpeg", 1.33), ("image/webp", 1.0)]
    assert uploads[2].data == sources[2].read_bytes()  # already fine: sent as attached
    assert not Image.open(io.BytesIO(uploads[0].data)).getexif()  # no GPS position left
    ((body, key),) = masto.statuses
    assert body["media_ids"] == [u.id for u in uploads]
    assert body["status"] == "Kue lapis legit, Rp 25.000 #UMKM" and key
    assert remote_id == "110000000000000001" and all(u.attached_to == remote_id for u in uploads)


def test_the_fake_refuses_what_the_server_would(masto: StrictMastodon) -> None:
    """So the test above would fail if an image were not fitted, or a status broke the documented shape."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    big = image_bytes("JPEG", 4000, 3000, noise=True)
    fits = image_bytes("JPEG", 1920, 1080)
    wide = image_bytes("PNG", 2000, 1100)
    with httpx.Client(base_url=masto.base_url, headers=auth, trust_env=False) as client:
        def upload(data: bytes, mime: str = "image/jpeg", **fields: str) -> httpx.Response:
            return client.post("/api/v2/media", files={"file": ("a", data, mime)}, data=fields)

        assert upload(big).status_code == 422  # over image_size_limit
        assert upload(wide, "image/png").status_code == 422  # over image_matrix_limit (2,200,000 pixels)
        assert upload(fits, "image/png").status_code == 422  # not what it says it is
        assert upload(fits, alt="x").status_code == 422  # an undocumented field
        assert upload(fits, description="d" * 1501).status_code == 422
        ids = [upload(fits, description=f"Kue {i}").json()["id"] for i in range(5)]
        assert client.post("/api/v2/media", files={"file": ("a", fits, "image/jpeg")},
                           headers={"Authorization": "Bearer other"}).status_code == 401
        assert client.post("/api/v1/statuses", json={"status": "x", "media_ids": ids}).status_code == 422  # 5 > 4
        assert client.post("/api/v1/statuses", json={"status": "x", "media_ids": [int(ids[0])]}).status_code == 422
        assert client.post("/api/v1/statuses", json={"status": "x", "media": ids[:1]}).status_code == 422
        assert client.post("/api/v1/statuses", json={"status": "x" * 501}).status_code == 422
        ok = client.post("/api/v1/statuses", json={"status": "x", "media_ids": ids[:4]})
        assert ok.status_code == 200 and [m["id"] for m in ok.json()["media_attachments"]] == ids[:4]
        assert client.post("/api/v1/statuses", json={"status": "y", "media_ids": ids[:1]}).status_code == 422  # attached
    assert len(masto.refused) == 10 and masto.unexpected == []



def test_an_alt_text_longer_than_the_servers_description_limit_is_refused_when_queued(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Alt text is staff text: never cut. The limit is the server's own (learned by channels check)."""
    with StrictMastodon(token=TOKEN, description_limit=120) as server:
        values = {"PROMO_ENV_FILE": str(tmp_path / "none.env"), "PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db",
                  "PROMO_TEMPLATES_DIR": str(ROOT / "templates"), "PROMO_MEDIA_DIR": str(tmp_path / "media"),
                  "PROMO_CHANNELS": "kota", "PROMO_CHANNEL_KOTA_PLATFORM": "mastodon",
                  "PROMO_CHANNEL_KOTA_BASE_URL": server.base_url, "PROMO_CHANNEL_KOTA_ACCESS_TOKEN": TOKEN}
        cli_in(monkeypatch, tmp_path, values)
        (tmp_path / "kue.jpg").write_bytes(image_bytes("JPEG", 640, 480))
        long_alt = "Kue lapis legit berlapis sembilan di atas piring putih, " * 3  # 168 characters
        args = ["post", "new", "--text", "Kue lapis", "--channel", "kota", "--now", "--image", "kue.jpg"]
        assert run_cli(capsys, "channels", "check", "kota")[0] == 0
        code, out = run_cli(capsys, *args, "--alt", long_alt)
        assert code == 1 and f"alt text of {len(long_alt)} characters is over the platform's 120" in out
        assert run_cli(capsys, "post", "list", "--format", "json")[1].strip() in ("[]", "")
        code, out = run_cli(capsys, *args, "--alt", long_alt[:120])
        assert code == 0, out
