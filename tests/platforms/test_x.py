"""The X adapter against X API v2's documented requests and answers.

Every request the adapter sends (except the OAuth token endpoint, which the description
does not cover) is validated against the official OpenAPI description, and so is every
successful fake answer; see ``x_openapi.py``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import traceback
import urllib.parse
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP

import httpx
import pytest
import time_machine

from scheduler import errors
from scheduler.platforms.base import ChannelContext, Media, MemoryState
from scheduler.platforms.x import XAdapter, comparable
from scheduler.platforms.x_auth import STATE_ACCESS, STATE_EXPIRES, STATE_ORIGIN, STATE_REFRESH
from tests.platforms import x_openapi
from tests.platforms.conftest import make_post

NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
TEXT = "Kue Lapis Spesial cuma Rp 25.000! https://umkm.example/kue #UMKM #Balikpapan"
OAUTH2 = {
    "ACCESS_TOKEN": "SECRET-x-access-token",
    "REFRESH_TOKEN": "SECRET-x-refresh-token",
    "CLIENT_ID": "x-client-id",
    "CLIENT_SECRET": "SECRET-x-client-secret",
}
OAUTH1 = {
    "API_KEY": "SECRET-consumer-key",
    "API_SECRET": "SECRET-consumer-secret",
    "ACCESS_TOKEN": "SECRET-oauth1-token",
    "ACCESS_SECRET": "SECRET-oauth1-token-secret",
}
TWEET_ID = "1445880548472328192"
MEDIA_ID = "1880028106020515840"
ME = {"data": {"id": "2244994945", "name": "Kota Balikpapan", "username": "kotabalikpapan"}}


def problem(status: int, detail: str, type_: str = "about:blank", title: str = "Forbidden") -> httpx.Response:
    return httpx.Response(status, json={"detail": detail, "type": type_, "title": title, "status": status},
                          headers={"content-type": "application/problem+json"})


def created(request: httpx.Request) -> httpx.Response:
    text = json.loads(request.content)["text"]
    return httpx.Response(201, json={"data": {"id": TWEET_ID, "text": text, "edit_history_post_ids": [TWEET_ID]}})


def token_ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"token_type": "bearer", "expires_in": 7200, "scope": "tweet.write users.read "
                                     "tweet.read media.write offline.access", "access_token": "SECRET-new-access",
                                     "refresh_token": "SECRET-new-refresh"})


class FakeX:
    """Answers by (method, path); records and validates every request and successful answer."""

    def __init__(self, routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response] | httpx.Response]):
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if x_openapi.in_spec(request):
            x_openapi.validate_request(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        response = route(request) if callable(route) else route
        if response.is_success and x_openapi.in_spec(request):
            x_openapi.validate_response(request, response)
        return response

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def make(fake: FakeX, options: dict[str, str] | None = None, state: dict[str, str] | None = None) -> XAdapter:
    ctx = ChannelContext(name="x_kota", options=dict(OAUTH2 if options is None else options),
                         state=MemoryState(state))
    return XAdapter(ctx, httpx.AsyncClient(transport=httpx.MockTransport(fake)))


POST_DEFAULTS = {"text": TEXT, "link": "https://umkm.example/kue", "title": "Kue Lapis", "created_at": NOW}


def no_secret(exc: BaseException) -> None:
    """No secret in the error, nor in any exception chained to it (what a logged traceback shows)."""
    seen: BaseException | None = exc
    while seen is not None:
        shown = "".join(traceback.format_exception_only(seen)) + repr(seen)
        assert "SECRET" not in shown, shown
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)


def origin(options: dict[str, str]) -> str:
    seed = f"{options.get('ACCESS_TOKEN', '')}\0{options.get('REFRESH_TOKEN', '')}"
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


def multipart_fields(request: httpx.Request) -> dict[str, tuple[str | None, str, bytes]]:
    """{name: (filename, content type, bytes)} of a multipart/form-data body."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.content)
    return {part.get_param("name", header="content-disposition"): (part.get_filename(), part.get_content_type(),
                                                                  part.get_payload(decode=True))
            for part in message.iter_parts()}


# --- publishing --------------------------------------------------------------------


async def test_text_post_sends_exactly_the_documented_request(post_factory):
    fake = FakeX({("POST", "/2/tweets"): created})
    result = await make(fake).publish(post_factory())
    [request] = fake.requests
    assert request.method == "POST"
    assert str(request.url) == "https://api.x.com/2/tweets"
    assert request.headers["authorization"] == "Bearer SECRET-x-access-token"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"text": TEXT}
    assert result.remote_id == TWEET_ID
    assert result.remote_url == f"https://x.com/i/web/status/{TWEET_ID}"
    assert result.http_status == 201


