"""The real Dispatcher and Mastodon adapter against an in-memory Mastodon-API server, in travelled time.

Mastodon remembers an ``Idempotency-Key`` for one hour after it made the status; GoToSocial
(like Takahe and Pixelfed) speaks the same API but ignores the header. Each test checks what
the server received and made, and what the post and its history say.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable

import httpx
import pytest
import time_machine
from sqlalchemy import select

from scheduler.config import load_settings
from scheduler.dispatch import Dispatcher
from scheduler.models import Channel, HistoryEntry, Post, PostStatus
from scheduler.storage import channels as channel_store
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database

S = PostStatus
START = dt.datetime(2026, 8, 22, 1, 0, tzinfo=dt.UTC)
ACCOUNT = {"id": "109000000000000001", "username": "kota", "acct": "kota"}


class FakeMastodon:
    """A Mastodon-API server: NodeInfo, verify_credentials, the account's statuses, POST /api/v1/statuses.

    ``script`` lists answers for the next status POSTs: ``ok``, ``timeout_made`` (the status is
    made, the answer lost), ``timeout_lost`` (nothing made) or ``429`` (checked before the key,
    as Rack::Attack does).
    """

    def __init__(self, software: str = "mastodon", honours_key: bool = True):
        self.software = software
        self.honours_key = honours_key
        self.script: list[str] = []
        self.statuses: list[dict[str, str]] = []  # newest first
        self.keys: dict[str, tuple[dict[str, str], float]] = {}
        self.posted: list[str | None] = []  # the Idempotency-Key of every status POST
        self.lookups = 0
        self.lookup_fails = False
        self.reset_at: dt.datetime | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/nodeinfo":
            return httpx.Response(200, json={"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                                                        "href": "https://social.example/nodeinfo/2.0"}]})
        if path == "/nodeinfo/2.0":
            return httpx.Response(200, json={"software": {"name": self.software, "version": ""}})
        if path == "/api/v1/accounts/verify_credentials":
            return httpx.Response(200, json=ACCOUNT)
        if request.method == "GET" and path == f"/api/v1/accounts/{ACCOUNT['id']}/statuses":
            self.lookups += 1
            if self.lookup_fails:
                return httpx.Response(503, text="Service Unavailable")
            return httpx.Response(200, json=self.statuses[: int(request.url.params.get("limit", "20"))])
        if request.method == "POST" and path == "/api/v1/statuses":
            return self.create(request)
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    def create(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("idempotency-key")
        self.posted.append(key)
        answer = self.script.pop(0) if self.script else "ok"
        if answer == "429":
            assert self.reset_at is not None
            return httpx.Response(429, json={"error": "Too many requests"},
                                  headers={"X-RateLimit-Remaining": "0",
                                           "X-RateLimit-Reset": self.reset_at.isoformat()})
        now = time.time()
        if self.honours_key and key in self.keys and now - self.keys[key][1] < 3600:
            return httpx.Response(200, json=self.keys[key][0])
        if answer == "timeout_lost":
            raise httpx.ReadTimeout("timed out", request=request)
        text = json.loads(request.content)["status"]
        status = {"id": str(110000000000000000 + len(self.statuses) + 1), "content": f"<p>{text}</p>",
                  "created_at": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(),
                  "url": f"https://social.example/@kota/{len(self.statuses) + 1}"}
        self.statuses.insert(0, status)
        if key:
            self.keys[key] = (status, now)
        if answer == "timeout_made":
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json=status)


@pytest.fixture
def world(promo_env) -> Callable[..., tuple[FakeMastodon, Dispatcher, Database, int]]:
    def build(fake: FakeMastodon, **options: str) -> tuple[FakeMastodon, Dispatcher, Database, int]:
        env = promo_env({"masto": {"PLATFORM": "mastodon", "BASE_URL": "http://127.0.0.1:9",
                                   "ACCESS_TOKEN": "SECRET-masto-token", **options}},
                        RETRY_BASE_SECONDS="10", RETRY_MAX_SECONDS="60", MAX_ATTEMPTS="5")
        settings = load_settings(env)
        db = Database(settings.database_url)
        db.upgrade()
        with db.session() as session:
            channel = channel_store.sync_configured(session, settings)["masto"]
            post_id = post_store.create_post(session, channel=session.get(Channel, channel.id), kind="free_text",
                                             text="Bazar UMKM Sabtu ini!", status=S.SCHEDULED,
                                             scheduled_at=START - dt.timedelta(seconds=1), actor="test").id
        return fake, Dispatcher(settings, db, transport=httpx.MockTransport(fake)), db, post_id

    return build


def post_of(db: Database, post_id: int) -> Post:
    with db.session() as session:
        return post_store.get_post(session, post_id)


def attempts(db: Database, post_id: int) -> list[str | None]:
    with db.session() as session:
        rows = session.scalars(select(HistoryEntry).where(HistoryEntry.post_id == post_id,
                                                          HistoryEntry.action == "attempt")
                               .order_by(HistoryEntry.id))
        return [r.outcome for r in rows]


async def step(dispatcher: Dispatcher, db: Database, post_id: int, wait_until, *statuses: PostStatus) -> Post:
    """Claim what is due and wait until the post has one of ``statuses``."""
    await wait_until(lambda: post_of(db, post_id).status in statuses, 10, tick=dispatcher.tick)
    return post_of(db, post_id)


async def test_inside_the_hour_a_resend_reuses_the_key_blindly(world, wait_until) -> None:
    with time_machine.travel(START, tick=False) as traveller:
        fake, dispatcher, db, post_id = world(FakeMastodon())
        fake.script = ["timeout_made"]
        dispatcher.start()
        first = await step(dispatcher, db, post_id, wait_until, S.RETRY_WAIT, S.NEEDS_REVIEW)
        assert first.status == S.RETRY_WAIT and "same idempotency key" in (first.error or "")
        traveller.shift(dt.timedelta(minutes=40))
        done = await step(dispatcher, db, post_id, wait_until, S.PUBLISHED, S.NEEDS_REVIEW)
        await dispatcher.drain()
    assert done.status == S.PUBLISHED and done.remote_id == fake.statuses[0]["id"]
    assert fake.posted == [done.idempotency_key] * 2 and len(fake.statuses) == 1
    assert fake.lookups == 0, "inside the key's hour nothing needs looking up"
    assert attempts(db, post_id) == ["unknown", "published"]


@pytest.mark.parametrize(("first_answer", "lookup_fails", "verdict", "posts", "made"), [
    ("timeout_made", False, S.PUBLISHED, 1, 1),  # found: published with its id, not sent again
    ("timeout_lost", False, S.PUBLISHED, 2, 1),  # provably absent: sent again, once
    ("timeout_made", True, S.NEEDS_REVIEW, 1, 1),  # cannot tell: a person decides
], ids=["found", "absent", "cannot-tell"])
async def test_after_the_hour_the_dispatcher_looks_before_resending(
        world, wait_until, first_answer, lookup_fails, verdict, posts, made) -> None:
    with time_machine.travel(START, tick=False) as traveller:
        fake, dispatcher, db, post_id = world(FakeMastodon())
        fake.script = [first_answer]
        dispatcher.start()
        assert (await step(dispatcher, db, post_id, wait_until, S.RETRY_WAIT, S.NEEDS_REVIEW)).status == S.RETRY_WAIT
        fake.lookup_fails = lookup_fails
        traveller.shift(dt.timedelta(hours=2))  # e.g. the service was down meanwhile
        done = await step(dispatcher, db, post_id, wait_until, S.PUBLISHED, S.NEEDS_REVIEW)
        await dispatcher.drain()
    assert done.status == verdict
    assert len(fake.posted) == posts and len(fake.statuses) == made
    assert fake.lookups >= 1
    if verdict == S.PUBLISHED:
        assert done.remote_id == fake.statuses[0]["id"]
    else:
        assert "may have published" in (done.error or "") and "reconcile cannot tell" in (done.error or "")


async def test_a_long_rate_limit_wait_after_an_unknown_outcome_ends_in_a_lookup_not_a_second_status(
        world, wait_until) -> None:
    # Timeout (the status was made), then 429 for three hours (300 statuses per 3 h): by then the key is gone.
    with time_machine.travel(START, tick=False) as traveller:
        fake, dispatcher, db, post_id = world(FakeMastodon())
        fake.script = ["timeout_made", "429"]
        fake.reset_at = START + dt.timedelta(hours=3)
        dispatcher.start()
        await step(dispatcher, db, post_id, wait_until, S.RETRY_WAIT)
        traveller.shift(dt.timedelta(minutes=5))
        await wait_until(lambda: len(fake.posted) == 2 and post_of(db, post_id).status == S.RETRY_WAIT, 10,
                         tick=dispatcher.tick)
        assert post_of(db, post_id).next_attempt_at == fake.reset_at
        traveller.move_to(fake.reset_at)
        done = await step(dispatcher, db, post_id, wait_until, S.PUBLISHED, S.NEEDS_REVIEW)
        await dispatcher.drain()
    assert done.status == S.PUBLISHED and done.remote_id == fake.statuses[0]["id"]
    assert len(fake.posted) == 2 and len(fake.statuses) == 1, "no blind resend after the hour"
    assert attempts(db, post_id) == ["unknown", "rate_limited", "published"]


@pytest.mark.parametrize("software", ["gotosocial", "takahe"])
async def test_a_server_that_ignores_the_key_never_gets_a_blind_resend(world, wait_until, software) -> None:
    with time_machine.travel(START, tick=False):
        fake, dispatcher, db, post_id = world(FakeMastodon(software, honours_key=False))
        fake.script = ["timeout_made"]
        fake.lookup_fails = True
        dispatcher.start()
        done = await step(dispatcher, db, post_id, wait_until, S.PUBLISHED, S.NEEDS_REVIEW)
        for _ in range(3):
            await dispatcher.tick()
        await dispatcher.drain()
    assert done.status == S.NEEDS_REVIEW
    assert len(fake.posted) == 1 and len(fake.statuses) == 1


async def test_a_server_that_ignores_the_key_is_looked_up_at_once(world, wait_until) -> None:
    with time_machine.travel(START, tick=False):
        fake, dispatcher, db, post_id = world(FakeMastodon("gotosocial", honours_key=False))
        fake.script = ["timeout_made"]
        dispatcher.start()
        found = await step(dispatcher, db, post_id, wait_until, S.PUBLISHED, S.NEEDS_REVIEW, S.RETRY_WAIT)
        await dispatcher.drain()
    assert found.status == S.PUBLISHED and found.remote_id == fake.statuses[0]["id"]
    assert len(fake.posted) == 1 and attempts(db, post_id) == ["published"]


async def test_a_server_that_ignores_the_key_is_looked_up_again_before_a_resend(world, wait_until) -> None:
    with time_machine.travel(START, tick=False) as traveller:
        fake, dispatcher, db, post_id = world(FakeMastodon("gotosocial", honours_key=False))
        fake.script = ["timeout_lost"]
        dispatcher.start()
        waiting = await step(dispatcher, db, post_id, wait_until, S.RETRY_WAIT, S.NEEDS_REVIEW)
        assert waiting.status == S.RETRY_WAIT and "not on the platform" in (waiting.error or "")
        traveller.shift(dt.timedelta(minutes=2))
        lookups = fake.lookups
        done = await step(dispatcher, db, post_id, wait_until, S.PUBLISHED, S.NEEDS_REVIEW)
        await dispatcher.drain()
    assert done.status == S.PUBLISHED
    assert fake.lookups > lookups, "looked again before the second send (a status may show up late)"
    assert len(fake.posted) == 2 and len(fake.statuses) == 1
    assert attempts(db, post_id) == ["absent", "published"]


async def test_channel_override_trusts_or_distrusts_the_key(world, wait_until) -> None:
    with time_machine.travel(START, tick=False):
        fake, dispatcher, db, post_id = world(FakeMastodon("mastodon"), IDEMPOTENCY="none")
        fake.script = ["timeout_made"]
        fake.lookup_fails = True
        dispatcher.start()
        done = await step(dispatcher, db, post_id, wait_until, S.PUBLISHED, S.NEEDS_REVIEW, S.RETRY_WAIT)
        await dispatcher.drain()
    assert done.status == S.NEEDS_REVIEW and len(fake.posted) == 1
