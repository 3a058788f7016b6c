"""The ``linkedin`` platform: organization (Page) posts through the versioned Posts API.

``POST /rest/posts`` (``LinkedIn-Version``, ``X-Restli-Protocol-Version: 2.0.0``) answers 201
with the new URN in ``x-restli-id``. Images go through the Images API first
(initializeUpload, one PUT of the bytes); a link becomes an article card, which LinkedIn
does not scrape, so title and description are sent along. ``commentary`` is "little"
text: reserved characters are backslash-escaped, since an unescaped one can silently cut
the post short while the API still answers 201; ``#hashtag`` stays a hashtag. There is
no idempotency key, but a re-sent post is answered 422 ``DUPLICATE_POST`` naming the
existing URN (:class:`Duplicate`). With ``REFRESH_TOKEN``/``CLIENT_ID``/``CLIENT_SECRET``
the ~60-day access token is refreshed a day ahead of expiry and kept in the state.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from scheduler.errors import (
    AuthError,
    ConfigError,
    Duplicate,
    PublishError,
    RateLimited,
    RejectedContent,
    Transient,
    UnknownOutcome,
)
from scheduler.platforms.base import (
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
    json_body,
    retry_at_from_headers,
    utcnow,
    with_link,
)
from scheduler.platforms.httpkit import before_publishing, find_recent, parse_iso
from scheduler.redact import register_secret
from scheduler.textrules import TextRule, little_escaped

if TYPE_CHECKING:  # imported where requests are made: reading the settings needs no HTTP client
    import httpx

REFRESH_AHEAD = dt.timedelta(days=1)
_URN = re.compile(r"urn:li:(?:share|ugcPost):\d+")
#: A 429 without Retry-After waits this long, doubling with each 429 in a row, up to RATE_LIMIT_MAX.
RATE_LIMIT_FIRST = dt.timedelta(minutes=5)
RATE_LIMIT_MAX = dt.timedelta(hours=2)
#: State key counting 429s in a row (reset by the next success).
STREAK = "rate_limited_in_a_row"
#: ``commentary`` escaped for the "little" format (counted the same way by the text rule).
little_text = little_escaped


def post_url(urn: str) -> str:
    return f"https://www.linkedin.com/feed/update/{urn}"


def epoch_ms(value: object) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value / 1000, dt.UTC) if isinstance(value, int | float) else None


def next_utc_midnight() -> dt.datetime:
    """LinkedIn's daily quotas reset at 00:00 UTC."""
    today = utcnow().date()
    return dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def rate_limit_backoff(in_a_row: int) -> dt.datetime:
    """When to try again after the ``in_a_row``-th 429 without Retry-After: 5, 10, 20… minutes,
    at most 2 hours, and never past 00:00 UTC, when the daily quotas reset anyway."""
    wait = min(RATE_LIMIT_FIRST * (1 << max(0, min(in_a_row, 12) - 1)), RATE_LIMIT_MAX)
    return min(utcnow() + wait, next_utc_midnight())


