"""The ``mastodon`` platform: statuses on any Mastodon-compatible server (``BASE_URL``).

Images go through ``POST /api/v2/media`` first (a 202 means "still processing": poll
``GET /api/v1/media/{id}`` until its ``url`` is set), then ``POST /api/v1/statuses``
with the post's ``Idempotency-Key``. Mastodon keeps that key for one hour after it made the
status (``PostStatusService`` stores it with a 3,600 s expiry), so a resend inside that hour
returns the status already made; later, or on servers that speak the Mastodon API but ignore
the header (GoToSocial, Takahe, Pixelfed…), :meth:`MastodonAdapter.reconcile` looks the status
up among the account's own. Which software a server runs is read from NodeInfo (else
``/api/v1/instance``) by ``channels check`` or before the first publish and kept in the channel
state (``software``); ``IDEMPOTENCY=mastodon|none`` overrides it. The server's character limit
is read by :meth:`MastodonAdapter.check` from ``/api/v2/instance`` (``max_characters``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from scheduler.errors import AuthError, PublishError, RateLimited, RejectedContent, Transient, UnknownOutcome
from scheduler.platforms.base import (
    MB,
    Adapter,
    ChannelState,
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
    with_link,
)
from scheduler.platforms.httpkit import before_publishing, find_recent, parse_iso
from scheduler.textrules import TextRule

if TYPE_CHECKING:  # imported where requests are made: reading the settings needs no HTTP client
    import httpx

DEFAULT_MAX_CHARACTERS = 500
VISIBILITIES = ("public", "unlisted", "private", "direct")
#: How long Mastodon remembers an Idempotency-Key (``redis.setex(key, 3_600, status.id)``).
KEY_WINDOW = dt.timedelta(hours=1)
#: NodeInfo ``software.name`` of servers known to honour the key; others are looked up instead.
HONOURS_KEY = frozenset({"mastodon"})
IDEMPOTENCY_CHOICES = ("mastodon", "none")
NODEINFO_SCHEMAS = ("http://nodeinfo.diaspora.software/ns/schema/2.1",
                    "http://nodeinfo.diaspora.software/ns/schema/2.0")
#: Status list pages reconcile reads (40 statuses each) before it gives up proving absence.
RECONCILE_PAGES = 5
PAGE_SIZE = 40
_BREAK = re.compile(r"<br\s*/?>|</p>\s*<p[^>]*>", re.I)
_TAG = re.compile(r"<[^>]+>")


#: Upstream's ``image_size_limit`` and ``image_matrix_limit``; a server's own are read by `channels check`.
DEFAULT_IMAGE_BYTES = 16 * MB
DEFAULT_IMAGE_PIXELS = 33_177_600
DEFAULT_DESCRIPTION_LIMIT = 1500  # characters of alt text (media_attachments.description_limit)


def _rules(max_characters: int, honours_key: bool = True, image_bytes: int = DEFAULT_IMAGE_BYTES,
           image_pixels: int = DEFAULT_IMAGE_PIXELS, alt: int = DEFAULT_DESCRIPTION_LIMIT) -> PlatformRules:
    return PlatformRules(
        text=(TextRule(max_characters, "mastodon"),),
        # up to 4 attachments (max_media_attachments' default)
        images=ImageRules(formats=frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/heic",
                                             "image/avif"}),
                          max_bytes=image_bytes, max_pixels=image_pixels, per_post=4, max_alt=alt),
        can_reconcile=True,
        idempotent_for=KEY_WINDOW if honours_key else None,
    )


def _positive(state: ChannelState | None, key: str, default: int) -> int:
    """A positive number learned into channel state by `channels check`, else ``default``."""
    stored = state.get(key) if state is not None else None
    return int(stored) if stored and stored.isdigit() and int(stored) > 0 else default


def software_from_version(version: object) -> str | None:
    """The software named by ``/api/v1/instance``'s ``version`` ("4.3.1" is Mastodon itself;
    "2.7.2 (compatible; Pleroma 2.5.0)" names another); None when it says nothing."""
    if not isinstance(version, str) or not version.strip():
        return None  # GoToSocial may leave it empty
    compatible = re.search(r"compatible;\s*([A-Za-z][\w.-]*)", version)
    if compatible:
        return compatible.group(1).lower()
    return "mastodon" if re.match(r"\d+\.\d+", version.strip()) else None


def plain_text(content: str) -> str:
    """A status's HTML ``content`` as whitespace-normalised plain text (for reconcile)."""
    text = _TAG.sub("", _BREAK.sub(" ", content))
    return " ".join(html.unescape(text).split())


