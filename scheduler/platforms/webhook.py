"""The ``webhook`` platform: POSTs each post as JSON to a URL.

With ``SECRET`` set, each request is signed: ``X-Promo-Timestamp: <Unix seconds>`` and
``X-Promo-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">``. The timestamp is
inside the signature, so a receiver that rejects old timestamps (README: 5 minutes) cannot be
fed a captured request again later. Every request carries the post's ``Idempotency-Key`` (the
delivery id); a receiver that honours it can say so with ``IDEMPOTENT=true``, which makes
re-sending after an unknown outcome safe.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from scheduler.errors import AuthError, RateLimited
from scheduler.platforms.base import (
    ALWAYS,
    Adapter,
    ChannelContext,
    ChannelState,
    KeyDoc,
    PlatformRules,
    PublishResult,
    ReadyPost,
    no_metrics,
    retry_at_from_headers,
)
from scheduler.redact import register_secret
from scheduler.textrules import TextRule
from scheduler.values import is_true

if TYPE_CHECKING:  # imported where requests are made: reading the settings needs no HTTP client
    import httpx


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Promo-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


class WebhookAdapter(Adapter):
    platform = "webhook"
    rules = PlatformRules(text=(TextRule(10_000, "graphemes"),))
    required_keys = (("URL",),)
    optional_keys = ("SECRET", "IDEMPOTENT", "TIMEOUT")
    secret_keys = frozenset({"URL", "SECRET"})
    help = ("POSTs each post as JSON to URL; SECRET signs timestamp and body "
            "(X-Promo-Timestamp, X-Promo-Signature: sha256=…).")

    #: Your own receiver: no platform budget.
    budget = ()
    token_keys = ()
    metrics = no_metrics("the receiver reports nothing back")
    doc_title = "Webhook (platform=webhook): POSTs each post as JSON to a URL of yours."
    doc_setup = ""
    doc_channel = "HOOK"
    key_docs = {
        "URL": KeyDoc("The receiver's URL (secret if it carries a token).", example="https://intranet.example/promo-hook"),
        "SECRET": KeyDoc(
            "Signs each request: X-Promo-Timestamp: <Unix seconds> and X-Promo-Signature: sha256=<hex HMAC-SHA256\n"
            "of \"<timestamp>.<raw body>\" with this secret>. Receivers refuse old timestamps (README: Verifying a webhook)."),
        "IDEMPOTENT": KeyDoc(
            ("true when the receiver honours the Idempotency-Key header for good (then an unknown outcome is\n"
            "simply re-sent, however much later)."),
            example="false"),
        "TIMEOUT": KeyDoc("Request timeout for this receiver (seconds; default PROMO_PUBLISH_TIMEOUT)."),
        "BASE_URL": KeyDoc("Replaces scheme, host and port of URL (tests)."),
    }

    def __init__(self, ctx: ChannelContext, http: httpx.AsyncClient):
        super().__init__(ctx, http)
        # With BASE_URL the URL actually called differs from the configured one: hide both.
        register_secret(self.url)

    @classmethod
    def rules_for(cls, options: Mapping[str, str], state: ChannelState | None = None) -> PlatformRules:
        if is_true(options.get("IDEMPOTENT")):
            return PlatformRules(text=cls.rules.text, idempotent_for=ALWAYS)
        return cls.rules

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> list[str]:
        problems = super().validate_options(options)
        url = options.get("URL") or ""
        if url and not url.startswith(("http://", "https://")):
            problems.append("URL is not an http(s) URL")
        timeout = options.get("TIMEOUT")
        if timeout:
            try:
                if float(timeout) <= 0:
                    raise ValueError
            except ValueError:
                problems.append(f"TIMEOUT {timeout!r} is not a positive number of seconds")
        return problems

    @property
    def url(self) -> str:
        url = self.option("URL") or ""
        base = self.option("BASE_URL")
        if base:  # BASE_URL replaces scheme, host and port, keeping the path
            import httpx

            u, b = httpx.URL(url), httpx.URL(base)
            url = str(u.copy_with(scheme=b.scheme, host=b.host, port=b.port))
        return url

    def body(self, post: ReadyPost) -> bytes:
        payload = {
            "channel": self.ctx.name,
            "post_id": post.post_id,
            "idempotency_key": post.idempotency_key,
            "text": post.text,
            "link": post.link,
            "title": post.title,
            "image_url": post.image.public_url if post.image else None,
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    async def publish(self, post: ReadyPost) -> PublishResult:
        body = self.body(post)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": post.idempotency_key,
            "User-Agent": "promo-scheduler",
        }
        secret = self.option("SECRET")
        if secret:
            # Signed per attempt: a retry carries a fresh timestamp, the same Idempotency-Key.
            timestamp = int(time.time())
            headers["X-Promo-Timestamp"] = str(timestamp)
            headers["X-Promo-Signature"] = sign(secret, timestamp, body)
        extra = {}
        if self.option("TIMEOUT"):
            extra["timeout"] = float(self.option("TIMEOUT") or 30)
        response = await self.send("POST", self.url, content=body, headers=headers, **extra)
        if response.status_code == 429:
            raise RateLimited(
                f"webhook rate-limited (HTTP 429): {self.excerpt(response)}",
                retry_at=retry_at_from_headers(response.headers),
                status=429,
            )
        if response.status_code in (401, 403):
            raise AuthError(f"webhook refused the request (HTTP {response.status_code}): {self.excerpt(response)}",
                            status=response.status_code)
        if not response.is_success:
            raise self.generic_error(response)
        remote_id, remote_url = post.idempotency_key, None
        try:
            data = response.json()
            if isinstance(data, dict):
                remote_id = str(data.get("id") or remote_id)
                remote_url = data.get("url")
        except ValueError:
            pass
        return PublishResult(remote_id=remote_id, remote_url=remote_url, http_status=response.status_code)

    async def check(self) -> str:
        # A webhook has no identity endpoint; a HEAD shows the URL is reachable.
        response = await self.send("HEAD", self.url)
        if response.status_code in (401, 403):
            raise AuthError(f"webhook refused (HTTP {response.status_code})", status=response.status_code)
        return f"webhook reachable (HTTP {response.status_code})"
