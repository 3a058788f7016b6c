"""The ``mastodon`` platform: statuses on any Mastodon-compatible server (``BASE_URL``).

Images go through ``POST /api/v2/media`` first (a 202 means "still processing": poll
``GET /api/v1/media/{id}`` until its ``url`` is set), then ``POST /api/v1/statuses``
with the post's ``Idempotency-Key``. Mastodon keeps that key for an hour, so re-sending
after an unknown outcome returns the status already made instead of a second one.
The server's character limit is read by :meth:`MastodonAdapter.check` from
``/api/v2/instance`` and kept in the channel state (``max_characters``).
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Mapping
from typing import Any

import httpx

from scheduler.errors import AuthError, PublishError, RateLimited, RejectedContent, Transient, UnknownOutcome
from scheduler.platforms.base import (
    MB,
    Adapter,
    ChannelState,
    Media,
    PlatformRules,
    PublishResult,
    ReadyPost,
    json_body,
    retry_at_from_headers,
    with_link,
)
from scheduler.platforms.httpkit import before_publishing, find_recent, parse_iso
from scheduler.textrules import TextRule

DEFAULT_MAX_CHARACTERS = 500
VISIBILITIES = ("public", "unlisted", "private", "direct")
_BREAK = re.compile(r"<br\s*/?>|</p>\s*<p[^>]*>", re.I)
_TAG = re.compile(r"<[^>]+>")


def _rules(max_characters: int) -> PlatformRules:
    return PlatformRules(
        text=(TextRule(max_characters, "mastodon"),),
        image_types=frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/avif"}),
        max_image_bytes=16 * MB,  # upstream image_size_limit
        can_reconcile=True,
        idempotent=True,
    )


def plain_text(content: str) -> str:
    """A status's HTML ``content`` as whitespace-normalised plain text (for reconcile)."""
    text = _TAG.sub("", _BREAK.sub(" ", content))
    return " ".join(html.unescape(text).split())