async def test_url_names_the_account_when_the_username_is_known(post_factory):
    fake = FakeX({("POST", "/2/tweets"): created})
    result = await make(fake, {**OAUTH2, "USERNAME": "@kotabalikpapan"}).publish(post_factory())
    assert result.remote_url == f"https://x.com/kotabalikpapan/status/{TWEET_ID}"


async def test_link_missing_from_the_text_is_appended_only_when_it_fits(post_factory):
    fake = FakeX({("POST", "/2/tweets"): created})
    adapter = make(fake)
    await adapter.publish(post_factory(text="Kue Lapis Spesial hari ini"))
    assert json.loads(fake.requests[0].content)["text"] == "Kue Lapis Spesial hari ini\nhttps://umkm.example/kue"
    long_text = "a" * 270  # 270 + newline + 23 for the URL > 280
    await adapter.publish(post_factory(text=long_text))
    assert json.loads(fake.requests[1].content)["text"] == long_text


async def test_image_post_uploads_sets_alt_text_then_attaches_the_media_id(post_factory, tmp_path):
    img = tmp_path / "kue.jpg"
    img.write_bytes(b"\xff\xd8\xff\xe0" + b"kue" * 50)
    upload = httpx.Response(200, json={"data": {"id": MEDIA_ID, "media_key": f"3_{MEDIA_ID}", "size": 154,
                                                "expires_after_secs": 86400,
                                                "image": {"image_type": "image/jpeg", "w": 1, "h": 1}}})
    fake = FakeX({("POST", "/2/media/upload"): upload,
                  ("POST", "/2/media/metadata"): httpx.Response(200, json={"data": {
                      "id": MEDIA_ID, "associated_metadata": {"alt_text": {"text": "Kue lapis berlapis sembilan"}}}}),
                  ("POST", "/2/tweets"): created})
    media = Media.from_path(img, alt_text="Kue lapis berlapis sembilan")
    result = await make(fake).publish(post_factory(image=media))
    assert fake.paths() == ["POST /2/media/upload", "POST /2/media/metadata", "POST /2/tweets"]
    up, meta, tweet = fake.requests
    assert up.headers["authorization"] == "Bearer SECRET-x-access-token"
    assert up.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert multipart_fields(up) == {"media": ("kue.jpg", "image/jpeg", img.read_bytes()),
                                    "media_category": (None, "text/plain", b"tweet_image")}
    assert json.loads(meta.content) == {"id": MEDIA_ID, "metadata": {"alt_text": {"text": "Kue lapis berlapis sembilan"}}}
    assert json.loads(tweet.content) == {"text": TEXT, "media": {"media_ids": [MEDIA_ID]}}
    assert result.remote_id == TWEET_ID


async def test_several_images_go_as_one_post_with_up_to_four_media_ids_in_order(post_factory, tmp_path):
    ids = iter(["1880028106020515841", "1880028106020515842", "1880028106020515843", "1880028106020515844"])

    def upload(request: httpx.Request) -> httpx.Response:
        media_id = next(ids)
        return httpx.Response(200, json={"data": {"id": media_id, "media_key": f"3_{media_id}"}})

    def metadata(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"id": json.loads(request.content)["id"]}})

    fake = FakeX({("POST", "/2/media/upload"): upload, ("POST", "/2/media/metadata"): metadata,
                  ("POST", "/2/tweets"): created})
    images = []
    for i in range(5):
        path = tmp_path / f"kue{i}.jpg"
        path.write_bytes(b"\xff\xd8\xff\xe0" + bytes([i]) * 64)
        images.append(Media.from_path(path, alt_text=f"Kue {i}" if i != 1 else None))
    await make(fake).publish(post_factory(image=images[0], more_images=tuple(images[1:])))
    uploads = [r for r in fake.requests if r.url.path == "/2/media/upload"]
    assert [multipart_fields(r)["media"][0] for r in uploads] == ["kue0.jpg", "kue1.jpg", "kue2.jpg", "kue3.jpg"]
    alts = [json.loads(r.content) for r in fake.requests if r.url.path == "/2/media/metadata"]
    assert [(a["id"], a["metadata"]["alt_text"]["text"]) for a in alts] == [
        ("1880028106020515841", "Kue 0"), ("1880028106020515843", "Kue 2"), ("1880028106020515844", "Kue 3")]
    tweet = json.loads(fake.requests[-1].content)
    assert tweet["media"] == {"media_ids": ["1880028106020515841", "1880028106020515842", "1880028106020515843",
                                            "1880028106020515844"]}


