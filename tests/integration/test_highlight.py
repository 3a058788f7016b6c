"""The daily highlight job against a real database: 60 simulated days, idempotency (a second
run, two threads on PostgreSQL, two `promo serve` processes on one SQLite file), catch-up
and skip after downtime, nothing eligible, approval, and publication through the dispatcher."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from jobs.event_promotion import records_changed_hook
from jobs.highlight.create import run_daily_highlight
from jobs.highlight.queries import eligible_products
from scheduler.actions import Actor, Context
from scheduler.actions.posts import approve
from scheduler.composer import Composer
from scheduler.config import Settings, load_settings
from scheduler.importer import import_file
from scheduler.models import AuditEntry, Highlight, Post, Product, Umkm
from scheduler.storage.db import Database
from tests.conftest import PG_URL
from tests.helpers import between_repeats_all_others_appear

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
WITA = ZoneInfo("Asia/Makassar")
START = dt.date(2026, 12, 1)
SIZES = [10, 5, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1]  # 40 eligible products from 12 UMKM


def at(day: dt.date, clock: str) -> dt.datetime:
    h, m = map(int, clock.split(":"))
    return dt.datetime.combine(day, dt.time(h, m), tzinfo=WITA).astimezone(dt.UTC)


def env_for(tmp_path: Path, channels: tuple[str, ...] = ("kota", "alerts"), **extra: str) -> dict[str, str]:
    """Settings for outbox ``channels`` (each writing ``<name>.jsonl`` in tmp_path); the first one
    carries the highlight unless HIGHLIGHT_CHANNELS says otherwise."""
    env = {
        "PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db", "PROMO_TEMPLATES_DIR": str(TEMPLATES),
        "PROMO_CHANNELS": ",".join(channels), "PROMO_HIGHLIGHT_CHANNELS": channels[0],
        "PROMO_TIMEZONE": "Asia/Makassar",
    }
    for name in channels:
        env[f"PROMO_CHANNEL_{name.upper()}_PLATFORM"] = "outbox"
        env[f"PROMO_CHANNEL_{name.upper()}_PATH"] = str(tmp_path / f"{name}.jsonl")
    env.update({f"PROMO_{k}": v for k, v in extra.items()})
    return env


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def catalogue_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """12 curated UMKM (40 approved products, unevenly) plus records the curation filter must drop."""
    umkm = [{"id": f"u{i:02d}", "name": f"UMKM {i:02d}", "city": "Balikpapan", "curated": "ya"}
            for i in range(len(SIZES))]
    umkm.append({"id": "u-uncurated", "name": "Belum Dikurasi", "city": "Balikpapan", "curated": "tidak"})
    products = []
    for i, n in enumerate(SIZES):
        for j in range(n):
            products.append({"id": f"p{i:02d}-{j:02d}", "umkm_id": f"u{i:02d}", "name": f"Produk {i:02d}-{j:02d}",
                             "description": "Produk lokal pilihan.", "price": str(10000 + 500 * j), "curation": "approved",
                             "active": "true"})
    products += [
        {"id": "x-pending", "umkm_id": "u10", "name": "Menunggu", "description": "", "price": "1", "curation": "pending",
         "active": "true"},
        {"id": "x-rejected", "umkm_id": "u01", "name": "Ditolak", "description": "", "price": "1",
         "curation": "rejected", "active": "true"},
        {"id": "x-inactive", "umkm_id": "u02", "name": "Tidak Aktif", "description": "", "price": "1",
         "curation": "approved", "active": "false"},
        {"id": "x-uncurated", "umkm_id": "u-uncurated", "name": "Dari UMKM Belum Dikurasi", "description": "",
         "price": "1", "curation": "approved", "active": "true"},
    ]
    return umkm, products


class World:
    """A database with the catalogue, settings, a composer and a list of alerts raised."""

    def __init__(self, tmp_path: Path, db: Database, channels: tuple[str, ...] = ("kota", "alerts"), **extra: str):
        self.tmp_path = tmp_path
        self.settings: Settings = load_settings(env_for(tmp_path, channels, **extra))
        self.db = db
        self.composer = Composer(TEMPLATES, self.settings.timezone, self.settings.language)
        self.alerts: list[str] = []

    def load(self, kind: str, rows: list[dict[str, Any]]) -> None:
        path = write_csv(self.tmp_path / f"{kind}-{uuid.uuid4().hex[:6]}.csv", rows)
        with self.db.session() as session:
            import_file(session, kind, path, tz=WITA, actor="test",
                        # the batched hook `promo import` and the web app pass
                        on_changes=records_changed_hook(self.settings, self.composer, "test"))

    def run(self, now: dt.datetime) -> list[Any]:
        return run_daily_highlight(self.settings, self.db, self.composer, now, alert=self.alerts.append)

    def rows(self) -> list[Highlight]:
        with self.db.session() as session:
            return list(session.scalars(select(Highlight).order_by(Highlight.day, Highlight.channel_id,
                                                                   Highlight.slot)))

    def posts(self, kind: str = "daily_highlight") -> list[Post]:
        with self.db.session() as session:
            return list(session.scalars(select(Post).where(Post.kind == kind).order_by(Post.id)))


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path}/promo.db")
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def world(tmp_path: Path, sqlite_db: Database) -> World:
    w = World(tmp_path, sqlite_db, ("kota", "dua", "alerts"), HIGHLIGHT_CHANNELS="kota,dua", ALERT_CHANNEL="alerts")
    umkm, products = catalogue_rows()
    w.load("umkm", umkm)
    w.load("products", products)
    return w


def featured(world: World) -> list[tuple[dt.date, str, str]]:
    """(day, umkm ref, product ref) of the created highlights on the first channel."""
    with world.db.session() as session:
        q = (select(Highlight.day, Umkm.external_id, Product.external_id)
             .join(Product, Product.id == Highlight.product_id).join(Umkm, Umkm.id == Product.umkm_id)
             .where(Highlight.status == "created").distinct().order_by(Highlight.day))
        return [(d, u, ref) for d, u, ref in session.execute(q)]


def test_sixty_days_fair_idempotent_and_filtered(world: World):
    """Two runs a day for 60 days: one post per day and channel, fair rotation, eligible products only.
    A product approved on day 20 and a new UMKM imported on day 30 join the next day."""
    for i in range(60):
        day = START + dt.timedelta(days=i)
        if i == 20:
            # An edit (pending → approved) and a new product, both in one-product UMKM.
            world.load("products", [{"id": "x-pending", "umkm_id": "u10", "name": "Sekarang Disetujui",
                                     "description": "", "price": "1", "curation": "approved", "active": "true"},
                                    {"id": "p11-01", "umkm_id": "u11", "name": "Produk Baru 11",
                                     "description": "", "price": "1", "curation": "approved", "active": "true"}])
        if i == 30:
            world.load("umkm", [{"id": "u-new", "name": "UMKM Baru", "city": "Balikpapan", "curated": "ya"}])
            world.load("products", [{"id": "pnew-00", "umkm_id": "u-new", "name": "Produk Baru",
                                     "description": "Baru.", "price": "5000", "curation": "approved",
                                     "active": "true"}])
        first = world.run(at(day, "09:00"))
        again = world.run(at(day, "09:20"))
        assert [d.status for d in first] == ["created", "created"]
        assert again == []
    rows = world.rows()
    assert len(rows) == 120 and {r.status for r in rows} == {"created"}
    posts = world.posts()
    assert len(posts) == 120
    # Both channels show the same product each day, at 09:00 local.
    by_day: dict[dt.date, set[int | None]] = {}
    for r in rows:
        by_day.setdefault(r.day, set()).add(r.product_id)
    assert all(len(v) == 1 for v in by_day.values())
    assert {p.scheduled_at.astimezone(WITA).time() for p in posts} == {dt.time(9, 0)}
    feats = featured(world)
    assert len(feats) == 60
    picked = {ref for _d, _u, ref in feats}
    assert not picked & {"x-rejected", "x-inactive", "x-uncurated"}
    # Newly eligible records join: the new UMKM the next day (never featured goes first), the
    # newly approved and the newly imported product at their UMKM's next turn, ahead of the
    # product that UMKM already showed.
    assert feats[30][2] == "pnew-00"
    for umkm, fresh in (("u10", "x-pending"), ("u11", "p11-01")):
        assert [ref for d, u, ref in feats if u == umkm and d >= START + dt.timedelta(days=20)][0] == fresh
    # Fairness across UMKM (over the first 30 days the eligible set is stable): no second turn
    # before every UMKM had one; so each of the 12 appears in every 12-day window.
    before = [u for d, u, _ref in feats if d < START + dt.timedelta(days=30)]
    assert between_repeats_all_others_appear(before, {f"u{i:02d}" for i in range(12)})
    assert all(len(set(before[k:k + 12])) == 12 for k in range(len(before) - 11))
    # Within each UMKM: no product twice before all its products once.
    for i, n in enumerate(SIZES[1:10], start=1):
        own = [ref for _d, u, ref in feats if u == f"u{i:02d}"]
        assert between_repeats_all_others_appear(own, {f"p{i:02d}-{j:02d}" for j in range(n)})
    big = [ref for _d, u, ref in feats if u == "u00"]
    assert len(big) == len(set(big)) == 5  # 5 turns in 60 days; 5 different products of its 11
    # Cooldown: no UMKM twice within 7 days (12-13 UMKM are always eligible).
    last: dict[str, dt.date] = {}
    for d, u, _ref in feats:
        assert u not in last or (d - last[u]).days >= 7
        last[u] = d
    # The audit trail explains each pick.
    with world.db.session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "highlight.created")
                                .order_by(AuditEntry.id.desc())).first()
    assert entry is not None and any("least recently featured" in w for w in entry.detail["why"])


def test_catch_up_within_lateness_then_skip_beyond_it(world: World):
    day1, day2, day5 = START, START + dt.timedelta(days=1), START + dt.timedelta(days=4)
    assert world.run(at(day1, "08:59")) == []  # not yet
    # The service was down at 09:00 and starts at 11:30: the highlight goes out then.
    [made, _second] = world.run(at(day1, "11:30"))
    assert made.status == "created"
    post = next(p for p in world.posts() if p.id == made.post_id)
    assert post.scheduled_at == at(day1, "11:30")
    # Day 2: starts at 15:30, later than 09:00 + 6h: skipped with the reason, and an alert.
    decisions = world.run(at(day2, "15:30"))
    assert {d.status for d in decisions} == {"skipped"} and len(decisions) == 2
    assert "PROMO_MAX_LATENESS_DAILY_HIGHLIGHT=6h" in decisions[0].reason
    assert len(world.posts()) == 2
    assert any("skipped" in a for a in world.alerts)
    # Down for days 3 and 4, back on day 5 at 09:00: the missed days are recorded, day 5 is made.
    decisions = world.run(at(day5, "09:00"))
    assert sorted((d.day, d.status) for d in decisions if d.channel == "kota") == [
        (START + dt.timedelta(days=2), "skipped"), (START + dt.timedelta(days=3), "skipped"), (day5, "created")]
    assert world.run(at(day5, "10:00")) == []
    with world.db.session() as session:
        audits = session.scalars(select(AuditEntry).where(AuditEntry.action == "highlight.skipped")).all()
    assert len(audits) == 6  # days 2, 3, 4 on both channels


def test_nothing_eligible_records_why_and_alerts_once(tmp_path: Path, sqlite_db: Database):
    w = World(tmp_path, sqlite_db, ALERT_CHANNEL="alerts")
    w.load("umkm", [{"id": "u1", "name": "Satu", "curated": "ya"}, {"id": "u2", "name": "Dua", "curated": "tidak"}])
    w.load("products", [{"id": "a", "umkm_id": "u1", "name": "A", "curation": "pending", "active": "true"},
                        {"id": "b", "umkm_id": "u2", "name": "B", "curation": "approved", "active": "true"}])
    [d] = w.run(at(START, "09:00"))
    assert d.status == "nothing_eligible"
    assert d.reason == ("nothing eligible: 0 of 2 product(s) eligible (1 not approved, "
                        "1 from a UMKM that is not curated)")
    assert w.run(at(START, "09:15")) == []
    assert w.posts() == [] and len(w.alerts) == 1 and "no daily highlight" in w.alerts[0]
    with sqlite_db.session() as session:
        assert session.scalars(select(AuditEntry).where(AuditEntry.action == "highlight.nothing_eligible")).one()


def test_approval_lead_then_expiry_and_the_product_comes_back(tmp_path: Path, sqlite_db: Database):
    w = World(tmp_path, sqlite_db, REQUIRE_APPROVAL="true", HIGHLIGHT_APPROVAL_LEAD="3h")
    umkm, products = catalogue_rows()
    w.load("umkm", umkm)
    w.load("products", products)
    assert w.run(at(START, "05:59")) == []
    [d1] = w.run(at(START, "06:00"))
    post = w.posts()[0]
    assert post.status == "pending_approval" and post.scheduled_at == at(START, "09:00")
    approve(Context(w.settings, sqlite_db), Actor("approver"), [post.id], now=at(START, "08:00"))
    assert w.run(at(START, "09:00")) == []
    assert w.posts()[0].status == "scheduled"
    # Day 2: nobody approves it; at 09:00 it expires and the day does not count as featured.
    [d2] = w.run(at(START + dt.timedelta(days=1), "06:00"))
    expired = w.run(at(START + dt.timedelta(days=1), "09:00"))
    assert [e.status for e in expired] == ["expired"]
    assert w.posts()[1].status == "expired"
    [d3] = w.run(at(START + dt.timedelta(days=2), "06:00"))
    assert d3.product == d2.product != d1.product


def test_edited_product_recomposes_or_cancels_unsent_highlight(world: World):
    [made, _] = world.run(at(START, "09:00"))
    ref = made.product
    umkm_ref = f"u{ref[1:3]}"
    world.load("products", [{"id": ref, "umkm_id": umkm_ref, "name": "Nama Baru Sekali", "description": "Baru.",
                             "price": "12000", "curation": "approved", "active": "true"}])
    texts = [p.text for p in world.posts()]
    assert all("Nama Baru Sekali" in t and "Rp 12.000" in t for t in texts)
    world.load("products", [{"id": ref, "umkm_id": umkm_ref, "name": "Nama Baru Sekali", "description": "Baru.",
                             "price": "12000", "curation": "rejected", "active": "true"}])
    assert {p.status for p in world.posts()} == {"cancelled"}
    assert {r.status for r in world.rows()} == {"cancelled"}


def test_preview_shows_picks_and_texts_without_creating_anything(world: World, tmp_path: Path):
    env = {**env_for(tmp_path, ("kota", "dua", "alerts"), HIGHLIGHT_CHANNELS="kota,dua"), "PATH": os.environ["PATH"]}
    tomorrow = (dt.datetime.now(WITA) + dt.timedelta(days=1)).date()
    out = subprocess.run([sys.executable, "-m", "scheduler.cli", "highlight", "preview", "--date",
                          tomorrow.isoformat(), "--format", "json"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    [pick] = data["picks"]
    with world.db.session() as session:
        assert len(eligible_products(session).candidates) == 40
    # Nothing featured yet: today's (still to come) highlight would go to the smallest id, u00,
    # so tomorrow's goes to u01, and the preview says why.
    assert (pick["umkm"], pick["product"]) == ("u01", "p01-00")
    assert "never featured" in pick["why"][0] and "of 12 eligible UMKM" in pick["why"][0]
    assert [p["channel"] for p in data["posts"]] == ["kota", "dua"]
    assert all("Produk 01-00" in p["text"] and "UMKM 01" in p["text"] for p in data["posts"])
    assert world.rows() == [] and world.posts() == []
    text_out = subprocess.run([sys.executable, "-m", "scheduler.cli", "highlight", "preview"], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert text_out.returncode == 0
    assert "Slot 0: Produk 00-00 (p00-00) from UMKM 00 (u00)" in text_out.stdout
    assert "least recently featured of 12 eligible UMKM" in text_out.stdout
    assert world.rows() == []


# --- concurrency ------------------------------------------------------------------------

@pytest.mark.postgres
def test_two_concurrent_runs_on_postgres_make_one_highlight(tmp_path: Path, pg_db: Database):
    w = World(tmp_path, pg_db, ("kota", "dua"), DATABASE_URL=PG_URL, HIGHLIGHT_CHANNELS="kota,dua")
    umkm, products = catalogue_rows()
    w.load("umkm", umkm)
    w.load("products", products)
    for i in range(5):
        now = at(START + dt.timedelta(days=i), "09:00")
        barrier = threading.Barrier(2)
        results: list[list[Any]] = [[], []]
        errors: list[BaseException] = []

        def worker(k: int, now: dt.datetime = now, barrier: threading.Barrier = barrier,
                   results: list[list[Any]] = results, errors: list[BaseException] = errors) -> None:
            try:
                barrier.wait(timeout=10)
                results[k] = run_daily_highlight(w.settings, pg_db, w.composer, now)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors
        assert sum(len(r) for r in results) == 2  # one decision per channel, whoever made it
    rows = w.rows()
    assert len(rows) == 10 and len({(r.day, r.channel_id) for r in rows}) == 10
    assert len(w.posts()) == 10
    assert len({r.umkm_id for r in rows}) == 5


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling a condition, not a timed wait


@pytest.mark.slow
def test_two_promo_serve_processes_publish_one_highlight(tmp_path: Path):
    """Two real services on one SQLite file: one highlight per channel reaches the outbox,
    and `promo history --format json` shows it published."""
    env = {**env_for(tmp_path, ("kota", "dua"), HIGHLIGHT_TIME="00:00", MAX_LATENESS_DAILY_HIGHLIGHT="25h",
                     POLL_SECONDS="0.2", LOG_LEVEL="DEBUG", HEALTH_PORT="0", HIGHLIGHT_CHANNELS="kota,dua"),
           "PATH": os.environ["PATH"]}
    promo = [sys.executable, "-m", "scheduler.cli"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*promo, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert run("db", "upgrade").returncode == 0
    umkm, products = catalogue_rows()
    assert run("import", "umkm", str(write_csv(tmp_path / "umkm.csv", umkm))).returncode == 0
    assert run("import", "products", str(write_csv(tmp_path / "products.csv", products))).returncode == 0
    logs = [tmp_path / "serve1.log", tmp_path / "serve2.log"]
    handles = [open(log, "w") for log in logs]  # noqa: SIM115 - closed below
    procs = [subprocess.Popen([*promo, "serve", "--health-port", "0"], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=h) for h in handles]
    try:
        # Both processes ran the highlight job at least once, and both posts were published.
        _wait_for(lambda: all("daily highlight checked" in log.read_text() for log in logs), 60, "both jobs")
        _wait_for(lambda: all((tmp_path / f).exists() and (tmp_path / f).read_text().strip()
                              for f in ("kota.jsonl", "dua.jsonl")), 60, "the outbox")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)
        for h in handles:
            h.close()
    for name in ("kota.jsonl", "dua.jsonl"):
        lines = (tmp_path / name).read_text().splitlines()
        assert len(lines) == 1
        assert "UMKM Pilihan Hari Ini: Produk 00-00 dari UMKM 00" in json.loads(lines[0])["text"]
    hist = run("history", "--format", "json")
    assert hist.returncode == 0
    published = [h for h in json.loads(hist.stdout) if h["outcome"] == "published"]
    assert sorted(h["channel"] for h in published) == ["dua", "kota"]
    assert all("UMKM Pilihan" in h["text"] for h in published)
    listing = run("highlight", "history", "--format", "json")
    rows = json.loads(listing.stdout)
    assert [(r["channel"], r["status"], r["product"], r["post_status"]) for r in rows] == [
        ("dua", "created", "p00-00", "published"), ("kota", "created", "p00-00", "published")]


async def test_the_dashboard_shows_who_was_featured_and_how_often(world: World):
    import socket

    import httpx

    from scheduler import web
    from scheduler.highlight_views import featured_summary, highlight_history

    for n in range(3):  # three mornings: three different businesses, on both channels
        world.run(at(START + dt.timedelta(days=n), "09:00"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from tests.webapp import alog_in, bearer

    token = bearer(world.db, "rina")
    runner = await web.start(world.settings, world.db, "127.0.0.1", port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            api = (await client.get("/api/v1/highlights", headers=token)).json()
            await alog_in(client, "rina")
            page = (await client.get("/highlights")).text
    finally:
        await runner.cleanup()
    rows = highlight_history(world.db, lambda v: v.astimezone(WITA).isoformat(timespec="seconds") if v else "")
    assert api == rows and len(api) == 6 and {r["status"] for r in api} == {"created"}
    summary = featured_summary(api, "umkm", "umkm_name")
    assert [s["times"] for s in summary] == [1, 1, 1]  # three businesses, one day each (on both channels)
    for s in summary:
        assert f"<td>{s['umkm']}</td><td>{s['name']}</td><td>1</td><td>{s['last']}</td>" in page
    days = page.split('id="days"')[1]
    assert days.count("<td>2026-12-0") == 6  # the day-by-day table, newest first, with the reason
    assert days.index("2026-12-03") < days.index("2026-12-01") and "least recently featured" in days
