"""Event promotion sequences through `promo import`'s hook and the periodic job: offsets,
multi-day events, edits, cancellation, late import; publication through the dispatcher."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from jobs.event_promotion import records_changed_hook, run_event_promotion
from scheduler.composer import Composer
from scheduler.config import load_settings
from scheduler.dispatch import Dispatcher
from scheduler.importer import import_file
from scheduler.models import AuditEntry, Post
from scheduler.storage.db import Database

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
WITA = ZoneInfo("Asia/Makassar")
IMPORT_AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=WITA)


def local(value: dt.datetime) -> str:
    return value.astimezone(WITA).strftime("%Y-%m-%d %H:%M")


class Events:
    """A database, settings for two outbox channels, and the import path `promo import` uses."""

    def __init__(self, tmp_path: Path, **extra: str):
        self.tmp_path = tmp_path
        env = {"PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db", "PROMO_TEMPLATES_DIR": str(TEMPLATES),
               "PROMO_CHANNELS": "kota,dinas", "PROMO_EVENT_CHANNELS": "kota,dinas"}
        for name in ("kota", "dinas"):
            env[f"PROMO_CHANNEL_{name.upper()}_PLATFORM"] = "outbox"
            env[f"PROMO_CHANNEL_{name.upper()}_PATH"] = str(tmp_path / f"{name}.jsonl")
        env.update({f"PROMO_{k}": v for k, v in extra.items()})
        self.env = env
        self.settings = load_settings(env)
        self.db = Database(self.settings.database_url)
        self.db.upgrade()
        self.composer = Composer(TEMPLATES, WITA, "id")

    def import_events(self, rows: list[dict[str, Any]], when: dt.datetime) -> None:
        path = self.tmp_path / f"events-{uuid.uuid4().hex[:6]}.csv"
        base = {"id": "", "name": "", "description": "", "venue": "", "city": "", "starts_at": "", "ends_at": "",
                "url": "", "image": "", "tags": "", "status": "scheduled"}
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(base))
            w.writeheader()
            w.writerows([{**base, **r} for r in rows])
        with time_machine.travel(when, tick=False), self.db.session() as session:
            import_file(session, "events", path, tz=WITA, actor="staff",
                        # the batched hook `promo import` and the web app pass
                        on_changes=records_changed_hook(self.settings, self.composer, "staff"))

    def posts(self, **where: Any) -> list[Post]:
        with self.db.session() as session:
            q = select(Post).order_by(Post.scheduled_at, Post.id)
            for k, v in where.items():
                q = q.where(getattr(Post, k) == v)
            return [p for p in session.scalars(q) if p.channel.name]  # loads the channel

    def plan(self, channel: str = "kota") -> list[tuple[str, str, str]]:
        return [(p.kind, local(p.scheduled_at), p.status) for p in self.posts() if p.channel.name == channel]

    def skipped(self) -> list[dict[str, Any]]:
        with self.db.session() as session:
            return [a.detail for a in session.scalars(select(AuditEntry).where(
                AuditEntry.action == "event.post_skipped").order_by(AuditEntry.id))]

    async def publish_due(self, now: dt.datetime) -> None:
        """Run the ordinary dispatcher at ``now`` until nothing due is left waiting."""
        d = Dispatcher(self.settings, self.db, clock=lambda: now.astimezone(dt.UTC))
        d.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            await d.tick()
            waiting = [p for p in self.posts() if p.status in ("scheduled", "publishing", "retry_wait")
                       and p.scheduled_at <= now]
            if not waiting:
                break
            assert loop.time() < deadline, "dispatcher did not finish"
            await asyncio.sleep(0.01)
        await d.drain()


@pytest.fixture
def ev(tmp_path: Path) -> Iterator[Events]:
    e = Events(tmp_path)
    yield e
    e.db.dispose()


EXPO = {"id": "expo", "name": "Nusakraf Expo", "description": "Pameran produk kreatif.",
        "venue": "Atrium e-Walk", "city": "Balikpapan", "starts_at": "2026-12-10 19:00", "ends_at": "2026-12-10 22:00",
        "url": "https://balikpapan.example/expo", "tags": "Nusakraf"}


def test_default_offsets_and_indonesian_texts(ev: Events):
    ev.import_events([EXPO], IMPORT_AT)
    assert ev.plan() == [("event_announcement", "2026-12-03 19:00", "scheduled"),
                         ("event_reminder", "2026-12-09 19:00", "scheduled"),
                         ("event_dayof", "2026-12-10 08:00", "scheduled")]
    assert len(ev.plan("dinas")) == 3
    ann, rem, day = [p.text for p in ev.posts() if p.channel.name == "kota"]
    assert "Kamis, 10 Desember 2026" in ann and "19.00 WITA" in ann and "Atrium e-Walk, Balikpapan" in ann
    assert "https://balikpapan.example/expo" in ann
    assert rem.startswith("⏰ Besok: Nusakraf Expo")  # composed as of its own day, not the import day
    assert day.startswith("🎉 Hari ini! Nusakraf Expo")
    # Importing again, or the periodic job, changes nothing.
    ev.import_events([EXPO], IMPORT_AT + dt.timedelta(hours=1))
    assert run_event_promotion(ev.settings, ev.db, ev.composer, IMPORT_AT + dt.timedelta(hours=2)) == {}
    assert len(ev.posts()) == 6


def test_multi_day_event_with_still_on_posts(tmp_path: Path):
    ev = Events(tmp_path, EVENT_ONGOING_POSTS="true", EVENT_ANNOUNCE_DAYS="3", EVENT_DAYOF_TIME="09:30")
    ev.import_events([{**EXPO, "starts_at": "2026-12-10 09:00", "ends_at": "2026-12-13 21:00"}], IMPORT_AT)
    assert [(k, t) for k, t, _s in ev.plan()] == [
        ("event_announcement", "2026-12-07 09:00"), ("event_reminder", "2026-12-09 09:00"),
        ("event_dayof", "2026-12-10 08:00"),  # an hour before a start earlier than 09:30
        ("event_ongoing", "2026-12-11 09:30"), ("event_ongoing", "2026-12-12 09:30"),
        ("event_ongoing", "2026-12-13 09:30")]
    ongoing = [p.text for p in ev.posts(kind="event_ongoing")]
    assert all("Sampai Minggu, 13 Desember 2026" in t for t in ongoing)
    # Shortened by a day: the last "still on" post is withdrawn.
    ev.import_events([{**EXPO, "starts_at": "2026-12-10 09:00", "ends_at": "2026-12-12 21:00"}], IMPORT_AT)
    assert ("event_ongoing", "2026-12-13 09:30", "cancelled") in ev.plan()
    ev.db.dispose()


async def test_edit_recomposes_unsent_posts_and_never_touches_published_ones(ev: Events):
    ev.import_events([EXPO], IMPORT_AT)
    await ev.publish_due(dt.datetime(2026, 12, 3, 19, 0, 5, tzinfo=WITA))
    published = ev.posts(kind="event_announcement")
    assert {p.status for p in published} == {"published"}
    lines = (ev.tmp_path / "kota.jsonl").read_text().splitlines()
    assert len(lines) == 1 and "Atrium e-Walk" in json.loads(lines[0])["text"]
    # New venue and a new time on the 4th.
    moved = {**EXPO, "venue": "Dome Balikpapan", "starts_at": "2026-12-11 18:30", "ends_at": "2026-12-11 22:00"}
    ev.import_events([moved], dt.datetime(2026, 12, 4, 9, 0, tzinfo=WITA))
    assert ev.plan() == [("event_announcement", "2026-12-03 19:00", "published"),
                         ("event_reminder", "2026-12-10 18:30", "scheduled"),
                         ("event_dayof", "2026-12-11 08:00", "scheduled")]
    after = ev.posts(kind="event_announcement")
    assert [p.text for p in after] == [p.text for p in published]  # published text untouched
    for p in ev.posts(kind="event_reminder") + ev.posts(kind="event_dayof"):
        assert "Dome Balikpapan" in p.text and "Atrium" not in p.text
    assert "Jumat, 11 Desember 2026" in ev.posts(kind="event_reminder")[0].text


async def test_cancellation_withdraws_unsent_posts_and_posts_a_notice(ev: Events):
    ev.import_events([EXPO], IMPORT_AT)
    await ev.publish_due(dt.datetime(2026, 12, 3, 19, 1, tzinfo=WITA))
    cancel_at = dt.datetime(2026, 12, 5, 12, 0, tzinfo=WITA)
    ev.import_events([{**EXPO, "status": "cancelled"}], cancel_at)
    kinds = {(k, s) for k, _t, s in ev.plan()}
    assert kinds == {("event_announcement", "published"), ("event_reminder", "cancelled"),
                     ("event_dayof", "cancelled"), ("event_cancelled", "scheduled")}
    [notice] = ev.posts(kind="event_cancelled", channel_id=ev.posts()[0].channel_id)
    assert notice.text.startswith("⚠️ Pengumuman: Nusakraf Expo (Kamis, 10 Desember 2026) dibatalkan.")
    await ev.publish_due(cancel_at + dt.timedelta(seconds=5))
    assert "dibatalkan" in json.loads((ev.tmp_path / "kota.jsonl").read_text().splitlines()[-1])["text"]
    # The periodic job leaves a cancelled event alone; re-scheduling it brings the sequence back.
    assert run_event_promotion(ev.settings, ev.db, ev.composer, cancel_at + dt.timedelta(minutes=15)) == {}
    ev.import_events([EXPO], cancel_at + dt.timedelta(hours=1))
    assert ("event_reminder", "2026-12-09 19:00", "scheduled") in ev.plan()
    assert ("event_dayof", "2026-12-10 08:00", "scheduled") in ev.plan()


def test_cancelled_before_anything_was_published_posts_no_notice(ev: Events):
    ev.import_events([EXPO], IMPORT_AT)
    ev.import_events([{**EXPO, "status": "cancelled"}], IMPORT_AT + dt.timedelta(hours=1))
    assert {s for _k, _t, s in ev.plan()} == {"cancelled"}
    assert ev.posts(kind="event_cancelled") == []


def test_late_import_skips_offsets_that_passed_and_records_why(ev: Events):
    # Imported the day before at 10:00: no "7 days to go" announcement; reminder and day-of stand.
    ev.import_events([EXPO], dt.datetime(2026, 12, 9, 10, 0, tzinfo=WITA))
    assert ev.plan() == [("event_reminder", "2026-12-09 19:00", "scheduled"),
                         ("event_dayof", "2026-12-10 08:00", "scheduled")]
    skipped = ev.skipped()
    assert [(s["kind"], s["channel"]) for s in skipped] == [("event_announcement", "kota"),
                                                           ("event_announcement", "dinas")]
    assert "due 2026-12-03 19:00 WITA" in skipped[0]["reason"]
    # The periodic job does not record it again.
    run_event_promotion(ev.settings, ev.db, ev.composer, dt.datetime(2026, 12, 9, 10, 15, tzinfo=WITA))
    assert len(ev.skipped()) == 2


def test_import_shortly_after_an_offset_still_posts_it_at_once(ev: Events):
    # 2 hours after the reminder time (within its 6h lateness): it goes out now, saying "Besok".
    when = dt.datetime(2026, 12, 9, 21, 0, tzinfo=WITA)
    ev.import_events([EXPO], when)
    [reminder] = ev.posts(kind="event_reminder", channel_id=ev.posts()[0].channel_id)
    assert local(reminder.scheduled_at) == "2026-12-09 21:00" and reminder.text.startswith("⏰ Besok")


def test_jobs_list_shows_next_runs_in_local_time(ev: Events):
    env = {**ev.env, "PROMO_HIGHLIGHT_CHANNELS": "kota", "PATH": os.environ["PATH"]}
    out = subprocess.run([sys.executable, "-m", "scheduler.cli", "jobs", "list", "--format", "json"], env=env,
                         cwd=ev.tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    jobs = {j["id"]: j for j in json.loads(out.stdout)}
    assert {"dispatch", "housekeeping", "daily-highlight", "event-promotion"} <= set(jobs)
    nxt = dt.datetime.fromisoformat(jobs["daily-highlight"]["next_run"])
    assert nxt.utcoffset() == dt.timedelta(hours=8) and (nxt.hour, nxt.minute) == (9, 0)
    now = dt.datetime.now(WITA)
    assert now < nxt <= now + dt.timedelta(days=1)
    ev_next = dt.datetime.fromisoformat(jobs["event-promotion"]["next_run"])
    assert ev_next.utcoffset() == dt.timedelta(hours=8) and ev_next <= now + dt.timedelta(minutes=16)
