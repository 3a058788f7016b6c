"""Queueing posts: sources, channels, --at/--queue/--now/--draft, images, approval, staff actions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from PIL import Image
from sqlalchemy import func, select

from scheduler import planner, post_images
from scheduler.actions import Actor, Context
from scheduler.actions import posts as actions
from scheduler.composer import Composer
from scheduler.config import Settings, load_settings
from scheduler.errors import NotFoundError, StateError, TooLongError, ValidationError
from scheduler.importer import import_file
from scheduler.models import HistoryEntry, Post, PostStatus, Product
from scheduler.platforms.types import ImageRules
from scheduler.storage import claims
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database
from tests.helpers import image_bytes

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
WITA = ZoneInfo("Asia/Makassar")
# Wednesday 25 Oct 2023, 10:00 WITA
NOW = dt.datetime(2023, 10, 25, 2, 0, tzinfo=dt.UTC)
PNG = image_bytes("PNG", 32, 24)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db",
        "PROMO_TEMPLATES_DIR": str(TEMPLATES),
        "PROMO_MEDIA_DIR": str(tmp_path / "media"),
        "PROMO_CHANNELS": "outbox,x_kota,tg",
        "PROMO_CHANNEL_OUTBOX_PATH": str(tmp_path / "outbox.jsonl"),
        "PROMO_CHANNEL_OUTBOX_SLOTS": "09:00,12:30,19:00",
        "PROMO_CHANNEL_X_KOTA_PLATFORM": "x",
        "PROMO_CHANNEL_X_KOTA_ACCESS_TOKEN": "x-token-value-123456",
        "PROMO_CHANNEL_X_KOTA_SLOTS": "08:00",
        "PROMO_CHANNEL_X_KOTA_TIMEZONE": "Asia/Jakarta",
        "PROMO_CHANNEL_TG_PLATFORM": "telegram",
        "PROMO_CHANNEL_TG_BOT_TOKEN": "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "PROMO_CHANNEL_TG_CHAT_ID": "@kota",
    }


class World:
    """Settings, a fresh database with a few records, and a composer."""

    def __init__(self, env: dict[str, str], tmp_path: Path):
        self.tmp = tmp_path
        self.settings: Settings = load_settings(env)
        self.db = Database(self.settings.database_url)
        self.db.upgrade()
        self.composer = Composer(self.settings.templates_dir, self.settings.timezone, self.settings.language)
        (tmp_path / "u.csv").write_text("id,name,city\nu1,Amplang Kakak,Balikpapan\n")
        (tmp_path / "p.csv").write_text(
            "id,umkm_id,name,description,price,url,tags,curation\n"
            "p1,u1,Amplang Ikan,Kerupuk renyah khas Balikpapan.,25000,https://amplang.co.id/p1,oleholeh,approved\n")
        (tmp_path / "e.csv").write_text("id,name,venue,city,starts_at\ne1,Nusakraf,Atrium,Balikpapan,2023-10-28 10:00\n")
        with self.db.session() as s:
            for kind, name in (("umkm", "u.csv"), ("products", "p.csv"), ("events", "e.csv")):
                import_file(s, kind, tmp_path / name, tz=WITA, actor="tester")

    def new(self, channels: str = "outbox", *, product: str | None = None, event: str | None = None,
            text: str | None = None, link: str | None = None, **kw: object) -> list[Post]:
        with self.db.session() as s:
            source = planner.find_source(s, product=product, event=event, text=text, link=link)
            chans = planner.resolve_channels(s, self.settings, channels.split(","))
            posts = planner.create_posts(s, self.settings, self.composer, source, chans, actor="rina",
                                         **kw)  # type: ignore[arg-type]
            for p in posts:
                _ = p.channel.name  # loaded while the session is open
            return posts

    @property
    def ctx(self) -> Context:
        return Context(self.settings, self.db, self.composer)

    def count(self) -> int:
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(Post)) or 0

    def post(self, post_id: int) -> Post:
        with self.db.session() as s:
            p = post_store.get_post(s, post_id)
            _ = p.channel.name
            return p


@pytest.fixture
def world(env: dict[str, str], tmp_path: Path):
    with time_machine.travel(NOW, tick=False):
        w = World(env, tmp_path)
        yield w
        w.db.dispose()


def test_post_from_a_product_to_several_channels(world: World) -> None:
    posts = world.new("outbox,x_kota", product="p1", when="2023-10-25 19:00")
    assert [(p.channel.name, p.status) for p in posts] == [("outbox", "scheduled"), ("x_kota", "scheduled")]
    assert {p.scheduled_at for p in posts} == {dt.datetime(2023, 10, 25, 11, 0, tzinfo=dt.UTC)}
    default, x = posts
    assert default.template == "product_highlight/_default.j2" and x.template == "product_highlight/x.j2"
    assert "Rp 25.000" in default.text and "https://amplang.co.id/p1" in default.text
    assert default.created_by == "rina" and default.product_id is not None


def test_post_from_an_event_and_from_free_text(world: World) -> None:
    [ev] = world.new(event="e1", now_flag=True)
    assert ev.kind == "event_announcement" and "Nusakraf" in ev.text and "Sabtu, 28 Oktober 2023" in ev.text
    [free] = world.new(text="Kantor tutup hari ini.", now_flag=True)
    assert free.kind == "free_text" and free.text == "Kantor tutup hari ini."
    assert free.scheduled_at == NOW


@pytest.mark.parametrize(("when", "utc"), [
    ("2023-10-25 19:00", dt.datetime(2023, 10, 25, 11, 0, tzinfo=dt.UTC)),
    ("2023-10-25 19:00:30", dt.datetime(2023, 10, 25, 11, 0, 30, tzinfo=dt.UTC)),
    ("2023-10-25T19:00:00+07:00", dt.datetime(2023, 10, 25, 12, 0, tzinfo=dt.UTC)),
    ("2023-10-25T12:00:00Z", dt.datetime(2023, 10, 25, 12, 0, tzinfo=dt.UTC)),
])
def test_at_local_or_iso_with_offset(world: World, when: str, utc: dt.datetime) -> None:
    [p] = world.new(product="p1", when=when)
    assert p.scheduled_at == utc


@pytest.mark.parametrize("when", ["besok jam 7", "25-10-2023 19:00", "2023-10-25", "2023-02-30 10:00"])
def test_bad_at_is_refused(world: World, when: str) -> None:
    with pytest.raises(ValidationError, match="--at"):
        world.new(product="p1", when=when)
    assert world.count() == 0


def test_a_time_in_the_past_is_refused_unless_now(world: World) -> None:
    with pytest.raises(ValidationError, match="in the past"):
        world.new(product="p1", when="2023-10-25 09:59")
    assert world.count() == 0
    [p] = world.new(product="p1", now_flag=True)
    assert p.scheduled_at == NOW and p.status == "scheduled"


def test_when_must_be_given_once(world: World) -> None:
    with pytest.raises(ValidationError, match="say when"):
        world.new(product="p1")
    with pytest.raises(ValidationError, match="only one"):
        world.new(product="p1", when="2023-10-26 10:00", queue=True)


def test_queue_uses_each_channels_next_free_slot(world: World) -> None:
    first = world.new("outbox,x_kota", product="p1", queue=True)
    # outbox: 12:30 WITA today; x_kota: 08:00 WIB (Jakarta) is 09:00 WITA, already past → tomorrow
    assert [p.scheduled_at for p in first] == [dt.datetime(2023, 10, 25, 4, 30, tzinfo=dt.UTC),
                                               dt.datetime(2023, 10, 26, 1, 0, tzinfo=dt.UTC)]
    second = world.new("outbox,x_kota", text="Info berikutnya", queue=True)
    assert [p.scheduled_at for p in second] == [dt.datetime(2023, 10, 25, 11, 0, tzinfo=dt.UTC),
                                                dt.datetime(2023, 10, 27, 1, 0, tzinfo=dt.UTC)]


def test_queue_reuses_a_slot_freed_by_cancelling(world: World) -> None:
    [p] = world.new(product="p1", queue=True)
    actions.cancel(world.ctx, Actor("rina"), [p.id])
    [again] = world.new(product="p1", queue=True)
    assert again.scheduled_at == p.scheduled_at


def test_queue_without_slots_is_refused(world: World) -> None:
    with pytest.raises(ValidationError, match="PROMO_CHANNEL_TG_SLOTS"):
        world.new("tg", product="p1", queue=True)


def test_draft_has_no_time_and_is_never_due(world: World) -> None:
    [p] = world.new(product="p1", draft=True)
    assert p.status == "draft" and p.scheduled_at is None
    actions.reschedule(world.ctx, Actor("rina"), p.id, "2023-10-26 09:00")
    assert [c.status for c in actions.submit(world.ctx, Actor("rina"), [p.id])] == ["scheduled"]


def test_approval_required(env: dict[str, str], tmp_path: Path) -> None:
    with time_machine.travel(NOW, tick=False):
        w = World({**env, "PROMO_REQUIRE_APPROVAL": "true"}, tmp_path)
        [p] = w.new(product="p1", when="2023-10-25 19:00")
        assert p.status == "pending_approval"
        assert actions.approve(w.ctx, Actor("boss"), [p.id])[0].status == "scheduled"
        with pytest.raises(StateError, match="not pending_approval"):
            actions.approve(w.ctx, Actor("boss"), [p.id])
        with w.db.session() as s:
            actors = [h.actor for h in s.scalars(select(HistoryEntry).where(HistoryEntry.post_id == p.id))]
        assert actors == ["rina", "boss"]
        w.db.dispose()


def test_unknown_record_or_channel(world: World) -> None:
    with pytest.raises(NotFoundError, match="no product with id 'p9'"):
        world.new(product="p9", now_flag=True)
    with pytest.raises(NotFoundError, match="no channel named 'fb'"):
        world.new("outbox,fb", product="p1", now_flag=True)
    assert world.count() == 0


def test_too_long_for_one_channel_stores_nothing(world: World) -> None:
    text = " ".join(f"kata{i}" for i in range(80))  # too long for X: refused, so outbox gets nothing either
    with pytest.raises(TooLongError, match=r"channel x_kota \(x\): .*549 weighted characters, 269 over"):
        world.new("outbox,x_kota", text=text, now_flag=True)
    assert world.count() == 0
    # --shorten opts in: shortened at a word boundary
    outbox, x = world.new("outbox,x_kota", text=text, now_flag=True, shorten=True)
    assert outbox.text == text and x.text.endswith("…") and text.startswith(x.text[:-1] + " ")
    one_word = "x" * 400  # no boundary to cut at: X refuses it, and outbox gets nothing either
    with pytest.raises(TooLongError, match="280"):
        world.new("outbox,x_kota", text=one_word, now_flag=True, shorten=True)
    assert world.count() == 2


# --- images ----------------------------------------------------------------------------

def test_image_is_checked_by_content_and_copied(world: World) -> None:
    img = world.tmp / "foto.bin"
    img.write_bytes(PNG)
    [p] = world.new(product="p1", now_flag=True, image=str(img))
    assert p.image_path is not None and Path(p.image_path).read_bytes() == PNG
    assert Path(p.image_path).parent == world.settings.media_dir and p.image_path.endswith(".png")


def test_image_errors(world: World) -> None:
    with pytest.raises(ValidationError, match="no such file"):
        world.new(product="p1", now_flag=True, image=str(world.tmp / "nope.png"))
    fake = world.tmp / "fake.png"
    fake.write_text("not an image")
    with pytest.raises(ValidationError, match="fake.png: not a JPEG, PNG, GIF or WebP"):
        world.new(product="p1", now_flag=True, image=str(fake))
    cut = world.tmp / "cut.png"  # a download that stopped half-way: the header alone is not enough
    cut.write_bytes(PNG[: len(PNG) // 2])
    with pytest.raises(ValidationError, match="cut.png: the image cannot be read"):
        world.new(product="p1", now_flag=True, image=str(cut))
    assert world.count() == 0


def test_a_records_broken_image_is_named_with_the_record(world: World) -> None:
    broken = world.tmp / "amplang.jpg"
    broken.write_bytes(image_bytes("JPEG", 64, 48)[:200])  # a copy that stopped half-way
    with world.db.session() as s:
        s.scalars(select(Product)).one().image = str(broken)
    with pytest.raises(ValidationError, match=r"image of product p1: .*amplang.jpg: the image cannot be read"):
        world.new(product="p1", now_flag=True)
    assert world.count() == 0
    broken.write_bytes(image_bytes("JPEG", 64, 48))  # fixed: the post takes the product's image
    [p] = world.new(product="p1", now_flag=True)
    assert p.image_path is not None and Path(p.image_path).read_bytes() == broken.read_bytes()


def test_image_over_the_size_limit(env: dict[str, str], tmp_path: Path) -> None:
    with time_machine.travel(NOW, tick=False):
        w = World({**env, "PROMO_MAX_IMAGE_BYTES": "50"}, tmp_path)
        img = tmp_path / "big.png"
        img.write_bytes(PNG)
        with pytest.raises(ValidationError, match="PROMO_MAX_IMAGE_BYTES"):
            w.new(product="p1", now_flag=True, image=str(img))
        w.db.dispose()


def test_caption_limit_applies_with_an_image(world: World) -> None:
    # Telegram: 4096 UTF-16 units for text, 1024 for a caption; one long word cannot be cut
    text = "a" * 2000
    [p] = world.new("tg", text=text, now_flag=True)
    assert p.text == text
    img = world.tmp / "foto.png"
    img.write_bytes(PNG)
    with pytest.raises(TooLongError, match="1024"):
        world.new("tg", text=text, now_flag=True, image=str(img))


def test_each_platform_gets_its_fitted_copy_made_at_queue_time(world: World) -> None:
    photo = world.tmp / "phone.jpg"
    photo.write_bytes(image_bytes("JPEG", 640, 480, orientation=6, gps=True))
    out, x, tg = world.new("outbox,x_kota,tg", product="p1", now_flag=True, image=str(photo))
    # the outbox declares no image rules: it gets the stored image as attached
    assert out.image_path is not None and Path(out.image_path).read_bytes() == photo.read_bytes()
    for post in (x, tg):
        assert post.image_path is not None and Path(post.image_path).parent == world.settings.media_dir
        sent = Image.open(io.BytesIO(Path(post.image_path).read_bytes()))
        assert sent.size == (480, 640) and not sent.getexif()  # upright, no GPS or camera
        assert b"PhoneMaker" not in Path(post.image_path).read_bytes()
    # queued again: the same copies, made once
    files = sorted(world.settings.media_dir.iterdir())
    x2, tg2 = world.new("x_kota,tg", product="p1", now_flag=True, image=str(photo))
    assert (x2.image_path, tg2.image_path) == (x.image_path, tg.image_path)
    assert sorted(world.settings.media_dir.iterdir()) == files


def test_several_images_the_first_the_cover_each_fitted_and_kept_within_the_platforms_album(world: World) -> None:
    paths = []
    for i in range(5):
        path = world.tmp / f"kue{i}.jpg"
        path.write_bytes(image_bytes("JPEG", 640, 480, orientation=6 if i == 2 else None, gps=i == 2))
        paths.append(str(path))
    out, x = world.new("outbox,x_kota", product="p1", now_flag=True, image=paths,
                       image_alt=["Kue 0", None, "Kue 2"])
    assert out.image_alt == x.image_alt == "Kue 0"
    assert out.more_images is None  # the outbox takes the cover alone
    assert x.more_images is not None
    more = json.loads(x.more_images)
    assert [alt for _path, alt in more] == [None, "Kue 2", None]  # X: up to 4 in all
    third = Image.open(io.BytesIO(Path(more[1][0]).read_bytes()))
    assert third.size == (480, 640) and not third.getexif()  # fitted like the cover
    ready = post_images.more_media(world.settings, x.more_images)
    assert [m.alt_text for m in ready] == [None, "Kue 2", None] and all(m.mime == "image/jpeg" for m in ready)
    with pytest.raises(ValidationError, match="3 --alt for 2 --image"):
        world.new("x_kota", product="p1", now_flag=True, image=paths[:2], image_alt=["a", "b", "c"])


def test_a_records_images_column_gives_cover_and_album(world: World) -> None:
    for name in ("cover.png", "side.png"):
        (world.tmp / name).write_bytes(image_bytes("PNG", 40, 30) if name == "cover.png" else image_bytes("PNG", 30, 40))
    (world.tmp / "p2.csv").write_text(
        "id,umkm_id,name,price,images,image_alt\n"
        f"p2,u1,Amplang Udang,30000,{world.tmp / 'cover.png'}; {world.tmp / 'side.png'},Sebungkus amplang; Dari samping\n")
    with world.db.session() as s:
        import_file(s, "products", world.tmp / "p2.csv", tz=WITA, actor="tester")
        assert s.scalars(select(Product).where(Product.external_id == "p2")).one().image == \
            f"{world.tmp / 'cover.png'};{world.tmp / 'side.png'}"
    [x] = world.new("x_kota", product="p2", now_flag=True)
    assert x.image_path is not None and Image.open(io.BytesIO(Path(x.image_path).read_bytes())).size == (40, 30)
    assert x.image_alt == "Sebungkus amplang"
    more = json.loads(x.more_images or "[]")
    assert len(more) == 1 and Image.open(io.BytesIO(Path(more[0][0]).read_bytes())).size == (30, 40)
    assert more[0][1] == "Dari samping"
    # more alt texts than images is a bad row, naming the column
    (world.tmp / "p3.csv").write_text("id,umkm_id,name,image,image_alt\np3,u1,Amplang,a.png,satu; dua\n")
    with world.db.session() as s:
        result = import_file(s, "products", world.tmp / "p3.csv", tz=WITA, actor="tester", skip_invalid=True)
    assert "2 alt texts for 1 images" in str(result.skipped)


def test_an_image_that_cannot_be_fitted_is_refused_naming_the_platform(world: World,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler.platforms.x import XAdapter

    tiny = ImageRules(formats=frozenset({"image/jpeg"}), max_bytes=300)
    monkeypatch.setattr(XAdapter, "rules", dataclasses.replace(XAdapter.rules, images=tiny))
    photo = world.tmp / "photo.jpg"
    photo.write_bytes(image_bytes("JPEG", 400, 300, noise=True))
    with pytest.raises(ValidationError, match=r"channel x_kota \(x\): the image cannot be fitted: "
                                              r"cannot be brought under 300 bytes .*; nothing queued"):
        world.new("outbox,x_kota", product="p1", now_flag=True, image=str(photo))
    assert world.count() == 0


def test_instagram_gets_a_jpeg_of_a_transparent_png(env: dict[str, str], tmp_path: Path) -> None:
    ig = {**{k: v for k, v in env.items() if not k.startswith("PROMO_CHANNEL")},
          "PROMO_SECRET_KEY": "a long passphrase for tests",
          "PROMO_CHANNELS": "ig", "PROMO_CHANNEL_IG_PLATFORM": "instagram",
          "PROMO_CHANNEL_IG_IG_USER_ID": "17841400000000001", "PROMO_CHANNEL_IG_ACCESS_TOKEN": "IGAA-token-123456",
          "PROMO_CHANNEL_IG_IMAGE_FIT": "crop", "PROMO_PUBLIC_MEDIA_BASE_URL": "https://media.example"}
    with time_machine.travel(NOW, tick=False):
        w = World(ig, tmp_path)
        logo = tmp_path / "logo.png"
        rgba = Image.new("RGBA", (3000, 1000), (0, 0, 0, 0))
        buf = io.BytesIO()
        rgba.save(buf, "PNG")
        logo.write_bytes(buf.getvalue())
        [p] = w.new("ig", product="p1", now_flag=True, image=str(logo))
        assert p.image_path is not None and p.image_path.endswith(".jpg")
        sent = Image.open(io.BytesIO(Path(p.image_path).read_bytes()))
        assert sent.format == "JPEG" and sent.width == 1440  # cropped to just under 1.91:1, scaled to 1440 wide
        assert 1.89 < sent.width / sent.height <= 1.91
        w.db.dispose()


# --- staff actions ------------------------------------------------------------------------

def test_cancel_reschedule_retry(world: World) -> None:
    [p] = world.new(product="p1", when="2023-10-25 19:00")
    rina = Actor("rina")
    moved = actions.reschedule(world.ctx, rina, p.id, "2023-10-26 09:00")
    assert moved.scheduled_at == dt.datetime(2023, 10, 26, 1, 0, tzinfo=dt.UTC)
    with pytest.raises(ValidationError, match="in the past"):
        actions.reschedule(world.ctx, rina, p.id, "2023-10-24 09:00")
    with pytest.raises(StateError, match="only failed, expired or needs_review"):
        actions.retry(world.ctx, rina, [p.id])
    assert actions.cancel(world.ctx, rina, [p.id], reason="salah harga")[0].status == "cancelled"
    with pytest.raises(StateError):
        actions.cancel(world.ctx, rina, [p.id])
    with world.db.session() as s:
        history = [(h.to_status, h.error) for h in s.scalars(
            select(HistoryEntry).where(HistoryEntry.post_id == p.id).order_by(HistoryEntry.id))]
    assert history[-1] == ("cancelled", "salah harga")


def test_retry_of_a_failed_post_schedules_it_now(world: World) -> None:
    [p] = world.new(product="p1", when="2023-10-25 19:00")
    with world.db.session() as s:
        post = post_store.get_post(s, p.id)
        post_store.transition(s, post, PostStatus.PUBLISHING, actor="dispatcher", reason="claimed")
        post_store.transition(s, post, PostStatus.FAILED, actor="dispatcher", reason="rejected", error="boom")
    [again] = actions.retry(world.ctx, Actor("rina"), [p.id])
    assert (again.status, again.scheduled_at) == ("scheduled", NOW)
    with world.db.session() as s:
        assert post_store.get_post(s, p.id).error is None


def test_a_now_post_waiting_for_approval_can_be_approved_later(env: dict[str, str], tmp_path: Path) -> None:
    with time_machine.travel(NOW, tick=False):
        w = World({**env, "PROMO_REQUIRE_APPROVAL": "true"}, tmp_path)
        [p] = w.new(product="p1", now_flag=True)
    later = NOW + dt.timedelta(minutes=20)
    with time_machine.travel(later, tick=False):
        [approved] = actions.approve(w.ctx, Actor("boss"), [p.id])
        assert (approved.status, approved.scheduled_at) == ("scheduled", NOW)
        # and the dispatcher takes it at once
        claimed = claims.claim_due(w.db.engine, worker="w1", now=later, lease=dt.timedelta(seconds=60))
        assert [c.id for c in claimed] == [p.id]
    w.db.dispose()


def test_a_record_stored_with_a_huge_description_still_composes(world: World) -> None:
    # Imports now refuse descriptions over PROMO_MAX_DESCRIPTION_CHARS; records stored before
    # (or written otherwise) still compose, on the path the daily highlight job takes too.
    sentence = "Kerupuk renyah khas Balikpapan dari ikan tenggiri segar. "
    with world.db.session() as s:
        s.scalars(select(Product)).one().description = (sentence * 20_000)[:1_000_000]
    outbox, x, tg = world.new("outbox,x_kota,tg", product="p1", now_flag=True)
    for post, limit in ((outbox, 10_000), (x, 280), (tg, 4096)):
        assert post.text.startswith("✨ Amplang Ikan") or post.text.startswith("Amplang Ikan")
        assert sentence.strip() in post.text and len(post.text) <= limit
    with world.db.session() as s:
        history = s.scalars(select(HistoryEntry).where(HistoryEntry.post_id == x.id)).all()
        assert any("shortened to fit" in (h.error or "") for h in history)  # the reason column


# --- tagged links (PROMO_UTM) -------------------------------------------------------------

def test_utm_tags_links_to_the_listed_domains_with_platform_and_post_id(env: dict[str, str], tmp_path: Path) -> None:
    with time_machine.travel(NOW, tick=False):
        w = World({**env, "PROMO_UTM": "true", "PROMO_UTM_DOMAINS": "amplang.co.id"}, tmp_path)
        out, x = w.new("outbox,x_kota", product="p1", now_flag=True)
        for post, platform in ((out, "outbox"), (x, "x")):
            expected = (f"https://amplang.co.id/p1?utm_source={platform}&utm_medium=social"
                        f"&utm_campaign=product_highlight-p1&utm_content={post.id}")
            assert post.link == expected
            assert expected in post.text and "https://amplang.co.id/p1 " not in post.text + " "
        # a link elsewhere is left alone; a utm_ value already on a link is kept
        [free] = w.new("outbox", text="Lihat https://other.example/x", link="https://other.example/x", now_flag=True)
        assert free.link == "https://other.example/x"
        [kept] = w.new("outbox", text="Lihat https://shop.amplang.co.id/a?utm_source=poster",
                       link="https://shop.amplang.co.id/a?utm_source=poster", now_flag=True)
        assert kept.link == (f"https://shop.amplang.co.id/a?utm_source=poster&utm_medium=social"
                             f"&utm_campaign=free_text&utm_content={kept.id}")
        w.db.dispose()


def test_utm_tags_that_make_the_text_too_long_refuse_the_post(env: dict[str, str], tmp_path: Path) -> None:
    with time_machine.travel(NOW, tick=False):
        w = World({**env, "PROMO_UTM": "true", "PROMO_UTM_DOMAINS": "umkm.example"}, tmp_path)
        text = "a" * 4000 + " https://umkm.example/k"  # fits Telegram's 4,096 only untagged
        with pytest.raises(TooLongError, match=r"channel tg \(telegram\): with its UTM tags .* over 4096"):
            w.new("tg", text=text, link="https://umkm.example/k", now_flag=True)
        assert w.count() == 0
        w.settings = dataclasses.replace(w.settings, utm=False)  # untagged, the same text fits
        [p] = w.new("tg", text=text, link="https://umkm.example/k", now_flag=True)
        assert p.link == "https://umkm.example/k"
        w.db.dispose()
