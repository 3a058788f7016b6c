"""Mastodon adapter against the documented request and response shapes (httpx.MockTransport)."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest

from scheduler import errors
from scheduler.platforms.base import ChannelContext, Media, MemoryState
from scheduler.platforms.mastodon import MastodonAdapter, plain_text
from tests.helpers import Recorder, image_bytes
from tests.platforms.multipart_util import form_parts

TOKEN = "SECRET-mastodon-token"
BASE = "http://127.0.0.1:9"
TEXT = "Kue Lapis Spesial cuma Rp 25.000! https://umkm.example/kue #UMKM #Balikpapan"
STATUS = {
    "id": "110000000000000001",
    "created_at": "2026-08-22T01:00:00.000Z",
    "url": "https://mastodon.example/@kota/110000000000000001",
    "uri": "https://mastodon.example/users/kota/statuses/110000000000000001",
    "visibility": "public",
    "content": (
        '<p>Kue Lapis Spesial cuma Rp 25.000! <a href="https://umkm.example/kue" target="_blank" '
        'rel="nofollow noopener noreferrer" translate="no"><span class="invisible">https://</span>'
        '<span class="">umkm.example/kue</span><span class="invisible"></span></a> '
        '<a href="https://mastodon.example/tags/UMKM" class="mention hashtag" rel="tag">#<span>UMKM</span></a> '
        '<a href="https://mastodon.example/tags/Balikpapan" class="mention hashtag" rel="tag">#<span>Balikpapan</span></a></p>'
    ),
    "card": None,
}


def make(handler, state=None, **options) -> MastodonAdapter:
    """An adapter for a server already known to run Mastodon (``state`` replaces that)."""
    opts = {"BASE_URL": BASE, "ACCESS_TOKEN": TOKEN, "POLL_INTERVAL": "0", **options}
    ctx = ChannelContext(name="masto", options=opts,
                         state=MemoryState({"software": "mastodon"} if state is None else state))
    return MastodonAdapter(ctx, httpx.AsyncClient(transport=httpx.MockTransport(handler)))


POST_DEFAULTS = {"text": TEXT, "link": "https://umkm.example/kue", "title": "Kue Lapis",
                 "description": "Kue lapis legit", "created_at": dt.datetime(2026, 8, 22, 0, 55, tzinfo=dt.UTC)}


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "kue.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    return Media.from_path(path, alt_text="Kue lapis di atas piring")


async def test_text_post_sends_status_with_idempotency_key(post_factory):
    rec = Recorder({("POST", "/api/v1/statuses"): httpx.Response(200, json=STATUS)})
    result = await make(rec, LANGUAGE="id", VISIBILITY="unlisted").publish(post_factory())
    (request,) = rec.sent
    assert str(request.url) == f"{BASE}/api/v1/statuses"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["idempotency-key"] == "0c8e4a2e6bb54d0f9a4b1f0f2f5a7d11"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"status": TEXT, "visibility": "unlisted", "language": "id"}
    assert result.remote_id == "110000000000000001"
    assert result.remote_url == "https://mastodon.example/@kota/110000000000000001"


async def test_link_missing_from_text_is_appended_so_the_server_makes_a_card(post_factory):
    rec = Recorder({("POST", "/api/v1/statuses"): httpx.Response(200, json=STATUS)})
    await make(rec).publish(post_factory(text="Kue lapis legit #UMKM"))
    body = json.loads(rec.sent[0].content)
    assert body == {"status": "Kue lapis legit #UMKM\n\nhttps://umkm.example/kue", "visibility": "public"}


async def test_image_uploaded_synchronously_then_attached(post_factory, image):
    media = {"id": "22348641", "type": "image", "url": "https://files.example/kue.png", "description": "x"}
    rec = Recorder({("POST", "/api/v2/media"): httpx.Response(200, json=media),
                    ("POST", "/api/v1/statuses"): httpx.Response(200, json=STATUS)})
    result = await make(rec).publish(post_factory(image=image))
    upload, create = rec.sent
    assert str(upload.url) == f"{BASE}/api/v2/media"
    assert upload.headers["authorization"] == f"Bearer {TOKEN}"
    parts = form_parts(upload)
    assert parts["file"] == ("kue.png", "image/png", image.read_bytes())
    assert parts["description"][2] == b"Kue lapis di atas piring"
    assert json.loads(create.content)["media_ids"] == ["22348641"]
    assert create.headers["idempotency-key"] == "0c8e4a2e6bb54d0f9a4b1f0f2f5a7d11"
    assert result.remote_id == "110000000000000001"


async def test_several_images_are_attached_in_order_up_to_four_each_with_its_alt(post_factory, tmp_path):
    counter = iter(range(22348641, 22348651))

    def upload(request):
        return httpx.Response(200, json={"id": str(next(counter)), "type": "image", "url": "https://files.example/x"})

    rec = Recorder({("POST", "/api/v2/media"): upload, ("POST", "/api/v1/statuses"): httpx.Response(200, json=STATUS)})
    images = []
    for i in range(5):
        path = tmp_path / f"kue{i}.png"
        path.write_bytes(image_bytes("PNG", 20 + i, 20))
        images.append(Media.from_path(path, alt_text=f"Kue {i}"))
    await make(rec).publish(post_factory(image=images[0], more_images=tuple(images[1:])))
    uploads = [r for r in rec.sent if r.url.path == "/api/v2/media"]
    assert [form_parts(r)["file"][0] for r in uploads] == ["kue0.png", "kue1.png", "kue2.png", "kue3.png"]
    assert [form_parts(r)["description"][2] for r in uploads] == [b"Kue 0", b"Kue 1", b"Kue 2", b"Kue 3"]
    assert json.loads(rec.sent[-1].content)["media_ids"] == ["22348641", "22348642", "22348643", "22348644"]


async def test_image_202_is_polled_until_url_is_set(post_factory, image):
    pending = {"id": "22348641", "type": "image", "url": None}
    done = {**pending, "url": "https://files.example/kue.png"}
    rec = Recorder({
        ("POST", "/api/v2/media"): httpx.Response(202, json=pending),
        ("GET", "/api/v1/media/22348641"): [httpx.Response(206, json=pending), httpx.Response(206, json=pending),
                                            httpx.Response(200, json=done)],
        ("POST", "/api/v1/statuses"): httpx.Response(200, json=STATUS),
    })
    await make(rec).publish(post_factory(image=image))
    assert [(r.method, r.url.path) for r in rec.sent] == [
        ("POST", "/api/v2/media"), ("GET", "/api/v1/media/22348641"), ("GET", "/api/v1/media/22348641"),
        ("GET", "/api/v1/media/22348641"), ("POST", "/api/v1/statuses")]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in rec.sent)


async def test_media_still_processing_after_the_attempts_is_transient_and_no_status_is_sent(post_factory, image):
    pending = {"id": "22348641", "type": "image", "url": None}
    rec = Recorder({("POST", "/api/v2/media"): httpx.Response(202, json=pending),
                    ("GET", "/api/v1/media/22348641"): lambda r: httpx.Response(206, json=pending)})
    with pytest.raises(errors.Transient, match="still processing"):
        await make(rec, POLL_ATTEMPTS="3").publish(post_factory(image=image))
    assert [r.method for r in rec.sent] == ["POST", "GET", "GET", "GET"]


async def test_media_upload_timeout_is_transient_because_nothing_was_posted(post_factory, image):
    def handler(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(errors.Transient) as info:
        await make(handler).publish(post_factory(image=image))
    assert TOKEN not in str(info.value)


async def test_status_timeout_is_unknown_outcome(post_factory):
    def handler(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(errors.UnknownOutcome):
        await make(handler).publish(post_factory())


@pytest.mark.parametrize(
    ("response", "expected", "text"),
    [
        (httpx.Response(401, json={"error": "The access token is invalid"}), errors.AuthError, "access token is invalid"),
        (httpx.Response(403, json={"error": "This action is outside the authorized scopes"}), errors.AuthError,
         "outside the authorized scopes"),
        (httpx.Response(422, json={"error": "Validation failed: Text character limit of 500 exceeded"}),
         errors.RejectedContent, "Validation failed: Text character limit of 500 exceeded"),
        # The status may have been made before a 5xx: resent with the key inside its hour, else looked up.
        (httpx.Response(500, json={"error": "We're sorry, but something went wrong"}), errors.UnknownOutcome,
         "HTTP 500"),
        (httpx.Response(503, text="Service Unavailable"), errors.UnknownOutcome, "HTTP 503"),
        (httpx.Response(504, text="Gateway Timeout"), errors.UnknownOutcome, "HTTP 504"),
    ],
)
async def test_status_errors_map_to_typed_errors(post_factory, response, expected, text):
    rec = Recorder({("POST", "/api/v1/statuses"): response})
    with pytest.raises(expected) as info:
        await make(rec).publish(post_factory())
    assert type(info.value) is expected
    assert text in str(info.value)
    assert "SECRET" not in str(info.value)
    assert info.value.status == response.status_code


@pytest.mark.parametrize(
    ("reset", "expected"),
    [
        ("2026-08-22T03:00:00.000Z", dt.datetime(2026, 8, 22, 3, 0, tzinfo=dt.UTC)),
        ("2026-08-22T10:05:30.250+07:00", dt.datetime(2026, 8, 22, 3, 5, 30, 250000, tzinfo=dt.UTC)),
    ],
)
async def test_429_retry_at_is_the_iso_reset_header(post_factory, reset, expected):
    headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    rec = Recorder({("POST", "/api/v1/statuses"): httpx.Response(429, headers=headers,
                                                                 json={"error": "Too many requests"})})
    with pytest.raises(errors.RateLimited) as info:
        await make(rec).publish(post_factory())
    assert info.value.retry_at == expected
    assert info.value.retry_at.utcoffset() == dt.timedelta(0)


async def test_media_upload_422_is_rejected_content(post_factory, image):
    rec = Recorder({("POST", "/api/v2/media"): httpx.Response(422, json={"error": "File type of image/png is not supported"})})
    with pytest.raises(errors.RejectedContent, match="not supported"):
        await make(rec).publish(post_factory(image=image))


def test_rules_use_the_instance_limit_from_state_and_mastodon_counting():
    default = MastodonAdapter.rules_for({"BASE_URL": BASE}, MemoryState({"software": "mastodon"}))
    assert default.text[0].limit == 500 and default.text[0].method == "mastodon"
    assert default.idempotent_for == dt.timedelta(hours=1) and default.can_reconcile
    assert MastodonAdapter.rules_for({}, MemoryState({"max_characters": "5000"})).text[0].limit == 5000
    assert MastodonAdapter.rules_for({}, None).text[0].limit == 500
    # a URL costs 23 characters whatever its length
    assert default.text[0].count("a https://umkm.example/" + "x" * 100) == 2 + 23


def test_options_validation():
    assert MastodonAdapter.validate_options({"BASE_URL": BASE, "ACCESS_TOKEN": TOKEN}) == []
    assert any("VISIBILITY" in p for p in MastodonAdapter.validate_options(
        {"BASE_URL": BASE, "ACCESS_TOKEN": TOKEN, "VISIBILITY": "everyone"}))
    assert any("BASE_URL" in p for p in MastodonAdapter.validate_options({"ACCESS_TOKEN": TOKEN}))


async def test_check_stores_the_instance_limit_and_names_the_account():
    instance = {"domain": "mastodon.example", "configuration": {"statuses": {
        "max_characters": 1000, "max_media_attachments": 4, "characters_reserved_per_url": 23}}}
    account = {"id": "109000000000000001", "username": "kota", "acct": "kota", "display_name": "Kota"}
    rec = Recorder({("GET", "/api/v2/instance"): httpx.Response(200, json=instance),
                    ("GET", "/api/v1/accounts/verify_credentials"): httpx.Response(200, json=account),
                    **nodeinfo_routes("mastodon", "4.3.1")})
    adapter = make(rec, state={})
    summary = await adapter.check()
    assert "@kota" in summary and "1000" in summary
    assert "mastodon" in summary and "Idempotency-Key" in summary
    assert adapter.ctx.state.get("max_characters") == "1000"
    assert adapter.ctx.state.get("software") == "mastodon"
    assert MastodonAdapter.rules_for(adapter.ctx.options, adapter.ctx.state).text[0].limit == 1000
    assert rec.sent[1].headers["authorization"] == f"Bearer {TOKEN}"
    # NodeInfo is public: the token is not sent there.
    assert all("authorization" not in r.headers for r in rec.sent if "nodeinfo" in r.url.path)


async def test_check_learns_the_servers_image_limits_into_the_rules():
    instance = {"domain": "mastodon.example", "configuration": {
        "statuses": {"max_characters": 500},
        "media_attachments": {"supported_mime_types": ["image/jpeg", "image/png"], "image_size_limit": 10485760,
                              "image_matrix_limit": 16777216, "video_size_limit": 41943040}}}
    account = {"id": "109000000000000001", "username": "kota", "acct": "kota", "display_name": "Kota"}
    rec = Recorder({("GET", "/api/v2/instance"): httpx.Response(200, json=instance),
                    ("GET", "/api/v1/accounts/verify_credentials"): httpx.Response(200, json=account),
                    **nodeinfo_routes("mastodon", "4.3.1")})
    adapter = make(rec, state={})
    before = MastodonAdapter.rules_for(adapter.ctx.options, adapter.ctx.state).images
    assert before is not None and (before.max_bytes, before.max_pixels) == (16 * 1024 * 1024, 33_177_600)
    await adapter.check()
    assert adapter.ctx.state.get("image_size_limit") == "10485760"
    images = MastodonAdapter.rules_for(adapter.ctx.options, adapter.ctx.state).images
    assert images is not None and (images.max_bytes, images.max_pixels) == (10_485_760, 16_777_216)
    assert MastodonAdapter.rules_for(adapter.ctx.options, adapter.ctx.state).max_image_bytes == 10_485_760


async def test_check_without_v2_instance_keeps_500_and_bad_token_is_auth_error():
    rec = Recorder({("GET", "/api/v2/instance"): httpx.Response(404, json={"error": "Record not found"}),
                    ("GET", "/api/v1/accounts/verify_credentials"):
                        httpx.Response(401, json={"error": "The access token is invalid"})})
    adapter = make(rec)
    with pytest.raises(errors.AuthError) as info:
        await adapter.check()
    assert "SECRET" not in str(info.value)
    assert adapter.ctx.state.get("max_characters") is None


def test_plain_text_of_status_html_matches_the_text_sent():
    assert plain_text(STATUS["content"]) == TEXT
    assert plain_text("<p>Satu<br />dua</p><p>tiga &amp; empat</p>") == "Satu dua tiga & empat"


def _reconcile_routes(statuses):
    account = {"id": "109000000000000001", "acct": "kota"}
    return Recorder({("GET", "/api/v1/accounts/verify_credentials"): httpx.Response(200, json=account),
                     ("GET", "/api/v1/accounts/109000000000000001/statuses"): httpx.Response(200, json=statuses)})


async def test_reconcile_finds_the_status(post_factory):
    other = {**STATUS, "id": "110000000000000002", "content": "<p>lain</p>", "created_at": "2026-08-22T02:00:00Z"}
    rec = _reconcile_routes([other, STATUS])
    result = await make(rec).reconcile(post_factory())
    assert result is not None and result.remote_id == "110000000000000001"
    assert result.remote_url == STATUS["url"]
    listing = rec.sent[1]
    assert listing.url.params["limit"] == "40"
    assert listing.url.params["exclude_replies"] == "true" and listing.url.params["exclude_reblogs"] == "true"


async def test_reconcile_none_when_the_list_reaches_back_before_the_post(post_factory):
    old = {**STATUS, "id": "1", "content": "<p>lama</p>", "created_at": "2026-08-20T00:00:00Z"}
    assert await make(_reconcile_routes([old] * 40)).reconcile(post_factory()) is None
    assert await make(_reconcile_routes([])).reconcile(post_factory()) is None


async def test_reconcile_cannot_tell_when_many_newer_statuses(post_factory):
    newer = {**STATUS, "id": "2", "content": "<p>baru</p>", "created_at": "2026-08-22T05:00:00Z"}
    rec = _reconcile_routes([newer] * 40)
    with pytest.raises(errors.UnknownOutcome, match="more than 200 newer statuses"):
        await make(rec).reconcile(post_factory())
    assert len(rec.sent) == 1 + 5  # verify_credentials, then five pages


async def test_reconcile_server_error_is_unknown_outcome(post_factory):
    rec = Recorder({("GET", "/api/v1/accounts/verify_credentials"): httpx.Response(502, text="Bad Gateway")})
    with pytest.raises(errors.UnknownOutcome):
        await make(rec).reconcile(post_factory())


async def test_reconcile_pages_back_until_it_passes_the_first_attempt(post_factory):
    # A busy account: 40 newer statuses, then ours on the next page (max_id = the last id seen).
    newer = [{**STATUS, "id": str(200 - i), "content": "<p>baru</p>", "created_at": "2026-08-22T05:00:00Z"}
             for i in range(40)]
    pages = {None: newer, "161": [STATUS]}
    account = {"id": "109000000000000001", "acct": "kota"}
    rec = Recorder({("GET", "/api/v1/accounts/verify_credentials"): httpx.Response(200, json=account),
                    ("GET", "/api/v1/accounts/109000000000000001/statuses"):
                        lambda r: httpx.Response(200, json=pages[r.url.params.get("max_id")])})
    result = await make(rec).reconcile(post_factory())
    assert result is not None and result.remote_id == STATUS["id"]
    # Measured from the first attempt, not the post's creation days before.
    old_post = post_factory(created_at=dt.datetime(2026, 8, 1, tzinfo=dt.UTC),
                    attempted_at=dt.datetime(2026, 8, 22, 0, 55, tzinfo=dt.UTC))
    older = {**STATUS, "id": "1", "content": "<p>lama</p>", "created_at": "2026-08-21T00:00:00Z"}
    assert await make(_reconcile_routes([older] * 40)).reconcile(old_post) is None


def nodeinfo_routes(name: str, version: str = "", instance_version: str | None = None) -> dict:
    """A server's NodeInfo discovery document, its NodeInfo 2.0 and (optionally) /api/v1/instance."""
    routes: dict = {
        ("GET", "/.well-known/nodeinfo"): httpx.Response(200, json={"links": [
            {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
             "href": "https://social.example/nodeinfo/2.0"}]}),
        ("GET", "/nodeinfo/2.0"): httpx.Response(200, json={
            "version": "2.0", "software": {"name": name, "version": version}, "protocols": ["activitypub"],
            "usage": {"users": {}}, "openRegistrations": False}),
    }
    if instance_version is not None:
        routes[("GET", "/api/v1/instance")] = httpx.Response(200, json={"version": instance_version})
    return routes


