"""The webhook adapter's signature, checked the way a receiver does: with the README's own snippet.

The signature covers the timestamp and the body, so a captured request replayed later fails
verification, and so does one whose timestamp or body was changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine

from scheduler.platforms.base import ChannelContext, MemoryState
from scheduler.platforms.webhook import WebhookAdapter

SECRET = "SECRET-webhook-signing-key"
NOW = dt.datetime(2026, 11, 29, 2, 0, tzinfo=dt.UTC)
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_verify() -> Callable[..., bool]:
    """The receiver's ``verify`` exactly as README.md documents it."""
    section = README.read_text(encoding="utf-8").split("### Verifying a webhook", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "README: the verification snippet is missing"
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)  # noqa: S102 - our own documentation
    return namespace["verify"]


POST_DEFAULTS = {"text": "Kue Lapis Spesial cuma Rp 25.000! #UMKM", "link": "https://umkm.example/kue",
                 "title": "Kue Lapis"}


def adapter(sent: list[httpx.Request], answer: httpx.Response | None = None, **options: str) -> WebhookAdapter:
    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        sent.append(request)
        return answer or httpx.Response(200, json={"id": "r1"})

    ctx = ChannelContext(name="hook", options={"URL": "https://intranet.example/promo-hook", **options},
                         state=MemoryState())
    return WebhookAdapter(ctx, httpx.AsyncClient(transport=httpx.MockTransport(handler)))


async def test_the_signature_covers_timestamp_and_body_and_a_replay_fails(post_factory) -> None:
    verify = readme_verify()
    sent: list[httpx.Request] = []
    with time_machine.travel(NOW, tick=False):
        await adapter(sent, SECRET=SECRET).publish(post_factory())
    (request,) = sent
    headers, body = request.headers, request.content
    assert headers["X-Promo-Timestamp"] == str(int(NOW.timestamp()))
    assert headers["X-Promo-Signature"] == "sha256=" + hmac.new(
        SECRET.encode(), f"{int(NOW.timestamp())}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["Idempotency-Key"] == post_factory().idempotency_key  # the delivery id stays

    with time_machine.travel(NOW + dt.timedelta(seconds=20), tick=False):
        assert verify(SECRET, headers, body)  # delivered a little later: accepted
        assert not verify("another secret", headers, body)
        assert not verify(SECRET, headers, body.replace(b"25.000", b"2.500"))
        # A fresh timestamp on the captured request does not match its signature.
        moved = {**headers, "X-Promo-Timestamp": str(int(NOW.timestamp()) + 20)}
        assert not verify(SECRET, moved, body)
        assert not verify(SECRET, {**headers, "X-Promo-Timestamp": "\u0661\u0667"}, body)
    # The same request replayed six minutes later is refused.
    with time_machine.travel(NOW + dt.timedelta(minutes=6), tick=False):
        assert not verify(SECRET, headers, body)


async def test_a_retry_is_signed_afresh_with_the_same_delivery_id(post_factory) -> None:
    sent: list[httpx.Request] = []
    hook = adapter(sent, SECRET=SECRET)
    for minutes in (0, 10):
        with time_machine.travel(NOW + dt.timedelta(minutes=minutes), tick=False):
            await hook.publish(post_factory())
    first, retry = sent
    assert first.headers["Idempotency-Key"] == retry.headers["Idempotency-Key"]
    assert int(retry.headers["X-Promo-Timestamp"]) - int(first.headers["X-Promo-Timestamp"]) == 600
    with time_machine.travel(NOW + dt.timedelta(minutes=10, seconds=3), tick=False):
        assert readme_verify()(SECRET, retry.headers, retry.content)


@pytest.mark.parametrize("options", [{}, {"SECRET": ""}])
async def test_without_a_secret_nothing_is_signed(post_factory, options: dict[str, str]) -> None:
    sent: list[httpx.Request] = []
    await adapter(sent, **options).publish(post_factory())
    assert "X-Promo-Signature" not in sent[0].headers and "X-Promo-Timestamp" not in sent[0].headers
