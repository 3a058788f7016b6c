"""Free text is never shortened behind anyone's back (issue 9.1).

Text that does not fit a channel, counted the way that platform counts, is refused when
composing or queueing, saying on which channel and by how much, and nothing is queued on
any channel; ``shorten=True`` (``--shorten``) opts in to cutting it. Only a record's
description is cut without asking; a record's other fields are never cut.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import time_machine

from scheduler import planner
from scheduler.errors import TooLongError
from scheduler.models import Product
from tests.helpers import image_bytes
from tests.unit.test_planner import NOW, TEMPLATES, World

URL = "https://balikpapan.go.id/berita/" + "pasar-murah-" * 6  # 104 characters; X and Mastodon count 23
FAMILY = "👨\u200d👩\u200d👧"  # one grapheme, 5 code points, 8 UTF-16 units, 18 UTF-8 bytes
GRIN = "😀"  # one grapheme and code point, 2 UTF-16 units, 4 UTF-8 bytes

CHANNELS = {
    "x": {"ACCESS_TOKEN": "x-token-value-123456"},
    "mastodon": {"BASE_URL": "https://mastodon.example", "ACCESS_TOKEN": "masto-token-123456"},
    "instagram": {"IG_USER_ID": "1784", "ACCESS_TOKEN": "ig-token-123456"},
    "telegram": {"BOT_TOKEN": "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ", "CHAT_ID": "@kota"},
    "bluesky": {"HANDLE": "kota.bsky.social", "APP_PASSWORD": "abcd-efgh-ijkl-mnop"},
    "linkedin": {"ORGANIZATION_ID": "123", "ACCESS_TOKEN": "li-token-123456"},
    "threads": {"USER_ID": "123", "ACCESS_TOKEN": "th-token-123456"},
    "facebook": {"PAGE_ID": "123", "ACCESS_TOKEN": "fb-token-123456"},
    "discord": {"WEBHOOK_URL": "https://discord.com/api/webhooks/123/abc-token"},
    "webhook": {"URL": "https://hooks.example/promo"},
    "outbox": {},
}


def text_of(head: str, n: int) -> str:
    return f"{head} {'a' * n}"


# (case, platform, head, limit, padding that makes the text exactly fit, unit in the message)
CASES = [
    ("x-weighted", "x", f"{GRIN} {URL}", 280, 280 - 2 - 1 - 23 - 1, "weighted characters"),
    ("mastodon-url-23-graphemes", "mastodon", f"{FAMILY} {URL}", 500, 500 - 1 - 1 - 23 - 1, "characters"),
    ("instagram-code-points", "instagram", FAMILY, 2200, 2200 - 5 - 1, "characters"),
    ("telegram-utf16", "telegram", GRIN * 10, 4096, 4096 - 20 - 1, "UTF-16 units"),
    ("bluesky-graphemes", "bluesky", FAMILY, 300, 300 - 1 - 1, "characters"),
    ("linkedin-code-points", "linkedin", GRIN * 3, 3000, 3000 - 3 - 1, "characters once reserved characters are escaped"),
    ("threads-emoji-bytes", "threads", GRIN, 500, 500 - 4 - 1, "characters"),
    ("facebook-code-points", "facebook", FAMILY, 63_206, 63_206 - 5 - 1, "characters"),
    ("discord-code-points", "discord", FAMILY, 2000, 2000 - 5 - 1, "characters"),
    ("webhook-graphemes", "webhook", FAMILY, 10_000, 10_000 - 1 - 1, "characters"),
    ("outbox-graphemes", "outbox", FAMILY, 10_000, 10_000 - 1 - 1, "characters"),
]


@pytest.fixture
def world(tmp_path: Path):
    env = {
        "PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db",
        "PROMO_TEMPLATES_DIR": str(TEMPLATES),
        "PROMO_MEDIA_DIR": str(tmp_path / "media"),
        "PROMO_CHANNELS": ",".join(f"c_{p}" for p in CHANNELS),
        "PROMO_CHANNEL_C_OUTBOX_PATH": str(tmp_path / "outbox.jsonl"),
        "PROMO_SECRET_KEY": "a long test passphrase for refreshed tokens",
    }
    for platform, keys in CHANNELS.items():
        env[f"PROMO_CHANNEL_C_{platform.upper()}_PLATFORM"] = platform
        env.update({f"PROMO_CHANNEL_C_{platform.upper()}_{k}": v for k, v in keys.items()})
    (tmp_path / "photo.jpg").write_bytes(image_bytes("JPEG", 64, 48))
    with time_machine.travel(NOW, tick=False):
        w = World(env, tmp_path)
        yield w
        w.db.dispose()


def queue(world: World, channels: str, text: str, **kw: object) -> list:
    if "c_instagram" in channels.split(","):
        kw.setdefault("image", str(world.tmp / "photo.jpg"))  # Instagram posts need one
    return world.new(channels, text=text, now_flag=True, **kw)


@pytest.mark.parametrize(("platform", "head", "limit", "fill", "unit"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_free_text_one_over_the_limit_is_refused_not_cut(world: World, platform: str, head: str, limit: int,
                                                         fill: int, unit: str) -> None:
    fits = text_of(head, fill)
    [post] = queue(world, f"c_{platform}", fits)
    assert post.text == fits  # exactly at the limit: stored as written
    over = text_of(head, fill + 1)
    with pytest.raises(TooLongError) as info:
        queue(world, f"c_{platform},c_outbox" if platform != "outbox" else "c_outbox", over)
    message = str(info.value)
    assert f"channel c_{platform} ({platform})" in message
    assert f"text is {limit + 1} {unit}, 1 over the limit of {limit}" in message and "--shorten" in message
    assert world.count() == 1  # nothing queued on any channel, outbox included


def test_bluesky_byte_limit_refuses_too(world: World) -> None:
    text = FAMILY * 160 + " " + "ä" * 60  # 221 graphemes (under 300) but 3,001 UTF-8 bytes
    with pytest.raises(TooLongError, match="text is 3001 bytes, 1 over the limit of 3000 bytes"):
        queue(world, "c_bluesky", text)
    assert world.count() == 0


def test_every_channel_that_does_not_fit_is_named_at_once(world: World) -> None:
    text = text_of(URL, 600)  # fits Instagram, Telegram, LinkedIn…; not X, Mastodon, Bluesky, Threads
    with pytest.raises(TooLongError) as info:
        queue(world, ",".join(f"c_{p}" for p in CHANNELS), text)
    message = str(info.value)
    assert message.startswith("does not fit, nothing queued on any channel:")
    named = {line.split(":")[0].strip() for line in message.splitlines()[1:]}
    assert named == {"channel c_x (x)", "channel c_mastodon (mastodon)", "channel c_bluesky (bluesky)",
                     "channel c_threads (threads)"}
    assert "text is 624 weighted characters, 344 over" in message  # X: 23 for the URL + 1 + 600
    assert world.count() == 0


@pytest.mark.parametrize("platform", ["x", "mastodon", "telegram", "bluesky"])
def test_shorten_opts_in_to_a_cut_at_a_word_boundary(world: World, platform: str) -> None:
    words = " ".join(f"kata{i}" for i in range(1500))
    [post] = queue(world, f"c_{platform}", words, shorten=True)
    assert post.text.endswith("…") and words.startswith(post.text[:-1] + " ")


def test_free_text_template_adds_the_link_and_it_counts(world: World) -> None:
    text = " ".join(["kata"] * 54)  # 269: fits X alone; the free_text template adds --link below (2 + 23)
    with time_machine.travel(NOW, tick=False), world.db.session() as s:
        source = planner.find_source(s, text=text, link="https://balikpapan.go.id/info")
        chans = planner.resolve_channels(s, world.settings, ["c_x"])
        with pytest.raises(TooLongError, match="text is 294 weighted characters, 14 over"):
            planner.create_posts(s, world.settings, world.composer, source, chans, actor="rina", now_flag=True)
        [post] = planner.create_posts(s, world.settings, world.composer, source, chans, actor="rina",
                                      now_flag=True, shorten=True)
        # shortening cuts the text, never the link the template adds
        assert post.text.endswith("…\n\nhttps://balikpapan.go.id/info")


def test_a_record_is_cut_only_in_its_description_never_in_its_name(world: World) -> None:
    with world.db.session() as s:
        product = s.query(Product).one()
        product.description = " ".join(f"kata{i}" for i in range(200))
    [post] = world.new("c_x", product="p1", now_flag=True)  # the description is cut without asking
    assert "…" in post.text and "Amplang Ikan" in post.text
    with world.db.session() as s:
        product = s.query(Product).one()
        product.name = "Amplang " + " ".join(["Ikan Tenggiri Segar Pilihan"] * 12)  # 331 characters
    for shorten in (False, True):
        with pytest.raises(TooLongError, match="even with the description left out"):
            world.new("c_x", product="p1", now_flag=True, shorten=shorten)
    assert world.count() == 1