class LinkedInAdapter(Adapter):
    """Posts as a LinkedIn organization (w_organization_social), refreshing its token when it can."""

    platform = "linkedin"
    API_VERSION = "202601"
    rules = PlatformRules(
        # 3,000 characters of the commentary LinkedIn receives, i.e. after escaping.
        text=(TextRule(3000, "linkedin"),),
        # No byte cap documented (8 MB keeps uploads modest); under 36,152,320 pixels (Images API as
        # quoted by CData, unconfirmed); multiImage takes 2–20 images.
        images=ImageRules(formats=frozenset({"image/jpeg", "image/png", "image/gif"}), max_bytes=8 * MB,
                          max_pixels=36_152_319, per_post=20),
        can_reconcile=True,
    )
    required_keys = (("ORGANIZATION_ID", "ACCESS_TOKEN"), ("ORGANIZATION_ID", "REFRESH_TOKEN", "CLIENT_ID", "CLIENT_SECRET"))
    optional_keys = ("ACCESS_TOKEN", "REFRESH_TOKEN", "CLIENT_ID", "CLIENT_SECRET", "API_VERSION", "OAUTH_BASE_URL")
    secret_keys = frozenset({"ACCESS_TOKEN", "REFRESH_TOKEN", "CLIENT_SECRET"})
    default_base_url = "https://api.linkedin.com"
    help = ("ORGANIZATION_ID from your Page's admin URL (linkedin.com/company/<id>/admin); ACCESS_TOKEN (and "
            "REFRESH_TOKEN) via OAuth with w_organization_social, CLIENT_ID/CLIENT_SECRET from "
            "developer.linkedin.com > My apps > Auth.")

    budget = (SendBudget(150, dt.timedelta(hours=24), "about 150 posts per day per member (legacy Share API)"),)
    token_keys = ("access_token", "refresh_token")
    token_keys_if = "REFRESH_TOKEN"
    metrics = MetricsSpec(
        {"totalLikes": "likes", "aggregatedTotalComments": "replies"}, batch=1, requests_per_run=20,
        source="GET /rest/socialActions/{post urn} (likesSummary, commentsSummary); daily per-app quotas",
        needs="r_organization_social (Community Management API)")
    doc_title = "LinkedIn Page (platform=linkedin) ---"
    doc_setup = ("Keys: developer.linkedin.com > My apps > Create app (linked to your Company Page, verified by a\n"
                "Page admin) > Products: add \"Community Management API\" (gives w_organization_social).\n"
                "Auth tab: Client ID and Primary Client Secret; authorise with the OAuth 2.0 authorization-code\n"
                "flow (scope w_organization_social; r_organization_social too if reconcile should work) as a member\n"
                "who is ADMINISTRATOR or CONTENT_ADMIN of the Page. Give either ACCESS_TOKEN (lasts ~60 days)\n"
                "or REFRESH_TOKEN + CLIENT_ID + CLIENT_SECRET (the service refreshes the token itself and keeps\n"
                "it encrypted in the database; programmatic refresh tokens are only issued to some apps).")
    doc_channel = "LI_KOTA"
    key_docs = {
        "ORGANIZATION_ID": KeyDoc("Required: numeric id of the Company Page (Page admin view URL linkedin.com/company/<id>/admin).", example="2414183"),
        "ACCESS_TOKEN": KeyDoc("Access token from the OAuth flow (secret; required unless the three refresh keys are set).", example="AQV..."),
        "REFRESH_TOKEN": KeyDoc("Optional: refresh token from the same OAuth answer (secret).", example="AQX..."),
        "CLIENT_ID": KeyDoc("Optional: the app's Client ID (Auth tab); needed with REFRESH_TOKEN.", example="86abcdef"),
        "CLIENT_SECRET": KeyDoc("Optional: the app's Primary Client Secret (Auth tab; secret); needed with REFRESH_TOKEN.", example="..."),
        "API_VERSION": KeyDoc(
            ("Optional: LinkedIn-Version header, YYYYMM (default 202601); versions are sunset after about a year.\n"
            "When LinkedIn answers 426 NONEXISTENT_VERSION the channel is paused with a message naming this\n"
            "key: set a current version, then run `promo channels check <name>`."),
            example="202601"),
        "BASE_URL": KeyDoc("Optional: scheme, host and port of the REST API for tests or a proxy (default https://api.linkedin.com).", example="https://api.linkedin.com"),
        "OAUTH_BASE_URL": KeyDoc("Optional: scheme, host and port of the OAuth token endpoint (default https://www.linkedin.com).", example="https://www.linkedin.com"),
    }

    def __init__(self, ctx: ChannelContext, http: httpx.AsyncClient):
        super().__init__(ctx, http)
        for key in ("access_token", "refresh_token"):
            register_secret(ctx.state.get(key))

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> list[str]:
        problems = super().validate_options(options)
        org = options.get("ORGANIZATION_ID") or ""
        if org and not org.removeprefix("urn:li:organization:").isdigit():
            problems.append("ORGANIZATION_ID must be the numeric organization id (or urn:li:organization:<id>)")
        version = options.get("API_VERSION")
        if version and not re.fullmatch(r"\d{6}(\.\d+)?", version):
            problems.append("API_VERSION must look like YYYYMM, e.g. 202601")
        return problems

    @property
    def author(self) -> str:
        return "urn:li:organization:" + (self.option("ORGANIZATION_ID") or "").removeprefix("urn:li:organization:")

    # --- tokens ------------------------------------------------------------------------

    def can_refresh(self) -> bool:
        refresh = self.ctx.state.get("refresh_token") or self.option("REFRESH_TOKEN")
        return bool(refresh and self.option("CLIENT_ID") and self.option("CLIENT_SECRET"))

    async def access_token(self) -> str:
        stored = self.ctx.state.get("access_token")
        expires = parse_iso(self.ctx.state.get("access_token_expires_at"))
        if stored and expires and expires <= utcnow():
            stored = None  # expired: a freshly configured ACCESS_TOKEN may be newer
        token = stored or self.option("ACCESS_TOKEN")
        if self.can_refresh() and (not token or (expires is not None and expires - utcnow() < REFRESH_AHEAD)):
            token = await self.refresh()
        if not token:
            raise AuthError("linkedin: no access token (set ACCESS_TOKEN, or REFRESH_TOKEN with CLIENT_ID/CLIENT_SECRET)")
        return token

    async def refresh(self) -> str:
        """Exchange the refresh token for a new access token and store both in the state."""
        oauth = (self.option("OAUTH_BASE_URL") or "https://www.linkedin.com").rstrip("/")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self.ctx.state.get("refresh_token") or self.option("REFRESH_TOKEN") or "",
            "client_id": self.option("CLIENT_ID") or "",
            "client_secret": self.option("CLIENT_SECRET") or "",
        }
        response = await before_publishing(self.send("POST", f"{oauth}/oauth/v2/accessToken", data=form))
        body = json_body(response)
        if response.status_code >= 500 or response.status_code == 429:
            raise self.error(response, "token refresh")  # the token server is busy, not a bad grant
        if response.status_code != 200 or not body.get("access_token"):
            reason = self.redact(f"{body.get('error') or ''} {body.get('error_description') or ''}".strip())
            raise AuthError(f"linkedin token refresh failed (HTTP {response.status_code}: {reason or 'no token'}); "
                            "authorise the app again and update REFRESH_TOKEN", status=response.status_code)
        def expiry(key: str) -> str | None:
            seconds = body.get(key)
            return (utcnow() + dt.timedelta(seconds=int(seconds))).isoformat() if seconds else None

        token = str(body["access_token"])
        register_secret(token)
        values = {"access_token": token, "access_token_expires_at": expiry("expires_in")}
        if body.get("refresh_token"):  # LinkedIn may hand out a new one; keep the newest
            register_secret(str(body["refresh_token"]))
            values.update(refresh_token=str(body["refresh_token"]),
                          refresh_token_expires_at=expiry("refresh_token_expires_in"))
        await self.ctx.state.update(values)
        return token

    async def call(self, method: str, path: str, retry_auth: bool = True, **kwargs: Any) -> httpx.Response:
        """A Rest.li request; a 401 is retried once after a refresh (nothing was created then)."""
        headers = {
            "Authorization": f"Bearer {await self.access_token()}",
            "LinkedIn-Version": self.api_version,
            "X-Restli-Protocol-Version": "2.0.0",
            "User-Agent": "promo-scheduler",
        }
        response = await self.send(method, f"{self.base_url}{path}", headers=headers, **kwargs)
        if response.status_code == 401 and retry_auth and self.can_refresh():
            await self.refresh()
            return await self.call(method, path, retry_auth=False, **kwargs)
        if response.status_code == 429 and "retry-after" not in response.headers:
            await self.ctx.state.update({STREAK: str(self.rate_limited_in_a_row() + 1)})
        elif response.is_success and self.ctx.state.get(STREAK):
            await self.ctx.state.update({STREAK: None})
        return response

    def rate_limited_in_a_row(self) -> int:
        value = self.ctx.state.get(STREAK) or "0"
        return int(value) if value.isdigit() else 0

    @property
    def api_version(self) -> str:
        return self.option("API_VERSION", self.API_VERSION) or self.API_VERSION

    # --- errors --------------------------------------------------------------------------

    def error(self, response: httpx.Response, what: str) -> PublishError | ConfigError:
        """Map a LinkedIn error body (``code``/``message``/``errorDetails.inputErrors``) to a typed error."""
        status, body = response.status_code, json_body(response)
        details = body.get("errorDetails")
        inputs = details.get("inputErrors") if isinstance(details, dict) else None
        codes = [str(e.get("code")) for e in inputs or [] if isinstance(e, dict)]
        message = str(body.get("message") or "")
        msg = f"linkedin {what} answered HTTP {status}" + (f" {body['code']}" if body.get("code") else "")
        msg += f" {','.join(codes)}" if codes else ""
        msg += f": {self.excerpt(response)}"
        if status == 422 and ("DUPLICATE_POST" in codes or "duplicate of urn" in message):
            urn = _URN.search(message)
            return Duplicate(msg, remote_id=urn.group(0) if urn else None,
                             remote_url=post_url(urn.group(0)) if urn else None, status=status)
        if status == 426 or body.get("code") == "NONEXISTENT_VERSION":
            # The pinned LinkedIn-Version was retired: every call fails until the setting moves on.
            key = f"PROMO_CHANNEL_{self.ctx.name.upper()}_API_VERSION"
            return ConfigError(f"{msg} — LinkedIn retired API version {self.api_version}; set {key} to a "
                               "current version (YYYYMM, see LinkedIn's versioning page), then run "
                               f"`promo channels check {self.ctx.name}`")
        if status == 401:
            return AuthError(msg + " (token expired or revoked: authorise again)", status=status)
        if status == 403:
            return AuthError(msg + " (needs w_organization_social and a Page admin/content role)", status=status)
        if status == 429:
            retry_at = retry_at_from_headers(response.headers) if "retry-after" in response.headers \
                else rate_limit_backoff(self.rate_limited_in_a_row())
            return RateLimited(msg, retry_at=retry_at, status=status)
        if status == 504:
            return UnknownOutcome(msg, status=status)
        if status >= 500:
            return Transient(msg, status=status)
        return RejectedContent(msg, status=status)

    # --- publishing ------------------------------------------------------------------------

    async def upload(self, image: Media) -> str:
        """Upload one image through the Images API; return its ``urn:li:image:…``."""
        init = await self.call("POST", "/rest/images", params={"action": "initializeUpload"},
                               json={"initializeUploadRequest": {"owner": self.author}})
        if init.status_code not in (200, 201):
            raise self.error(init, "image initializeUpload")
        value = json_body(init).get("value")
        upload_url = value.get("uploadUrl") if isinstance(value, dict) else None
        urn = value.get("image") if isinstance(value, dict) else None
        if not upload_url or not urn:
            raise Transient(f"linkedin initializeUpload answered without uploadUrl/image: {self.excerpt(init)}")
        headers = {"Authorization": f"Bearer {await self.access_token()}", "Content-Type": image.mime}
        put = await self.send("PUT", upload_url, content=image.read_bytes(), headers=headers)
        if put.status_code not in (200, 201):
            raise self.error(put, "image upload")
        return str(urn)

    def commentary(self, post: ReadyPost) -> str:
        text = with_link(post.text, post.link, self.rules, with_image=True) if post.image else post.text
        return little_text(text)

    async def publish(self, post: ReadyPost) -> PublishResult:
        body: dict[str, Any] = {
            "author": self.author,
            "commentary": self.commentary(post),
            "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        if len(post.images) > 1:  # a multi-image post (2–20), each with its alt text, in order
            images = []
            for image in post.images[:20]:
                entry = {"id": await before_publishing(self.upload(image))}
                if image.alt_text:
                    entry["altText"] = image.alt_text
                images.append(entry)
            body["content"] = {"multiImage": {"images": images}}
        elif post.image is not None:
            # content holds one kind only: a native image wins, the link stays in the commentary.
            media = {"id": await before_publishing(self.upload(post.image))}
            if post.image.alt_text:
                media["altText"] = post.image.alt_text
            body["content"] = {"media": media}
        elif post.link:
            article = {"source": post.link, "title": post.title or post.link}
            if post.description:
                article["description"] = post.description
            body["content"] = {"article": article}
        response = await self.call("POST", "/rest/posts", json=body)
        if response.status_code not in (200, 201):
            raise self.error(response, "post")
        urn = response.headers.get("x-restli-id") or str(json_body(response).get("id") or "")
        if not urn:
            raise UnknownOutcome(f"linkedin answered {response.status_code} without x-restli-id")
        return PublishResult(remote_id=urn, remote_url=post_url(urn), http_status=response.status_code)

    async def reconcile(self, post: ReadyPost) -> PublishResult | None:
        """Look for the post among the organization's newest posts (needs r_organization_social)."""
        count = 10
        query = f"?author={quote(self.author, safe='')}&q=author&count={count}&sortBy=CREATED"
        try:
            response = await self.call("GET", "/rest/posts" + query)
        except (Transient, RateLimited) as exc:
            raise UnknownOutcome(f"cannot list linkedin posts: {exc}") from None
        elements = json_body(response).get("elements")
        if response.status_code != 200 or not isinstance(elements, list):
            raise UnknownOutcome(f"cannot list linkedin posts (HTTP {response.status_code}): {self.excerpt(response)}")
        sent = self.commentary(post)
        # Bound first, unpacked after: unpacking straight from the call makes mypy solve T as "dict | None".
        found = find_recent(
            [e for e in elements if isinstance(e, dict)], post,
            same=lambda e: e.get("commentary") in (sent, post.text),
            created=lambda e: epoch_ms(e.get("createdAt")), complete=len(elements) < count)
        match, certain = found
        if match is not None:
            return PublishResult(remote_id=str(match["id"]), remote_url=post_url(str(match["id"])))
        if certain:
            return None
        raise UnknownOutcome("linkedin: too many newer posts to tell whether the post went out")

    async def fetch_metrics(self, remote_ids: Sequence[str]) -> MetricsAnswer:
        """``GET /rest/socialActions/{urn}`` per post: likes and comments (a 404: deleted)."""
        out: MetricsAnswer = {}
        for urn in remote_ids:
            response = await self.call("GET", f"/rest/socialActions/{quote(urn, safe='')}")
            if response.status_code == 404:
                out[urn] = Gone("LinkedIn has no such post (deleted)")
                continue
            if not response.is_success:
                raise self.error(response, "socialActions")
            body = json_body(response)
            likes, comments = body.get("likesSummary"), body.get("commentsSummary")
            counts = {"totalLikes": likes.get("totalLikes") if isinstance(likes, dict) else None,
                      "aggregatedTotalComments": comments.get("aggregatedTotalComments")
                      if isinstance(comments, dict) else None}
            out[urn] = {k: v for k, v in counts.items() if isinstance(v, int)}
        return out

    async def check(self) -> str:
        org_id = self.author.rsplit(":", 1)[1]
        response = await self.call("GET", f"/rest/organizations/{org_id}")
        if response.status_code != 200:
            raise self.error(response, "organization lookup")
        org = json_body(response)
        return f"LinkedIn Page {org.get('localizedName') or org.get('vanityName')!r} ({self.author})"
