"""The threads adapter: text/image containers, link attachment, reconcile, token refresh."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
import time_machine

from scheduler import errors
from scheduler.platforms import adapter_class
from scheduler.platforms.base import Media
from scheduler.platforms.graph_errors import ContainerGone
from tests.platforms.graphfake import FakeGraph, graph_error, make_adapter

USER = "25012345678901234"
TOKEN = "THAA-SECRET-threads-token"
OPTIONS = {"USER_ID": USER, "ACCESS_TOKEN": TOKEN, "BASE_URL": "http://127.0.0.1:9",
           "POLL_INTERVAL": "0", "POLL_ATTEMPTS": "2"}
THREADS, PUBLISH = f"/v1.0/{USER}/threads", f"/v1.0/{USER}/threads_publish"
CONTAINER, MEDIA_ID = "17889615691921648", "18050206876007890"
NOW = dt.datetime(2024, 10, 23, 2, 0, tzinfo=dt.UTC)
TEXT = "Pasar UMKM Sabtu ini di Lapangan Merdeka 🎉 https://umkm.example/pasar"
KEY = "container:k1"


POST_DEFAULTS = {"post_id": 1, "idempotency_key": "k1", "text": TEXT, "link": "https://umkm.example/pasar",
                 "title": "Pasar UMKM", "created_at": NOW - dt.timedelta(hours=1)}


def routes(over=None):
    r = {
        ("POST", THREADS): httpx.Response(200, json={"id": CONTAINER}),
        ("GET", f"/v1.0/{CONTAINER}"): httpx.Response(200, json={"status": "FINISHED", "id": CONTAINER}),
        ("POST", PUBLISH): httpx.Response(200, json={"id": MEDIA_ID}),
        ("GET", f"/v1.0/{MEDIA_ID}"): httpx.Response(200, json={
            "id": MEDIA_ID, "permalink": "https://www.threads.net/@kotabpn/post/C9xYz"}),
    }
    r.update(over or {})
    return r


def adapter(r, options=OPTIONS, state=None):
    fake = FakeGraph(r)
    a, memory = make_adapter("threads", options, fake, state)
    return a, fake, memory


def test_rules_count_emoji_as_utf8_bytes():
    rule = adapter_class("threads").rules.text[0]
    assert (rule.limit, rule.method) == (500, "threads")
    assert rule.count("abc") == 3 and rule.count("🎉") == 4 and rule.count("👍🏽") == 8
    assert rule.fits("a" * 496 + "🎉") and not rule.fits("a" * 497 + "🎉")


async def test_text_post_with_link_attachment(post_factory):
    a, fake, memory = adapter(routes())
    result = await a.publish(post_factory())
    create, poll, publish, permalink = fake.sent
    assert (create.method, create.path, create.query) == ("POST", THREADS, {})
    assert create.form == {"text": TEXT, "media_type": "TEXT", "link_attachment": "https://umkm.example/pasar",
                           "access_token": TOKEN}
    assert "auto_publish_text" not in create.form
    assert poll.query == {"fields": "status,error_message"} and poll.bearer == TOKEN
    assert publish.form == {"creation_id": CONTAINER, "access_token": TOKEN} and publish.query == {}
    assert permalink.query == {"fields": "id,permalink"} and permalink.bearer == TOKEN
    assert (result.remote_id, result.remote_url) == (MEDIA_ID, "https://www.threads.net/@kotabpn/post/C9xYz")
    assert memory.get(KEY) is None


async def test_text_only_post_without_link(post_factory):
    a, fake, _ = adapter(routes())
    await a.publish(post_factory(link=None))
    assert fake.sent[0].form == {"text": TEXT, "media_type": "TEXT", "access_token": TOKEN}


async def test_image_post_passes_the_public_url_and_no_link_attachment(post_factory, tmp_path):
    img = tmp_path / "pasar.png"
    img.write_bytes(b"\x89PNG")
    image = Media.from_path(img, alt_text="Stan pasar", public_url="https://media.example/pasar.png")
    a, fake, _ = adapter(routes())
    await a.publish(post_factory(image=image))
    assert fake.sent[0].form == {"text": TEXT, "media_type": "IMAGE", "image_url": "https://media.example/pasar.png",
                                 "alt_text": "Stan pasar", "access_token": TOKEN}


async def test_several_images_publish_one_carousel_with_the_text_on_it(post_factory, tmp_path):
    images = []
    for i in range(2):
        img = tmp_path / f"pasar{i}.png"
        img.write_bytes(b"\x89PNG" + bytes([i]))
        images.append(Media.from_path(img, alt_text=f"Stan {i}", public_url=f"https://media.example/pasar{i}.png"))
    children = [httpx.Response(200, json={"id": f"1788961569192100{i}"}) for i in range(2)]
    a, fake, _ = adapter(routes({("POST", THREADS): [*children, httpx.Response(200, json={"id": CONTAINER})]}))
    result = await a.publish(post_factory(image=images[0], more_images=(images[1],)))
    creates = [s for s in fake.sent if s.method == "POST" and s.path == THREADS]
    assert [c.form for c in creates] == [
        {"media_type": "IMAGE", "image_url": "https://media.example/pasar0.png", "alt_text": "Stan 0",
         "is_carousel_item": "true", "access_token": TOKEN},
        {"media_type": "IMAGE", "image_url": "https://media.example/pasar1.png", "alt_text": "Stan 1",
         "is_carousel_item": "true", "access_token": TOKEN},
        {"text": TEXT, "media_type": "CAROUSEL", "children": "17889615691921000,17889615691921001",
         "access_token": TOKEN}]
    assert result.remote_id == MEDIA_ID


async def test_image_without_public_url_is_rejected_before_any_request(post_factory, tmp_path):
    img = tmp_path / "pasar.jpg"
    img.write_bytes(b"\xff\xd8")
    a, fake, _ = adapter({})
    with pytest.raises(errors.RejectedContent, match="PROMO_PUBLIC_MEDIA_BASE_URL"):
        await a.publish(post_factory(image=Media.from_path(img)))
    assert fake.sent == []


@pytest.mark.parametrize(("message", "expected"), [("FAILED_DOWNLOADING_VIDEO", ContainerGone),
                                                   ("UNKNOWN", ContainerGone),
                                                   ("INVALID_ASPEC_RATIO", errors.RejectedContent)])
async def test_container_error_messages(post_factory, message, expected):
    a, _, memory = adapter(routes({("GET", f"/v1.0/{CONTAINER}"): httpx.Response(200, json={
        "status": "ERROR", "id": CONTAINER, "error_message": message})}))
    with pytest.raises(expected, match=message):
        await a.publish(post_factory())
    assert memory.get(KEY) is None


async def test_too_many_links_is_rejected_content(post_factory):
    a, _, _ = adapter(routes({("POST", THREADS): graph_error(
        100, "Invalid parameter", error_user_msg="THREADS_API__LINK_LIMIT_EXCEEDED")}))
    with pytest.raises(errors.RejectedContent):
        await a.publish(post_factory())


@time_machine.travel(NOW, tick=False)
async def test_throttling_uses_the_usage_header_for_the_retry_time(post_factory):
    usage = {USER: [{"type": "threads", "call_count": 100, "total_cputime": 1, "total_time": 1,
                     "estimated_time_to_regain_access": 7}]}
    a, _, _ = adapter(routes({("POST", THREADS): graph_error(
        4, "Application request limit reached", headers={"X-Business-Use-Case-Usage": json.dumps(usage)})}))
    with pytest.raises(errors.RateLimited) as info:
        await a.publish(post_factory())
    assert info.value.retry_at == NOW + dt.timedelta(minutes=7)


async def test_timeout_on_publish_is_unknown_then_reconcile_finds_it_by_container(post_factory):
    a, _, memory = adapter(routes({("POST", PUBLISH): httpx.ReadTimeout("slow")}))
    with pytest.raises(errors.UnknownOutcome):
        await a.publish(post_factory())
    state = dict(memory.values)
    assert state[KEY] == CONTAINER

    listing = httpx.Response(200, json={"data": [
        {"id": MEDIA_ID, "text": TEXT, "permalink": "https://www.threads.net/@kotabpn/post/C9",
         "timestamp": "2024-10-23T01:58:00+0000"}]})
    a, fake, memory = adapter({
        ("GET", f"/v1.0/{CONTAINER}"): httpx.Response(200, json={"status": "PUBLISHED", "id": CONTAINER}),
        ("GET", THREADS): listing}, state=state)
    result = await a.reconcile(post_factory())
    assert (result.remote_id, result.remote_url) == (MEDIA_ID, "https://www.threads.net/@kotabpn/post/C9")
    assert fake.sent[1].query == {"fields": "id,text,permalink,timestamp", "limit": "25"}
    assert fake.sent[1].bearer == TOKEN
    assert memory.get(KEY) is None


async def test_reconcile_of_a_finished_container_is_not_published_and_publish_reuses_it(post_factory):
    state = {KEY: CONTAINER}
    a, _, memory = adapter(routes(), state=state)
    assert await a.reconcile(post_factory()) is None
    a, fake, _ = adapter(routes(), state=dict(memory.values))
    result = await a.publish(post_factory())
    assert result.remote_id == MEDIA_ID and fake.calls("POST", THREADS) == []


async def test_token_is_refreshed_ahead_of_expiry_and_stored():
    with time_machine.travel(NOW, tick=False):
        a, _, memory = adapter({("GET", f"/v1.0/{USER}"): httpx.Response(200, json={"id": USER, "username": "k"})})
        await a.check()
    state = dict(memory.values) | {"access_token": "THAA-SECRET-stored",
                                   "access_token_expires_at": "2024-10-30T00:00:00+00:00"}
    with time_machine.travel(NOW, tick=False):
        a, fake, memory = adapter({
            ("GET", "/refresh_access_token"): httpx.Response(200, json={
                "access_token": "THAA-SECRET-fresh", "token_type": "bearer", "expires_in": 5183944}),
            ("GET", f"/v1.0/{USER}"): httpx.Response(200, json={"id": USER, "username": "kotabpn"})}, state=state)
        assert await a.check() == f"Threads @kotabpn ({USER})"
    assert fake.sent[0].query == {"grant_type": "th_refresh_token", "access_token": "THAA-SECRET-stored"}
    assert fake.sent[1].query == {"fields": "id,username"} and fake.sent[1].bearer == "THAA-SECRET-fresh"
    assert memory.get("access_token") == "THAA-SECRET-fresh"
    assert memory.get("access_token_expires_at") == "2024-12-22T01:59:04+00:00"


async def test_refresh_unreachable_uses_the_current_token_until_it_nearly_expires_and_refused_is_auth(post_factory):
    with time_machine.travel(NOW, tick=False):
        a, _, memory = adapter({("GET", f"/v1.0/{USER}"): httpx.Response(200, json={"id": USER})})
        await a.check()
        state = dict(memory.values) | {"access_token_expires_at": "2024-10-25T00:00:00+00:00"}
        a, fake, _ = adapter(routes({("GET", "/refresh_access_token"): httpx.ConnectError("refused")}),
                             state=state)
        assert (await a.publish(post_factory())).remote_id == MEDIA_ID
        assert fake.sent[1].form["access_token"] == TOKEN
        state["access_token_expires_at"] = "2024-10-23T02:30:00+00:00"
        a, _, _ = adapter({("GET", "/refresh_access_token"): graph_error(2, "Service unavailable", status=503)},
                          state=state)
        with pytest.raises(errors.Transient):
            await a.publish(post_factory())
        a, _, _ = adapter({("GET", "/refresh_access_token"): graph_error(
            190, "Error validating access token: Session has expired")}, state=state)
        with pytest.raises(errors.AuthError, match="token refresh") as info:
            await a.publish(post_factory())
    assert "SECRET" not in str(info.value)


async def test_check_bad_token_is_auth_error_without_secret():
    a, _, _ = adapter({("GET", f"/v1.0/{USER}"): graph_error(190, f"Invalid OAuth access token {TOKEN}",
                                                             status=401)})
    with pytest.raises(errors.AuthError) as info:
        await a.check()
    assert "SECRET" not in str(info.value)


def test_poll_options_must_be_numbers():
    cls = adapter_class("threads")
    assert cls.validate_options(OPTIONS) == []
    problems = cls.validate_options({**OPTIONS, "POLL_INTERVAL": "soon", "POLL_ATTEMPTS": "-1"})
    assert [p.split()[0] for p in problems] == ["POLL_INTERVAL", "POLL_ATTEMPTS"]
