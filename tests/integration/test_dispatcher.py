"""The real Dispatcher against the fake platform: rate limits, paused channels, reconcile,
stale posts and alerts, each checked in the database and in what the platform received."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from scheduler.alerts import Alerter
from scheduler.config import Settings, load_settings
from scheduler.dispatch import Dispatcher
from scheduler.models import Channel, ChannelStatus, HistoryEntry, Post, PostStatus
from scheduler.platforms import PLATFORMS
from scheduler.platforms.base import PlatformRules, PublishResult, ReadyPost
from scheduler.platforms.webhook import WebhookAdapter
from scheduler.storage import channels as channel_store
from scheduler.storage import claims
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database
from tests.fakeplatform import FakePlatform

S = PostStatus


class LookupWebhook(WebhookAdapter):
    """A webhook whose receiver can be asked whether a post arrived (not idempotent)."""

    platform = "webhook_lookup"

    @classmethod
    def rules_for(cls, options, state=None) -> PlatformRules:  # type: ignore[no-untyped-def]
        return PlatformRules(text=cls.rules.text, can_reconcile=True)

    async def reconcile(self, post: ReadyPost) -> PublishResult | None:
        response = await self.send("GET", self.url, params={"idempotency_key": post.idempotency_key})
        if response.status_code == 404:
            return None
        data = response.json()
        return PublishResult(remote_id=data["id"], remote_url=data["url"])


class Harness:
    """Settings, a fresh database and helpers for one test."""

    def __init__(self, settings: Settings, env: dict[str, str]):
        self.settings = settings
        self.env = env
        self.db = Database(settings.database_url)
        self.db.upgrade()
        with self.db.session() as session:
            self.channel_ids = {n: c.id for n, c in channel_store.sync_configured(session, settings).items()}

    def post(self, channel: str, *, ago: float = 1.0, kind: str = "free_text", text: str = "Bazar UMKM!",
             status: PostStatus = S.SCHEDULED) -> int:
        with self.db.session() as session:
            row = session.get(Channel, self.channel_ids[channel])
            return post_store.create_post(session, channel=row, kind=kind, text=text, status=status,
                                          scheduled_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ago),
                                          actor="test").id

    def get(self, post_id: int) -> Post:
        with self.db.session() as session:
            return post_store.get_post(session, post_id)

    def channel(self, name: str) -> Channel:
        with self.db.session() as session:
            return channel_store.get_channel(session, name)

    def history(self, post_id: int) -> list[HistoryEntry]:
        with self.db.session() as session:
            return list(session.scalars(select(HistoryEntry).where(HistoryEntry.post_id == post_id)
                                        .order_by(HistoryEntry.id)))

    def posts(self, channel: str) -> list[Post]:
        with self.db.session() as session:
            return post_store.list_posts(session, channel=channel)

    def is_(self, post_id: int, *statuses: PostStatus) -> Callable[[], bool]:
        return lambda: self.get(post_id).status in statuses

    def promo(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "scheduler.cli", *args], cwd=cwd, capture_output=True,
                              text=True, timeout=60, env={**self.env, "PATH": os.environ.get("PATH", "/usr/bin")})


@pytest.fixture
def harness(promo_env, db_url) -> Iterator[Callable[..., Harness]]:
    """Each test runs on SQLite and on PostgreSQL (``db_url``)."""
    made: list[Harness] = []

    def make(channels: dict[str, dict[str, str]], **settings: str) -> Harness:
        env = {**promo_env(channels, **settings), "PROMO_DATABASE_URL": db_url}
        made.append(Harness(load_settings(env), env))
        return made[-1]

    yield make
    for h in made:
        h.db.dispose()


def webhook(fake: FakePlatform, path: str, **options: str) -> dict[str, str]:
    return {"PLATFORM": "webhook", "URL": fake.url(path), **options}


async def test_rate_limit_holds_the_channel_until_retry_after(fake_platform, harness, wait_until) -> None:
    fake_platform.configure("kota", retry_after=120)
    fake_platform.script("kota", "429")
    h = harness({"kota": webhook(fake_platform, "kota")})
    first, second = h.post("kota", ago=2), h.post("kota", ago=1)
    dispatcher = Dispatcher(h.settings, h.db)
    dispatcher.start()
    before = dt.datetime.now(dt.UTC)
    await wait_until(h.is_(first, S.RETRY_WAIT), 10, tick=dispatcher.tick)
    after = dt.datetime.now(dt.UTC)
    until = h.channel("kota").rate_limited_until
    post = h.get(first)
    assert until is not None and post.next_attempt_at == until
    assert before + dt.timedelta(seconds=120) <= until <= after + dt.timedelta(seconds=120)
    assert [h.to_status for h in h.history(first) if h.action == "attempt"] == [S.RETRY_WAIT]
    for _ in range(3):  # the service keeps polling: nothing goes out on this channel meanwhile
        assert await dispatcher.tick() == 0
    await dispatcher.drain()
    assert len(fake_platform.requests_for("kota")) == 1 and h.get(second).status == S.SCHEDULED
    lease = dt.timedelta(seconds=60)
    assert claims.claim_due(h.db.engine, worker="w", now=until - dt.timedelta(seconds=1), lease=lease) == []
    claimed = claims.claim_due(h.db.engine, worker="w", now=until, lease=lease)
    assert [c.id for c in claimed] == [first]


async def test_auth_error_pauses_the_channel_until_channels_check_succeeds(
        fake_platform, harness, wait_until, tmp_path) -> None:
    fake_platform.configure("kota", unauthorized=True)
    h = harness({"kota": webhook(fake_platform, "kota"),
                 "alerts": {"PLATFORM": "outbox", "PATH": str(tmp_path / "alerts.jsonl")}},
                ALERT_CHANNEL="alerts", ALERT_MIN_INTERVAL="0s")
    post_id = h.post("kota")
    alerter = Alerter(h.db, "alerts", h.settings.alert_min_interval)
    dispatcher = Dispatcher(h.settings, h.db, alert=alerter)
    dispatcher.start()
    await wait_until(lambda: h.channel("kota").status == ChannelStatus.NEEDS_REAUTH, 10, tick=dispatcher.tick)
    assert h.get(post_id).status == S.SCHEDULED
    # The alert goes out on the alert channel; the paused channel gets nothing more.
    await wait_until(lambda: any(p.status == S.PUBLISHED for p in h.posts("alerts")), 10, tick=dispatcher.tick)
    assert "kota paused (needs_reauth)" in h.posts("alerts")[0].text
    for _ in range(3):
        await dispatcher.tick()
    assert len(fake_platform.requests_for("kota")) == 1 and h.get(post_id).status == S.SCHEDULED

    still_bad = h.promo("channels", "check", "kota", cwd=tmp_path)
    assert still_bad.returncode == 1 and "bad token" in still_bad.stdout
    assert h.channel("kota").status == ChannelStatus.NEEDS_REAUTH
    for _ in range(3):
        await dispatcher.tick()
    assert len(fake_platform.requests_for("kota")) == 1

    fake_platform.configure("kota", unauthorized=False)  # the credentials were fixed
    fixed = h.promo("channels", "check", "kota", cwd=tmp_path)
    assert fixed.returncode == 0 and "re-activated" in fixed.stdout, fixed.stdout + fixed.stderr
    await wait_until(h.is_(post_id, S.PUBLISHED), 10, tick=dispatcher.tick)
    await dispatcher.drain()
    assert len(fake_platform.deliveries_for("kota")) == 1


async def test_unknown_outcome_on_a_reconcilable_platform_asks_before_resending(
        fake_platform, harness, wait_until, monkeypatch) -> None:
    monkeypatch.setitem(PLATFORMS, "webhook_lookup", f"{__name__}:LookupWebhook")
    fake_platform.configure("went", idempotent=False, drop_delivers=1.0)  # created, answer lost
    fake_platform.configure("lost", idempotent=False, drop_delivers=0.0)  # never created
    fake_platform.script("went", "timeout")
    fake_platform.script("lost", "reset")
    h = harness({"went": {"PLATFORM": "webhook_lookup", "URL": fake_platform.url("went")},
                 "lost": {"PLATFORM": "webhook_lookup", "URL": fake_platform.url("lost")}},
                PUBLISH_TIMEOUT="0.5", RETRY_BASE_SECONDS="0.05")
    went, lost = h.post("went"), h.post("lost")
    dispatcher = Dispatcher(h.settings, h.db)
    dispatcher.start()
    await wait_until(lambda: h.get(went).status == h.get(lost).status == S.PUBLISHED, 15, tick=dispatcher.tick)
    await dispatcher.drain()
    # Found on the platform: published with its id, not sent again.
    assert [r.answer for r in fake_platform.requests_for("went")] == ["timeout"]
    assert h.get(went).remote_id == fake_platform.deliveries_for("went")[0].id
    # Certainly not there: sent again, once.
    assert [r.answer for r in fake_platform.requests_for("lost")] == ["reset", "ok"]
    assert len(fake_platform.deliveries_for("lost")) == 1
    assert [x.to_status for x in h.history(lost) if x.action == "attempt"] == [S.RETRY_WAIT, S.PUBLISHED]


async def test_expired_leases_are_reconciled_retried_or_left_for_review(
        fake_platform, harness, wait_until, monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(PLATFORMS, "webhook_lookup", f"{__name__}:LookupWebhook")
    fake_platform.configure(idempotent=False)
    h = harness({"rec": {"PLATFORM": "webhook_lookup", "URL": fake_platform.url("rec")},
                 "idem": webhook(fake_platform, "idem", IDEMPOTENT="true"),
                 "plain": webhook(fake_platform, "plain"),
                 "alerts": {"PLATFORM": "outbox", "PATH": str(tmp_path / "alerts.jsonl")}},
                ALERT_CHANNEL="alerts", ALERT_MIN_INTERVAL="0s")
    sent, unsent, idem, plain = h.post("rec", ago=3), h.post("rec", ago=2), h.post("idem"), h.post("plain")
    # A worker claimed them and died (its leases have run out); it had sent only the first one.
    dead = claims.claim_due(h.db.engine, worker="dead:1", now=dt.datetime.now(dt.UTC),
                                lease=dt.timedelta(seconds=-1))
    assert sorted(c.id for c in dead) == sorted([sent, idem, plain])
    async with httpx.AsyncClient() as client:
        await client.post(fake_platform.url("rec"), json={}, headers={"Idempotency-Key": h.get(sent).idempotency_key})
    dispatcher = Dispatcher(h.settings, h.db, alert=Alerter(h.db, "alerts", h.settings.alert_min_interval))
    dispatcher.start()
    assert await dispatcher.resolve_expired_leases() == 3
    assert h.get(sent).status == S.PUBLISHED and h.get(sent).remote_id == fake_platform.deliveries_for("rec")[0].id
    assert h.get(idem).status == S.RETRY_WAIT
    assert h.get(plain).status == S.NEEDS_REVIEW
    open_rows = [x for x in h.history(plain) if x.action == "attempt"]
    assert open_rows[-1].outcome == "lease_expired" and "outcome unknown" in open_rows[-1].error
    await wait_until(lambda: all(h.get(p).status == S.PUBLISHED for p in (unsent, idem)), 10, tick=dispatcher.tick)
    await dispatcher.drain()
    assert len(fake_platform.requests_for("rec")) == 2 and len(fake_platform.deliveries_for("rec")) == 2
    assert fake_platform.requests_for("plain") == []
    assert any("needs review" in p.text and f"post {plain}" in p.text for p in h.posts("alerts"))


async def test_stale_posts_expire_with_the_reason_and_late_ones_go_out_at_once(
        fake_platform, harness, wait_until, tmp_path) -> None:
    h = harness({"kota": webhook(fake_platform, "kota"),
                 "alerts": {"PLATFORM": "outbox", "PATH": str(tmp_path / "alerts.jsonl")}},
                ALERT_CHANNEL="alerts", ALERT_MIN_INTERVAL="0s", MAX_LATENESS_EVENT_DAYOF="3h")
    stale = h.post("kota", kind="event_dayof", ago=4 * 3600, text="Hari ini!")
    late = h.post("kota", kind="free_text", ago=3600)
    unapproved = h.post("kota", kind="event_dayof", ago=5 * 3600, status=S.PENDING_APPROVAL)
    dispatcher = Dispatcher(h.settings, h.db, alert=Alerter(h.db, "alerts", h.settings.alert_min_interval))
    dispatcher.start()
    await dispatcher.tick()  # the first tick after start-up
    assert h.get(stale).status == S.EXPIRED and h.get(unapproved).status == S.EXPIRED
    reason = h.history(stale)[-1]
    assert reason.to_status == S.EXPIRED and reason.actor == dispatcher.worker
    assert "4h late" in reason.error and "PROMO_MAX_LATENESS_EVENT_DAYOF" in reason.error
    assert h.history(unapproved)[-1].error == "not approved before its time"
    await wait_until(h.is_(late, S.PUBLISHED), 5, tick=dispatcher.tick)
    await dispatcher.drain()
    assert [r.key for r in fake_platform.requests_for("kota")] == [h.get(late).idempotency_key]
    assert any(f"post {stale} on kota expired" in p.text for p in h.posts("alerts"))


async def test_alerts_for_failures_and_reviews_but_never_about_alert_posts(
        fake_platform, harness, wait_until) -> None:
    fake_platform.configure("kota", p_5xx=1.0)
    fake_platform.configure("alerts", p_5xx=1.0)  # the alert channel is down too
    fake_platform.script("plain", "timeout")
    h = harness({"kota": webhook(fake_platform, "kota"), "plain": webhook(fake_platform, "plain"),
                 "alerts": webhook(fake_platform, "alerts")},
                ALERT_CHANNEL="alerts", ALERT_MIN_INTERVAL="0s", MAX_ATTEMPTS="1", PUBLISH_TIMEOUT="0.5")
    failed, review = h.post("kota"), h.post("plain")
    dispatcher = Dispatcher(h.settings, h.db, alert=Alerter(h.db, "alerts", h.settings.alert_min_interval))
    dispatcher.start()
    await wait_until(lambda: len(h.posts("alerts")) == 2 and all(S(p.status).terminal for p in h.posts("alerts")),
                     10, tick=dispatcher.tick)
    for _ in range(3):
        await dispatcher.tick()
    await dispatcher.drain()
    assert h.get(failed).status == S.FAILED and h.get(review).status == S.NEEDS_REVIEW
    alerts = h.posts("alerts")
    assert sorted(p.status for p in alerts) == [S.FAILED, S.FAILED]
    assert any(f"post {failed} on kota failed" in p.text for p in alerts)
    assert any(f"post {review} on plain needs review" in p.text for p in alerts)


def test_alerts_are_rate_limited_and_count_what_was_held_back(harness, tmp_path) -> None:
    h = harness({"alerts": {"PLATFORM": "outbox", "PATH": str(tmp_path / "alerts.jsonl")}},
                ALERT_CHANNEL="alerts", ALERT_MIN_INTERVAL="5m")
    now = [dt.datetime(2026, 5, 1, 2, 0, tzinfo=dt.UTC)]
    alerter = Alerter(h.db, "alerts", h.settings.alert_min_interval, clock=lambda: now[0])
    alerter("post 1 failed")
    now[0] += dt.timedelta(minutes=1)
    alerter("post 2 failed")
    alerter("post 3 failed")
    assert [p.text for p in h.posts("alerts")] == ["[promo-scheduler] post 1 failed"]
    now[0] += dt.timedelta(minutes=5)
    alerter("post 4 failed")
    texts = [p.text for p in h.posts("alerts")]
    assert texts[-1] == "[promo-scheduler] post 4 failed (+2 more alert(s) held back since the last one)"
    assert len(texts) == 2