def _jpeg(tmp_path) -> Media:
    img = tmp_path / "kue.jpg"
    img.write_bytes(b"\xff\xd8\xff\xe0" + b"0" * 64)
    return Media.from_path(img)


async def test_media_still_processing_is_polled_until_it_succeeds(post_factory, tmp_path):
    states = iter(["in_progress", "succeeded"])

    def status(request):
        return httpx.Response(200, json={"data": {"id": MEDIA_ID, "processing_info": {"state": next(states),
                                                                                       "check_after_secs": 5}}})

    pending = httpx.Response(200, json={"data": {"id": MEDIA_ID, "processing_info": {"state": "pending",
                                                                                      "check_after_secs": 5}}})
    fake = FakeX({("POST", "/2/media/upload"): pending, ("GET", "/2/media/upload"): status,
                  ("POST", "/2/tweets"): created})
    await make(fake, {**OAUTH2, "POLL_INTERVAL": "0"}).publish(post_factory(image=_jpeg(tmp_path)))
    assert fake.paths() == ["POST /2/media/upload", "GET /2/media/upload", "GET /2/media/upload", "POST /2/tweets"]
    assert dict(fake.requests[1].url.params) == {"command": "STATUS", "media_id": MEDIA_ID}


async def test_media_processing_failure_is_rejected_and_endless_processing_is_transient(post_factory, tmp_path):
    failed = httpx.Response(200, json={"data": {"id": MEDIA_ID, "processing_info": {"state": "failed"}}})
    fake = FakeX({("POST", "/2/media/upload"): failed})
    with pytest.raises(errors.RejectedContent):
        await make(fake).publish(post_factory(image=_jpeg(tmp_path)))
    pending = httpx.Response(200, json={"data": {"id": MEDIA_ID, "processing_info": {"state": "pending"}}})
    fake = FakeX({("POST", "/2/media/upload"): pending, ("GET", "/2/media/upload"): pending})
    with pytest.raises(errors.Transient):
        await make(fake, {**OAUTH2, "POLL_INTERVAL": "0", "POLL_ATTEMPTS": "3"}).publish(post_factory(image=_jpeg(tmp_path)))
    assert fake.paths().count("GET /2/media/upload") == 3


async def test_gif_goes_through_the_chunked_upload_as_tweet_gif_and_waits_for_processing(post_factory, tmp_path, monkeypatch):
    monkeypatch.setattr("scheduler.platforms.x.CHUNK_BYTES", 64)
    gif = tmp_path / "kue.gif"
    gif.write_bytes(b"GIF89a" + bytes(range(144)))  # 150 bytes: three segments of at most 64
    statuses = iter(["in_progress", "succeeded"])

    def status(request):
        return httpx.Response(200, json={"data": {"id": MEDIA_ID, "media_key": f"16_{MEDIA_ID}", "processing_info": {
            "state": next(statuses), "check_after_secs": 1, "progress_percent": 50}}})

    fake = FakeX({
        ("POST", "/2/media/upload/initialize"): httpx.Response(200, json={"data": {
            "id": MEDIA_ID, "media_key": f"16_{MEDIA_ID}", "expires_after_secs": 86399}}),
        ("POST", f"/2/media/upload/{MEDIA_ID}/append"): httpx.Response(200, json={"data": {"expires_at": 1772500000}}),
        ("POST", f"/2/media/upload/{MEDIA_ID}/finalize"): httpx.Response(200, json={"data": {
            "id": MEDIA_ID, "media_key": f"16_{MEDIA_ID}", "size": 150, "expires_after_secs": 86399,
            "processing_info": {"state": "pending", "check_after_secs": 1}}}),
        ("GET", "/2/media/upload"): status,
        ("POST", "/2/media/metadata"): httpx.Response(200, json={"data": {
            "id": MEDIA_ID, "associated_metadata": {"alt_text": {"text": "Kue berputar"}}}}),
        ("POST", "/2/tweets"): created,
    })
    result = await make(fake, {**OAUTH2, "POLL_INTERVAL": "0"}).publish(
        post_factory(image=Media.from_path(gif, alt_text="Kue berputar")))
    append = f"POST /2/media/upload/{MEDIA_ID}/append"
    assert fake.paths() == ["POST /2/media/upload/initialize", append, append, append,
                            f"POST /2/media/upload/{MEDIA_ID}/finalize", "GET /2/media/upload", "GET /2/media/upload",
                            "POST /2/media/metadata", "POST /2/tweets"]
    init = fake.requests[0]
    assert json.loads(init.content) == {"media_type": "image/gif", "total_bytes": 150, "media_category": "tweet_gif"}
    segments = [json.loads(r.content) for r in fake.requests[1:4]]
    assert [seg["segment_index"] for seg in segments] == [0, 1, 2]
    assert b"".join(base64.b64decode(seg["media"]) for seg in segments) == gif.read_bytes()
    assert dict(fake.requests[5].url.params) == {"command": "STATUS", "media_id": MEDIA_ID}
    assert json.loads(fake.requests[-1].content) == {"text": TEXT, "media": {"media_ids": [MEDIA_ID]}}
    assert result.remote_id == TWEET_ID
    assert all(r.url.path != "/2/media/upload" or r.method == "GET" for r in fake.requests)  # never one-shot


