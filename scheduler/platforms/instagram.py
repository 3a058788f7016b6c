"""The ``instagram`` platform: feed image posts through the Instagram Graph API.

Instagram cannot post text alone and fetches the image itself from a public URL
(``PROMO_PUBLIC_MEDIA_BASE_URL``). Publishing takes three calls: create a container
(``POST /{ig-user-id}/media``), poll it until ``FINISHED``, then
``POST /{ig-user-id}/media_publish``. The container id is kept in the channel state first,
so ``reconcile`` can ask the container whether it went out.

Two logins lead here: Facebook Login (``graph.facebook.com``: a Page token does not expire,
a long-lived user token lasts 60 days and cannot be refreshed by us, so ``channels check``
reads its expiry with ``debug_token`` and warns) and Instagram Login (``graph.instagram.com``,
a 60-day Instagram token we refresh ahead of expiry and keep in the state). A caption with
more than 30 hashtags is refused when composed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from scheduler.errors import PublishError, RejectedContent, Transient, UnknownOutcome
from scheduler.platforms.base import (
    MB,
    ImageRules,
    KeyDoc,
    MetricsAnswer,
    MetricsSpec,
    PlatformRules,
    PublishResult,
    ReadyPost,
    SendBudget,
    utcnow,
)
from scheduler.platforms.graph import GraphAdapter, insight_values
from scheduler.platforms.graph_errors import graph_error
from scheduler.textrules import TextRule

HOSTS = {"facebook": "graph.facebook.com", "instagram": "graph.instagram.com"}
#: ``channels check`` warns when a Facebook Login token expires sooner than this.
TOKEN_WARN_AHEAD = dt.timedelta(days=14)


class InstagramAdapter(GraphAdapter):
    """Publishes image posts to an Instagram Business or Creator account."""

    platform = "instagram"
    account_key = "IG_USER_ID"
    # 2,200 characters, unit unspecified: code points are the stricter count. A caption with
    # more than 30 hashtags is accepted by the API and then published without its caption.
    rules = PlatformRules(
        text=(TextRule(2_200, "codepoints"),
              TextRule(30, "hashtags", note="Instagram publishes a caption with more hashtags without any "
                                            "caption at all; remove some")),
        # JPEG only, 8 MB, 320–1440 px wide, 4:5 to 1.91:1 (error 2207009); carousels up to 10.
        # Fetched by Meta from the public URL.
        images=ImageRules(formats=frozenset({"image/jpeg"}), max_bytes=8 * MB, min_width=320, max_width=1440,
                          min_ratio=4 / 5, max_ratio=1.91, per_post=10, by_url=True),
        requires_image=True,
        can_reconcile=True,
    )
    required_keys = (("IG_USER_ID", "ACCESS_TOKEN"),)
    optional_keys = ("GRAPH_HOST", "BASE_URL", "GRAPH_VERSION", "POLL_INTERVAL", "POLL_ATTEMPTS")
    default_base_url = "https://graph.facebook.com"
    help = ("Meta for Developers > your app > Instagram > API setup: generate a token for the "
            "Business/Creator account (IG_USER_ID is shown next to it); GRAPH_HOST picks the login.")

    container_edge = "media"
    publish_edge = "media_publish"
    status_fields = "status_code,status"
    list_fields = "id,caption,permalink,timestamp"
    text_field = "caption"

    budget = (SendBudget(50, dt.timedelta(hours=24), "content_publishing_limit: quota_total 50 per 24 h (the guide now says 100)"),)
    token_keys = ("access_token",)
    metrics = MetricsSpec(
        {"reach": "reach", "likes": "likes", "comments": "replies", "saved": "saves", "shares": "shares",
         "views": "views"}, batch=1, requests_per_run=50,
        source="GET /{media-id}/insights?metric=reach,likes,comments,saved,shares,views; 200 calls per hour per account",
        needs="instagram_basic and instagram_manage_insights (Instagram login: instagram_business_manage_insights)")
    doc_title = "Instagram Business/Creator account (platform=instagram) ---"
    doc_setup = ("Instagram posts need a JPEG image (8 MB max) that Meta fetches from a public URL: set\n"
                "PROMO_PUBLIC_MEDIA_BASE_URL to where the media folder is served over HTTPS.\n"
                "Keys, Instagram Login (recommended): Meta for Developers > My Apps > your app > Use cases >\n"
                "\"Manage messaging & content on Instagram\" > API setup with Instagram login > \"Generate token\"\n"
                "next to the account: the token (starts with IG) is ACCESS_TOKEN, the number shown above it is\n"
                "IG_USER_ID. The 60-day token is refreshed automatically and kept (encrypted) in the database.\n"
                "Keys, Facebook Login: Graph API Explorer with instagram_basic, instagram_content_publish,\n"
                "pages_read_engagement, pages_show_list; GET /{page-id}?fields=instagram_business_account gives\n"
                "IG_USER_ID; use a long-lived user or Page token (starts with EAA) as ACCESS_TOKEN. A user token\n"
                "expires after 60 days and is not renewed by the service (a Page token does not expire):\n"
                "`promo channels check` shows its expiry and warns 14 days ahead.")
    doc_channel = "IG_KOTA"
    key_docs = {
        "IG_USER_ID": KeyDoc("Instagram professional account id (IG_USER_ID), e.g. 17841400000000001.", example="17841400000000001"),
        "ACCESS_TOKEN": KeyDoc("Access token (secret). When the service has refreshed it, the stored copy is used until this value changes.", example="IGAA..."),
        "GRAPH_HOST": KeyDoc(
            ("Optional: graph.instagram.com (Instagram Login) or graph.facebook.com (Facebook Login);\n"
            "default: guessed from the token (IG... = Instagram Login, otherwise Facebook Login)."),
            example="graph.instagram.com"),
        "GRAPH_VERSION": KeyDoc("Optional: Graph API version for this channel only (default PROMO_GRAPH_API_VERSION).", example="v21.0"),
        "POLL_INTERVAL": KeyDoc("Optional: seconds between container status checks (default 3) and how many checks (default 10).", example="3"),
        "POLL_ATTEMPTS": KeyDoc(example="10"),
        "BASE_URL": KeyDoc("Optional: scheme, host and port of the API for tests or a proxy (default https://<GRAPH_HOST>).", example="https://graph.instagram.com"),
        "IMAGE_FIT": KeyDoc(
            ("Optional, every platform that takes images: pad | pad:#rrggbb | crop (default pad). An image whose\n"
             "shape the platform does not take (Instagram 4:5 to 1.91:1) is padded with a blurred fill of\n"
             "itself (or the colour given), or centre-cropped, when it is queued."),
            example="pad"),
    }

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> list[str]:
        problems = super().validate_options(options)
        choice = (options.get("GRAPH_HOST") or "").strip().lower()
        if choice and choice not in HOSTS and choice not in HOSTS.values():
            problems.append(f"GRAPH_HOST {choice!r} is not graph.instagram.com or graph.facebook.com")
        return problems

    @property
    def host(self) -> str:
        """``graph.instagram.com`` (Instagram Login) or ``graph.facebook.com`` (Facebook Login)."""
        choice = (self.option("GRAPH_HOST") or "").strip().lower()
        if choice:
            return HOSTS.get(choice, choice)
        # Instagram Login tokens start with "IG", Facebook ones with "EAA".
        return HOSTS["instagram" if (self.option("ACCESS_TOKEN") or "").startswith("IG") else "facebook"]

    @property
    def base_url(self) -> str:
        return (self.option("BASE_URL") or f"https://{self.host}").rstrip("/")

    def refresh_grant(self) -> str | None:
        # Only Instagram Login tokens expire after 60 days and have a refresh endpoint.
        return "ig_refresh_token" if self.host == HOSTS["instagram"] else None

    async def publish(self, post: ReadyPost) -> PublishResult:
        image = post.image
        if image is None:
            raise RejectedContent("Instagram cannot publish text alone: attach a JPEG image")
        if not image.public_url:
            raise RejectedContent("Instagram fetches the image from a public URL: set "
                                  "PROMO_PUBLIC_MEDIA_BASE_URL to where the media folder is served")
        if image.mime != "image/jpeg":
            raise RejectedContent(f"Instagram accepts JPEG images only, not {image.mime}")
        if image.size > self.rules.max_image_bytes:
            raise RejectedContent(f"Instagram images must be 8 MB or less ({image.size} bytes)")
        # Links in captions are not clickable and there is no link field: the URL stays in the text.
        create = {"image_url": image.public_url, "caption": post.text}
        if image.alt_text:
            create["alt_text"] = image.alt_text
        more = [i for i in post.more_images if i.public_url and i.mime == "image/jpeg"]
        if more:  # a carousel (up to 10): a child per image, the caption on the carousel
            items = [{"image_url": i.public_url, **({"alt_text": i.alt_text} if i.alt_text else {})}
                     for i in (image, *more)[:10]]
            return await self.publish_container(post, lambda: self.carousel(items, {"caption": post.text}))
        return await self.publish_container(post, create)

    async def reconcile(self, post: ReadyPost) -> PublishResult | None:
        return await self.reconcile_container(post)

    async def fetch_metrics(self, remote_ids: Sequence[str]) -> MetricsAnswer:
        return await self.read_metrics(remote_ids, "/insights", {"metric": ",".join(self.metrics.names)},
                                       insight_values)

    async def check(self) -> str:
        answer = await self.call("GET", self.account, what="check", params={"fields": "id,username"})
        who = f"Instagram @{answer.get('username') or '?'} ({answer.get('id') or self.account}, {self.host})"
        return who + self.version_note() + await self.token_note()

    async def token_note(self) -> str:
        """Facebook Login: what kind of token this is, when it expires, a warning when that is near."""
        if self.host != HOSTS["facebook"]:
            return ""  # Instagram Login tokens are refreshed by the service itself
        lead = ("\n  note: with Facebook Login a user token expires after 60 days; a Page token (GET "
                "/{page-id}?fields=access_token with a long-lived user token) does not")
        try:
            info = await self.debug_token()
        except PublishError as exc:
            return f"{lead}\n  warning: cannot read the token's expiry: {exc}"
        kind = str(info.get("type") or "unknown").upper()
        now = utcnow()
        dates = {label: dt.datetime.fromtimestamp(value, dt.UTC) for label, value in
                 (("expires", info.get("expires_at")), ("data access expires", info.get("data_access_expires_at")))
                 if isinstance(value, int) and value > 0}
        shown = ", ".join(f"{label} {when:%Y-%m-%d}" for label, when in dates.items())
        out = ("" if kind == "PAGE" else lead) + f"\n  token: {kind} token, {shown or 'does not expire'}"
        for label, when in dates.items():
            if when - now < TOKEN_WARN_AHEAD:
                left = "passed" if when <= now else f"in {(when - now).days} days"
                out += (f"\n  warning: the token's {label.replace('expires', 'expiry')} is {when:%Y-%m-%d} ({left}): "
                        "make a new long-lived token and set ACCESS_TOKEN")
        return out

    async def debug_token(self) -> dict[str, Any]:
        """``debug_token`` for our own token, sent as a batch so the token is in the body, not a URL."""
        token = await self.access_token()
        batch = json.dumps([{"method": "GET", "relative_url": "debug_token?" + urlencode({"input_token": token})}])
        try:
            response = await self.send("POST", f"{self.api}/", data={"access_token": token, "batch": batch,
                                                                     "include_headers": "false"})
        except UnknownOutcome as exc:
            raise Transient(str(exc)) from None
        if not response.is_success:
            raise graph_error(self, response, "debug_token")
        try:
            item = response.json()[0]
            body = json.loads(item.get("body") or "{}")
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            raise Transient(f"debug_token: unreadable answer: {self.excerpt(response, 120)}") from None
        data = body.get("data") if isinstance(body, dict) else None
        if item.get("code") != 200 or not isinstance(data, dict):
            raise Transient(self.redact(f"debug_token answered {item.get('code')}: {json.dumps(body)[:200]}"))
        return data