@pytest.mark.parametrize(("name", "honours"), [("mastodon", True), ("gotosocial", False), ("takahe", False),
                                               ("pixelfed", False), ("pleroma", False)])
async def test_software_is_detected_before_the_first_status_and_decides_the_key_window(post_factory, name, honours):
    rec = Recorder({**nodeinfo_routes(name, "0.17.3"), ("POST", "/api/v1/statuses"): httpx.Response(200, json=STATUS)})
    adapter = make(rec, state={})
    await adapter.publish(post_factory())
    assert [r.url.path for r in rec.sent] == ["/.well-known/nodeinfo", "/nodeinfo/2.0", "/api/v1/statuses"]
    assert adapter.ctx.state.get("software") == name
    rules = MastodonAdapter.rules_for(adapter.ctx.options, adapter.ctx.state)
    assert rules.idempotent_for == (dt.timedelta(hours=1) if honours else None)
    assert rules.can_reconcile
    await adapter.publish(post_factory())  # known now: not asked again
    assert [r.url.path for r in rec.sent][3:] == ["/api/v1/statuses"]


@pytest.mark.parametrize(("version", "software"), [
    ("4.2.10", "mastodon"), ("2.7.2 (compatible; Pleroma 2.5.0)", "pleroma"),
    ("3.5.3 (compatible; Pixelfed 0.12.3)", "pixelfed"), ("", "unknown")])
