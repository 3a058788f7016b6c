"""The ``threads`` platform: text and image posts through the Threads API.

Publishing is the Graph container flow: ``POST /{user-id}/threads`` (``media_type`` TEXT or
IMAGE), poll the container until ``FINISHED``, then ``POST /{user-id}/threads_publish``.
We never use ``auto_publish_text``: the container is what lets ``reconcile`` tell whether a
post went out after a timeout. Images are fetched by Threads from a public URL. The
60-day token is refreshed ahead of expiry and kept in the channel state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from scheduler.errors import RejectedContent
from scheduler.platforms.base import (
    JPEG_PNG,
    MB,
    ImageRules,
    KeyDoc,
    MetricsAnswer,
    MetricsSpec,
    PlatformRules,
    PublishResult,
    ReadyPost,
    SendBudget,
)
from scheduler.platforms.graph import GraphAdapter, insight_values
from scheduler.textrules import TextRule


class ThreadsAdapter(GraphAdapter):
    """Publishes to one Threads profile."""

    platform = "threads"
    graph_version = "v1.0"
    account_key = "USER_ID"
    # 500 characters where an emoji costs its UTF-8 byte length.
    rules = PlatformRules(
        text=(TextRule(500, "threads"),),
        # JPEG/PNG, 8 MB, width 320–1440, ratio up to 10:1 (Meta "Media specifications" as quoted
        # by third parties: unconfirmed); carousels up to 20 items (unconfirmed). Fetched by URL.
        images=ImageRules(formats=JPEG_PNG, max_bytes=8 * MB, min_width=320, max_width=1440,
                          min_ratio=1 / 10, max_ratio=10, per_post=20, by_url=True),
        can_reconcile=True,
    )
    required_keys = (("USER_ID", "ACCESS_TOKEN"),)
    optional_keys = ("BASE_URL", "GRAPH_VERSION", "POLL_INTERVAL", "POLL_ATTEMPTS")
    default_base_url = "https://graph.threads.net"
    help = ("Meta for Developers > your app > Use cases > Access the Threads API: generate a long-lived "
            "token (threads_basic, threads_content_publish); GET /me?fields=id gives USER_ID.")

    container_edge = "threads"
    publish_edge = "threads_publish"
    status_fields = "status,error_message"
    list_fields = "id,text,permalink,timestamp"
    text_field = "text"

    budget = (SendBudget(250, dt.timedelta(hours=24), "250 API-published posts per rolling 24 h per profile"),)
    token_keys = ("access_token",)
    metrics = MetricsSpec(
        {"views": "views", "likes": "likes", "replies": "replies", "reposts": "shares", "quotes": "quotes"},
        batch=1, requests_per_run=50,
        source="GET /{media-id}/insights?metric=views,likes,replies,reposts,quotes",
        needs="threads_basic and threads_manage_insights")
    doc_title = "Threads profile (platform=threads) ---"
    doc_setup = ("Keys: Meta for Developers > My Apps > your app > Use cases > \"Access the Threads API\" >\n"
                "Settings/Permissions: add threads_basic and threads_content_publish, add the profile as a\n"
                "Threads tester and accept the invite in Threads (Settings > Account > Website permissions),\n"
                "then generate a user token (User Token Generator) and exchange it for a long-lived one\n"
                "(GET https://graph.threads.net/access_token?grant_type=th_exchange_token). USER_ID is the \"id\"\n"
                "of GET https://graph.threads.net/v1.0/me?fields=id,username. The 60-day token is refreshed\n"
                "automatically and kept (encrypted) in the database.\n"
                "Images are fetched by Threads from a public URL: set PROMO_PUBLIC_MEDIA_BASE_URL.")
    doc_channel = "THREADS_KOTA"
    key_docs = {
        "USER_ID": KeyDoc("Threads user id (numeric).", example="25012345678901234"),
        "ACCESS_TOKEN": KeyDoc("Long-lived Threads access token (secret). When the service has refreshed it, the stored copy is used until this value changes.", example="THAA..."),
        "GRAPH_VERSION": KeyDoc("Optional: Threads API version (default v1.0).", example="v1.0"),
        "POLL_INTERVAL": KeyDoc("Optional: seconds between container status checks (default 3) and how many checks (default 10).", example="3"),
        "POLL_ATTEMPTS": KeyDoc(example="10"),
        "BASE_URL": KeyDoc("Optional: scheme, host and port of the API for tests or a proxy (default https://graph.threads.net).", example="https://graph.threads.net"),
    }

    def refresh_grant(self) -> str | None:
        return "th_refresh_token"

    async def publish(self, post: ReadyPost) -> PublishResult:
        image = post.image
        create: dict[str, str] = {"text": post.text}
        if image is None:
            create["media_type"] = "TEXT"
            if post.link:  # the preview card; only TEXT posts take link_attachment
                create["link_attachment"] = post.link
        else:
            if not image.public_url:
                raise RejectedContent("Threads fetches the image from a public URL: set "
                                      "PROMO_PUBLIC_MEDIA_BASE_URL to where the media folder is served")
            if image.mime not in self.rules.image_types:
                raise RejectedContent(f"Threads accepts JPEG or PNG images, not {image.mime}")
            if image.size > self.rules.max_image_bytes:
                raise RejectedContent(f"Threads images must be 8 MB or less ({image.size} bytes)")
            create.update(media_type="IMAGE", image_url=image.public_url)
            if image.alt_text:
                create["alt_text"] = image.alt_text
            more = [i for i in post.more_images if i.public_url and i.mime in self.rules.image_types]
            if more:  # a carousel (up to 20): an IMAGE child per image, the text on the carousel
                items = [{"media_type": "IMAGE", "image_url": i.public_url,
                          **({"alt_text": i.alt_text} if i.alt_text else {})} for i in (image, *more)[:20]]
                return await self.publish_container(post, lambda: self.carousel(items, {"text": post.text}))
        return await self.publish_container(post, create)

    async def reconcile(self, post: ReadyPost) -> PublishResult | None:
        return await self.reconcile_container(post)

    async def fetch_metrics(self, remote_ids: Sequence[str]) -> MetricsAnswer:
        return await self.read_metrics(remote_ids, "/insights", {"metric": ",".join(self.metrics.names)},
                                       insight_values)

    async def check(self) -> str:
        answer = await self.call("GET", self.account, what="check", params={"fields": "id,username"})
        return f"Threads @{answer.get('username') or '?'} ({answer.get('id') or self.account})"