async def test_gif_processing_failure_is_rejected_and_nothing_is_posted(post_factory, tmp_path):
    gif = tmp_path / "kue.gif"
    gif.write_bytes(b"GIF89a" + b"0" * 20)
    fake = FakeX({
        ("POST", "/2/media/upload/initialize"): httpx.Response(200, json={"data": {"id": MEDIA_ID}}),
        ("POST", f"/2/media/upload/{MEDIA_ID}/append"): httpx.Response(200, json={"data": {}}),
        ("POST", f"/2/media/upload/{MEDIA_ID}/finalize"): httpx.Response(200, json={"data": {
            "id": MEDIA_ID, "processing_info": {"state": "failed"}}}),
    })
    with pytest.raises(errors.RejectedContent):
        await make(fake).publish(post_factory(image=Media.from_path(gif)))
    assert "POST /2/tweets" not in fake.paths()


async def test_rejected_alt_text_does_not_lose_the_post(post_factory, tmp_path):
    img = tmp_path / "kue.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 32)
    fake = FakeX({("POST", "/2/media/upload"): httpx.Response(200, json={"data": {"id": MEDIA_ID}}),
                  ("POST", "/2/media/metadata"): problem(400, "Invalid alt text",
                                                         "https://api.x.com/2/problems/invalid-request",
                                                         "Invalid Request"),
                  ("POST", "/2/tweets"): created})
    result = await make(fake).publish(post_factory(image=Media.from_path(img, alt_text="alt")))
    assert result.remote_id == TWEET_ID


# --- OAuth 1.0a --------------------------------------------------------------------


def _pct(value: str) -> str:
    return urllib.parse.quote(value, safe="~-._")


def expected_signature(request: httpx.Request, params: dict[str, str]) -> str:
    """RFC 5849 HMAC-SHA1, computed independently of authlib to check its header."""
    pairs = [(k, v) for k, v in params.items() if k != "oauth_signature"]
    pairs += urllib.parse.parse_qsl(request.url.query.decode(), keep_blank_values=True)
    normalized = "&".join(f"{k}={v}" for k, v in sorted((_pct(k), _pct(v)) for k, v in pairs))
    base_url = f"{request.url.scheme}://{request.url.host}{request.url.path}"
    base = "&".join([request.method, _pct(base_url), _pct(normalized)])
    key = f"{_pct(OAUTH1['API_SECRET'])}&{_pct(OAUTH1['ACCESS_SECRET'])}"
    return base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()).decode()


def oauth_params(request: httpx.Request) -> dict[str, str]:
    header = request.headers["authorization"]
    assert header.startswith("OAuth ")
    items = (p.strip().split("=", 1) for p in header[6:].split(","))
    return {k: urllib.parse.unquote(v.strip('"')) for k, v in items}


async def test_oauth1_signs_with_the_user_context_keys_and_keeps_the_json_body(post_factory):
    fake = FakeX({("POST", "/2/tweets"): created})
    await make(fake, OAUTH1).publish(post_factory())
    [request] = fake.requests
    params = oauth_params(request)
    assert params["oauth_consumer_key"] == OAUTH1["API_KEY"]
    assert params["oauth_token"] == OAUTH1["ACCESS_TOKEN"]
    assert params["oauth_signature_method"] == "HMAC-SHA1"
    assert params["oauth_version"] == "1.0"
    assert "oauth_body_hash" not in params  # X signs no JSON body
    assert params["oauth_signature"] == expected_signature(request, params)
    assert json.loads(request.content) == {"text": TEXT}


async def test_oauth1_signature_covers_query_parameters(post_factory):
    fake = FakeX({("GET", "/2/users/me"): httpx.Response(200, json=ME),
                  ("GET", "/2/users/2244994945/tweets"): httpx.Response(200, json={"meta": {"result_count": 0}})})
    assert await make(fake, OAUTH1).reconcile(post_factory()) is None
    lookup = fake.requests[1]
    assert lookup.url.params["exclude"] == "replies,retweets"
    params = oauth_params(lookup)
    assert params["oauth_signature"] == expected_signature(lookup, params)


