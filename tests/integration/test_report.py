"""`promo report` and its read model against a hand-computed fixture.

Posts published 1–4 March 2027 (WITA, UTC+8), latest reads only:

    p1 mastodon  Kue Lapis (Warung Bu Sri)  09:10  likes 5 shares 2 replies 1 (an older read: 2/1/0) → 8
    p2 bluesky   Kue Lapis (Warung Bu Sri)  19:05  likes 10 shares 3 replies 2 quotes 1           → 15
    p3 mastodon  Kopi Susu (Kopi Kita)      09:30  likes 1, views 40                               → 1
    p4 outbox    Kopi Susu (Kopi Kita)      12:00  no counters (the platform gives none)
    p5 mastodon  5 March (outside), p6 a draft: not counted
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from scheduler import reports
from scheduler.config import load_settings
from scheduler.models import Channel, Metric, Post, PostStatus, Product, Umkm
from scheduler.storage import channels as channel_store
from scheduler.storage.db import Database
from tests.helpers import run_cli

WITA = dt.timezone(dt.timedelta(hours=8))


def at(day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2027, 3, day, hour, minute, tzinfo=WITA).astimezone(dt.UTC)


@pytest.fixture
def env(promo_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> dict[str, str]:
    env = promo_env(channels={"masto": {"PLATFORM": "mastodon", "BASE_URL": "http://127.0.0.1:9", "ACCESS_TOKEN": "t"},
                              "bsky": {"PLATFORM": "bluesky", "HANDLE": "k.test", "APP_PASSWORD": "p"},
                              "outbox": {"PLATFORM": "outbox", "PATH": str(tmp_path / "o.jsonl")}},
                    TIMEZONE="Asia/Makassar", SECRET_KEY="a-long-test-passphrase-for-report", ENV_FILE=str(tmp_path / "none.env"))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings = load_settings(env)
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as s:
        channel_store.sync_configured(s, settings)
        ch = {c.name: c.id for c in s.scalars(select(Channel))}
        sri, kita = Umkm(external_id="u1", name="Warung Bu Sri"), Umkm(external_id="u2", name="Kopi Kita")
        s.add_all([sri, kita])
        s.flush()
        kue = Product(external_id="p1", umkm_id=sri.id, name="Kue Lapis", curation="approved")
        kopi = Product(external_id="p2", umkm_id=kita.id, name="Kopi Susu", curation="approved")
        s.add_all([kue, kopi])
        s.flush()

        def post(channel: str, when: dt.datetime, product: Product | None, status: PostStatus = PostStatus.PUBLISHED,
                 reads: tuple[tuple[dt.datetime, dict[str, int]], ...] = ()) -> None:
            p = Post(channel_id=ch[channel], kind="product_highlight" if product else "free_text", text="x",
                     status=status.value, published_at=when if status == PostStatus.PUBLISHED else None,
                     product_id=product.id if product else None, remote_id="r", idempotency_key=uuid.uuid4().hex)
            s.add(p)
            s.flush()
            for fetched, counts in reads:
                s.add_all(Metric(post_id=p.id, fetched_at=fetched, name=n, platform_name=f"{n}_count", value=v)
                          for n, v in counts.items())

        t1, t2, t3 = at(1, 9, 10), at(1, 19, 5), at(2, 9, 30)
        post("masto", t1, kue, reads=((t1 + dt.timedelta(hours=1), {"likes": 2, "shares": 1, "replies": 0}),
                                      (t1 + dt.timedelta(hours=24), {"likes": 5, "shares": 2, "replies": 1})))
        post("bsky", t2, kue, reads=((t2 + dt.timedelta(hours=1),
                                      {"likes": 10, "shares": 3, "replies": 2, "quotes": 1}),))
        post("masto", t3, kopi, reads=((t3 + dt.timedelta(hours=1), {"likes": 1, "views": 40}),))
        post("outbox", at(2, 12, 0), kopi)
        post("masto", at(5, 9, 0), None, reads=((at(5, 10, 0), {"likes": 99}),))
        post("masto", at(2, 9, 0), None, status=PostStatus.DRAFT)
    return env


def report(by: str) -> dict[str, dict[str, Any]]:
    settings = load_settings()
    db = Database(settings.database_url)
    with db.session() as s:
        rows = reports.report(s, since=at(1, 0, 0), until=at(5, 0, 0), by=by, tz=settings.timezone)
    return {r["group"]: r for r in rows}


def test_by_umkm_adds_up_latest_reads_and_names_the_best_platform(env: dict[str, str]) -> None:
    rows = report("umkm")
    assert list(rows) == ["Warung Bu Sri", "Kopi Kita"]  # most engagement first
    assert rows["Warung Bu Sri"] | {} == {
        "group": "Warung Bu Sri", "posts": 2, "measured": 2, "reach_views": 0, "engagement": 23,
        "engagement_per_post": 11.5, "likes": 15, "shares": 5, "replies": 3, "saves": 0, "best_platform": "bluesky"}
    assert (rows["Kopi Kita"]["posts"], rows["Kopi Kita"]["measured"], rows["Kopi Kita"]["engagement"],
            rows["Kopi Kita"]["engagement_per_post"], rows["Kopi Kita"]["reach_views"],
            rows["Kopi Kita"]["best_platform"]) == (2, 1, 1, 1.0, 40, "mastodon")


def test_a_platform_without_counters_shows_no_engagement_rather_than_zero(env: dict[str, str]) -> None:
    rows = report("platform")
    assert list(rows) == ["bluesky", "mastodon", "outbox"]
    assert (rows["mastodon"]["posts"], rows["mastodon"]["engagement"], rows["mastodon"]["engagement_per_post"]) == (2, 9, 4.5)
    assert rows["outbox"]["posts"] == 1 and rows["outbox"]["measured"] == 0 and rows["outbox"]["engagement"] is None


def test_by_hour_uses_the_organisations_timezone_and_gives_every_hour(env: dict[str, str]) -> None:
    rows = report("hour")
    assert list(rows) == [f"{h:02d}:00" for h in range(24)]  # the day's order, every hour
    assert {k: (r["posts"], r["engagement"]) for k, r in rows.items() if r["posts"]} == {
        "19:00": (1, 15), "09:00": (2, 9), "12:00": (1, None)}
    assert rows["03:00"] | {} == {"group": "03:00", "posts": 0, "measured": 0, **dict.fromkeys(
        ("reach_views", "engagement", "engagement_per_post", "likes", "shares", "replies", "saves", "best_platform"))}
    assert reports.best_hours(list(rows.values())) == ["19:00", "09:00"]  # 15 a post, then 4.5
    assert set(report("product")) == {"Kue Lapis", "Kopi Susu"}
    assert set(report("kind")) == {"product_highlight"}
    assert set(report("channel")) == {"bsky", "masto", "outbox"}


def test_cli_formats_and_exit_codes(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "report", "--since", "2027-03-01", "--until", "2027-03-04", "--by", "umkm",
                        "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data[0]["umkm"] == "Warung Bu Sri" and data[0]["engagement"] == 23
    code, out = run_cli(capsys, "report", "--since", "2027-03-01", "--until", "2027-03-04", "--format", "csv")
    assert code == 0 and out.startswith("\ufeffchannel,posts,measured,reach_views,engagement")
    code, out = run_cli(capsys, "report", "--since", "2027-03-01", "--until", "2027-03-04", "--by", "platform")
    assert code == 0
    outbox = next(line for line in out.splitlines() if line.startswith("outbox"))
    assert "n/a" in outbox
    code, out = run_cli(capsys, "report", "--since", "2027-03-01", "--until", "2027-03-04", "--by", "hour")
    assert code == 0 and out.rstrip().endswith("best hours: 19:00-20:00, 09:00-10:00")
    assert sum(1 for line in out.splitlines() if line[:2].isdigit() and line[2:5] == ":00") == 24
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line[2:5] == ":00"}
    assert lines["03:00"] == ["0", "0", "-"] and lines["12:00"] == ["1", "0", "n/a"]  # no posts, no counters
    assert run_cli(capsys, "report", "--since", "1 March")[0] == 2
    code, out = run_cli(capsys, "report", "--since", "2027-03-04", "--until", "2027-03-01")
    assert code == 2 and "before --since" in out
    with pytest.raises(SystemExit) as exc:
        run_cli(capsys, "report", "--by", "weekday")
    assert exc.value.code == 2


def test_engagement_per_post_by_umkm_feeds_the_highlight_tie_break(env: dict[str, str]) -> None:
    settings = load_settings()
    db = Database(settings.database_url)
    with db.session() as s:
        names = {u.id: u.name for u in s.scalars(select(Umkm))}
        got = reports.engagement_by_umkm(s, since=at(1, 0, 0), until=at(5, 0, 0))
    assert {names[k]: v for k, v in got.items()} == {"Warung Bu Sri": 11.5, "Kopi Kita": 1.0}


def test_the_cli_copies_of_the_groupings_and_the_default_period_are_the_read_models() -> None:
    from scheduler.cli import report as cli_report

    assert cli_report.GROUPS == reports.GROUPS and cli_report.DEFAULT_DAYS == reports.DEFAULT_DAYS


def test_a_months_sections_on_sqlite_and_postgresql(any_db: Database, tmp_path: Any) -> None:
    """The monthly report's read (one query of the month's latest reads) on both databases, against
    tests/reportdata.py's hand-computed March 2027."""
    from tests.reportdata import environment, seed

    settings = load_settings({**environment(tmp_path), "PROMO_DATABASE_URL": any_db.url})
    seed(any_db, settings)
    start, end = reports.month_bounds(dt.date(2027, 3, 1), settings.timezone)
    with any_db.read_session() as s:
        march = reports.sections(s, since=start, until=end, tz=settings.timezone, groups=("umkm", "hour"))
    assert (march.total["posts"], march.total["measured"], march.total["reach_views"], march.total["engagement"],
            march.total["engagement_per_post"]) == (6, 3, 2340, 1266, 422.0)
    assert march.platforms == {"bluesky": 2, "discord": 1, "mastodon": 2, "telegram": 1}
    assert [(r["group"], r["engagement"]) for r in march.rows["umkm"]] == [
        ("Warung Bu Sri", 1265), ("Kopi Kita", 1), ("(none)", None)]
    assert [r["group"] for r in march.rows["hour"] if r["posts"]] == ["09:00", "12:00", "19:00"]
    assert len(march.rows["hour"]) == 24 and reports.best_hours(march.rows["hour"]) == ["19:00", "09:00"]
    assert march.unread["umkm"] == {}  # every UMKM with posts has a measured one or only Discord
    assert [t["engagement"] for t in march.top] == [1255, 10, 1]


def test_hours_in_a_zone_whose_offset_has_minutes(any_db: Database, tmp_path: Any) -> None:
    """India's +05:30: a post's local hour is its own, not its UTC hour's (the read model works
    hours out once per UTC hour only where the offset is whole hours)."""
    from zoneinfo import ZoneInfo

    from tests.reportdata import at, environment, seed

    settings = load_settings({**environment(tmp_path), "PROMO_DATABASE_URL": any_db.url})
    seed(any_db, settings)
    india = ZoneInfo("Asia/Kolkata")
    with any_db.read_session() as s:
        rows = reports.report(s, since=at(3, 1, 0, 0), until=at(3, 31, 0, 0), by="hour", tz=india)
    # 09:10, 19:05, 09:30, 12:00, 19:45, 19:10 in Makassar (UTC+8) are 06:40, 16:35, 07:00, 09:30, 17:15, 16:40 in India
    assert {r["group"]: r["posts"] for r in rows if r["posts"]} == {"06:00": 1, "07:00": 1, "09:00": 1, "16:00": 2,
                                                                    "17:00": 1}
