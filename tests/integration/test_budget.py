"""Send budgets: a channel at its budget sends nothing, says until when, and goes on when the
window moves; the count is in the database, so every dispatcher process sees it."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import insert

from scheduler import budget as send_budget
from scheduler.config import load_settings
from scheduler.dispatch import Dispatcher
from scheduler.errors import ConfigError
from scheduler.models import HistoryEntry, PostStatus
from scheduler.platforms.mastodon import MastodonAdapter
from scheduler.platforms.webhook import WebhookAdapter
from tests.integration.test_dispatcher import Harness, webhook

S = PostStatus
T0 = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)


def attempts(h: Harness, post_id: int) -> list[HistoryEntry]:
    return [r for r in h.history(post_id) if r.action == "attempt"]


async def test_a_channel_at_its_budget_waits_until_the_oldest_send_leaves_the_window(
        fake_platform, promo_env, wait_until) -> None:
    with time_machine.travel(T0, tick=True) as traveller:
        env = promo_env({"kota": webhook(fake_platform, "kota", BUDGET="2/1h")})
        h = Harness(load_settings(env), env)
        first, second = h.post("kota", ago=3), h.post("kota", ago=2)
        dispatcher = Dispatcher(h.settings, h.db)
        dispatcher.start()
        await wait_until(lambda: h.get(second).status == S.PUBLISHED, 10, tick=dispatcher.tick)
        await dispatcher.drain()
        third = h.post("kota", ago=1)

        other = Dispatcher(h.settings, h.db)  # another process: it counts the sends in the database
        other.start()
        await wait_until(h.is_(third, S.RETRY_WAIT), 10, tick=other.tick)
        assert len(fake_platform.requests_for("kota")) == 2  # never a third send
        until = attempts(h, first)[0].started_at + dt.timedelta(hours=1)
        assert h.get(third).next_attempt_at == until
        held = attempts(h, third)[-1]
        assert held.outcome == "budget" and held.error is not None
        for words in ("send budget of channel kota used up", "2 sends in the last 1 h", "2 per 1 h allowed",
                      "PROMO_CHANNEL_KOTA_BUDGET", f"waiting until {until:%Y-%m-%d %H:%M:%S} UTC"):
            assert words in held.error, words
        for _ in range(3):  # polling meanwhile sends nothing
            assert await other.tick() == 0

        traveller.move_to(until - dt.timedelta(seconds=5))
        assert await other.tick() == 0
        traveller.move_to(until + dt.timedelta(seconds=1))
        await wait_until(h.is_(third, S.PUBLISHED), 10, tick=other.tick)
        await other.drain()
    assert len(fake_platform.requests_for("kota")) == 3
    # The held-back attempt was not a send: it does not count against the budget.
    assert [r.outcome for r in attempts(h, third)] == ["budget", "published"]


def test_the_platform_budget_counts_sends_in_its_rolling_window(promo_env) -> None:
    """Mastodon declares 300 statuses per 3 h: the 301st waits for the oldest to leave the window."""
    env = promo_env({"masto": {"PLATFORM": "mastodon", "BASE_URL": "http://127.0.0.1:9",
                               "ACCESS_TOKEN": "tok-123456"}})
    h = Harness(load_settings(env), env)
    post_id = h.post("masto")
    channel_id = h.channel_ids["masto"]
    now = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)
    oldest = now - dt.timedelta(hours=2, minutes=59)
    rows = [dict(post_id=post_id, channel_id=channel_id, action="attempt", outcome="published",
                 started_at=oldest + dt.timedelta(seconds=30 * i), actor="test") for i in range(300)]
    rows.append(dict(post_id=post_id, channel_id=channel_id, action="attempt", outcome="published",
                     started_at=now - dt.timedelta(hours=4), actor="test"))  # outside the window
    rows.append(dict(post_id=post_id, channel_id=channel_id, action="attempt", outcome="budget",
                     started_at=now - dt.timedelta(minutes=1), actor="test"))  # held back, not a send
    budgets = send_budget.budgets_for(h.settings.channel("masto"), MastodonAdapter)
    assert [(b.limit, b.window) for b in budgets] == [(300, dt.timedelta(hours=3))]
    with h.db.engine.begin() as conn:
        conn.execute(insert(HistoryEntry.__table__), rows[1:])
        assert send_budget.check(conn, channel_id, budgets, now) is None  # 299 in the window: room
        conn.execute(insert(HistoryEntry.__table__), rows[:1])
        wait = send_budget.check(conn, channel_id, budgets, now)
    assert wait is not None and wait.used == 300
    assert wait.until == oldest + dt.timedelta(hours=3)


def test_budget_override_is_checked_and_none_turns_it_off(promo_env) -> None:
    hook = {"PLATFORM": "webhook", "URL": "http://127.0.0.1:9/hook"}
    masto = {"PLATFORM": "mastodon", "BASE_URL": "http://127.0.0.1:9", "ACCESS_TOKEN": "tok-123456"}
    settings = load_settings(promo_env({"hook": {**hook, "BUDGET": "10/15m,100/24h"},
                                        "masto": {**masto, "BUDGET": "none"}}))
    hook_budget = send_budget.budgets_for(settings.channel("hook"), WebhookAdapter)
    assert [(b.limit, b.window) for b in hook_budget] == [(10, dt.timedelta(minutes=15)),
                                                          (100, dt.timedelta(hours=24))]
    assert send_budget.budgets_for(settings.channel("masto"), MastodonAdapter) == ()
    with pytest.raises(ConfigError) as info:
        load_settings(promo_env({"hook": {**hook, "BUDGET": "lots"}}))
    assert info.value.problems == ["PROMO_CHANNEL_HOOK_BUDGET: 'lots' is not a budget like 50/24h or "
                                   "100/15m,1000/24h (or none)"]


def test_a_stored_channel_takes_a_budget_too(promo_env, tmp_path) -> None:
    from scheduler.storage import channels as channel_store

    env = promo_env()
    h = Harness(load_settings(env), env)
    with h.db.session() as session:
        with pytest.raises(ConfigError) as info:
            channel_store.add_channel(session, h.settings, "kota_out", "outbox",
                                      {"PATH": str(tmp_path / "o.jsonl"), "BUDGET": "5 per hour"}, actor="t")
        assert info.value.problems == ["BUDGET: '5 per hour' is not a budget like 50/24h or "
                                       "100/15m,1000/24h (or none)"]
        channel_store.add_channel(session, h.settings, "kota_out", "outbox",
                                  {"PATH": str(tmp_path / "o.jsonl"), "BUDGET": "5/1h"}, actor="t")
    with h.db.session() as session:
        cfg = channel_store.channel_configs(session, h.settings)["kota_out"]
    assert cfg.budget == ((5, dt.timedelta(hours=1)),) and "BUDGET" not in cfg.options