class MastodonAdapter(Adapter):
    """Posts statuses with an Idempotency-Key; uploads one image through the v2 media API."""

    platform = "mastodon"
    rules = _rules(DEFAULT_MAX_CHARACTERS)
    required_keys = (("BASE_URL", "ACCESS_TOKEN"),)
    optional_keys = ("VISIBILITY", "LANGUAGE", "POLL_INTERVAL", "POLL_ATTEMPTS", "IDEMPOTENCY")
    secret_keys = frozenset({"ACCESS_TOKEN"})
    help = ("BASE_URL is your server (https://mastodon.example); ACCESS_TOKEN from Preferences > Development > "
            "New application (scopes write:statuses write:media read:accounts) > Your access token.")

    budget = (SendBudget(300, dt.timedelta(hours=3), "status creation: 300 per 3 h per account"),)
    token_keys = ()
    metrics = MetricsSpec(
        {"favourites_count": "likes", "reblogs_count": "shares", "replies_count": "replies"},
        batch=1, requests_per_run=60,
        source="GET /api/v1/statuses/:id; reads: 300 per 5 min per account",
        needs="read:statuses (or read)")
    doc_title = "Mastodon (platform=mastodon) ---"
    doc_setup = ("Keys: on your Mastodon server, Preferences > Development > New application: name it, tick the\n"
                "scopes write:statuses, write:media and read:accounts (read:accounts lets `promo channels check`\n"
                "and reconcile see the account), Submit, open the application and copy \"Your access token\".\n"
                "Run `promo channels check` once: it reads the server's character limit (/api/v2/instance) and\n"
                "which software the server runs (NodeInfo, else /api/v1/instance).")
    doc_channel = "MASTO_KOTA"
    key_docs = {
        "BASE_URL": KeyDoc("Required: the server the account lives on, scheme and host only (no /api path).", example="https://mastodon.example"),
        "ACCESS_TOKEN": KeyDoc("Required: the application's access token (secret; sent as a Bearer header).", example="..."),
        "VISIBILITY": KeyDoc("Optional: public | unlisted | private | direct (default public).", example="public"),
        "LANGUAGE": KeyDoc("Optional: ISO 639-1 language of the posts (e.g. id, en); unset lets the server guess.", example="id"),
        "POLL_INTERVAL": KeyDoc("Optional: seconds between checks while the server is still processing an uploaded image (default 2).", example="2"),
        "POLL_ATTEMPTS": KeyDoc("Optional: how many checks before giving up on an image that is still processing (default 30).", example="30"),
        "IDEMPOTENCY": KeyDoc(
            "Optional: mastodon | none. Whether the server honours the Idempotency-Key header (Mastodon keeps it\n"
            "for 1 hour: an uncertain post is then re-sent with the same key within the hour, looked up after it).\n"
            "Unset: detected (only Mastodon itself counts; GoToSocial, Takahe, Pixelfed and unknown servers are\n"
            "looked up instead, never re-sent blindly). Set mastodon for a fork known to keep the key an hour."),
    }

    @classmethod
    def rules_for(cls, options: Mapping[str, str], state: ChannelState | None = None) -> PlatformRules:
        stored = state.get("max_characters") if state is not None else None
        limit = int(stored) if stored and stored.isdigit() and int(stored) > 0 else DEFAULT_MAX_CHARACTERS
        return _rules(limit, honours_key=cls.honours_key(options, state),
                      image_bytes=_positive(state, "image_size_limit", DEFAULT_IMAGE_BYTES),
                      image_pixels=_positive(state, "image_matrix_limit", DEFAULT_IMAGE_PIXELS),
                      alt=_positive(state, "description_limit", DEFAULT_DESCRIPTION_LIMIT))

    @staticmethod
    def honours_key(options: Mapping[str, str], state: ChannelState | None) -> bool:
        """Whether the server dedupes on Idempotency-Key: the channel's IDEMPOTENCY, else the
        detected software (unknown software does not count: a blind resend could post twice)."""
        override = (options.get("IDEMPOTENCY") or "").strip().lower()
        if override:
            return override == "mastodon"
        software = state.get("software") if state is not None else None
        return software in HONOURS_KEY

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> list[str]:
        problems = super().validate_options(options)
        visibility = options.get("VISIBILITY")
        if visibility and visibility not in VISIBILITIES:
            problems.append(f"VISIBILITY must be one of {', '.join(VISIBILITIES)}, not {visibility!r}")
        idempotency = (options.get("IDEMPOTENCY") or "").strip().lower()
        if idempotency and idempotency not in IDEMPOTENCY_CHOICES:
            problems.append(f"IDEMPOTENCY must be one of {', '.join(IDEMPOTENCY_CHOICES)}, not {idempotency!r}")
        for key in ("POLL_INTERVAL", "POLL_ATTEMPTS"):
            try:
                float(options.get(key) or 0)
            except ValueError:
                problems.append(f"{key} must be a number")
        return problems

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.option('ACCESS_TOKEN')}", "User-Agent": "promo-scheduler"}

    def error(self, response: httpx.Response, what: str, creating: bool = False) -> PublishError:
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
        if status >= 500 and creating:
            # The status may have been made before the error (a worker dying mid-request, a proxy
            # timing out): the dispatcher resends with the key inside its hour, else looks it up.
            return UnknownOutcome(msg, status=status)
        if status >= 500:
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
        if not self.option("IDEMPOTENCY") and self.ctx.state.get("software") is None:
            await self.detect_software()  # before the first status: decides how an unknown outcome is resolved
        body: dict[str, Any] = {"status": self.status_text(post)}
        body["visibility"] = self.option("VISIBILITY", "public")
        if self.option("LANGUAGE"):
            body["language"] = self.option("LANGUAGE")
        if post.image is not None:  # up to 4 attachments, the cover first
            body["media_ids"] = [await before_publishing(self.upload(image)) for image in post.images[:4]]
        headers = {**self.headers(), "Idempotency-Key": post.idempotency_key}
        response = await self.send("POST", f"{self.base_url}/api/v1/statuses", headers=headers, json=body)
        if response.status_code != 200:
            raise self.error(response, "status", creating=True)
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
        """Look for the post among the account's statuses, paging back to the first attempt."""
        wanted = " ".join(self.status_text(post).split())
        params: dict[str, str | int] = {"limit": PAGE_SIZE, "exclude_replies": "true", "exclude_reblogs": "true"}
        try:
            account = await self.account()
            for _ in range(RECONCILE_PAGES):
                response = await self.send("GET", f"{self.base_url}/api/v1/accounts/{account.get('id')}/statuses",
                                           headers=self.headers(), params=params)
                if response.status_code != 200:
                    raise UnknownOutcome(f"cannot look up mastodon statuses (HTTP {response.status_code})")
                try:
                    data = response.json()
                except ValueError:
                    data = None
                if not isinstance(data, list):
                    raise UnknownOutcome("mastodon answered the status list with something that is not a list")
                statuses = [s for s in data if isinstance(s, dict)]
                if len(statuses) != len(data):
                    raise UnknownOutcome("mastodon answered the status list with entries that are not statuses")
                # Bound first, unpacked after: unpacking straight from the call makes mypy solve T as "dict | None".
                found = find_recent(
                    statuses, post, same=lambda s: plain_text(str(s.get("content") or "")) == wanted,
                    created=lambda s: parse_iso(s.get("created_at")), complete=len(data) < PAGE_SIZE)
                match, certain = found
                if match is not None:
                    return PublishResult(remote_id=str(match["id"]),
                                         remote_url=match.get("url") or match.get("uri"))
                if certain:
                    return None
                params["max_id"] = str(statuses[-1].get("id"))  # the next page: older than the last seen
        except (Transient, RateLimited, AuthError) as exc:
            raise UnknownOutcome(f"cannot look up mastodon statuses: {exc}") from None
        raise UnknownOutcome(f"mastodon: more than {RECONCILE_PAGES * PAGE_SIZE} newer statuses; "
                             "cannot tell whether the post went out")

    async def fetch_metrics(self, remote_ids: Sequence[str]) -> MetricsAnswer:
        """One ``GET /api/v1/statuses/:id`` per status; a 404 means it was deleted."""
        out: MetricsAnswer = {}
        for remote_id in remote_ids:
            response = await self.send("GET", f"{self.base_url}/api/v1/statuses/{remote_id}", headers=self.headers())
            if response.status_code == 404:
                out[remote_id] = Gone("not found on the server (deleted)")
                continue
            if response.status_code != 200:
                raise self.error(response, "status lookup")
            status = json_body(response)
            out[remote_id] = {k: int(v) for k in self.metrics.names
                              if isinstance(v := status.get(k), int)}
        return out

    async def detect_software(self) -> str | None:
        """Which software the server runs (NodeInfo ``software.name``, else ``/api/v1/instance``),
        kept in the channel state; None when the server could not be asked (nothing stored)."""
        import httpx

        name: str | None = None
        try:
            response = await self.send("GET", f"{self.base_url}/.well-known/nodeinfo")
            links = json_body(response).get("links") if response.status_code == 200 else None
            hrefs = {str(link.get("rel")): str(link.get("href")) for link in links or []
                     if isinstance(link, dict) and link.get("href")}
            href = next((hrefs[rel] for rel in NODEINFO_SCHEMAS if rel in hrefs), None)
            if href:
                # Asked on our BASE_URL (the same server answers under its public name).
                response = await self.send("GET", self.base_url + httpx.URL(href).path)
                software = json_body(response).get("software") if response.status_code == 200 else None
                if isinstance(software, dict) and isinstance(software.get("name"), str):
                    name = software["name"].strip().lower() or None
            if name is None:
                response = await self.send("GET", f"{self.base_url}/api/v1/instance")
                if response.status_code >= 500:
                    return None
                name = software_from_version(json_body(response).get("version")) or "unknown"
        except PublishError:
            return None
        await self.ctx.state.update({"software": name})
        return name

    async def check(self) -> str:
        import httpx

        response = await self.send("GET", f"{self.base_url}/api/v2/instance")
        # Older servers lack /api/v2/instance; the default of 500 then stays.
        config = json_body(response).get("configuration")
        statuses = config.get("statuses") if isinstance(config, dict) else None
        limit = statuses.get("max_characters") if isinstance(statuses, dict) else None
        if response.status_code == 200 and isinstance(limit, int) and limit > 0:
            await self.ctx.state.update({"max_characters": str(limit)})
        media = config.get("media_attachments") if isinstance(config, dict) else None
        if response.status_code == 200 and isinstance(media, dict):
            learned = {k: str(media[k]) for k in ("image_size_limit", "image_matrix_limit", "description_limit")
                       if isinstance(media.get(k), int) and media[k] > 0}
            if learned:
                await self.ctx.state.update(learned)
        account = await self.account()
        software = await self.detect_software() or self.ctx.state.get("software") or "unknown"
        rules = self.rules_for(self.ctx.options, self.ctx.state)
        resend = ("resends within 1 h reuse the Idempotency-Key" if rules.idempotent
                  else "unknown outcomes are looked up, never resent blindly")
        return (f"@{account.get('acct')} on {httpx.URL(self.base_url).host} ({software}; "
                f"{rules.text[0].limit} characters per post; {resend})")