def test_options_name_what_is_missing():
    assert XAdapter.validate_options(OAUTH1) == []
    assert XAdapter.validate_options(OAUTH2) == []
    assert XAdapter.validate_options({"ACCESS_TOKEN": "t"}) == []
    [p] = XAdapter.validate_options({"API_KEY": "k", "API_SECRET": "s", "ACCESS_TOKEN": "t"})
    assert "ACCESS_SECRET" in p
    [p] = XAdapter.validate_options({"ACCESS_TOKEN": "t", "REFRESH_TOKEN": "r"})
    assert "CLIENT_ID" in p
    [p] = XAdapter.validate_options({})
    assert "ACCESS_TOKEN" in p and "API_KEY" in p


# --- OAuth 2.0 refresh -------------------------------------------------------------


def assert_refresh_request(request: httpx.Request, refresh_token: str) -> None:
    assert request.method == "POST" and request.url.path == "/2/oauth2/token"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    expected = base64.b64encode(f"{OAUTH2['CLIENT_ID']}:{OAUTH2['CLIENT_SECRET']}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert dict(urllib.parse.parse_qsl(request.content.decode())) == {
        "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": OAUTH2["CLIENT_ID"]}


@time_machine.travel(NOW, tick=False)
async def test_token_expiring_soon_is_refreshed_first_and_the_rotated_pair_is_stored(post_factory):
    state = {STATE_ACCESS: "SECRET-stored-access", STATE_REFRESH: "SECRET-stored-refresh",
             STATE_EXPIRES: str(int(NOW.timestamp()) + 60), STATE_ORIGIN: origin(OAUTH2)}
    fake = FakeX({("POST", "/2/oauth2/token"): token_ok, ("POST", "/2/tweets"): created})
    adapter = make(fake, state=state)
    await adapter.publish(post_factory())
    token, tweet = fake.requests
    assert_refresh_request(token, "SECRET-stored-refresh")
    assert tweet.headers["authorization"] == "Bearer SECRET-new-access"
    assert adapter.ctx.state.values == {STATE_ACCESS: "SECRET-new-access", STATE_REFRESH: "SECRET-new-refresh",
                                        STATE_EXPIRES: str(int(NOW.timestamp()) + 7200),
                                        STATE_ORIGIN: origin(OAUTH2)}


@time_machine.travel(NOW, tick=False)
async def test_a_fresh_stored_token_is_used_without_refreshing(post_factory):
    state = {STATE_ACCESS: "SECRET-stored-access", STATE_REFRESH: "SECRET-stored-refresh",
             STATE_EXPIRES: str(int(NOW.timestamp()) + 3600), STATE_ORIGIN: origin(OAUTH2)}
    fake = FakeX({("POST", "/2/tweets"): created})
    await make(fake, state=state).publish(post_factory())
    assert fake.requests[0].headers["authorization"] == "Bearer SECRET-stored-access"


async def test_stored_tokens_from_older_options_are_ignored(post_factory):
    # The operator re-authorised and pasted new tokens: the old state must not win any more.
    state = {STATE_ACCESS: "SECRET-stale-access", STATE_REFRESH: "SECRET-stale-refresh",
             STATE_ORIGIN: origin({"ACCESS_TOKEN": "old", "REFRESH_TOKEN": "old"})}
    fake = FakeX({("POST", "/2/tweets"): created})
    await make(fake, state=state).publish(post_factory())
    assert fake.requests[0].headers["authorization"] == "Bearer SECRET-x-access-token"


@time_machine.travel(NOW, tick=False)
async def test_401_refreshes_once_and_resends(post_factory):
    calls = iter([problem(401, "Unauthorized", title="Unauthorized"), None])

    def tweets(request):
        return next(calls) or created(request)

    fake = FakeX({("POST", "/2/oauth2/token"): token_ok, ("POST", "/2/tweets"): tweets})
    adapter = make(fake)
    result = await adapter.publish(post_factory())
    assert fake.paths() == ["POST /2/tweets", "POST /2/oauth2/token", "POST /2/tweets"]
    assert_refresh_request(fake.requests[1], OAUTH2["REFRESH_TOKEN"])
    assert fake.requests[2].headers["authorization"] == "Bearer SECRET-new-access"
    assert result.remote_id == TWEET_ID
    assert adapter.ctx.state.get(STATE_REFRESH) == "SECRET-new-refresh"


async def test_401_after_a_refresh_is_an_auth_error(post_factory):
    fake = FakeX({("POST", "/2/oauth2/token"): token_ok,
                  ("POST", "/2/tweets"): problem(401, "Unauthorized", title="Unauthorized")})
    with pytest.raises(errors.AuthError) as info:
        await make(fake).publish(post_factory())
    assert fake.paths() == ["POST /2/tweets", "POST /2/oauth2/token", "POST /2/tweets"]
    no_secret(info.value)


