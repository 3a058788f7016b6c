"""LinkedIn adapter against the documented request and response shapes (httpx.MockTransport)."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse

import httpx
import pytest
import time_machine

from scheduler import errors
from scheduler.platforms.base import ChannelContext, Media, MemoryState
from scheduler.platforms.linkedin import LinkedInAdapter, little_text
from tests.helpers import Recorder

BASE = "http://127.0.0.1:9"
TOKEN = "SECRET-linkedin-token"
ORG = "2414183"
AUTHOR = f"urn:li:organization:{ORG}"
URN = "urn:li:share:7141138937766391808"
NOW = dt.datetime(2026, 8, 22, 10, 30, tzinfo=dt.UTC)
TEXT = "Kue Lapis (spesial) cuma Rp 25.000! https://umkm.example/kue #UMKM #Balikpapan"
REFRESH = {"REFRESH_TOKEN": "SECRET-refresh", "CLIENT_ID": "86abcdef", "CLIENT_SECRET": "SECRET-client",
           "OAUTH_BASE_URL": BASE}


def created() -> httpx.Response:
    return httpx.Response(201, headers={"x-restli-id": URN})


def make(handler, state=None, **options) -> LinkedInAdapter:
    opts = {"BASE_URL": BASE, "ORGANIZATION_ID": ORG, "ACCESS_TOKEN": TOKEN, **options}
    ctx = ChannelContext(name="li", options={k: v for k, v in opts.items() if v is not None}, state=MemoryState(state))
    return LinkedInAdapter(ctx, httpx.AsyncClient(transport=httpx.MockTransport(handler)))


POST_DEFAULTS = {"text": TEXT, "created_at": dt.datetime(2026, 8, 22, 9, 0, tzinfo=dt.UTC)}


def assert_rest_headers(request: httpx.Request, token: str = TOKEN, version: str = "202601") -> None:
    assert request.headers["authorization"] == f"Bearer {token}"
    assert request.headers["linkedin-version"] == version
    assert request.headers["x-restli-protocol-version"] == "2.0.0"


def test_little_text_escapes_reserved_characters_but_keeps_hashtags():
    assert little_text(TEXT) == (
        "Kue Lapis \\(spesial\\) cuma Rp 25.000! https://umkm.example/kue #UMKM #Balikpapan")
    assert little_text("a_b *c* ~d~ <e> [f] {g} |h| \\i @j") == (
        "a\\_b \\*c\\* \\~d\\~ \\<e\\> \\[f\\] \\{g\\} \\|h\\| \\\\i \\@j")
    # a "#" that does not start a hashtag is escaped
    assert little_text("No. # 5, https://x.example/a#b, #UMKM_Kota") == (
        "No. \\# 5, https://x.example/a\\#b, #UMKM\\_Kota")


async def test_text_post_body_headers_and_result(post_factory):
    rec = Recorder({("POST", "/rest/posts"): created()})
    result = await make(rec).publish(post_factory())
    (request,) = rec.sent
    assert str(request.url) == f"{BASE}/rest/posts"
    assert_rest_headers(request)
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "author": AUTHOR,
        "commentary": little_text(TEXT),
        "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }
    assert result.remote_id == URN
    assert result.remote_url == f"https://www.linkedin.com/feed/update/{URN}"


async def test_api_version_option_overrides_the_constant(post_factory):
    rec = Recorder({("POST", "/rest/posts"): created()})
    await make(rec, API_VERSION="202608").publish(post_factory())
    assert_rest_headers(rec.sent[0], version="202608")


async def test_link_becomes_an_article_with_title_and_description(post_factory):
    rec = Recorder({("POST", "/rest/posts"): created()})
    await make(rec).publish(post_factory(link="https://umkm.example/kue", title="Kue Lapis", description="Kue lapis legit"))
    body = json.loads(rec.sent[0].content)
    assert body["content"] == {"article": {"source": "https://umkm.example/kue", "title": "Kue Lapis",
                                           "description": "Kue lapis legit"}}


async def test_image_is_initialized_put_and_attached(post_factory, tmp_path):
    img = tmp_path / "kue.jpg"
    img.write_bytes(b"\xff\xd8\xff\xe0" + b"1" * 50)
    init = {"value": {"uploadUrlExpiresAt": 1787400000000, "uploadUrl": f"{BASE}/dms-uploads/sp/abc123/0",
                      "image": "urn:li:image:C4E10AQFoyyAjHPMQuQ"}}
    rec = Recorder({("POST", "/rest/images"): httpx.Response(200, json=init),
                    ("PUT", "/dms-uploads/sp/abc123/0"): httpx.Response(201),
                    ("POST", "/rest/posts"): created()})
    result = await make(rec).publish(post_factory(text="Kue lapis legit", link="https://umkm.example/kue", title="Kue",
                                          image=Media.from_path(img, alt_text="Kue lapis")))
    init_req, put_req, post_req = rec.sent
    assert init_req.url.params["action"] == "initializeUpload"
    assert_rest_headers(init_req)
    assert json.loads(init_req.content) == {"initializeUploadRequest": {"owner": AUTHOR}}
    assert put_req.content == img.read_bytes()
    assert put_req.headers["authorization"] == f"Bearer {TOKEN}"
    assert put_req.headers["content-type"] == "image/jpeg"
    body = json.loads(post_req.content)
    assert body["content"] == {"media": {"id": "urn:li:image:C4E10AQFoyyAjHPMQuQ", "altText": "Kue lapis"}}
    # the link cannot be a card next to an image, so it goes into the commentary
    assert body["commentary"] == "Kue lapis legit\n\nhttps://umkm.example/kue"
    assert result.remote_id == URN


async def test_several_images_go_as_one_multi_image_post_in_order_with_alt_texts(post_factory, tmp_path):
    images = []
    for i in range(3):
        img = tmp_path / f"kue{i}.jpg"
        img.write_bytes(b"\xff\xd8\xff\xe0" + bytes([i]) * 20)
        images.append(Media.from_path(img, alt_text=f"Kue {i}" if i != 1 else None))
    inits = [httpx.Response(200, json={"value": {"uploadUrl": f"{BASE}/dms-uploads/sp/{i}/0",
                                                 "image": f"urn:li:image:C4E10AQ{i}"}}) for i in range(3)]
    rec = Recorder({("POST", "/rest/images"): inits, **{("PUT", f"/dms-uploads/sp/{i}/0"): httpx.Response(201)
                                                        for i in range(3)},
                    ("POST", "/rest/posts"): created()})
    await make(rec).publish(post_factory(text="Kue lapis legit", image=images[0], more_images=tuple(images[1:])))
    puts = [r for r in rec.sent if r.method == "PUT"]
    assert [p.content for p in puts] == [m.read_bytes() for m in images]
    body = json.loads(rec.sent[-1].content)
    assert body["content"] == {"multiImage": {"images": [
        {"id": "urn:li:image:C4E10AQ0", "altText": "Kue 0"}, {"id": "urn:li:image:C4E10AQ1"},
        {"id": "urn:li:image:C4E10AQ2", "altText": "Kue 2"}]}}


async def test_image_put_timeout_is_transient_and_nothing_is_posted(post_factory, tmp_path):
    img = tmp_path / "kue.jpg"
    img.write_bytes(b"\xff\xd8\xff\xe0")
    init = {"value": {"uploadUrl": f"{BASE}/up/1", "image": "urn:li:image:1"}}

    def put_timeout(request):
        raise httpx.ReadTimeout("timed out", request=request)

    rec = Recorder({("POST", "/rest/images"): httpx.Response(200, json=init), ("PUT", "/up/1"): put_timeout})
    with pytest.raises(errors.Transient):
        await make(rec).publish(post_factory(image=Media.from_path(img)))
    assert [r.url.path for r in rec.sent] == ["/rest/images", "/up/1"]


async def test_duplicate_post_names_the_existing_urn(post_factory):
    body = {"errorDetailType": "com.linkedin.common.error.BadRequest",
            "message": f"com.linkedin.content.common.exception.BadRequestResponseException: Content is a duplicate of {URN}",
            "errorDetails": {"inputErrors": [{"description": "Duplicate post is detected", "input": {},
                                              "code": "DUPLICATE_POST"}]}, "status": 422}
    rec = Recorder({("POST", "/rest/posts"): httpx.Response(422, json=body)})
    with pytest.raises(errors.Duplicate) as info:
        await make(rec).publish(post_factory())
    assert info.value.remote_id == URN
    assert info.value.remote_url == f"https://www.linkedin.com/feed/update/{URN}"


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(401, json={"status": 401, "serviceErrorCode": 65602, "code": "EXPIRED_ACCESS_TOKEN",
                                   "message": "The token used in the request has expired"}), errors.AuthError),
        (httpx.Response(401, json={"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN",
                                   "message": "Invalid access token"}), errors.AuthError),
        (httpx.Response(403, json={"status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED",
                                   "message": "Not enough permissions to access: partnerApiPostsExternal.CREATE"}),
         errors.AuthError),
        (httpx.Response(422, json={"errorDetailType": "com.linkedin.common.error.BadRequest", "message": "Bad",
                                   "errorDetails": {"inputErrors": [{"code": "INVALID_VALUE", "description": "x"}]},
                                   "status": 422}), errors.RejectedContent),
        (httpx.Response(400, json={"status": 400, "message": "Invalid LinkedIn-Version"}), errors.RejectedContent),
        (httpx.Response(500, json={"status": 500, "message": "Internal Server Error"}), errors.Transient),
        (httpx.Response(503, json={"status": 503, "message": "Service Unavailable"}), errors.Transient),
        (httpx.Response(504, text="Gateway Timeout"), errors.UnknownOutcome),
    ],
)
async def test_errors_map_to_typed_errors(post_factory, response, expected):
    rec = Recorder({("POST", "/rest/posts"): response})
    with pytest.raises(expected) as info:
        await make(rec).publish(post_factory())
    assert type(info.value) is expected
    assert info.value.status == response.status_code
    assert "SECRET" not in str(info.value)


async def test_401_message_names_the_linkedin_code(post_factory):
    body = {"status": 401, "serviceErrorCode": 65602, "code": "EXPIRED_ACCESS_TOKEN", "message": "expired"}
    rec = Recorder({("POST", "/rest/posts"): httpx.Response(401, json=body)})
    with pytest.raises(errors.AuthError, match="EXPIRED_ACCESS_TOKEN"):
        await make(rec).publish(post_factory())


def _too_many() -> httpx.Response:
    return httpx.Response(429, json={"status": 429, "message": "Too Many Requests"})


async def test_429_without_header_backs_off_minutes_growing_while_429s_continue(post_factory):
    state = MemoryState()  # the channel's stored state, shared by every attempt

    def attempt(handler) -> LinkedInAdapter:
        ctx = ChannelContext(name="li", options={"BASE_URL": BASE, "ORGANIZATION_ID": ORG, "ACCESS_TOKEN": TOKEN},
                             state=state)
        return LinkedInAdapter(ctx, httpx.AsyncClient(transport=httpx.MockTransport(handler)))

    with time_machine.travel(NOW, tick=False):  # 10:30 UTC
        waits = []
        for _ in range(7):
            with pytest.raises(errors.RateLimited) as info:
                await attempt(Recorder({("POST", "/rest/posts"): _too_many()})).publish(post_factory())
            waits.append(info.value.retry_at - NOW)
        assert waits == [dt.timedelta(minutes=m) for m in (5, 10, 20, 40, 80, 120, 120)]
        # a success ends the streak: the next 429 waits 5 minutes again
        adapter = attempt(Recorder({("POST", "/rest/posts"): [created(), _too_many()]}))
        await adapter.publish(post_factory())
        assert adapter.ctx.state.get("rate_limited_in_a_row") is None
        with pytest.raises(errors.RateLimited) as info:
            await adapter.publish(post_factory())
        assert info.value.retry_at == NOW + dt.timedelta(minutes=5)


@time_machine.travel(dt.datetime(2026, 8, 22, 23, 58, tzinfo=dt.UTC), tick=False)
async def test_429_backoff_never_waits_past_utc_midnight_when_the_quotas_reset(post_factory):
    with pytest.raises(errors.RateLimited) as info:
        await make(Recorder({("POST", "/rest/posts"): _too_many()})).publish(post_factory())
    assert info.value.retry_at == dt.datetime(2026, 8, 23, 0, 0, tzinfo=dt.UTC)


async def test_retired_linkedin_version_pauses_the_channel_naming_the_setting(post_factory, tmp_path):
    retired = {"status": 426, "code": "NONEXISTENT_VERSION", "message": "Requested version 202601 is not active"}
    rec = Recorder({("POST", "/rest/posts"): httpx.Response(426, json=retired)})
    with pytest.raises(errors.ConfigError) as info:
        await make(rec).publish(post_factory())
    message = str(info.value)
    assert "PROMO_CHANNEL_LI_API_VERSION" in message and "202601" in message and "SECRET" not in message
    # the image step meets it first: same answer, nothing is posted
    img = tmp_path / "kue.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 32)
    rec = Recorder({("POST", "/rest/images"): httpx.Response(426, json=retired)})
    with pytest.raises(errors.ConfigError, match="PROMO_CHANNEL_LI_API_VERSION"):
        await make(rec).publish(post_factory(image=Media.from_path(img)))
    assert [r.url.path for r in rec.sent] == ["/rest/images"]
    rec = Recorder({("GET", f"/rest/organizations/{ORG}"): httpx.Response(426, json=retired)})
    with pytest.raises(errors.ConfigError, match="PROMO_CHANNEL_LI_API_VERSION"):
        await make(rec).check()


def test_the_3000_limit_counts_the_text_after_escaping():
    from scheduler.textrules import first_broken

    text = "Kue (lapis) " * 249 + "x" * 10  # 2,998 characters, 498 of them escaped as \( \)
    assert len(text) == 2998
    [rule] = LinkedInAdapter.rules.text
    assert rule.count(text) == len(little_text(text)) == 2998 + 498
    assert first_broken(LinkedInAdapter.rules.text, text) is not None
    assert "escaped" in rule.describe()
    assert rule.count("Promo #UMKM hari ini") == len("Promo #UMKM hari ini")  # a hashtag's # is not escaped


@time_machine.travel(NOW, tick=False)
async def test_429_with_retry_after_uses_it(post_factory):
    rec = Recorder({("POST", "/rest/posts"): httpx.Response(429, headers={"Retry-After": "120"}, json={})})
    with pytest.raises(errors.RateLimited) as info:
        await make(rec).publish(post_factory())
    assert info.value.retry_at == NOW + dt.timedelta(seconds=120)


def _token_answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"access_token": "SECRET-new-access", "expires_in": 5184000,
                                     "refresh_token": "SECRET-new-refresh", "refresh_token_expires_in": 31536000})


@time_machine.travel(NOW, tick=False)
async def test_token_near_expiry_is_refreshed_first_and_stored(post_factory):
    state = {"access_token": "SECRET-old-access",
             "access_token_expires_at": (NOW + dt.timedelta(hours=3)).isoformat()}
    rec = Recorder({("POST", "/oauth/v2/accessToken"): _token_answer, ("POST", "/rest/posts"): created()})
    adapter = make(rec, state=state, ACCESS_TOKEN=None, **REFRESH)
    await adapter.publish(post_factory())
    refresh, create = rec.sent
    assert str(refresh.url) == f"{BASE}/oauth/v2/accessToken"
    assert urllib.parse.parse_qs(refresh.content.decode()) == {
        "grant_type": ["refresh_token"], "refresh_token": ["SECRET-refresh"], "client_id": ["86abcdef"],
        "client_secret": ["SECRET-client"]}
    assert "authorization" not in refresh.headers
    assert_rest_headers(create, token="SECRET-new-access")
    st = adapter.ctx.state
    assert st.get("access_token") == "SECRET-new-access"
    assert st.get("refresh_token") == "SECRET-new-refresh"
    assert st.get("access_token_expires_at") == (NOW + dt.timedelta(seconds=5184000)).isoformat()
    assert st.get("refresh_token_expires_at") == (NOW + dt.timedelta(seconds=31536000)).isoformat()


@time_machine.travel(NOW, tick=False)
async def test_fresh_stored_token_is_used_without_refresh_and_refresh_token_from_state_wins(post_factory):
    state = {"access_token": "SECRET-stored", "access_token_expires_at": (NOW + dt.timedelta(days=30)).isoformat(),
             "refresh_token": "SECRET-stored-refresh"}
    rec = Recorder({("POST", "/rest/posts"): created()})
    await make(rec, state=state, **REFRESH).publish(post_factory())
    assert_rest_headers(rec.sent[0], token="SECRET-stored")


async def test_401_with_refresh_credentials_refreshes_once_and_retries(post_factory):
    expired = httpx.Response(401, json={"status": 401, "code": "EXPIRED_ACCESS_TOKEN", "message": "expired"})
    rec = Recorder({("POST", "/rest/posts"): [expired, created()], ("POST", "/oauth/v2/accessToken"): _token_answer})
    adapter = make(rec, **REFRESH)
    result = await adapter.publish(post_factory())
    assert [r.url.path for r in rec.sent] == ["/rest/posts", "/oauth/v2/accessToken", "/rest/posts"]
    assert_rest_headers(rec.sent[2], token="SECRET-new-access")
    assert result.remote_id == URN and adapter.ctx.state.get("access_token") == "SECRET-new-access"


async def test_failed_refresh_is_auth_error_with_reason_and_no_secret(post_factory):
    bad = httpx.Response(400, json={"error": "invalid_request",
                                    "error_description": "The provided refresh token is invalid: SECRET-refresh"})
    rec = Recorder({("POST", "/oauth/v2/accessToken"): bad})
    with pytest.raises(errors.AuthError) as info:
        await make(rec, ACCESS_TOKEN=None, **REFRESH).publish(post_factory())
    message = str(info.value)
    assert "token refresh failed" in message and "invalid_request" in message
    assert "SECRET" not in message
    assert [r.url.path for r in rec.sent] == ["/oauth/v2/accessToken"]


async def test_refresh_server_error_is_transient(post_factory):
    rec = Recorder({("POST", "/oauth/v2/accessToken"): httpx.Response(503, text="unavailable")})
    with pytest.raises(errors.Transient):
        await make(rec, ACCESS_TOKEN=None, **REFRESH).publish(post_factory())


def test_options_accept_a_token_or_refresh_credentials():
    assert LinkedInAdapter.validate_options({"ORGANIZATION_ID": ORG, "ACCESS_TOKEN": TOKEN}) == []
    assert LinkedInAdapter.validate_options({"ORGANIZATION_ID": ORG, "REFRESH_TOKEN": "r" * 8,
                                             "CLIENT_ID": "c", "CLIENT_SECRET": "s" * 8}) == []
    assert LinkedInAdapter.validate_options({"ORGANIZATION_ID": ORG})
    assert any("ORGANIZATION_ID" in p for p in LinkedInAdapter.validate_options(
        {"ORGANIZATION_ID": "kota", "ACCESS_TOKEN": TOKEN}))
    assert {"ACCESS_TOKEN", "REFRESH_TOKEN", "CLIENT_SECRET"} <= LinkedInAdapter.secret_keys


def _listing(elements):
    return Recorder({("GET", "/rest/posts"): httpx.Response(200, json={"elements": elements, "paging": {}})})


def _ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


async def test_reconcile_finds_the_post_by_commentary(post_factory):
    mine = {"id": URN, "author": AUTHOR, "commentary": little_text(TEXT), "createdAt": _ms(NOW)}
    other = {"id": "urn:li:share:1", "author": AUTHOR, "commentary": "lain", "createdAt": _ms(NOW)}
    rec = _listing([other, mine])
    result = await make(rec).reconcile(post_factory())
    assert result is not None and result.remote_id == URN
    request = rec.sent[0]
    assert_rest_headers(request)
    assert f"author={urllib.parse.quote(AUTHOR, safe='')}" in request.url.query.decode()
    assert request.url.params["q"] == "author" and request.url.params["sortBy"] == "CREATED"


async def test_reconcile_none_when_the_list_reaches_back_before_the_post(post_factory):
    old = {"id": "urn:li:share:1", "commentary": "lama", "createdAt": _ms(NOW - dt.timedelta(days=3))}
    assert await make(_listing([old] * 10)).reconcile(post_factory()) is None


async def test_reconcile_unknown_when_list_is_forbidden_or_too_new(post_factory):
    forbidden = Recorder({("GET", "/rest/posts"): httpx.Response(403, json={"status": 403, "code": "ACCESS_DENIED"})})
    with pytest.raises(errors.UnknownOutcome):
        await make(forbidden).reconcile(post_factory())
    newer = {"id": "urn:li:share:2", "commentary": "baru", "createdAt": _ms(NOW)}
    with pytest.raises(errors.UnknownOutcome):
        await make(_listing([newer] * 10)).reconcile(post_factory())


async def test_check_reads_the_organization():
    org = {"id": int(ORG), "localizedName": "Pemkot Balikpapan", "vanityName": "pemkot-bpp"}
    rec = Recorder({("GET", f"/rest/organizations/{ORG}"): httpx.Response(200, json=org)})
    summary = await make(rec).check()
    assert "Pemkot Balikpapan" in summary and AUTHOR in summary
    assert_rest_headers(rec.sent[0])


async def test_check_with_revoked_token_is_auth_error():
    body = {"status": 401, "serviceErrorCode": 65601, "code": "REVOKED_ACCESS_TOKEN", "message": "revoked"}
    rec = Recorder({("GET", f"/rest/organizations/{ORG}"): httpx.Response(401, json=body)})
    with pytest.raises(errors.AuthError) as info:
        await make(rec).check()
    assert "SECRET" not in str(info.value)


@time_machine.travel(NOW, tick=False)
async def test_refresh_rate_limited_is_rate_limited_not_auth(post_factory):
    rec = Recorder({("POST", "/oauth/v2/accessToken"): httpx.Response(429, json={})})
    with pytest.raises(errors.RateLimited) as info:
        await make(rec, ACCESS_TOKEN=None, **REFRESH).publish(post_factory())
    assert info.value.retry_at == NOW + dt.timedelta(minutes=5)
