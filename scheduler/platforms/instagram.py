"""The ``instagram`` platform: feed image posts through the Instagram Graph API.

Instagram cannot post text alone and fetches the image itself from a public URL
(``PROMO_PUBLIC_MEDIA_BASE_URL``). Publishing takes three calls: create a container
(``POST /{ig-user-id}/media``), poll it until ``FINISHED``, then
``POST /{ig-user-id}/media_publish``. The container id is kept in the channel state first,
so ``reconcile`` can ask the container whether it went out.

Two logins lead here: Facebook Login (``graph.facebook.com``, a Facebook token that needs
no refresh) and Instagram Login (``graph.instagram.com``, a 60-day Instagram token we
refresh ahead of expiry and keep in the state).
"""

from __future__ import annotations

from collections.abc import Mapping

from scheduler.errors import RejectedContent
from scheduler.platforms.base import MB, PlatformRules, PublishResult, ReadyPost
from scheduler.platforms.graph import GraphAdapter
from scheduler.textrules import TextRule

HOSTS = {"facebook": "graph.facebook.com", "instagram": "graph.instagram.com"}


class InstagramAdapter(GraphAdapter):
    """Publishes image posts to an Instagram Business or Creator account."""

    platform = "instagram"
    account_key = "IG_USER_ID"
    # 2,200 characters, unit unspecified: code points are the stricter count.
    rules = PlatformRules(
        text=(TextRule(2_200, "codepoints"),),
        image_types=frozenset({"image/jpeg"}),
        max_image_bytes=8 * MB,
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
        return await self.publish_container(post, create)

    async def reconcile(self, post: ReadyPost) -> PublishResult | None:
        return await self.reconcile_container(post)

    async def check(self) -> str:
        answer = await self.call("GET", self.account, what="check", params={"fields": "id,username"})
        return f"Instagram @{answer.get('username') or '?'} ({answer.get('id') or self.account}, {self.host})"
