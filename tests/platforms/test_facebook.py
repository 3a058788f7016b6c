"""The facebook adapter against the Graph API's documented requests and answers."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
import time_machine

from scheduler import errors
from scheduler.platforms.base import Media
from tests.platforms.graphfake import FakeGraph, graph_error, make_adapter

PAGE = "104857600123"
TOKEN = "EAAB-SECRET-page-token"
BASE = "http://127.0.0.1:9"
OPTIONS = {"PAGE_ID": PAGE, "ACCESS_TOKEN": TOKEN, "BASE_URL": BASE}
FEED = f"/v21.0/{PAGE}/feed"
PHOTOS = f"/v21.0/{PAGE}/photos"
NOW = dt.datetime(2024, 10, 23, 2, 0, tzinfo=dt.UTC)
TEXT = "Festival Kuliner Balikpapan, Sabtu 19.00 WITA! https://umkm.example/festival #UMKM"


POST_DEFAULTS = {"post_id": 1, "idempotency_key": "k1", "text": TEXT, "created_at": NOW - dt.timedelta(hours=2)}


def adapter(routes, options=OPTIONS):
    fake = FakeGraph(routes)
    a, _ = make_adapter("facebook", options, fake)
    return a, fake


def assert_no_token_in_url(fake: FakeGraph) -> None:
    """Proxies and server logs keep URLs: the Page token must never be in one (GET included)."""
    assert fake.sent
    for sent in fake.sent:
        assert "access_token" not in sent.query and TOKEN not in sent.raw_url
        assert sent.bearer == TOKEN if sent.method == "GET" else sent.form.get("access_token") == TOKEN


async def test_text_post_goes_to_feed_with_the_token_in_the_body(post_factory):
    a, fake = adapter({("POST", FEED): httpx.Response(200, json={
        "id": f"{PAGE}_998877", "permalink_url": f"https://www.facebook.com/{PAGE}/posts/998877"})})
    result = await a.publish(post_factory())
    [sent] = fake.sent
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.query == {"fields": "id,permalink_url"}
    assert sent.form == {"message": TEXT, "access_token": TOKEN}
    assert result.remote_id == f"{PAGE}_998877"
    assert result.remote_url == f"https://www.facebook.com/{PAGE}/posts/998877"
    assert_no_token_in_url(fake)


async def test_link_post_sends_link_and_fetches_the_permalink_when_not_returned(post_factory):
    a, fake = adapter({
        ("POST", FEED): httpx.Response(200, json={"id": f"{PAGE}_555"}),
        ("GET", f"/v21.0/{PAGE}_555"): httpx.Response(200, json={
            "permalink_url": "https://www.facebook.com/kota/posts/pfbid02abc", "id": f"{PAGE}_555"}),
    })
    result = await a.publish(post_factory(link="https://umkm.example/festival", title="Festival", description="Kuliner"))
    first, second = fake.sent
    assert first.form == {"message": TEXT, "link": "https://umkm.example/festival", "access_token": TOKEN}
    assert (second.method, second.query, second.bearer) == ("GET", {"fields": "permalink_url"}, TOKEN)
    assert result.remote_url == "https://www.facebook.com/kota/posts/pfbid02abc"
    assert_no_token_in_url(fake)


async def test_photo_post_uploads_the_file_as_multipart_source_with_caption(post_factory, tmp_path):
    img = tmp_path / "kue.jpg"
    img.write_bytes(b"\xff\xd8\xff\xe0JPEGDATA")
    a, fake = adapter({
        ("POST", PHOTOS): httpx.Response(200, json={"id": "778899", "post_id": f"{PAGE}_112233"}),
        ("GET", f"/v21.0/{PAGE}_112233"): httpx.Response(200, json={
            "permalink_url": f"https://www.facebook.com/{PAGE}/posts/112233"}),
    })
    result = await a.publish(post_factory(image=Media.from_path(img, alt_text="Kue lapis"), link="https://umkm.example/k"))
    upload = fake.sent[0]
    assert upload.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert upload.files == {"source": ("kue.jpg", "image/jpeg", b"\xff\xd8\xff\xe0JPEGDATA")}
    assert upload.form == {"caption": TEXT, "alt_text_custom": "Kue lapis", "access_token": TOKEN}
    assert upload.query == {}
    assert result.remote_id == f"{PAGE}_112233"
    assert result.remote_url == f"https://www.facebook.com/{PAGE}/posts/112233"
    assert_no_token_in_url(fake)


async def test_several_photos_are_uploaded_unpublished_then_attached_to_one_feed_post(post_factory, tmp_path):
    images = []
    for i in range(3):
        img = tmp_path / f"kue{i}.jpg"
        img.write_bytes(b"\xff\xd8\xff\xe0JPEG" + bytes([i]))
        images.append(Media.from_path(img, alt_text=f"Kue {i}" if i != 1 else None))
    a, fake = adapter({
        ("POST", PHOTOS): [httpx.Response(200, json={"id": f"77889{i}"}) for i in range(3)],
        ("POST", FEED): httpx.Response(200, json={"id": f"{PAGE}_112233",
                                                  "permalink_url": f"https://www.facebook.com/{PAGE}/posts/112233"}),
    })
    result = await a.publish(post_factory(image=images[0], more_images=tuple(images[1:])))
    uploads, feed = fake.sent[:3], fake.sent[3]
    assert [u.files["source"] for u in uploads] == [(f"kue{i}.jpg", "image/jpeg", images[i].read_bytes())
                                                     for i in range(3)]
    assert [u.form for u in uploads] == [
        {"published": "false", "alt_text_custom": "Kue 0", "access_token": TOKEN},
        {"published": "false", "access_token": TOKEN},
        {"published": "false", "alt_text_custom": "Kue 2", "access_token": TOKEN}]
    assert feed.form["message"] == TEXT
    assert json.loads(feed.form["attached_media"]) == [{"media_fbid": "778890"}, {"media_fbid": "778891"},
                                                        {"media_fbid": "778892"}]
    assert result.remote_id == f"{PAGE}_112233"
    assert result.remote_url == f"https://www.facebook.com/{PAGE}/posts/112233"
    assert_no_token_in_url(fake)


async def test_a_failed_permalink_lookup_after_publishing_still_succeeds(post_factory, tmp_path):
    img = tmp_path / "kue.png"
    img.write_bytes(b"\x89PNG")
    a, _ = adapter({
        ("POST", PHOTOS): httpx.Response(200, json={"id": "778899", "post_id": f"{PAGE}_112233"}),
        ("GET", f"/v21.0/{PAGE}_112233"): graph_error(2, "Service temporarily unavailable", status=503),
    })
    result = await a.publish(post_factory(image=Media.from_path(img)))
    assert result.remote_id == f"{PAGE}_112233"
    assert result.remote_url == f"https://www.facebook.com/{PAGE}/posts/112233"


async def test_graph_version_option_changes_the_path(post_factory):
    a, fake = adapter({("POST", f"/v23.0/{PAGE}/feed"): httpx.Response(200, json={"id": f"{PAGE}_1"}),
                       ("GET", f"/v23.0/{PAGE}_1"): httpx.Response(200, json={})},
                      {**OPTIONS, "GRAPH_VERSION": "v23.0"})
    result = await a.publish(post_factory())
    assert result.remote_url == f"https://www.facebook.com/{PAGE}/posts/1"
    assert [s.path for s in fake.sent] == [f"/v23.0/{PAGE}/feed", f"/v23.0/{PAGE}_1"]


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (graph_error(190, "Error validating access token: The user has not authorized application.", 458),
         errors.AuthError),
        (graph_error(200, "(#200) The user hasn't authorized the app to perform this action", status=403),
         errors.AuthError),
        (graph_error(506, "Duplicate status message"), errors.Duplicate),
        (graph_error(100, "Error posting link", 1609005), errors.RejectedContent),
        # A 5xx on the create call may follow a post that was made: looked up before any resend.
        (graph_error(2, "Service temporarily unavailable", status=500, is_transient=True), errors.UnknownOutcome),
        (httpx.Response(503, text="Service Unavailable"), errors.UnknownOutcome),
        (httpx.Response(504, text="Gateway Timeout"), errors.UnknownOutcome),
        # Meta answered that it failed (HTTP 400): nothing was made, retry later.
        (graph_error(2, "Service temporarily unavailable", is_transient=True), errors.Transient),
    ],
)
async def test_publish_errors_map_to_typed_errors(post_factory, response, expected):
    a, _ = adapter({("POST", FEED): response})
    with pytest.raises(expected) as info:
        await a.publish(post_factory())
    assert "SECRET" not in str(info.value)


@time_machine.travel(NOW, tick=False)
async def test_page_throttling_waits_for_the_buc_estimate(post_factory):
    usage = {PAGE: [{"type": "pages", "call_count": 100, "total_cputime": 4, "total_time": 9,
                     "estimated_time_to_regain_access": 23}]}
    a, _ = adapter({("POST", FEED): graph_error(
        32, "Page request limit reached", headers={"X-Business-Use-Case-Usage": json.dumps(usage)})})
    with pytest.raises(errors.RateLimited) as info:
        await a.publish(post_factory())
    assert info.value.retry_at == NOW + dt.timedelta(minutes=23)


async def test_a_token_echoed_by_the_platform_is_redacted(post_factory):
    a, _ = adapter({("POST", FEED): graph_error(190, f"Malformed access token {TOKEN}")})
    with pytest.raises(errors.AuthError) as info:
        await a.publish(post_factory())
    assert TOKEN not in str(info.value) and "SECRET" not in str(info.value)


async def test_timeout_after_sending_is_unknown_and_refused_connection_is_transient(post_factory):
    a, _ = adapter({("POST", FEED): httpx.ReadTimeout("timed out")})
    with pytest.raises(errors.UnknownOutcome):
        await a.publish(post_factory())
    a, _ = adapter({("POST", FEED): httpx.ConnectError("refused")})
    with pytest.raises(errors.Transient):
        await a.publish(post_factory())


def published_posts(*items):
    return httpx.Response(200, json={"data": list(items), "paging": {"cursors": {"before": "a", "after": "b"}}})


async def test_reconcile_finds_the_post_by_text_newer_than_the_post_row(post_factory):
    a, fake = adapter({("GET", f"/v21.0/{PAGE}/published_posts"): published_posts(
        {"id": f"{PAGE}_3", "message": "Something else", "created_time": "2024-10-23T01:00:00+0000"},
        {"id": f"{PAGE}_2", "message": TEXT + "\n", "created_time": "2024-10-23T01:30:00+0000",
         "permalink_url": f"https://www.facebook.com/{PAGE}/posts/2"},
        {"id": f"{PAGE}_1", "message": TEXT, "created_time": "2024-10-01T01:30:00+0000"},
    )})
    result = await a.reconcile(post_factory())
    assert result is not None and result.remote_id == f"{PAGE}_2"
    assert result.remote_url == f"https://www.facebook.com/{PAGE}/posts/2"
    [sent] = fake.sent
    assert sent.query == {"fields": "id,message,created_time,permalink_url", "limit": "50"} and sent.bearer == TOKEN
    assert_no_token_in_url(fake)


async def test_reconcile_ignores_an_older_identical_post_and_says_not_published(post_factory):
    a, _ = adapter({("GET", f"/v21.0/{PAGE}/published_posts"): published_posts(
        {"id": f"{PAGE}_1", "message": TEXT, "created_time": "2024-10-01T01:30:00+0000"})})
    assert await a.reconcile(post_factory()) is None


def page_of(items, after=None):
    paging = {"cursors": {"before": "B", "after": after or "Z"}}
    if after:
        paging["next"] = f"https://graph.facebook.com/v21.0/{PAGE}/published_posts?limit=50&after={after}"
    return httpx.Response(200, json={"data": items, "paging": paging})


def busy(n, start="2024-10-23T01:59:00+0000"):
    return [{"id": f"{PAGE}_9{i}", "message": f"Info {i}", "created_time": start} for i in range(n)]


async def test_reconcile_on_a_busy_page_follows_the_after_cursor_until_it_finds_the_post(post_factory):
    ours = {"id": f"{PAGE}_2", "message": TEXT, "created_time": "2024-10-23T01:30:00+0000"}
    pages = {None: page_of(busy(50), after="c1"), "c1": page_of(busy(49) + [ours], after="c2")}
    a, fake = adapter({("GET", f"/v21.0/{PAGE}/published_posts"):
                       lambda request: pages[request.url.params.get("after")]})
    result = await a.reconcile(post_factory())
    assert result is not None and result.remote_id == f"{PAGE}_2"
    assert [s.query.get("after") for s in fake.sent] == [None, "c1"]
    # The token stays ours: the cursor is sent to BASE_URL, never the "next" URL Meta built.
    assert all(s.raw_url.startswith("http://127.0.0.1:9/") for s in fake.sent)


async def test_reconcile_absent_only_once_the_list_reaches_back_before_the_first_attempt(post_factory):
    older = [{"id": f"{PAGE}_1", "message": "Kemarin", "created_time": "2024-10-22T01:00:00+0000"}]
    pages = {None: page_of(busy(50), after="c1"), "c1": page_of(busy(10) + older, after="c2")}
    a, fake = adapter({("GET", f"/v21.0/{PAGE}/published_posts"):
                       lambda request: pages[request.url.params.get("after")]})
    assert await a.reconcile(post_factory()) is None
    assert len(fake.sent) == 2


async def test_reconcile_cannot_tell_when_the_page_limit_is_reached_or_a_later_page_fails(post_factory):
    endless = page_of(busy(50), after="more")
    a, fake = adapter({("GET", f"/v21.0/{PAGE}/published_posts"): endless})
    with pytest.raises(errors.UnknownOutcome, match="more than 500 Page posts"):
        await a.reconcile(post_factory())
    assert len(fake.sent) == 10
    a, _ = adapter({("GET", f"/v21.0/{PAGE}/published_posts"):
                    [page_of(busy(50), after="c1"), graph_error(2, "Service unavailable", status=503)]})
    with pytest.raises(errors.UnknownOutcome):
        await a.reconcile(post_factory())


async def test_reconcile_that_cannot_read_is_unknown_without_secrets(post_factory):
    a, _ = adapter({("GET", f"/v21.0/{PAGE}/published_posts"): graph_error(2, f"down {TOKEN}", status=500)})
    with pytest.raises(errors.UnknownOutcome) as info:
        await a.reconcile(post_factory())
    assert "SECRET" not in str(info.value)


@time_machine.travel(NOW, tick=False)
async def test_check_reads_the_page_name_with_the_token_in_a_header_not_the_url():
    a, fake = adapter({("GET", f"/v21.0/{PAGE}"): httpx.Response(200, json={"id": PAGE, "name": "Diskominfo Kota"})})
    assert await a.check() == f"Facebook Page Diskominfo Kota ({PAGE})"
    assert fake.sent[0].query == {"fields": "id,name"} and fake.sent[0].bearer == TOKEN
    assert_no_token_in_url(fake)


async def test_check_errors_are_typed_and_never_show_the_token():
    a, _ = adapter({("GET", f"/v21.0/{PAGE}"): graph_error(190, "Invalid OAuth access token.")})
    with pytest.raises(errors.AuthError) as info:
        await a.check()
    assert "SECRET" not in str(info.value)
    for failure in (httpx.ConnectError("refused"), httpx.ReadTimeout("slow")):
        a, _ = adapter({("GET", f"/v21.0/{PAGE}"): failure})
        with pytest.raises(errors.Transient) as info:
            await a.check()
        assert "SECRET" not in str(info.value)


# --- Graph API version ------------------------------------------------------------------


def version_adapter(routes, options=OPTIONS, graph_api_version=None):
    from scheduler.platforms.base import ChannelContext, MemoryState
    from scheduler.platforms.facebook import FacebookAdapter

    fake = FakeGraph(routes)
    ctx = ChannelContext(name="fb_kota", options=options, state=MemoryState(), graph_api_version=graph_api_version)
    return FacebookAdapter(ctx, httpx.AsyncClient(transport=httpx.MockTransport(fake))), fake


PAGE_ANSWER = httpx.Response(200, json={"id": PAGE, "name": "Diskominfo Kota"})


async def test_promo_graph_api_version_moves_every_call_and_the_channel_key_wins(post_factory):
    a, fake = version_adapter({("POST", f"/v25.0/{PAGE}/feed"): httpx.Response(200, json={
        "id": f"{PAGE}_1", "permalink_url": "https://www.facebook.com/1"})}, graph_api_version="v25.0")
    await a.publish(post_factory())
    assert [s.path for s in fake.sent] == [f"/v25.0/{PAGE}/feed"]
    a, fake = version_adapter({("GET", f"/v23.0/{PAGE}"): PAGE_ANSWER}, {**OPTIONS, "GRAPH_VERSION": "v23.0"},
                              graph_api_version="v25.0")
    with time_machine.travel(dt.datetime(2026, 11, 29, tzinfo=dt.UTC), tick=False):
        assert await a.check() == f"Facebook Page Diskominfo Kota ({PAGE})"


@pytest.mark.parametrize(("today", "expected"), [
    (dt.datetime(2026, 6, 1, tzinfo=dt.UTC), None),
    (dt.datetime(2026, 11, 29, tzinfo=dt.UTC), "v21.0 is available only until 2027-01-21 (53 days left)"),
    (dt.datetime(2027, 2, 1, tzinfo=dt.UTC), "v21.0 was available until 2027-01-21"),
])
async def test_check_warns_when_the_pinned_graph_version_is_past_or_near_metas_date(today, expected):
    a, _ = version_adapter({("GET", f"/v21.0/{PAGE}"): PAGE_ANSWER})
    with time_machine.travel(today, tick=False):
        summary = await a.check()
    assert summary.startswith(f"Facebook Page Diskominfo Kota ({PAGE})")
    if expected is None:
        assert "warning" not in summary
    else:
        assert f"\n  warning: Graph API {expected}" in summary and "PROMO_GRAPH_API_VERSION" in summary


async def test_the_warning_names_the_channel_key_when_the_channel_pins_its_own_version():
    a, _ = version_adapter({("GET", f"/v19.0/{PAGE}"): PAGE_ANSWER}, {**OPTIONS, "GRAPH_VERSION": "v19.0"})
    with time_machine.travel(dt.datetime(2026, 11, 29, tzinfo=dt.UTC), tick=False):
        summary = await a.check()
    assert "v19.0 was available until 2026-05-21" in summary and "PROMO_CHANNEL_FB_KOTA_GRAPH_VERSION" in summary