async def test_refused_refresh_is_an_auth_error_with_the_reason(post_factory):
    fake = FakeX({("POST", "/2/oauth2/token"): httpx.Response(400, json={
        "error": "invalid_request", "error_description": "Value passed for the token was invalid."}),
        ("POST", "/2/tweets"): problem(401, "Unauthorized", title="Unauthorized")})
    with pytest.raises(errors.AuthError) as info:
        await make(fake).publish(post_factory())
    assert "refresh" in str(info.value) and "Value passed for the token was invalid." in str(info.value)
    assert info.value.status == 400
    no_secret(info.value)


async def test_401_without_a_way_to_refresh_is_an_auth_error(post_factory):
    fake = FakeX({("POST", "/2/tweets"): problem(401, "Unauthorized", title="Unauthorized")})
    with pytest.raises(errors.AuthError) as info:
        await make(fake, {"ACCESS_TOKEN": "SECRET-only-access"}).publish(post_factory())
    assert fake.paths() == ["POST /2/tweets"]
    no_secret(info.value)


async def test_refresh_that_times_out_is_transient_not_unknown(post_factory):
    def token(request):
        raise httpx.ReadTimeout("timed out", request=request)

    fake = FakeX({("POST", "/2/oauth2/token"): token,
                  ("POST", "/2/tweets"): problem(401, "Unauthorized", title="Unauthorized")})
    with pytest.raises(errors.Transient) as info:
        await make(fake).publish(post_factory())
    no_secret(info.value)


@time_machine.travel(NOW, tick=False)
async def test_concurrent_publishes_refresh_once(post_factory):
    state = {STATE_ACCESS: "SECRET-stored-access", STATE_REFRESH: "SECRET-stored-refresh",
             STATE_EXPIRES: str(int(NOW.timestamp()) - 10), STATE_ORIGIN: origin(OAUTH2)}
    fake = FakeX({("POST", "/2/oauth2/token"): token_ok, ("POST", "/2/tweets"): created})
    adapter = make(fake, state=state)
    await asyncio.gather(adapter.publish(post_factory()), adapter.publish(post_factory(post_id=8)))
    assert fake.paths().count("POST /2/oauth2/token") == 1
    assert [r.headers["authorization"] for r in fake.requests if r.url.path == "/2/tweets"] == [
        "Bearer SECRET-new-access"] * 2


# --- errors ------------------------------------------------------------------------


async def raised(response: httpx.Response, route: tuple[str, str] = ("POST", "/2/tweets"),
                 image: Media | None = None) -> errors.PublishError:
    fake = FakeX({("POST", "/2/media/upload"): httpx.Response(200, json={"data": {"id": MEDIA_ID}}),
                  ("POST", "/2/tweets"): created, route: response})
    with pytest.raises(errors.PublishError) as info:
        await make(fake, {"ACCESS_TOKEN": "SECRET-only-access"}).publish(make_post(POST_DEFAULTS, image=image))
    no_secret(info.value)
    return info.value