class MastodonAdapter(Adapter):
    """Posts statuses with an Idempotency-Key; uploads one image through the v2 media API."""

    platform = "mastodon"
    rules = _rules(DEFAULT_MAX_CHARACTERS)
    required_keys = (("BASE_URL", "ACCESS_TOKEN"),)
    optional_keys = ("VISIBILITY", "LANGUAGE", "POLL_INTERVAL", "POLL_ATTEMPTS")
    secret_keys = frozenset({"ACCESS_TOKEN"})
    help = ("BASE_URL is your server (https://mastodon.example); ACCESS_TOKEN from Preferences > Development > "
            "New application (scopes write:statuses write:media read:accounts) > Your access token.")

    @classmethod
    def rules_for(cls, options: Mapping[str, str], state: ChannelState | None = None) -> PlatformRules:
        stored = state.get("max_characters") if state is not None else None
        if stored and stored.isdigit() and int(stored) > 0:
            return _rules(int(stored))
        return cls.rules

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> list[str]:
        problems = super().validate_options(options)
        visibility = options.get("VISIBILITY")
        if visibility and visibility not in VISIBILITIES:
            problems.append(f"VISIBILITY must be one of {', '.join(VISIBILITIES)}, not {visibility!r}")
        for key in ("POLL_INTERVAL", "POLL_ATTEMPTS"):
            try:
                float(options.get(key) or 0)
            except ValueError:
                problems.append(f"{key} must be a number")
        return problems

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.option('ACCESS_TOKEN')}", "User-Agent": "promo-scheduler"}

    def error(self, response: httpx.Response, what: str) -> PublishError:
        """Map a Mastodon error answer (``{"error": "..."}``) to a typed error."""
        status = response.status_code
        detail = self.redact(str(json_body(response).get("error") or "")) or self.excerpt(response)
        msg = f"mastodon {what} answered HTTP {status}: {detail}"
        if status in (401, 403):
            return AuthError(msg, status=status)
        if status == 422:
            return RejectedContent(msg, status=status)
        if status == 429:
            # Mastodon's X-RateLimit-Reset is an ISO-8601 time, not epoch seconds.
            reset = parse_iso(response.headers.get("x-ratelimit-reset"))
            return RateLimited(msg, retry_at=reset or retry_at_from_headers(response.headers), status=status)
        if status >= 500:
            # Even a 504 is safe to retry: the Idempotency-Key prevents a second status.
            return Transient(msg, status=status)
        return RejectedContent(msg, status=status)

    async def upload(self, image: Media) -> str:
        """Upload ``image``; return its media id once the server has processed it."""
        data = {"description": image.alt_text} if image.alt_text else {}
        files = {"file": (image.path.name, image.read_bytes(), image.mime)}
        response = await self.send("POST", f"{self.base_url}/api/v2/media", headers=self.headers(),
                                   data=data, files=files)
        if response.status_code not in (200, 202):
            raise self.error(response, "media upload")
        media = json_body(response)
        media_id = str(media.get("id") or "")
        if not media_id:
            raise Transient(f"mastodon media upload answered without an id: {self.excerpt(response)}")
        interval = float(self.option("POLL_INTERVAL", "2") or 2)
        attempts = int(float(self.option("POLL_ATTEMPTS", "30") or 30))
        for _ in range(attempts):
            if response.status_code == 200 and media.get("url"):
                return media_id
            await asyncio.sleep(interval)
            response = await self.send("GET", f"{self.base_url}/api/v1/media/{media_id}", headers=self.headers())
            if response.status_code not in (200, 206):
                raise self.error(response, "media status")
            media = json_body(response)
        if response.status_code == 200 and media.get("url"):
            return media_id
        raise Transient(f"mastodon still processing media {media_id} after {attempts} checks")

    def status_text(self, post: ReadyPost) -> str:
        rules = self.rules_for(self.ctx.options, self.ctx.state)
        return with_link(post.text, post.link, rules, with_image=post.image is not None)

    async def publish(self, post: ReadyPost) -> PublishResult:
        body: dict[str, Any] = {"status": self.status_text(post)}
        body["visibility"] = self.option("VISIBILITY", "public")
        if self.option("LANGUAGE"):
            body["language"] = self.option("LANGUAGE")
        if post.image is not None:
            body["media_ids"] = [await before_publishing(self.upload(post.image))]
        headers = {**self.headers(), "Idempotency-Key": post.idempotency_key}
        response = await self.send("POST", f"{self.base_url}/api/v1/statuses", headers=headers, json=body)
        if response.status_code != 200:
            raise self.error(response, "status")
        status = json_body(response)
        if not status.get("id"):
            raise UnknownOutcome(f"mastodon answered 200 without a status id: {self.excerpt(response)}")
        return PublishResult(remote_id=str(status["id"]), remote_url=status.get("url") or status.get("uri"),
                             http_status=response.status_code)

    async def account(self) -> dict[str, Any]:
        response = await self.send("GET", f"{self.base_url}/api/v1/accounts/verify_credentials",
                                   headers=self.headers())
        if response.status_code != 200:
            raise self.error(response, "verify_credentials")
        return json_body(response)

    async def reconcile(self, post: ReadyPost) -> PublishResult | None:
        """Look for the post among the account's newest statuses (after the 1-hour key window)."""
        try:
            account = await self.account()
            limit = 20
            response = await self.send(
                "GET", f"{self.base_url}/api/v1/accounts/{account.get('id')}/statuses",
                headers=self.headers(), params={"limit": limit, "exclude_replies": "true", "exclude_reblogs": "true"})
        except (Transient, RateLimited) as exc:
            raise UnknownOutcome(f"cannot look up mastodon statuses: {exc}") from None
        if response.status_code != 200:
            raise UnknownOutcome(f"cannot look up mastodon statuses (HTTP {response.status_code})")
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, list):
            raise UnknownOutcome("mastodon answered the status list with something that is not a list")
        statuses = [s for s in data if isinstance(s, dict)]
        wanted = " ".join(self.status_text(post).split())
        # Bound first, unpacked after: unpacking straight from the call makes mypy solve T as "dict | None".
        found = find_recent(
            statuses, post, same=lambda s: plain_text(str(s.get("content") or "")) == wanted,
            created=lambda s: parse_iso(s.get("created_at")), complete=len(statuses) < limit)
        match, certain = found
        if match is not None:
            return PublishResult(remote_id=str(match["id"]), remote_url=match.get("url") or match.get("uri"))
        if certain:
            return None
        raise UnknownOutcome("mastodon: too many newer statuses to tell whether the post went out")

    async def check(self) -> str:
        response = await self.send("GET", f"{self.base_url}/api/v2/instance")
        # Older servers lack /api/v2/instance; the default of 500 then stays.
        config = json_body(response).get("configuration")
        statuses = config.get("statuses") if isinstance(config, dict) else None
        limit = statuses.get("max_characters") if isinstance(statuses, dict) else None
        if response.status_code == 200 and isinstance(limit, int) and limit > 0:
            await self.ctx.state.update({"max_characters": str(limit)})
        account = await self.account()
        chars = self.rules_for(self.ctx.options, self.ctx.state).text[0].limit
        return f"@{account.get('acct')} on {httpx.URL(self.base_url).host} ({chars} characters per post)"
