"""The ``discord`` platform: messages through a channel webhook.

The webhook URL (``https://discord.com/api/webhooks/{id}/{token}``) is the only
credential, so it is a secret and its token is redacted from every message. Messages are
sent with ``?wait=true`` (without it Discord answers 204 and a message that failed to
save is not reported) and ``allowed_mentions: {"parse": []}`` so a promo never pings
anybody. Link cards are rich embeds; an image with a public URL goes into the embed, one
without is uploaded as ``files[0]`` next to ``payload_json``. Webhooks have no
idempotency and cannot list messages, so an unknown outcome cannot be reconciled.

A ``?thread_id=`` on the webhook URL is kept (the message goes into that thread); a forum
or media channel needs either that or ``THREAD_NAME`` (each post then opens a new forum
post of that name). A 403 that carries no Discord error code is Cloudflare in front of
Discord (e.g. its error 1020 page), not a verdict on the webhook: it is transient.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scheduler import __version__
from scheduler.errors import (
    AuthError,
    ConfigError,
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
    ImageRules,
    KeyDoc,
    PlatformRules,
    PublishResult,
    ReadyPost,
    SendBudget,
    json_body,
    no_metrics,
    retry_at_from_headers,
    utcnow,
)
from scheduler.platforms.httpkit import before_publishing
from scheduler.redact import register_secret
from scheduler.textrules import TextRule

if TYPE_CHECKING:  # imported where requests are made: reading the settings needs no HTTP client
    import httpx

_WEBHOOK_PATH = re.compile(r"/webhooks/(\d+)/([A-Za-z0-9_.\-]+)/?$")
API_VERSION = "v10"
EMBED_TITLE, EMBED_DESCRIPTION = 256, 4096
#: JSON error codes that mean the webhook itself is gone or its token is wrong.
REVOKED = {10015: "unknown webhook (deleted)", 50027: "invalid webhook token"}
#: JSON error codes that mean Discord refused this message's content.
INVALID = {50035: "invalid form body", 50006: "empty message", 40005: "request entity too large"}
#: JSON error codes that mean the channel's thread settings do not fit the channel: every post would fail.
THREAD_SETUP = {
    220001: "a forum channel needs THREAD_NAME (or ?thread_id= on WEBHOOK_URL)",
    220002: "THREAD_NAME and ?thread_id= on WEBHOOK_URL cannot both be set",
    220003: "THREAD_NAME works only for forum and media channels; remove it",
}
THREAD_NAME_MAX = 100
#: Discord asks for this form of User-Agent (``DiscordBot ($url, $versionNumber)``); Cloudflare may block others.
USER_AGENT = f"DiscordBot (https://pypi.org/project/promo-scheduler/, {__version__})"
_CLOUDFLARE_CODE = re.compile(r"error(?:\s+code)?:?\s*(1\d{3})", re.I)


def parse_webhook_url(url: str) -> tuple[str, str] | None:
    """``(webhook_id, token)`` from a Discord webhook URL, or None when it is not one."""
    import httpx

    match = _WEBHOOK_PATH.search(httpx.URL(url).path) if url else None
    return (match.group(1), match.group(2)) if match else None


def thread_id(url: str) -> str | None:
    """The ``thread_id`` query parameter of a webhook URL (the thread its messages go to)."""
    import httpx

    try:
        value = httpx.URL(url).params.get("thread_id") if url else None
    except httpx.InvalidURL:
        return None
    return value.strip() or None if value else None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DiscordAdapter(Adapter):
    """Executes a Discord webhook with ``wait=true``; embeds for link cards and images."""

    platform = "discord"
    # Webhook uploads: 10 MB per file without a boost (Discord help centre, unconfirmed for webhooks);
    # up to 10 attachments per message.
    rules = PlatformRules(text=(TextRule(2000, "codepoints"),),
                          images=ImageRules(formats=COMMON_IMAGES, max_bytes=10 * MB, per_post=10))
    required_keys = (("WEBHOOK_URL",),)
    optional_keys = ("USERNAME", "AVATAR_URL", "THREAD_NAME")
    secret_keys = frozenset({"WEBHOOK_URL"})
    default_base_url = "https://discord.com"
    help = "WEBHOOK_URL from Discord: Server Settings > Integrations > Webhooks > New Webhook > Copy Webhook URL."

    budget = (SendBudget(30, dt.timedelta(minutes=1), "about 30 messages per minute per webhook"),)
    token_keys = ()
    metrics = no_metrics("Discord webhooks cannot read reactions back")
    doc_title = "Discord channel webhook (platform=discord) ---"
    doc_setup = ("Keys: in Discord, Server Settings > Integrations > Webhooks > New Webhook, pick the channel,\n"
                "then \"Copy Webhook URL\" (needs the Manage Webhooks permission). The URL is the only credential.")
    doc_channel = "DC_KOTA"
    key_docs = {
        "WEBHOOK_URL": KeyDoc("Required: the webhook URL https://discord.com/api/webhooks/<id>/<token> (secret: anyone with it can post).", example="https://discord.com/api/webhooks/1143334455667788990/..."),
        "THREAD_NAME": KeyDoc(
            ("To post into an existing thread, keep \"?thread_id=<thread id>\" on the end of WEBHOOK_URL.\n"
            "Optional, forum and media channels only (they need a thread): each post opens a new forum\n"
            "post with this title (at most 100 characters). Not together with ?thread_id=."),
            example="Promo UMKM Balikpapan"),
        "USERNAME": KeyDoc("Optional: name shown as the author of the messages (default: the webhook's own name).", example="Promo Kota"),
        "AVATAR_URL": KeyDoc("Optional: avatar image URL shown with the messages (default: the webhook's avatar).", example="https://kota.example/logo.png"),
        "BASE_URL": KeyDoc("Optional: scheme, host and port replacing those of the webhook URL, for tests (default https://discord.com).", example="https://discord.com"),
    }

    def __init__(self, ctx: ChannelContext, http: httpx.AsyncClient):
        super().__init__(ctx, http)
        parsed = parse_webhook_url(self.option("WEBHOOK_URL") or "")
        self.webhook_id, self.token = parsed or ("", "")
        register_secret(self.token)
        self.thread_id = thread_id(self.option("WEBHOOK_URL") or "")

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> list[str]:
        problems = super().validate_options(options)
        url = options.get("WEBHOOK_URL")
        if url and (not url.startswith(("http://", "https://")) or parse_webhook_url(url) is None):
            problems.append("WEBHOOK_URL is not a Discord webhook URL (…/api/webhooks/<id>/<token>)")
        name = options.get("THREAD_NAME")
        if name and len(name) > THREAD_NAME_MAX:
            problems.append(f"THREAD_NAME is {len(name)} characters; Discord allows {THREAD_NAME_MAX}")
        if name and url and thread_id(url):
            problems.append("THREAD_NAME and ?thread_id= on WEBHOOK_URL cannot both be set (pick one)")
        return problems

    def redact(self, text: str | None) -> str:
        out = super().redact(text)
        return out.replace(self.token, "***") if len(self.token) >= 4 else out

    @property
    def url(self) -> str:
        # Rebuilt from id and token so the API version is pinned and BASE_URL can point elsewhere.
        return f"{self.base_url}/api/{API_VERSION}/webhooks/{self.webhook_id}/{self.token}"

    def error(self, response: httpx.Response, what: str) -> PublishError | ConfigError:
        """Map a Discord error answer (``{"code", "message", "errors"}``) to a typed error."""
        status, body = response.status_code, json_body(response)
        code = body.get("code") if isinstance(body.get("code"), int) else None
        if status == 403 and code is None:
            # Discord's own 403s carry a JSON code; without one it is Cloudflare's block page.
            found = _CLOUDFLARE_CODE.search(response.text[:5000]) if response.content else None
            ray = response.headers.get("cf-ray")
            return Transient(f"discord {what} was blocked by Cloudflare (HTTP 403"
                             f"{', error ' + found.group(1) if found else ''}{', ray ' + ray if ray else ''}), "
                             "not refused by Discord: the webhook is not at fault; trying again later. If it "
                             "persists, this server's IP address is blocked by Discord's firewall.", status=status)
        if code in THREAD_SETUP:
            return ConfigError(f"discord channel {self.ctx.name}: {THREAD_SETUP[code]} "
                               f"(PROMO_CHANNEL_{self.ctx.name.upper()}_THREAD_NAME; Discord code {code})")
        msg = f"discord {what} answered HTTP {status}"
        msg += f" (code {code}: {REVOKED.get(code) or INVALID.get(code) or body.get('message')})" if code else ""
        msg += f": {self.excerpt(response)}"
        if status == 429:
            retry_after = body.get("retry_after")
            if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
                retry_at = utcnow() + dt.timedelta(seconds=max(0.0, float(retry_after)))
            else:
                retry_at = retry_at_from_headers(response.headers)
            return RateLimited(msg, retry_at=retry_at, status=status)
        if status in (401, 403, 404) or code in REVOKED:
            # A deleted webhook (404/10015) is a revoked credential; stop using it.
            return AuthError(msg, status=status)
        if code in INVALID or status in (400, 413):
            return RejectedContent(msg, status=status)
        if status == 504:
            return UnknownOutcome(msg, status=status)
        if status >= 500:
            return Transient(msg, status=status)
        return RejectedContent(msg, status=status)

    async def webhook(self) -> dict[str, Any]:
        """The webhook object (name, channel_id, guild_id); caches the guild in the state."""
        response = await self.send("GET", self.url, headers={"User-Agent": USER_AGENT})
        if response.status_code != 200:
            raise self.error(response, "webhook lookup")
        hook = json_body(response)
        guild = str(hook.get("guild_id") or "")
        if guild and guild != self.ctx.state.get("guild_id"):
            await self.ctx.state.update({"guild_id": guild})
        return hook

    def payload(self, post: ReadyPost, attachments: list[tuple[str, str | None]] | None) -> dict[str, Any]:
        """The message; ``attachments`` are the uploaded files' names and alt texts, the cover first
        (shown in the embed), the rest as attachments under it."""
        payload: dict[str, Any] = {"content": post.text, "allowed_mentions": {"parse": []}}
        if self.option("THREAD_NAME") and not self.thread_id:
            payload["thread_name"] = self.option("THREAD_NAME")
        for key, option in (("username", "USERNAME"), ("avatar_url", "AVATAR_URL")):
            if self.option(option):
                payload[key] = self.option(option)
        embed: dict[str, Any] = {}
        if post.link:
            embed = {"url": post.link, "title": _clip(post.title or post.link, EMBED_TITLE)}
            if post.description:
                embed["description"] = _clip(post.description, EMBED_DESCRIPTION)
        if attachments:
            embed["image"] = {"url": f"attachment://{attachments[0][0]}"}
            payload["attachments"] = [{"id": i, "filename": name, **({"description": alt} if alt else {})}
                                      for i, (name, alt) in enumerate(attachments)]
        elif post.image is not None and post.image.public_url:
            embed["image"] = {"url": post.image.public_url}
        if embed:
            payload["embeds"] = [embed]
        return payload

    async def publish(self, post: ReadyPost) -> PublishResult:
        if not self.webhook_id:
            raise AuthError("discord WEBHOOK_URL is not a webhook URL (…/api/webhooks/<id>/<token>)")
        if not self.ctx.state.get("guild_id"):
            await before_publishing(self.webhook())
        headers = {"User-Agent": USER_AGENT}
        params = {"wait": "true", **({"thread_id": self.thread_id} if self.thread_id else {})}
        image = post.image
        if image is not None and not image.public_url:
            files: dict[str, tuple[str, bytes, str]] = {}
            attachments: list[tuple[str, str | None]] = []
            for i, each in enumerate(post.images[:10]):  # up to 10 files per message
                # attachment:// references need a plain file name, unique within the message.
                name = re.sub(r"[^A-Za-z0-9._-]", "_", each.path.name) or "image"
                name = name if all(name != n for n, _alt in attachments) else f"{i}_{name}"
                files[f"files[{i}]"] = (name, each.read_bytes(), each.mime)
                attachments.append((name, each.alt_text))
            data = {"payload_json": json.dumps(self.payload(post, attachments), ensure_ascii=False)}
            response = await self.send("POST", self.url, params=params, headers=headers, data=data, files=files)
        else:
            response = await self.send("POST", self.url, params=params, headers=headers, json=self.payload(post, None))
        if response.status_code != 200:
            raise self.error(response, "webhook")
        message = json_body(response)
        if not message.get("id"):
            raise UnknownOutcome(f"discord answered without a message id: {self.excerpt(response)}")
        guild, channel = self.ctx.state.get("guild_id"), message.get("channel_id")
        url = f"https://discord.com/channels/{guild}/{channel}/{message['id']}" if guild and channel else None
        return PublishResult(remote_id=str(message["id"]), remote_url=url, http_status=response.status_code)

    async def check(self) -> str:
        if not self.webhook_id:
            raise AuthError("discord WEBHOOK_URL is not a webhook URL (…/api/webhooks/<id>/<token>)")
        hook = await self.webhook()
        where = f"webhook {hook.get('name')!r} in channel {hook.get('channel_id')} (guild {hook.get('guild_id')})"
        if self.thread_id:
            where += f", posting into thread {self.thread_id}"
        elif self.option("THREAD_NAME"):
            where += f", each post a new forum post named {self.option('THREAD_NAME')!r}"
        return where