async def test_without_nodeinfo_the_instance_version_names_the_software(post_factory, version, software):
    rec = Recorder({("GET", "/.well-known/nodeinfo"): httpx.Response(404, json={"error": "Not found"}),
                    ("GET", "/api/v1/instance"): httpx.Response(200, json={"version": version}),
                    ("POST", "/api/v1/statuses"): httpx.Response(200, json=STATUS)})
    adapter = make(rec, state={})
    await adapter.publish(post_factory())
    assert adapter.ctx.state.get("software") == software
    assert MastodonAdapter.rules_for(adapter.ctx.options, adapter.ctx.state).idempotent == (software == "mastodon")


async def test_a_server_that_cannot_be_asked_is_not_trusted_and_asked_again_next_time(post_factory):
    def handler(request):
        if request.url.path == "/api/v1/statuses":
            return httpx.Response(200, json=STATUS)
        raise httpx.ConnectError("refused", request=request)

    adapter = make(handler, state={})
    assert (await adapter.publish(post_factory())).remote_id == STATUS["id"]
    assert adapter.ctx.state.get("software") is None
    assert not MastodonAdapter.rules_for(adapter.ctx.options, adapter.ctx.state).idempotent


async def test_idempotency_option_overrides_the_detected_software(post_factory):
    rec = Recorder({("POST", "/api/v1/statuses"): httpx.Response(200, json=STATUS)})
    adapter = make(rec, state={"software": "gotosocial"}, IDEMPOTENCY="mastodon")
    await adapter.publish(post_factory())
    assert [r.url.path for r in rec.sent] == ["/api/v1/statuses"]  # no detection when told
    assert MastodonAdapter.rules_for(adapter.ctx.options, adapter.ctx.state).idempotent_for == dt.timedelta(hours=1)
    rules = MastodonAdapter.rules_for({"IDEMPOTENCY": "none"}, MemoryState({"software": "mastodon"}))
    assert rules.idempotent_for is None
    problems = MastodonAdapter.validate_options({"BASE_URL": BASE, "ACCESS_TOKEN": TOKEN, "IDEMPOTENCY": "yes"})
    assert any("IDEMPOTENCY must be one of mastodon, none" in p for p in problems)


async def test_media_upload_5xx_is_transient_because_no_status_was_made(post_factory, image):
    rec = Recorder({("POST", "/api/v2/media"): httpx.Response(503, text="Service Unavailable")})
    with pytest.raises(errors.Transient) as info:
        await make(rec).publish(post_factory(image=image))
    assert type(info.value) is errors.Transient
