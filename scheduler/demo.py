"""Demo data from the seed article: the Nusakraf expo at Atrium e-Walk, Balikpapan, and
a handful of Balikpapan UMKM with their products; plus a few posts a minute or two ahead.

Running it again changes nothing: the demo's posts carry a ``demo:`` dedupe key, and when
they exist the demo says so (and what became of them) instead of loading anything again.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.composer import Composer
from scheduler.config import Settings
from scheduler.importer import import_file
from scheduler.models import Post, utcnow
from scheduler.planner import create_posts, find_source, resolve_channels

UMKM = [
    {"id": "bpp-amplang-kakak", "name": "Amplang Kakak", "owner": "Siti Rahmah", "category": "kuliner",
     "city": "Balikpapan", "district": "Balikpapan Selatan", "phone": "0812-5000-1001",
     "instagram": "amplangkakak", "website": "https://amplang-kakak.example", "curated": "ya"},
    {"id": "bpp-batik-kuntul", "name": "Batik Kuntul Perak", "owner": "Nurlela", "category": "fesyen",
     "city": "Balikpapan", "district": "Balikpapan Barat", "phone": "0812-5000-1002",
     "instagram": "batikkuntulperak", "website": "", "curated": "ya"},
    {"id": "bpp-manik-dayak", "name": "Manik Dayak Etam", "owner": "Yohana", "category": "kriya",
     "city": "Balikpapan", "district": "Balikpapan Utara", "phone": "0812-5000-1003",
     "instagram": "manikdayaketam", "website": "", "curated": "ya"},
    {"id": "bpp-kopi-teluk", "name": "Kopi Teluk Balikpapan", "owner": "Rahmat", "category": "kuliner",
     "city": "Balikpapan", "district": "Balikpapan Tengah", "phone": "0812-5000-1004",
     "instagram": "kopiteluk", "website": "https://kopiteluk.example", "curated": "ya"},
    {"id": "bpp-souvenir-beruang", "name": "Souvenir Beruang Madu", "owner": "Andi", "category": "suvenir",
     "city": "Balikpapan", "district": "Balikpapan Kota", "phone": "0812-5000-1005",
     "instagram": "", "website": "", "curated": "tidak"},
]
PRODUCTS = [
    {"id": "amplang-ikan-tenggiri", "umkm_id": "bpp-amplang-kakak", "name": "Amplang Ikan Tenggiri 250 g",
     "description": "Kerupuk amplang renyah dari ikan tenggiri segar, oleh-oleh khas Balikpapan.",
     "price": "25000", "url": "https://amplang-kakak.example/tenggiri", "tags": "oleholeh;kuliner;Balikpapan",
     "curation": "approved"},
    {"id": "batik-kuntul-kemeja", "umkm_id": "bpp-batik-kuntul", "name": "Kemeja Batik Kuntul Perak",
     "description": "Kemeja batik tulis motif kuntul perak, ikon Kota Balikpapan. Tampil di fashion show Nusakraf.",
     "price": "450000", "url": "", "tags": "batik;fesyen;Balikpapan", "curation": "approved"},
    {"id": "manik-tas-dayak", "umkm_id": "bpp-manik-dayak", "name": "Tas Manik Dayak",
     "description": "Tas anyaman manik motif Dayak, dikerjakan tangan oleh perajin Balikpapan Utara.",
     "price": "1250000", "url": "", "tags": "kriya;manik;Kaltim", "curation": "approved"},
    {"id": "kopi-teluk-robusta", "umkm_id": "bpp-kopi-teluk", "name": "Kopi Robusta Teluk 200 g",
     "description": "Biji kopi robusta sangrai medium dari kebun Kalimantan Timur.",
     "price": "65000", "url": "https://kopiteluk.example/robusta", "tags": "kopi;kuliner",
     "curation": "approved"},
    {"id": "souvenir-gantungan", "umkm_id": "bpp-souvenir-beruang", "name": "Gantungan Kunci Beruang Madu",
     "description": "Suvenir kayu berbentuk beruang madu, maskot Kota Balikpapan.",
     "price": "15000", "url": "", "tags": "suvenir;Balikpapan", "curation": "pending"},
]


#: The start of every demo post's dedupe key: how a second run recognises the demo's own posts.
DEMO_KEY = "demo:"


def _already_loaded(posts: list[Post]) -> Iterator[str]:
    counts: dict[str, int] = {}
    for p in posts:
        counts[p.status] = counts.get(p.status, 0) + 1
    states = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    yield (f"demo data already loaded; its {len(posts)} demo posts are {states} "
           f"(ids {', '.join(str(p.id) for p in posts)}): nothing queued again")
    yield "see them with: promo post list   ·   promo history"


def _events(now: dt.datetime, settings: Settings) -> list[dict[str, str]]:
    tz = settings.timezone
    start = (now.astimezone(tz) + dt.timedelta(days=8)).replace(hour=10, minute=0, second=0, microsecond=0)
    show = (now.astimezone(tz) + dt.timedelta(days=9)).replace(hour=19, minute=0, second=0, microsecond=0)
    return [
        {"id": "nusakraf-2026", "name": "Nusakraf: Nusantara Ekonomi Kreatif",
         "description": "Pameran produk ekonomi kreatif dari 11 provinsi di kawasan ALKI II, dengan dua stand "
                        "gabungan 20 UMKM Balikpapan. Rangkaian ALKI II Zone Investment Forum.",
         "venue": "Atrium e-Walk, Balikpapan Super Block", "city": "Balikpapan",
         "starts_at": start.strftime("%Y-%m-%d %H:%M"),
         "ends_at": (start + dt.timedelta(days=4, hours=11)).strftime("%Y-%m-%d %H:%M"),
         "url": "https://balikpapan.example/nusakraf", "image": "", "tags": "Nusakraf;Balikpapan;UMKM",
         "status": "scheduled"},
        {"id": "nusakraf-fashion-show", "name": "Fashion Show Produk Balikpapan",
         "description": "Fashion show yang memperkenalkan produk fesyen Kota Balikpapan bersama Dekranasda.",
         "venue": "Atrium e-Walk, Balikpapan Super Block", "city": "Balikpapan",
         "starts_at": show.strftime("%Y-%m-%d %H:%M"), "ends_at": (show + dt.timedelta(hours=2)).strftime(
             "%Y-%m-%d %H:%M"), "url": "https://balikpapan.example/nusakraf", "image": "",
         "tags": "FashionShow;Nusakraf;Balikpapan", "status": "scheduled"},
    ]


def load_demo(session: Session, settings: Settings, composer: Composer, *, actor: str,
              now: dt.datetime | None = None) -> Iterator[str]:
    now = now or utcnow()
    already = list(session.scalars(select(Post).where(Post.dedupe_key.like(f"{DEMO_KEY}%")).order_by(Post.id)))
    if already:
        yield from _already_loaded(already)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for kind, rows in (("umkm", UMKM), ("products", PRODUCTS), ("events", _events(now, settings))):
            path = Path(tmp) / f"{kind}.json"
            path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
            result = import_file(session, kind, path, tz=settings.timezone, actor=actor)
            yield f"demo {kind}: {result.summary()}"
    channels = resolve_channels(session, settings, [c.name for c in settings.channels])
    plan = [
        ("event", find_source(session, event="nusakraf-2026"), 60),
        ("product", find_source(session, product="amplang-ikan-tenggiri"), 90),
        ("welcome", find_source(session, text="Selamat datang di promo-scheduler! Postingan demo ini terbit otomatis.",
                                link="https://balikpapan.example"), 120),
    ]
    for name, source, seconds in plan:
        at = (now + dt.timedelta(seconds=seconds)).astimezone(settings.timezone).strftime("%Y-%m-%d %H:%M:%S")
        posts = create_posts(session, settings, composer, source, channels, when=at, actor=actor, now=now,
                             dedupe_key=f"{DEMO_KEY}{name}")
        for p in posts:
            yield f"queued post {p.id} ({p.kind}) on {p.channel.name} for {at} {settings.timezone.key}"