async def test_429_waits_until_x_rate_limit_reset_exactly():
    exc = await raised(httpx.Response(429, json={"title": "Too Many Requests", "detail": "Too Many Requests",
                                                 "type": "about:blank", "status": 429},
                                      headers={"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                                               "x-rate-limit-reset": "1772413200"}))
    assert isinstance(exc, errors.RateLimited)
    assert exc.retry_at == dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


async def test_429_on_the_24_hour_user_limit_waits_for_that_reset():
    exc = await raised(httpx.Response(429, json={"title": "Too Many Requests", "detail": "Too Many Requests",
                                                 "type": "about:blank", "status": 429},
                                      headers={"x-rate-limit-remaining": "99", "x-rate-limit-reset": "1772413200",
                                               "x-user-limit-24hour-limit": "17",
                                               "x-user-limit-24hour-remaining": "0",
                                               "x-user-limit-24hour-reset": "1772496000"}))
    assert isinstance(exc, errors.RateLimited)
    assert exc.retry_at == dt.datetime(2026, 3, 3, 0, 0, tzinfo=dt.UTC)


@time_machine.travel(NOW, tick=False)
async def test_usage_cap_without_reset_header_waits_an_hour():
    exc = await raised(httpx.Response(429, json={
        "title": "UsageCapExceeded", "detail": "Usage cap exceeded: Monthly product cap",
        "type": "https://api.x.com/2/problems/usage-capped", "period": "Monthly", "scope": "Product"},
        headers={"content-type": "application/problem+json"}))
    assert isinstance(exc, errors.RateLimited)
    assert exc.retry_at == NOW + dt.timedelta(hours=1)
    assert "Usage cap exceeded" in str(exc)


async def test_403_duplicate_content_is_a_duplicate_without_an_id():
    exc = await raised(problem(403, "You are not allowed to create a Tweet with duplicate content."))
    assert type(exc) is errors.Duplicate
    assert exc.remote_id is None and exc.status == 403


async def test_other_403_is_rejected_content_with_the_detail():
    exc = await raised(problem(403, "You are not permitted to perform this action."))
    assert type(exc) is errors.RejectedContent
    assert "You are not permitted to perform this action." in str(exc)


async def test_403_client_forbidden_is_an_auth_error():
    exc = await raised(httpx.Response(403, json={
        "client_id": "123", "required_enrollment": "Appropriate Level of API Access",
        "registration_url": "https://developer.x.com/en/portal/product", "title": "Client Forbidden",
        "detail": "This request must be made using an approved developer account that is enrolled in the "
                  "requested endpoint.", "reason": "client-not-enrolled",
        "type": "https://api.x.com/2/problems/client-forbidden"}))
    assert type(exc) is errors.AuthError


async def test_403_oauth1_permissions_under_the_old_domain_is_an_auth_error():
    exc = await raised(problem(403, "Your client app is not configured with the appropriate oauth1 app permissions "
                               "for this endpoint.", "https://api.twitter.com/2/problems/oauth1-permissions"))
    assert type(exc) is errors.AuthError


@time_machine.travel(NOW, tick=False)
async def test_usage_cap_is_recognised_under_the_old_domain_too():
    exc = await raised(problem(403, "Usage cap exceeded: Daily user cap",
                               "https://api.twitter.com/2/problems/usage-capped", "UsageCapExceeded"))
    assert isinstance(exc, errors.RateLimited)
    assert exc.retry_at == NOW + dt.timedelta(hours=1)


async def test_400_invalid_request_is_rejected_with_the_problem_detail():
    body = {"detail": "One or more parameters to your request was invalid.", "title": "Invalid Request",
            "type": "https://api.x.com/2/problems/invalid-request", "status": 400}
    x_openapi.validate_problem(body)
    exc = await raised(httpx.Response(400, json=body, headers={"content-type": "application/problem+json"}))
    assert type(exc) is errors.RejectedContent
    assert "One or more parameters to your request was invalid." in str(exc)


async def test_success_status_with_only_errors_is_rejected():
    exc = await raised(httpx.Response(201, json={"errors": [{
        "type": "https://api.x.com/2/problems/invalid-request", "title": "Invalid Request",
        "detail": "The Tweet contains an invalid URL."}]}))
    assert type(exc) is errors.RejectedContent
    assert "invalid URL" in str(exc)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_on_create_are_unknown_outcomes(status):
    # On a real outage the post may exist: the dispatcher reads the timeline before any resend.
    exc = await raised(problem(status, "Service Unavailable", title="Service Unavailable"))
    assert type(exc) is errors.UnknownOutcome and exc.status == status


@pytest.mark.parametrize("status", [500, 503, 504])
async def test_server_error_on_upload_is_transient(tmp_path, status):
    exc = await raised(httpx.Response(status, text="Internal Server Error"), ("POST", "/2/media/upload"),
                       image=_jpeg(tmp_path))
    assert type(exc) is errors.Transient


async def test_transport_failures_never_show_tokens(post_factory):
    def refuse(request):
        raise httpx.ConnectError(f"cannot connect: {request.headers['authorization']}", request=request)

    with pytest.raises(errors.Transient) as info:
        await make(FakeX({("POST", "/2/tweets"): refuse})).publish(post_factory())
    no_secret(info.value)

    def timeout(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(errors.UnknownOutcome) as info:
        await make(FakeX({("POST", "/2/tweets"): timeout})).publish(post_factory())
    no_secret(info.value)


# --- check and reconcile -----------------------------------------------------------


async def test_check_asks_who_we_are():
    fake = FakeX({("GET", "/2/users/me"): httpx.Response(200, json=ME)})
    assert await make(fake).check() == "@kotabalikpapan (Kota Balikpapan, user id 2244994945, OAuth 2.0)"
    [request] = fake.requests
    assert str(request.url) == "https://api.x.com/2/users/me"
    assert request.headers["authorization"] == "Bearer SECRET-x-access-token"


async def test_check_with_a_bad_token_is_an_auth_error_and_unreachable_is_transient():
    fake = FakeX({("GET", "/2/users/me"): problem(401, "Unauthorized", title="Unauthorized")})
    with pytest.raises(errors.AuthError):
        await make(fake, {"ACCESS_TOKEN": "SECRET-only-access"}).check()

    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(errors.Transient):
        await make(FakeX({("GET", "/2/users/me"): refuse})).check()


def timeline(*tweets: dict, next_token: str | None = None) -> httpx.Response:
    meta: dict = {"result_count": len(tweets)}
    if tweets:
        meta.update(newest_id=tweets[0]["id"], oldest_id=tweets[-1]["id"])
    if next_token:
        meta["next_token"] = next_token
    return httpx.Response(200, json={"data": list(tweets), "meta": meta} if tweets else {"meta": meta})


@time_machine.travel(NOW + dt.timedelta(minutes=5), tick=False)
async def test_reconcile_finds_the_post_as_x_shows_it_back(post_factory):
    shown = ("Kue Lapis &amp; Bolu cuma Rp 25.000! https://t.co/AbCdEf1234 #UMKM #Balikpapan "
             "https://t.co/MeDiA98765")
    fake = FakeX({("GET", "/2/users/me"): httpx.Response(200, json=ME),
                  ("GET", "/2/users/2244994945/tweets"): timeline(
                      {"id": "1445880548472328199", "text": "Another post", "edit_history_post_ids": ["1"]},
                      {"id": TWEET_ID, "text": shown, "created_at": "2026-03-02T01:00:03.000Z",
                       "edit_history_post_ids": [TWEET_ID]})})
    found = await make(fake).reconcile(
        post_factory(text="Kue Lapis & Bolu cuma Rp 25.000! https://umkm.example/kue #UMKM #Balikpapan"))
    assert found is not None
    assert found.remote_id == TWEET_ID
    assert found.remote_url == f"https://x.com/kotabalikpapan/status/{TWEET_ID}"
    lookup = fake.requests[1]
    assert dict(lookup.url.params) == {"max_results": "100", "start_time": "2026-03-02T00:00:00Z",
                                       "tweet.fields": "created_at", "exclude": "replies,retweets"}


@time_machine.travel(NOW + dt.timedelta(days=3), tick=False)
async def test_reconcile_looks_back_to_the_first_attempt_not_to_when_the_post_was_queued(post_factory):
    # Queued three days ahead: only posts since the first send attempt (less skew) can be ours.
    fake = FakeX({("GET", "/2/users/me"): httpx.Response(200, json=ME),
                  ("GET", "/2/users/2244994945/tweets"): timeline()})
    first = NOW + dt.timedelta(days=3, minutes=-2)
    assert await make(fake).reconcile(post_factory(attempted_at=first)) is None
    assert fake.requests[1].url.params["start_time"] == (first - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_reconcile_says_none_when_the_post_is_not_there_and_unknown_when_it_cannot_tell(post_factory):
    routes = {("GET", "/2/users/me"): httpx.Response(200, json=ME),
              ("GET", "/2/users/2244994945/tweets"): timeline(
                  {"id": "1445880548472328199", "text": "Another post", "edit_history_post_ids": ["1"]})}
    assert await make(FakeX(routes)).reconcile(post_factory()) is None
    routes[("GET", "/2/users/2244994945/tweets")] = timeline(
        {"id": "1445880548472328199", "text": "Another post", "edit_history_post_ids": ["1"]},
        next_token="7140dibdnow9c7btw423x")
    with pytest.raises(errors.UnknownOutcome):
        await make(FakeX(routes)).reconcile(post_factory())
    routes[("GET", "/2/users/2244994945/tweets")] = problem(503, "Service Unavailable", title="Service Unavailable")
    with pytest.raises(errors.UnknownOutcome):
        await make(FakeX(routes)).reconcile(post_factory())
    routes[("GET", "/2/users/2244994945/tweets")] = httpx.Response(
        429, json={"title": "Too Many Requests", "type": "about:blank", "status": 429, "detail": "Too Many Requests"},
        headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": "1772413200"})
    with pytest.raises(errors.RateLimited):
        await make(FakeX(routes)).reconcile(post_factory())


def test_comparable_ignores_what_x_changes():
    assert comparable("A &amp; B https://t.co/x1 #UMKM") == comparable("A & B  https://umkm.example/kue #UMKM")
    assert comparable("A & B") != comparable("A & C")


async def test_openapi_validation_catches_a_wrong_request():
    # The helper must be able to fail: a numeric media id is not what X's schema allows.
    bad = httpx.Request("POST", "https://api.x.com/2/tweets", json={"text": "x", "media": {"media_ids": [1]}},
                        headers={"Authorization": "Bearer t"})
    with pytest.raises(Exception, match="not of type 'string'"):
        x_openapi.validate_request(bad)
