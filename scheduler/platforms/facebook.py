"""The ``facebook`` platform: posts to a Facebook Page through the Graph API.

Text and link posts go to ``POST /{page-id}/feed`` (``message``, ``link``; Facebook
builds the card from the link's Open Graph tags); a post with an image is uploaded to
``POST /{page-id}/photos`` as a multipart ``source`` file with the text as ``caption``.
The Page token travels in the POST body, never in a URL. Facebook has no idempotency
key, so an unknown outcome is reconciled by reading the Page's recent published posts.
"""

from __future__ import annotations

import datetime as dt

from scheduler.errors import PublishError, RejectedContent, UnknownOutcome
from scheduler.platforms.base import JPEG_PNG, MB, PlatformRules, PublishResult, ReadyPost
from scheduler.platforms.graph import GraphAdapter
from scheduler.platforms.graph_errors import parse_time, same_text
from scheduler.textrules import TextRule


class FacebookAdapter(GraphAdapter):
    """Publishes to one Facebook Page with a Page access token."""

    platform = "facebook"
    account_key = "PAGE_ID"
    # Graph documents no message limit; 63,206 is the figure tools use. Photos: 4 MB JPG/PNG
    # (error subcode 1366046).
    rules = PlatformRules(
        text=(TextRule(63_206, "codepoints"),),
        image_types=JPEG_PNG,
        max_image_bytes=4 * MB,
        can_reconcile=True,
    )
    required_keys = (("PAGE_ID", "ACCESS_TOKEN"),)
    optional_keys = ("BASE_URL", "GRAPH_VERSION")
    default_base_url = "https://graph.facebook.com"
    help = ("Meta for Developers > your app > Graph API Explorer: get a long-lived user token with "
            "pages_manage_posts, then GET /me/accounts gives the Page id and its Page access token.")

    async def publish(self, post: ReadyPost) -> PublishResult:
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
        try:
            answer = await self.call("GET", f"{self.account}/published_posts", what="recent posts",
                                     params={"fields": "id,message,created_time,permalink_url", "limit": 25})
        except PublishError as exc:
            raise UnknownOutcome(f"cannot tell whether the facebook post went out: {exc}") from None
        # The same text may have been posted before; only posts newer than ours can be it.
        since = post.created_at - dt.timedelta(minutes=10)
        for item in answer.get("data") or []:
            when = parse_time(item.get("created_time"))
            if same_text(item.get("message"), post.text) and (when is None or when >= since):
                return PublishResult(str(item["id"]), item.get("permalink_url"))
        return None

    async def check(self) -> str:
        answer = await self.call("GET", self.account, what="check", params={"fields": "id,name"})
        return f"Facebook Page {answer.get('name') or '?'} ({answer.get('id') or self.account})" + self.version_note()
