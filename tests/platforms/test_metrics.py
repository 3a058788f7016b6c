"""Each adapter's engagement read-back against a strict fake: the exact request (path, query,
credentials in a header), the documented response fields, batches, deleted posts, typed errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from scheduler import errors
from scheduler.platforms import PLATFORMS, adapter_class
from scheduler.platforms.base import COMMON_METRICS, ChannelContext, Gone, MemoryState

BASE = "http://127.0.0.1:9"
Handler = Callable[[httpx.Request], httpx.Response]


def make(platform: str, options: dict[str, str], handler: Handler, state: dict[str, str] | None = None) -> Any:
    ctx = ChannelContext(name="m", options={"BASE_URL": BASE, **options}, state=MemoryState(state))
    return adapter_class(platform)(ctx, httpx.AsyncClient(transport=httpx.MockTransport(handler)))


class Strict:
    """Answers (method, path) → a function of the request; anything else fails the test."""

    def __init__(self, routes: dict[tuple[str, str], Handler]):
        self.routes = routes
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        return route(request)


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_every_adapter_declares_its_metrics_and_maps_to_the_common_vocabulary(platform: str) -> None:
    cls = adapter_class(platform)
    assert "metrics" in vars(cls) or any("metrics" in vars(b) for b in cls.__mro__[1:-1] if b.__name__ != "Adapter")
    spec = cls.metrics
    assert set(spec.names.values()) <= set(COMMON_METRICS)
    if spec.available:
        assert spec.batch >= 1 and spec.requests_per_run >= 1 and spec.source and spec.needs
    else:
        assert spec.source, "a platform without counters says why"
    assert spec.available == (platform not in {"discord", "telegram", "outbox", "webhook"})


# --- Mastodon -------------------------------------------------------------------------------

async def test_mastodon_reads_each_status_and_a_404_is_gone() -> None:
    def status(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer SECRET-m"
        return httpx.Response(200, json={"id": "11", "favourites_count": 7, "reblogs_count": 2,
                                         "replies_count": 1, "content": "<p>x</p>"})

    fake = Strict({("GET", "/api/v1/statuses/11"): status,
                   ("GET", "/api/v1/statuses/12"): lambda r: httpx.Response(404, json={"error": "Record not found"})})
    a = make("mastodon", {"ACCESS_TOKEN": "SECRET-m"}, fake)
    got = await a.fetch_metrics(["11", "12"])
    assert got["11"] == {"favourites_count": 7, "reblogs_count": 2, "replies_count": 1}
    assert isinstance(got["12"], Gone)
    assert [r.url.params for r in fake.sent] == [httpx.QueryParams(), httpx.QueryParams()]


async def test_mastodon_rate_limit_and_revoked_token_are_typed_errors() -> None:
    limited = Strict({("GET", "/api/v1/statuses/11"): lambda r: httpx.Response(
        429, json={"error": "Too many requests"}, headers={"X-RateLimit-Reset": "2030-01-01T00:00:00.000Z"})})
    with pytest.raises(errors.RateLimited) as exc:
        await make("mastodon", {"ACCESS_TOKEN": "SECRET-m"}, limited).fetch_metrics(["11"])
    assert exc.value.retry_at.year == 2030
    revoked = Strict({("GET", "/api/v1/statuses/11"): lambda r: httpx.Response(
        401, json={"error": "The access token was revoked"})})
    with pytest.raises(errors.AuthError) as auth:
        await make("mastodon", {"ACCESS_TOKEN": "SECRET-m"}, revoked).fetch_metrics(["11"])
    assert "SECRET-m" not in str(auth.value)


# --- Bluesky --------------------------------------------------------------------------------

DID = "did:plc:abc"


def uri(n: int) -> str:
    return f"at://{DID}/app.bsky.feed.post/3k{n:03d}"


async def test_bluesky_asks_get_posts_for_up_to_25_uris_and_a_missing_one_is_gone() -> None:
    def get_posts(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer ACCESS"
        asked = request.url.params.get_list("uris")
        return httpx.Response(200, json={"posts": [
            {"uri": u, "cid": "bafy", "likeCount": 3, "repostCount": 1, "replyCount": 0, "quoteCount": 2,
             "indexedAt": "2026-08-30T01:02:03Z"} for u in asked if u != uri(5)]})

    fake = Strict({("GET", "/xrpc/app.bsky.feed.getPosts"): get_posts})
    state = {"accessJwt": "ACCESS", "refreshJwt": "REFRESH", "did": DID, "handle": "kota.test", "identifier": "kota.test"}
    a = make("bluesky", {"HANDLE": "kota.test", "APP_PASSWORD": "SECRET-app"}, fake, state)
    assert a.metrics.batch == 25
    uris = [uri(n) for n in range(25)]
    got = await a.fetch_metrics(uris)
    (request,) = fake.sent
    assert request.url.params.get_list("uris") == uris
    assert got[uri(0)] == {"likeCount": 3, "repostCount": 1, "replyCount": 0, "quoteCount": 2}
    assert isinstance(got[uri(5)], Gone)
    assert len(got) == 25


# --- X --------------------------------------------------------------------------------------

async def test_x_reads_public_metrics_for_up_to_100_ids_and_not_found_is_gone() -> None:
    def tweets(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer SECRET-x"
        assert request.url.params["tweet.fields"] == "public_metrics"
        ids = request.url.params["ids"].split(",")
        data = [{"id": i, "text": "…", "edit_history_tweet_ids": [i],
                 "public_metrics": {"retweet_count": 1, "reply_count": 2, "like_count": 30, "quote_count": 0,
                                    "bookmark_count": 4, "impression_count": 900}} for i in ids if i != "105"]
        return httpx.Response(200, json={"data": data, "errors": [{
            "value": "105", "detail": "Could not find tweet with ids: [105].", "title": "Not Found Error",
            "resource_type": "tweet", "parameter": "ids", "resource_id": "105",
            "type": "https://api.twitter.com/2/problems/resource-not-found"}]})

    fake = Strict({("GET", "/2/tweets"): tweets})
    a = make("x", {"ACCESS_TOKEN": "SECRET-x"}, fake)
    assert a.metrics.batch == 100
    ids = [str(100 + n) for n in range(100)]
    got = await a.fetch_metrics(ids)
    assert len(fake.sent) == 1 and fake.sent[0].url.params["ids"] == ",".join(ids)
    assert got["100"] == {"impression_count": 900, "like_count": 30, "retweet_count": 1, "reply_count": 2,
                          "quote_count": 0, "bookmark_count": 4}
    assert isinstance(got["105"], Gone)


async def test_x_on_a_tier_that_cannot_read_is_an_auth_error() -> None:
    fake = Strict({("GET", "/2/tweets"): lambda r: httpx.Response(403, json={
        "title": "Client Forbidden", "type": "https://api.twitter.com/2/problems/client-forbidden",
        "detail": "This request must be made using an approved developer account that is enrolled in the "
                  "requested endpoint.", "reason": "client-not-enrolled"})})
    with pytest.raises(errors.AuthError):
        await make("x", {"ACCESS_TOKEN": "SECRET-x"}, fake).fetch_metrics(["1"])


# --- Facebook, Instagram, Threads (Graph) --------------------------------------------------

GONE_BODY = {"error": {"message": "Unsupported get request. Object with ID '9' does not exist, cannot be loaded "
                       "due to missing permissions, or does not support this operation.",
                       "type": "GraphMethodException", "code": 100, "error_subcode": 33, "fbtrace_id": "A1"}}


async def test_facebook_reads_reaction_comment_and_share_counts_with_the_token_in_a_header() -> None:
    def post(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer SECRET-fb"
        assert "SECRET" not in str(request.url)
        assert request.url.params["fields"] == "reactions.summary(true),comments.summary(true),shares"
        return httpx.Response(200, json={
            "reactions": {"data": [], "summary": {"total_count": 12, "viewer_reaction": "NONE"}},
            "comments": {"data": [], "summary": {"order": "ranked", "total_count": 3, "can_comment": True}},
            "shares": {"count": 2}, "id": "104_1"})

    fake = Strict({("GET", "/v21.0/104_1"): post,
                   ("GET", "/v21.0/104_2"): lambda r: httpx.Response(200, json={
                       "reactions": {"data": [], "summary": {"total_count": 0}},
                       "comments": {"data": [], "summary": {"total_count": 0}}, "id": "104_2"}),
                   ("GET", "/v21.0/104_9"): lambda r: httpx.Response(400, json=GONE_BODY)})
    a = make("facebook", {"PAGE_ID": "104", "ACCESS_TOKEN": "SECRET-fb"}, fake)
    got = await a.fetch_metrics(["104_1", "104_2", "104_9"])
    assert got["104_1"] == {"reactions": 12, "comments": 3, "shares": 2}
    assert got["104_2"] == {"reactions": 0, "comments": 0, "shares": 0}  # Graph leaves out shares at 0
    assert isinstance(got["104_9"], Gone)


async def test_facebook_throttling_is_rate_limited() -> None:
    fake = Strict({("GET", "/v21.0/104_1"): lambda r: httpx.Response(400, json={"error": {
        "message": "(#32) Page request limit reached", "type": "OAuthException", "code": 32}})})
    with pytest.raises(errors.RateLimited):
        await make("facebook", {"PAGE_ID": "104", "ACCESS_TOKEN": "SECRET-fb"}, fake).fetch_metrics(["104_1"])


def insights(request: httpx.Request, names: list[str]) -> httpx.Response:
    assert request.url.params["metric"] == ",".join(names)
    # Instagram and Threads answer "values" for some metrics and "total_value" for others.
    data = [{"name": n, "period": "lifetime", "title": n, "id": f"1/insights/{n}/lifetime",
             **({"values": [{"value": 10 + i}]} if i % 2 == 0 else {"total_value": {"value": 10 + i}})}
            for i, n in enumerate(names)]
    return httpx.Response(200, json={"data": data})


async def test_instagram_reads_media_insights() -> None:
    names = ["reach", "likes", "comments", "saved", "shares", "views"]
    fake = Strict({("GET", "/v21.0/1790/insights"): lambda r: insights(r, names),
                   ("GET", "/v21.0/1791/insights"): lambda r: httpx.Response(400, json=GONE_BODY)})
    a = make("instagram", {"IG_USER_ID": "1784", "ACCESS_TOKEN": "SECRET-ig", "GRAPH_HOST": "graph.facebook.com"},
             fake)
    got = await a.fetch_metrics(["1790", "1791"])
    assert got["1790"] == {"reach": 10, "likes": 11, "comments": 12, "saved": 13, "shares": 14, "views": 15}
    assert isinstance(got["1791"], Gone)
    assert all(r.headers["authorization"] == "Bearer SECRET-ig" for r in fake.sent)


async def test_threads_reads_media_insights() -> None:
    names = ["views", "likes", "replies", "reposts", "quotes"]
    fake = Strict({("GET", "/v1.0/1805/insights"): lambda r: insights(r, names)})
    a = make("threads", {"USER_ID": "1784", "ACCESS_TOKEN": "SECRET-th"}, fake)
    got = await a.fetch_metrics(["1805"])
    assert got["1805"] == {"views": 10, "likes": 11, "replies": 12, "reposts": 13, "quotes": 14}


# --- LinkedIn -------------------------------------------------------------------------------

async def test_linkedin_reads_social_actions_per_post() -> None:
    urn = "urn:li:share:7141138937766391808"

    def social(request: httpx.Request) -> httpx.Response:
        assert request.url.raw_path.decode() == "/rest/socialActions/urn%3Ali%3Ashare%3A7141138937766391808"
        assert request.headers["x-restli-protocol-version"] == "2.0.0" and request.headers["linkedin-version"]
        return httpx.Response(200, json={
            "likesSummary": {"totalLikes": 9, "likedByCurrentUser": False},
            "commentsSummary": {"aggregatedTotalComments": 4, "totalFirstLevelComments": 3}, "target": urn})

    fake = Strict({("GET", f"/rest/socialActions/{urn}"): social,
                   ("GET", "/rest/socialActions/urn:li:share:1"): lambda r: httpx.Response(
                       404, json={"status": 404, "message": "Not Found"})})
    a = make("linkedin", {"ORGANIZATION_ID": "2414183", "ACCESS_TOKEN": "SECRET-li"}, fake)
    got = await a.fetch_metrics([urn, "urn:li:share:1"])
    assert got[urn] == {"totalLikes": 9, "aggregatedTotalComments": 4}
    assert isinstance(got["urn:li:share:1"], Gone)


# --- none -----------------------------------------------------------------------------------

@pytest.mark.parametrize("platform", ["discord", "telegram", "outbox", "webhook"])
async def test_platforms_without_counters_ask_nothing(platform: str) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(json.dumps(str(request.url)))

    cls = adapter_class(platform)
    ctx = ChannelContext(name="n", options={}, state=MemoryState())
    assert await cls(ctx, httpx.AsyncClient(transport=httpx.MockTransport(refuse))).fetch_metrics(["1"]) == {}
