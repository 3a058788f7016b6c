"""The ``facebook`` platform: posts to a Facebook Page through the Graph API.

Text and link posts go to ``POST /{page-id}/feed`` (``message``, ``link``; Facebook
builds the card from the link's Open Graph tags); a post with an image is uploaded to
``POST /{page-id}/photos`` as a multipart ``source`` file with the text as ``caption``.
The Page token travels in the POST body, never in a URL. Facebook has no idempotency
key, so an unknown outcome is reconciled by reading the Page's published posts back to the
first attempt (following the ``after`` cursor); when it cannot read that far it says so.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from scheduler.errors import PublishError, RejectedContent, UnknownOutcome
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
)
from scheduler.platforms.graph import GraphAdapter
from scheduler.platforms.graph_errors import parse_time, same_text
from scheduler.platforms.httpkit import find_recent
from scheduler.textrules import TextRule

#: Published-posts pages reconcile reads (50 posts each) before it gives up proving absence.
RECONCILE_PAGES = 10
PAGE_SIZE = 50


class FacebookAdapter(GraphAdapter):
    """Publishes to one Facebook Page with a Page access token."""

    platform = "facebook"
    account_key = "PAGE_ID"
    # Graph documents no message limit; 63,206 is the figure tools use. Photos: 4 MB JPG/PNG
    # (error subcode 1366046).
    rules = PlatformRules(
        text=(TextRule(63_206, "codepoints"),),
        # Multi-photo posts via attached_media: how many is not documented (10 assumed, unconfirmed).
        images=ImageRules(formats=JPEG_PNG, max_bytes=4 * MB, per_post=10),
        can_reconcile=True,
    )
    required_keys = (("PAGE_ID", "ACCESS_TOKEN"),)
    optional_keys = ("BASE_URL", "GRAPH_VERSION")
    default_base_url = "https://graph.facebook.com"
    help = ("Meta for Developers > your app > Graph API Explorer: get a long-lived user token with "
            "pages_manage_posts, then GET /me/accounts gives the Page id and its Page access token.")

    #: Meta documents call-volume (BUC) limits for Pages, no post count.
    budget = ()
    token_keys = ()
    metrics = MetricsSpec(
        {"reactions": "likes", "comments": "replies", "shares": "shares"}, batch=1, requests_per_run=50,
        source="GET /{post-id}?fields=reactions.summary(true),comments.summary(true),shares; "
               "Page call volume: 4,800 x engaged users per 24 h",
        needs="pages_read_engagement (and pages_show_list)")
    doc_title = "Facebook Page (platform=facebook) ---"
    doc_setup = ("Keys: Meta for Developers (developers.facebook.com) > My Apps > your app (type Business) >\n"
                "Tools > Graph API Explorer: pick the app, add pages_manage_posts, pages_read_engagement and\n"
                "pages_show_list, \"Generate Access Token\", extend it in Tools > Access Token Debugger\n"
                "(\"Extend Access Token\"), then GET /me/accounts?fields=id,name,access_token with that long-lived\n"
                "user token: the Page's \"id\" is PAGE_ID and its \"access_token\" (a Page token that does not expire)\n"
                "is ACCESS_TOKEN.")
    doc_channel = "FB_KOTA"
    key_docs = {
        "PAGE_ID": KeyDoc("Numeric id of the Facebook Page (Page > About > Page transparency, or /me/accounts \"id\").", example="104857600123"),
        "ACCESS_TOKEN": KeyDoc("Page access token from /me/accounts (secret; sent in the POST body, never in a URL).", example="EAAB..."),
        "GRAPH_VERSION": KeyDoc("Optional: Graph API version for this channel only (default PROMO_GRAPH_API_VERSION).", example="v21.0"),
        "BASE_URL": KeyDoc("Optional: scheme, host and port of the API for tests or a proxy (default https://graph.facebook.com).", example="https://graph.facebook.com"),
    }

    async def publish(self, post: ReadyPost) -> PublishResult:
        if len(post.images) > 1:
            return await self._publish_photos(post)
        if post.image is not None:
            return await self._publish_photo(post)
        data = {"message": post.text}
        if post.link:
            data["link"] = post.link
        # fields= asks for the permalink in the same answer (read-after-write).
        answer = await self.call("POST", f"{self.account}/feed", what="post", publishing=True,
                                 data=data, params={"fields": "id,permalink_url"})
        post_id = self.new_id(answer, "post", publishing=True)
        url = answer.get("permalink_url") or await self._permalink(post_id)
        return PublishResult(post_id, url)

    async def _publish_photo(self, post: ReadyPost) -> PublishResult:
        image = post.image
        assert image is not None
        try:
            content = image.read_bytes()
        except OSError as exc:
            raise RejectedContent(f"cannot read image {image.path}: {exc.strerror}") from None
        data = {"caption": post.text}
        if image.alt_text:
            data["alt_text_custom"] = image.alt_text
        answer = await self.call("POST", f"{self.account}/photos", what="photo post", publishing=True,
                                 data=data, files={"source": (image.path.name, content, image.mime)})
        # /photos answers {"id": photo id, "post_id": Page post id}; the post is what we published.
        post_id = str(answer.get("post_id") or self.new_id(answer, "photo post", publishing=True))
        return PublishResult(post_id, await self._permalink(post_id))

    async def _publish_photos(self, post: ReadyPost) -> PublishResult:
        """A multi-photo post: each photo uploaded unpublished (nothing shows yet), then one feed
        post carrying them all (``attached_media``, in order)."""
        ids = []
        for image in post.images[:10]:
            try:
                content = image.read_bytes()
            except OSError as exc:
                raise RejectedContent(f"cannot read image {image.path}: {exc.strerror}") from None
            data = {"published": "false"}
            if image.alt_text:
                data["alt_text_custom"] = image.alt_text
            answer = await self.call("POST", f"{self.account}/photos", what="photo upload", data=data,
                                     files={"source": (image.path.name, content, image.mime)})
            ids.append(self.new_id(answer, "photo upload"))
        data = {"message": post.text, "attached_media": json.dumps([{"media_fbid": i} for i in ids])}
        answer = await self.call("POST", f"{self.account}/feed", what="post", publishing=True,
                                 data=data, params={"fields": "id,permalink_url"})
        post_id = self.new_id(answer, "post", publishing=True)
        return PublishResult(post_id, answer.get("permalink_url") or await self._permalink(post_id))

    async def _permalink(self, post_id: str) -> str:
        try:
            answer = await self.call("GET", post_id, what="permalink", params={"fields": "permalink_url"})
            if answer.get("permalink_url"):
                return str(answer["permalink_url"])
        except PublishError:
            pass  # the post is out; fall back to the documented URL shape
        page, _, part = post_id.partition("_")
        return f"https://www.facebook.com/{page}/posts/{part}" if part else f"https://www.facebook.com/{post_id}"

    async def reconcile(self, post: ReadyPost) -> PublishResult | None:
        """Look for the post among the Page's published posts, paging back (``after`` cursor)
        until the list reaches back before the first attempt; UnknownOutcome when it cannot."""
        params: dict[str, str | int] = {"fields": "id,message,created_time,permalink_url", "limit": PAGE_SIZE}
        for _ in range(RECONCILE_PAGES):
            try:
                answer = await self.call("GET", f"{self.account}/published_posts", what="recent posts",
                                         params=params)
            except PublishError as exc:
                raise UnknownOutcome(f"cannot tell whether the facebook post went out: {exc}") from None
            data = answer.get("data")
            if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
                raise UnknownOutcome("facebook answered the published posts with something that is not a list")
            paging = answer.get("paging")
            paging = paging if isinstance(paging, dict) else {}
            cursors = paging.get("cursors")
            after = cursors.get("after") if isinstance(cursors, dict) and paging.get("next") else None
            # The same text may have been posted before; only posts since our first attempt can be it.
            found = find_recent(data, post, same=lambda item: same_text(item.get("message"), post.text),
                                created=lambda item: parse_time(item.get("created_time")), complete=not after)
            match, certain = found
            if match is not None:
                return PublishResult(str(match["id"]), match.get("permalink_url"))
            if certain:
                return None
            params["after"] = str(after)
        raise UnknownOutcome(f"facebook: more than {RECONCILE_PAGES * PAGE_SIZE} Page posts since the first "
                             "attempt; cannot tell whether the post went out")

    async def fetch_metrics(self, remote_ids: Sequence[str]) -> MetricsAnswer:
        return await self.read_metrics(remote_ids, "", {"fields": FIELDS}, page_counts)

    async def check(self) -> str:
        answer = await self.call("GET", self.account, what="check", params={"fields": "id,name"})
        return f"Facebook Page {answer.get('name') or '?'} ({answer.get('id') or self.account})" + self.version_note()


#: What a Page post's engagement read asks for (summaries only; Graph omits ``shares`` at 0).
FIELDS = "reactions.summary(true),comments.summary(true),shares"


def page_counts(body: dict[str, Any]) -> dict[str, int]:
    """reactions and comments from their ``summary.total_count``, shares from ``shares.count``."""
    def total(key: str) -> int | None:
        node = body.get(key)
        summary = node.get("summary") if isinstance(node, dict) else None
        value = summary.get("total_count") if isinstance(summary, dict) else None
        return value if isinstance(value, int) else None

    out = {k: v for k in ("reactions", "comments") if (v := total(k)) is not None}
    shares = body.get("shares")
    count = shares.get("count") if isinstance(shares, dict) else None
    out["shares"] = count if isinstance(count, int) else 0
    return out
