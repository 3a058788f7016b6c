"""The ``x`` platform: posts through X API v2 (``POST /2/tweets``, ``POST /2/media/upload``).

Images go up in one request as ``tweet_image``; a GIF goes through the chunked upload
(initialize, append, finalize, then status polling) as ``tweet_gif``, the only way X animates it.

Two ways to sign in as the posting account: an OAuth 2.0 user token (refreshed ahead of
expiry, rotating tokens kept in the channel state, see :mod:`x_auth`) or OAuth 1.0a user
context keys. X has no idempotency key, so after an unknown outcome :meth:`reconcile`
looks for the text among the account's recent posts.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import html
import logging
import unicodedata
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from scheduler.errors import (
    AuthError,
    Duplicate,
    PublishError,
    RateLimited,
    RejectedContent,
    Transient,
    UnknownOutcome,
)
from scheduler.platforms.base import (
    COMMON_IMAGES,
    MB,
    Adapter,
    ChannelContext,
    Gone,
    ImageRules,
    KeyDoc,
    Media,
    MetricsAnswer,
    MetricsSpec,
    PlatformRules,
    PublishResult,
    ReadyPost,
    SendBudget,
    epoch_to_utc,
    json_body,
    retry_at_from_headers,
    utcnow,
    with_link,
)
from scheduler.platforms.httpkit import before_publishing
from scheduler.platforms.x_auth import OAuth1Signer, OAuth2Tokens
from scheduler.textrules import TextRule, find_urls

if TYPE_CHECKING:  # imported where requests are made: reading the settings needs no HTTP client
    import httpx

log = logging.getLogger(__name__)

OAUTH1_KEYS = ("API_KEY", "API_SECRET", "ACCESS_TOKEN", "ACCESS_SECRET")
#: Problem types that mean the app or account, not this post, is the problem (api.x.com or api.twitter.com).
ACCESS_PROBLEMS = {"client-forbidden", "oauth1-permissions", "unsupported-authentication"}
#: Bytes per APPEND of the chunked upload (X accepts up to 5 MB per chunk).
CHUNK_BYTES = 1024 * 1024
#: How far before the first attempt reconcile looks (clock skew between us and X).
RECONCILE_LOOKBACK = dt.timedelta(hours=1)


class XAdapter(Adapter):
    """Publishes to X (Twitter) as the user whose token or keys are configured."""

    platform = "x"
    rules = PlatformRules(
        text=(TextRule(280, "x_weighted"),),
        # 5 MB, up to 4 photos per post. The 8192 px side is from X's media best practices (unconfirmed).
        images=ImageRules(formats=COMMON_IMAGES, max_bytes=5 * MB, max_side=8192, per_post=4, max_alt=1000),
        can_reconcile=True,
    )
    required_keys = (("ACCESS_TOKEN",), OAUTH1_KEYS)
    optional_keys = ("REFRESH_TOKEN", "CLIENT_ID", "CLIENT_SECRET", "USERNAME",
                     "POLL_INTERVAL", "POLL_ATTEMPTS")
    secret_keys = frozenset({"ACCESS_TOKEN", "REFRESH_TOKEN", "CLIENT_SECRET", "API_KEY", "API_SECRET",
                             "ACCESS_SECRET"})
    default_base_url = "https://api.x.com"
    help = ("X developer portal > Projects & Apps > your app > Keys and tokens: OAuth 2.0 "
            "CLIENT_ID/CLIENT_SECRET plus a user ACCESS_TOKEN/REFRESH_TOKEN, or API_KEY/API_SECRET "
            "with ACCESS_TOKEN/ACCESS_SECRET (read and write).")

    budget = (SendBudget(100, dt.timedelta(minutes=15), "POST /2/tweets: 100 per 15 min per user"),)
    token_keys = ("access_token", "refresh_token")
    token_keys_if = "REFRESH_TOKEN"
    metrics = MetricsSpec(
        {"impression_count": "views", "like_count": "likes", "retweet_count": "shares", "reply_count": "replies",
         "quote_count": "quotes", "bookmark_count": "saves"},
        batch=100, requests_per_run=5,
        source="GET /2/tweets?ids= (100 a call, tweet.fields=public_metrics); reading posts needs a paid tier "
               "(Basic: 15 calls per 15 min per user; Free cannot read)",
        needs="tweet.read users.read (OAuth 2.0) or a Read and write OAuth 1.0a token")
    doc_title = "X / Twitter (platform=x) ---"
    doc_setup = ("Keys: X developer portal (developer.x.com) > Projects & Apps > your app.\n"
                "The app's \"User authentication settings\" must allow \"Read and write\". Choose ONE of the two ways:\n"
                "  OAuth 2.0: Keys and tokens > OAuth 2.0 Client ID and Client Secret; the user ACCESS_TOKEN and\n"
                "    REFRESH_TOKEN come from the authorization-code (PKCE) flow with scopes\n"
                "    tweet.read tweet.write users.read media.write offline.access. X rotates the refresh token on every\n"
                "    refresh: the service keeps the newest pair (encrypted, in the database); change the values here only\n"
                "    after authorising again (the stored pair is then replaced by these).\n"
                "  OAuth 1.0a: Keys and tokens > API Key and Secret (consumer keys) plus Access Token and Secret\n"
                "    (generated for your own account, \"Read and write\").")
    doc_channel = "X_KOTA"
    key_docs = {
        "ACCESS_TOKEN": KeyDoc("OAuth 2.0 user access token (or, with OAuth 1.0a, the access token); required either way. Secret.", example="..."),
        "REFRESH_TOKEN": KeyDoc("OAuth 2.0 refresh token (scope offline.access); lets the service renew the 2-hour access token. Secret.", example="..."),
        "CLIENT_ID": KeyDoc("OAuth 2.0 Client ID (Keys and tokens > OAuth 2.0 Client ID and Client Secret); needed with REFRESH_TOKEN.", example="..."),
        "CLIENT_SECRET": KeyDoc("OAuth 2.0 Client Secret, for confidential (\"Web App, Automated App or Bot\") clients only. Secret.", example="..."),
        "API_KEY": KeyDoc("OAuth 1.0a API Key (consumer key); with API_SECRET and ACCESS_SECRET it selects OAuth 1.0a. Secret.", example="..."),
        "API_SECRET": KeyDoc("OAuth 1.0a API Key Secret (consumer secret). Secret.", example="..."),
        "ACCESS_SECRET": KeyDoc("OAuth 1.0a Access Token Secret (with ACCESS_TOKEN above). Secret.", example="..."),
        "USERNAME": KeyDoc("Optional: the account's @handle, for post links x.com/<handle>/status/<id> (default x.com/i/web/status/<id>).", example="kotabalikpapan"),
        "POLL_INTERVAL": KeyDoc("Optional: seconds between media-processing status checks (default: what X suggests)."),
        "POLL_ATTEMPTS": KeyDoc("Optional: how many media-processing status checks before giving up for now (default 10).", example="10"),
        "BUDGET": KeyDoc(("Optional: posts allowed per rolling window (default 100/15m, X's per-user limit on POST\n"
                          "/2/tweets). Lower it to what your plan allows, e.g. 50/24h; any channel takes _BUDGET."),
                         example="100/15m"),
        "BASE_URL": KeyDoc("Optional: scheme, host and port of the API, for tests (default https://api.x.com; the adapter adds /2/...).", example="https://api.x.com"),
    }

    def __init__(self, ctx: ChannelContext, http: httpx.AsyncClient):
        super().__init__(ctx, http)
        self.tokens = OAuth2Tokens(self)
        self._me: dict[str, str] | None = None
        opts = ctx.options
        self._signer = (OAuth1Signer(*(opts[k] for k in OAUTH1_KEYS))
                        if all(opts.get(k) for k in OAUTH1_KEYS) else None)

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> list[str]:
        problems = super().validate_options(options)
        oauth1_extra = [k for k in ("API_KEY", "API_SECRET", "ACCESS_SECRET") if options.get(k)]
        if oauth1_extra and not all(options.get(k) for k in OAUTH1_KEYS):
            missing = [k for k in OAUTH1_KEYS if not options.get(k)]
            problems.append(f"OAuth 1.0a needs all of {', '.join(OAUTH1_KEYS)}: missing {', '.join(missing)}")
        if options.get("REFRESH_TOKEN") and not options.get("CLIENT_ID"):
            problems.append("REFRESH_TOKEN is set but CLIENT_ID is missing (needed to refresh the token)")
        return problems

    # --- requests -------------------------------------------------------------------

    async def _call(self, method: str, path: str, params: Mapping[str, str] | None = None,
                    **kwargs: Any) -> httpx.Response:
        """One API request with the channel's credentials; on a 401, refresh once and resend."""
        import httpx

        url = str(httpx.URL(self.base_url + path, params=params))
        if self._signer is not None:
            headers = {"Authorization": self._signer.header(method, url)}
            return await self.send(method, url, headers=headers, **kwargs)
        token = await self.tokens.bearer()
        response = await self.send(method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        if response.status_code == 401 and self.tokens.can_refresh:
            # A 401 means X did not act on the request, so sending it again is safe.
            await self.tokens.refresh(token)
            token = self.tokens.access_token
            response = await self.send(method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        return response

    def _error(self, response: httpx.Response, what: str, creating: bool = False) -> PublishError:
        """Map an X error answer (problem details or ``errors[]``) to a typed error."""
        status = response.status_code
        body = json_body(response)
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        # X still names problem types under api.twitter.com at times: compare the last segment only.
        kind = str(body.get("type") or first.get("type") or "").rsplit("/", 1)[-1]
        detail = str(body.get("detail") or first.get("detail") or first.get("message") or body.get("title")
                     or self.excerpt(response, 200))
        msg = self.redact(f"X {what} answered HTTP {status}: {detail}"[:400])
        if status == 429 or kind == "usage-capped":
            default = 3600.0 if kind == "usage-capped" else 900.0
            return RateLimited(msg, retry_at=reset_at(response.headers, default), status=status)
        if status == 401:
            hint = "token invalid, expired or revoked: authorise the app again"
            return AuthError(f"{msg} ({hint})", status=401)
        if status == 403:
            low = detail.lower()
            if "duplicate content" in low:
                return Duplicate(msg, status=403)
            if kind in ACCESS_PROBLEMS or "unsupported authentication" in low or "suspended" in low:
                # Wrong app setup, tier or auth type, or a suspended account: no post will go through.
                return AuthError(msg, status=403)
            return RejectedContent(msg, status=403)
        if status >= 500:
            # On a real outage the post may have been created before the error came back (a
            # 502/503 from the front end too): the dispatcher looks at the timeline before any
            # resend. Uploads, lookups and alt text create no post.
            return (UnknownOutcome if creating else Transient)(msg, status=status)
        return RejectedContent(msg, status=status)

    # --- publishing -----------------------------------------------------------------

    def post_text(self, post: ReadyPost) -> str:
        """The post's text, with its link appended when the text lacks it and it still fits."""
        return with_link(post.text, post.link, self.rules, sep="\n")

    async def publish(self, post: ReadyPost) -> PublishResult:
        body: dict[str, Any] = {"text": self.post_text(post)}
        if post.image is not None:
            # Up to 4 photos, or one GIF alone (X's rule): a GIF cover goes without the others.
            images = post.images[:1] if post.image.mime == "image/gif" else \
                [i for i in post.images if i.mime != "image/gif"][:4]
            body["media"] = {"media_ids": [await self._upload(image) for image in images]}
        response = await self._call("POST", "/2/tweets", json=body)
        data = json_body(response).get("data")
        if not response.is_success or not isinstance(data, dict) or not data.get("id"):
            raise self._error(response, "create post", creating=True)
        remote_id = str(data["id"])
        return PublishResult(remote_id=remote_id, remote_url=self._url(remote_id),
                             http_status=response.status_code)

    async def _upload(self, image: Media) -> str:
        if image.mime == "image/gif":
            # X plays GIFs only when uploaded as tweet_gif, which takes the chunked upload.
            media_id, info = await before_publishing(self._upload_chunked(image, "tweet_gif"))
            await self._wait_processed(media_id, info)
            if image.alt_text:
                await self._alt_text(media_id, image.alt_text)
            return media_id
        files = {"media": (image.path.name, image.read_bytes(), image.mime)}
        data = {"media_category": "tweet_image"}
        response = await self._call("POST", "/2/media/upload", files=files, data=data)
        answer = json_body(response).get("data")
        if not response.is_success or not isinstance(answer, dict) or not answer.get("id"):
            raise self._error(response, "media upload")
        media_id = str(answer["id"])
        await self._wait_processed(media_id, answer.get("processing_info"))
        if image.alt_text:
            await self._alt_text(media_id, image.alt_text)
        return media_id

    async def _upload_chunked(self, image: Media, category: str) -> tuple[str, Any]:
        """INITIALIZE, APPEND each chunk, FINALIZE; returns the media id and its processing info."""
        content = image.read_bytes()
        init = await self._call("POST", "/2/media/upload/initialize",
                                json={"media_type": image.mime, "total_bytes": len(content), "media_category": category})
        session = json_body(init).get("data")
        if not init.is_success or not isinstance(session, dict) or not session.get("id"):
            raise self._error(init, "media upload initialize")
        media_id = str(session["id"])
        for index, start in enumerate(range(0, len(content), CHUNK_BYTES)):
            # JSON (base64 media, integer segment_index), one of the two bodies the description allows.
            chunk = base64.b64encode(content[start:start + CHUNK_BYTES]).decode("ascii")
            append = await self._call("POST", f"/2/media/upload/{media_id}/append",
                                      json={"media": chunk, "segment_index": index})
            if not append.is_success:
                raise self._error(append, f"media upload append (segment {index})")
        final = await self._call("POST", f"/2/media/upload/{media_id}/finalize")
        answer = json_body(final).get("data")
        if not final.is_success or not isinstance(answer, dict):
            raise self._error(final, "media upload finalize")
        return str(answer.get("id") or media_id), answer.get("processing_info")

    async def _wait_processed(self, media_id: str, info: Any) -> None:
        """Poll the upload status while X still processes the media (rare for images)."""
        attempts = int(self.option("POLL_ATTEMPTS", "10") or 10)
        for _ in range(attempts):
            state = info.get("state") if isinstance(info, dict) else None
            if state in (None, "succeeded"):
                return
            if state == "failed":
                reason = info.get("error") or ""
                raise RejectedContent(f"X could not process the image (media {media_id}): {reason}")
            interval = self.option("POLL_INTERVAL")
            await asyncio.sleep(float(interval if interval is not None else info.get("check_after_secs", 1)))
            params = {"command": "STATUS", "media_id": media_id}
            response = await self._call("GET", "/2/media/upload", params=params)
            if not response.is_success:
                raise self._error(response, "media status")
            info = (json_body(response).get("data") or {}).get("processing_info")
        raise Transient(f"X was still processing media {media_id} after {attempts} checks")

    async def _alt_text(self, media_id: str, alt: str) -> None:
        body = {"id": media_id, "metadata": {"alt_text": {"text": alt[:1000]}}}
        response = await self._call("POST", "/2/media/metadata", json=body)
        if response.is_success:
            return
        error = self._error(response, "alt text")
        if isinstance(error, RejectedContent):
            # Alt text is not worth losing the post over.
            log.warning("%s; posting the image without alt text", error)
            return
        raise error

    def _url(self, remote_id: str) -> str:
        username = (self.option("USERNAME") or (self._me or {}).get("username") or "").lstrip("@")
        if username:
            return f"https://x.com/{username}/status/{remote_id}"
        return f"https://x.com/i/web/status/{remote_id}"

    # --- identity and reconcile -----------------------------------------------------

    async def _whoami(self) -> dict[str, str]:
        if self._me is None:
            response = await self._call("GET", "/2/users/me")
            data = json_body(response).get("data")
            if not response.is_success or not isinstance(data, dict) or not data.get("id"):
                raise self._error(response, "users/me")
            self._me = {k: str(v) for k, v in data.items() if isinstance(v, str | int)}
        return self._me

    async def fetch_metrics(self, remote_ids: Sequence[str]) -> MetricsAnswer:
        """``GET /2/tweets?ids=…&tweet.fields=public_metrics`` (up to 100); a resource-not-found
        error for an id means the post was deleted."""
        response = await self._call("GET", "/2/tweets", params={"ids": ",".join(remote_ids),
                                                                "tweet.fields": "public_metrics"})
        body = json_body(response)
        if not response.is_success:
            raise self._error(response, "tweets lookup")
        out: MetricsAnswer = {}
        for tweet in body.get("data") or []:
            counts = tweet.get("public_metrics") if isinstance(tweet, dict) else None
            if isinstance(counts, dict):
                out[str(tweet.get("id"))] = {k: int(v) for k in self.metrics.names
                                             if isinstance(v := counts.get(k), int)}
        for error in body.get("errors") or []:
            if isinstance(error, dict) and str(error.get("type", "")).endswith("/resource-not-found"):
                out[str(error.get("resource_id") or error.get("value"))] = Gone(str(error.get("detail") or "not found"))
        return out

    async def check(self) -> str:
        me = await self._whoami()
        mode = "OAuth 1.0a" if self._signer else "OAuth 2.0"
        return f"@{me.get('username', '?')} ({me.get('name', '')}, user id {me['id']}, {mode})"

    async def reconcile(self, post: ReadyPost) -> PublishResult | None:
        """Find ``post`` among the account's posts since it was created (costs read credits)."""
        try:
            me = await self._whoami()
            since = min(post.since, utcnow()) - RECONCILE_LOOKBACK
            params = {"max_results": "100", "start_time": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "tweet.fields": "created_at", "exclude": "replies,retweets"}
            response = await self._call("GET", f"/2/users/{me['id']}/tweets", params=params)
            if not response.is_success:
                raise self._error(response, "timeline lookup")
        except (AuthError, RateLimited):
            raise
        except PublishError as exc:
            raise UnknownOutcome(f"cannot tell whether the post is on X: {exc}") from None
        body = json_body(response)
        want = comparable(self.post_text(post))
        for tweet in body.get("data") or []:
            if isinstance(tweet, dict) and comparable(str(tweet.get("text", ""))) == want:
                return PublishResult(remote_id=str(tweet["id"]), remote_url=self._url(str(tweet["id"])))
        if (body.get("meta") or {}).get("next_token"):
            raise UnknownOutcome("more than 100 X posts since this one was created; cannot tell")
        return None


def comparable(text: str) -> str:
    """Text as X shows it back, reduced to compare: URLs become t.co links, ``&`` becomes ``&amp;``."""
    text = unicodedata.normalize("NFC", html.unescape(text))
    for url in find_urls(text):
        text = text.replace(url, " ")
    return " ".join(text.split())


def reset_at(headers: Mapping[str, str], default_seconds: float) -> dt.datetime:
    """When X lets us post again: the latest reset among the exhausted windows."""
    exhausted = []
    for prefix in ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour"):
        reset = headers.get(f"{prefix}-reset")
        if reset and headers.get(f"{prefix}-remaining") == "0":
            exhausted.append(reset)
    if not exhausted and headers.get("x-rate-limit-reset"):
        exhausted.append(headers["x-rate-limit-reset"])
    try:
        if exhausted:
            return max(epoch_to_utc(r) for r in exhausted)
    except ValueError:
        pass
    return retry_at_from_headers(headers, default_seconds)

