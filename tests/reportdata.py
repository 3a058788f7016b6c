"""A hand-computed engagement fixture for the Reports pages (integration and browser tests).

Posts published in March 2027, Makassar time (WITA, UTC+8); counters read at offsets after
publishing, the latest read counting (engagement = likes + shares + replies + saves):

    p1 masto (mastodon)  Kue Lapis / Warung Bu Sri  03-02 09:10  +1h 2/1/0 v400, +24h 5/2/1 v1500,
                                                                +7d 7/2/1 views 2,300         → 10
    p2 bsky (bluesky)    Kue Lapis / Warung Bu Sri  03-03 19:05  +1h 10/3/2 q1, +24h 1,200/40/15 q3 → 1,255
    p3 masto             Kopi Susu / Kopi Kita      03-10 09:30  +1h likes 1, views 40          → 1
    p4 tele (telegram)   Kopi Susu / Kopi Kita      03-11 12:00  no counters (Telegram gives none)
    p5 disc (discord)    free text                  03-12 19:45  no counters (Discord gives none)
    p8 bsky              Kopi Susu / Kopi Kita      03-20 19:10  not read yet
    p6 masto             04-01 00:30 WITA (31 March 16:30 UTC): April locally, not in March
    p7 masto             a draft: never counted
    p9 masto             February: a UMKM whose name is a spreadsheet formula with markup (likes 3 → 3)

March: 6 posts, 3 measured, reach/views 2,340, engagement 1,266 (422 per measured post),
likes 1,208, shares 42, replies 16, saves 0; best platform bluesky (1,255 a post vs 5.5).
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from scheduler.models import Channel, Metric, Post, PostStatus, Product, Umkm
from scheduler.storage import channels as channel_store
from scheduler.storage.db import Database

WITA = dt.timezone(dt.timedelta(hours=8))
H = dt.timedelta(hours=1)
#: A UMKM name a spreadsheet would run as a formula, with markup a page must show as text.
ODD = '=HYPERLINK("http://x.test")<b>Bu</b>'


def at(month: int, day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2027, month, day, hour, minute, tzinfo=WITA).astimezone(dt.UTC)


def environment(tmp: Path) -> dict[str, str]:
    """PROMO_* settings of the fixture's four channels (nothing is ever sent), in Makassar time."""
    return {"PROMO_DATABASE_URL": f"sqlite:///{tmp}/promo.db",
            "PROMO_TEMPLATES_DIR": str(Path(__file__).resolve().parents[1] / "templates"),
            "PROMO_TIMEZONE": "Asia/Makassar", "PROMO_SECRET_KEY": "a-long-test-passphrase-for-reports",
            "PROMO_CHANNELS": "masto,bsky,tele,disc",
            "PROMO_CHANNEL_MASTO_PLATFORM": "mastodon", "PROMO_CHANNEL_MASTO_BASE_URL": "http://127.0.0.1:9",
            "PROMO_CHANNEL_MASTO_ACCESS_TOKEN": "t",
            "PROMO_CHANNEL_BSKY_PLATFORM": "bluesky", "PROMO_CHANNEL_BSKY_HANDLE": "k.test",
            "PROMO_CHANNEL_BSKY_APP_PASSWORD": "p",
            "PROMO_CHANNEL_TELE_PLATFORM": "telegram", "PROMO_CHANNEL_TELE_BOT_TOKEN": "1:x",
            "PROMO_CHANNEL_TELE_CHAT_ID": "@umkm",
            "PROMO_CHANNEL_DISC_PLATFORM": "discord", "PROMO_CHANNEL_DISC_WEBHOOK_URL": "http://127.0.0.1:9/api/webhooks/1/tok",
            "PROMO_ENV_FILE": str(tmp / "none.env")}


def seed(db: Database, settings: Any) -> dict[str, int]:
    """The fixture's rows; post name (p1…p8) → id."""
    ids: dict[str, int] = {}
    with db.session() as s:
        channel_store.sync_configured(s, settings)
        ch = {c.name: c.id for c in s.scalars(select(Channel))}
        sri, kita = Umkm(external_id="u1", name="Warung Bu Sri"), Umkm(external_id="u2", name="Kopi Kita")
        odd = Umkm(external_id="u3", name=ODD)
        s.add_all([sri, kita, odd])
        s.flush()
        kue = Product(external_id="p1", umkm_id=sri.id, name="Kue Lapis", curation="approved")
        kopi = Product(external_id="p2", umkm_id=kita.id, name="Kopi Susu", curation="approved")
        trick = Product(external_id="p3", umkm_id=odd.id, name="Roti <i>Maryam</i>", curation="approved")
        s.add_all([kue, kopi, trick])
        s.flush()

        def post(name: str, channel: str, when: dt.datetime, product: Product | None,
                 reads: tuple[tuple[dt.timedelta, dict[str, int]], ...] = (),
                 status: PostStatus = PostStatus.PUBLISHED) -> None:
            p = Post(channel_id=ch[channel], kind="product_highlight" if product else "free_text",
                     text=f"Posting {name}", status=status.value,
                     published_at=when if status == PostStatus.PUBLISHED else None, scheduled_at=when,
                     product_id=product.id if product else None, remote_id=f"r-{name}",
                     idempotency_key=uuid.uuid4().hex)
            s.add(p)
            s.flush()
            ids[name] = p.id
            for after, counts in reads:
                s.add_all(Metric(post_id=p.id, fetched_at=when + after, name=n, platform_name=f"{n}_count", value=v)
                          for n, v in counts.items())

        post("p1", "masto", at(3, 2, 9, 10), kue, (
            (H, {"likes": 2, "shares": 1, "replies": 0, "views": 400}),
            (24 * H, {"likes": 5, "shares": 2, "replies": 1, "views": 1500}),
            (168 * H, {"likes": 7, "shares": 2, "replies": 1, "views": 2300})))
        post("p2", "bsky", at(3, 3, 19, 5), kue, (
            (H, {"likes": 10, "shares": 3, "replies": 2, "quotes": 1}),
            (24 * H, {"likes": 1200, "shares": 40, "replies": 15, "quotes": 3})))
        post("p3", "masto", at(3, 10, 9, 30), kopi, ((H, {"likes": 1, "views": 40}),))
        post("p4", "tele", at(3, 11, 12, 0), kopi)
        post("p5", "disc", at(3, 12, 19, 45), None)
        post("p6", "masto", at(4, 1, 0, 30), None, ((H, {"likes": 99}),))
        post("p7", "masto", at(3, 5, 9, 0), None, status=PostStatus.DRAFT)
        post("p8", "bsky", at(3, 20, 19, 10), kopi)
        post("p9", "masto", at(2, 14, 8, 0), trick, ((H, {"likes": 3}),))
    return ids
