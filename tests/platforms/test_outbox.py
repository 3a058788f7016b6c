"""The outbox: one JSON line per post, never the same post twice, cheap however long it grows."""

from __future__ import annotations

import json

import httpx
import pytest

from scheduler.platforms import outbox
from scheduler.platforms.base import ChannelContext
from scheduler.platforms.outbox import OutboxAdapter


def adapter(path) -> OutboxAdapter:
    return OutboxAdapter(ChannelContext("outbox", {"PATH": str(path)}), httpx.AsyncClient())


POST_DEFAULTS = {"link": "https://umkm.example"}


@pytest.fixture
def post(post_factory):
    """Post number ``n`` with idempotency key ``key``."""
    return lambda key, n=1: post_factory(post_id=n, idempotency_key=key, text=f"Promo UMKM #{n}")


async def test_each_post_is_one_line_and_a_repeat_is_the_same_line(post, tmp_path):
    path = tmp_path / "outbox.jsonl"
    a = adapter(path)
    first = await a.publish(post("k1", 1))
    second = await a.publish(post("k2", 2))
    again = await a.publish(post("k1", 1))  # sent again after an unknown outcome
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert [x["idempotency_key"] for x in lines] == ["k1", "k2"]
    assert (first.remote_id, second.remote_id, again.remote_id) == ("1", "2", "1")
    assert lines[0]["text"] == "Promo UMKM #1" and lines[0]["link"] == "https://umkm.example"


async def test_lines_written_by_another_process_are_seen(post, tmp_path):
    path = tmp_path / "outbox.jsonl"
    a = adapter(path)
    await a.publish(post("k1", 1))
    # Another process (its own index) appends k2; ours must not append it again.
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"idempotency_key": "k2", "text": "x"}) + "\n")
    assert (await a.reconcile(post("k2", 2))).remote_id == "2"
    assert (await a.publish(post("k2", 2))).remote_id == "2"
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    assert await a.reconcile(post("k3", 3)) is None


async def test_a_replaced_file_is_read_again(post, tmp_path):
    path = tmp_path / "outbox.jsonl"
    a = adapter(path)
    await a.publish(post("k1", 1))
    path.write_text("", encoding="utf-8")  # rotated by an operator
    assert await a.reconcile(post("k1", 1)) is None
    assert (await a.publish(post("k1", 1))).remote_id == "1"


async def test_only_new_bytes_are_read(post, tmp_path, monkeypatch):
    path = tmp_path / "outbox.jsonl"
    a = adapter(path)
    for i in range(50):
        await a.publish(post(f"k{i}", i))
    parsed: list[bytes] = []
    real = outbox.json.loads
    monkeypatch.setattr(outbox.json, "loads", lambda raw, *args, **kw: parsed.append(raw) or real(raw, *args, **kw))
    await a.publish(post("new", 99))
    assert parsed == [], "publishing did not re-read the 50 lines already indexed"
