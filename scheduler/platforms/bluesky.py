"""The ``bluesky`` platform: AT Protocol XRPC with an app password.

The session (``accessJwt``, ``refreshJwt``, ``did``, ``handle``) is created once with
``com.atproto.server.createSession`` and kept in the channel state, so a restart does not
log in again (createSession is limited to 30 per 5 minutes). It is refreshed ahead of
expiry and whenever the server says ``ExpiredToken`` (an HTTP **400**, not 401).

Each post is written with ``com.atproto.repo.createRecord`` under a record key derived
from the post (:func:`~scheduler.platforms.atproto.tid_for`), so the key is known before
the call: ``reconcile`` looks it up with ``getRecord``, and a repeated create cannot make a
second copy (the reference PDS answers 500 for an existing key, so 5xx and "exists"
answers are checked with ``getRecord`` before they are reported).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scheduler.errors import AuthError, Duplicate, PublishError, RateLimited, RejectedContent, UnknownOutcome
from scheduler.media import ImageError, without_metadata
from scheduler.platforms.atproto import error_name, jwt_expiry, post_record, tid_for
from scheduler.platforms.base import (
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
    epoch_to_utc,
    retry_at_from_headers,
    utcnow,
)
from scheduler.redact import register_secret
from scheduler.textrules import TextRule

if TYPE_CHECKING:  # imported where requests are made: reading the settings needs no HTTP client
    import httpx

POST = "app.bsky.feed.post"
#: Refresh this long before the access token expires (the atproto SDK uses 15 minutes too).
REFRESH_MARGIN = dt.timedelta(minutes=15)
_AUTH_ERRORS = {"AuthenticationRequired", "InvalidToken", "ExpiredToken", "AuthMissing",
                "AccountTakedown", "AccountDeactivated", "AuthFactorTokenRequired"}
_SESSION_KEYS = ("accessJwt", "refreshJwt", "did", "handle")


class BlueskyAdapter(Adapter):
    """Posts to a Bluesky account (or any AT Protocol PDS) with a handle and app password."""

    platform = "bluesky"
    rules = PlatformRules(
        # The lexicon caps post text at 300 graphemes *and* 3,000 UTF-8 bytes; URLs count in full.
        text=(TextRule(300, "graphemes"), TextRule(3000, "bytes")),
        # Link-card thumbs allow 1,000,000 bytes; image embeds 2 MB only on updated servers.
        # app.bsky.embed.images: up to 4 images; no pixel cap in the lexicon.
        images=ImageRules(formats=frozenset({"image/jpeg", "image/png", "image/webp"}), max_bytes=1_000_000,
                          per_post=4),
        can_reconcile=True,
    )
    required_keys = (("HANDLE", "APP_PASSWORD"),)
    optional_keys = ("BASE_URL", "PUBLIC_URL_BASE", "LANGS")
    secret_keys = frozenset({"APP_PASSWORD"})
    default_base_url = "https://bsky.social"
    help = "HANDLE is your Bluesky handle; APP_PASSWORD from bsky.app > Settings > Privacy and security > App passwords."

    budget = (SendBudget(1666, dt.timedelta(hours=1), "5,000 write points per hour, a post costs 3"),
              SendBudget(11666, dt.timedelta(hours=24), "35,000 write points per day, a post costs 3"))
    token_keys = ("accessJwt", "refreshJwt")
    metrics = MetricsSpec(
        {"likeCount": "likes", "repostCount": "shares", "replyCount": "replies", "quoteCount": "quotes"},
        batch=25, requests_per_run=40,
        source="app.bsky.feed.getPosts (25 posts a call, through the PDS to the AppView); 3,000 calls per 5 min",
        needs="the app password (no extra scope)")
    doc_title = "Bluesky (platform=bluesky) ---"
    doc_setup = ("Keys: sign in at bsky.app as the account that posts, Settings > Privacy and security >\n"
                "App passwords > Add App Password: name it (e.g. promo-scheduler) and copy the xxxx-xxxx-xxxx-xxxx\n"
                "password it shows once. Never use the account's main password. The service logs in once and keeps\n"
                "the session (refreshed automatically) encrypted in its database; `promo channels check` tests it.")
    doc_channel = "BSKY_KOTA"
    key_docs = {
        "HANDLE": KeyDoc("Required: the account's handle (e.g. umkmkota.bsky.social or a custom domain), or its DID or email.", example="umkmkota.bsky.social"),
        "APP_PASSWORD": KeyDoc("Required: the app password (secret).", example="xxxx-xxxx-xxxx-xxxx"),
        "BASE_URL": KeyDoc(
            ("Optional: the PDS or entryway to talk to, scheme and host only (default https://bsky.social;\n"
            "a self-hosted account gives its own PDS, e.g. https://pds.example)."),
            example="https://bsky.social"),
        "PUBLIC_URL_BASE": KeyDoc("Optional: where post links point (default https://bsky.app -> https://bsky.app/profile/<did>/post/<rkey>).", example="https://bsky.app"),
        "LANGS": KeyDoc("Optional: languages of the posts, comma-separated, at most 3 (e.g. id,en); unset sends none.", example="id"),
    }

    def __init__(self, ctx: ChannelContext, http: httpx.AsyncClient):
        super().__init__(ctx, http)
        self._session_lock = asyncio.Lock()

    def xrpc(self, nsid: str) -> str:
        return f"{self.base_url}/xrpc/{nsid}"

    def public_url(self, did: str, rkey: str) -> str:
        base = (self.option("PUBLIC_URL_BASE") or "https://bsky.app").rstrip("/")
        return f"{base}/profile/{did}/post/{rkey}"

    # --- session ---------------------------------------------------------------------

    def _stored(self, key: str) -> str | None:
        return self.ctx.state.get(key)

    async def _save_session(self, data: Any) -> None:
        if not isinstance(data, dict) or not all(data.get(k) for k in _SESSION_KEYS):
            raise AuthError("Bluesky session answer lacks accessJwt/refreshJwt/did/handle")
        for key in ("accessJwt", "refreshJwt"):
            register_secret(data[key])
        await self.ctx.state.update({k: str(data[k]) for k in _SESSION_KEYS} | {"identifier": self.option("HANDLE")})

    async def _create_session(self) -> None:
        body = {"identifier": self.option("HANDLE"), "password": self.option("APP_PASSWORD")}
        response = await self.send("POST", self.xrpc("com.atproto.server.createSession"), json=body)
        if response.is_success:
            await self._save_session(response.json())
            return
        name, message = error_name(response)
        if response.status_code in (400, 401, 403):
            reason = {
                "AuthFactorTokenRequired": "the account wants an email sign-in code; use an app password",
                "AccountTakedown": "the account has been taken down",
            }.get(name, "check HANDLE and APP_PASSWORD")
            raise AuthError(self.redact(f"Bluesky login failed ({name or response.status_code}: {message}): {reason}"),
                            status=response.status_code)
        raise self._error(response, "createSession")

    async def _refresh_session(self) -> bool:
        """Swap the refresh token for a new pair; False when it is spent or expired."""
        refresh = self._stored("refreshJwt")
        if not refresh or ((exp := jwt_expiry(refresh)) and exp <= utcnow()):
            return False
        response = await self.send("POST", self.xrpc("com.atproto.server.refreshSession"),
                                   headers={"Authorization": f"Bearer {refresh}"})
        if response.is_success:
            await self._save_session(response.json())
            return True
        if response.status_code in (400, 401):  # ExpiredToken / InvalidToken / revoked
            return False
        raise self._error(response, "refreshSession")

    async def _renew(self, stale: str | None, login: bool = False) -> None:
        """Refresh (or log in again); ``stale`` is the token the caller saw fail."""
        async with self._session_lock:
            if stale is not None and self._stored("accessJwt") != stale:
                return  # another call renewed it meanwhile
            if login or not await self._refresh_session():
                await self._create_session()

    async def _access_token(self) -> str:
        token = self._stored("accessJwt")
        if not token or self._stored("identifier") != self.option("HANDLE"):
            # No session yet, or one for another account (HANDLE changed): log in.
            await self._renew(token, login=True)
        else:
            exp = jwt_expiry(token)
            if exp is not None and exp - REFRESH_MARGIN <= utcnow():
                await self._renew(token)
        return self._stored("accessJwt") or ""

    async def _call(self, method: str, nsid: str, **kwargs: Any) -> httpx.Response:
        """One authenticated XRPC call; on an expired or rejected token, renew and retry once."""
        headers = dict(kwargs.pop("headers", {}))
        for attempt in (1, 2):
            token = await self._access_token()
            response = await self.send(method, self.xrpc(nsid),
                                       headers=headers | {"Authorization": f"Bearer {token}"}, **kwargs)
            name, _ = error_name(response)
            rejected = response.status_code == 401 or (response.status_code == 400 and name in _AUTH_ERRORS)
            if not rejected or attempt == 2:
                return response
            await self._renew(token)
        raise AssertionError("unreachable")

    # --- errors --------------------------------------------------------------------

    def _error(self, response: httpx.Response, what: str) -> PublishError:
        status = response.status_code
        name, message = error_name(response)
        msg = self.redact(f"Bluesky {what} answered HTTP {status} {name}: {message or self.excerpt(response)}")
        if status == 429:
            reset = response.headers.get("ratelimit-reset")
            try:
                retry_at = epoch_to_utc(reset) if reset else retry_at_from_headers(response.headers)
            except (ValueError, OverflowError):
                retry_at = retry_at_from_headers(response.headers)
            return RateLimited(msg, retry_at=retry_at, status=status)
        if status in (401, 403) or name in _AUTH_ERRORS:
            return AuthError(msg, status=status)
        if status == 413 or name in ("PayloadTooLarge", "BlobTooLarge"):
            return RejectedContent(msg, status=status)
        return self.generic_error(response, what)

    # --- publishing -------------------------------------------------------------------

    async def _upload(self, image: Media) -> dict[str, Any]:
        name = f"image {image.path.name}"
        try:
            # Bluesky's docs ask clients to strip EXIF (a phone photo carries its GPS position). Images
            # queued since fitting have none left: they come back unchanged, read from the header
            # without decoding (it was decoded when queued); anything else is decoded off the event loop.
            clean = await asyncio.to_thread(without_metadata, image.read_bytes(), name, False)
        except ImageError as exc:
            raise RejectedContent(str(exc)) from None
        data = clean.data
        if len(data) > self.rules.max_image_bytes:
            raise RejectedContent(f"{name} is {len(data)} bytes; Bluesky takes at most {self.rules.max_image_bytes}")
        response = await self._call("POST", "com.atproto.repo.uploadBlob", content=data,
                                    headers={"Content-Type": clean.info.mime})
        if not response.is_success:
            raise self._error(response, "uploadBlob")
        blob = response.json().get("blob")
        if not isinstance(blob, dict):
            raise UnknownOutcome(f"Bluesky uploadBlob answer has no blob: {self.excerpt(response)}")
        return {"blob": blob, "size": (clean.info.width, clean.info.height), "alt": image.alt_text}

    async def publish(self, post: ReadyPost) -> PublishResult:
        rkey = tid_for(post.created_at, post.idempotency_key)
        # With a link the post's one embed is the card (the cover as its thumb): only the cover is sent.
        sending = post.images[:1] if post.link else post.images[:4]
        images = [await self._upload(image) for image in sending]
        langs = [lang.strip() for lang in (self.option("LANGS") or "").split(",") if lang.strip()]
        record = post_record(post, images, langs)
        did = await self._did()
        body = {"repo": did, "collection": POST, "rkey": rkey, "record": record}
        response = await self._call("POST", "com.atproto.repo.createRecord", json=body)
        if response.is_success:
            uri = str(response.json().get("uri") or f"at://{did}/{POST}/{rkey}")
            return PublishResult(uri, self.public_url(did, uri.rsplit("/", 1)[-1]), http_status=response.status_code)
        error = self._error(response, "createRecord")
        name, message = error_name(response)
        exists = response.status_code in (400, 409) and any(
            w in f"{name} {message}".lower() for w in ("exist", "conflict", "duplicate"))
        if response.status_code >= 500 or exists:
            # The key is ours: if the record is there, an earlier attempt published it.
            try:
                found = await self._get_record(post)
            except PublishError:
                raise error from None
            if found is not None:
                if found[1].get("text") == post.text:
                    return found[0]
                raise Duplicate(f"Bluesky already has record {rkey} with other text",
                                remote_id=found[0].remote_id, remote_url=found[0].remote_url, status=response.status_code)
        raise error

    async def _get_record(self, post: ReadyPost) -> tuple[PublishResult, dict[str, Any]] | None:
        did = await self._did()
        rkey = tid_for(post.created_at, post.idempotency_key)
        response = await self._call("GET", "com.atproto.repo.getRecord",
                                    params={"repo": did, "collection": POST, "rkey": rkey})
        name, _ = error_name(response)
        if response.status_code == 400 and name == "RecordNotFound":
            return None
        if not response.is_success:
            error = self._error(response, "getRecord")
            if isinstance(error, AuthError | RateLimited):
                raise error
            raise UnknownOutcome(str(error), status=response.status_code)
        data = response.json()
        uri = str(data.get("uri") or f"at://{did}/{POST}/{rkey}")
        value = data.get("value") if isinstance(data.get("value"), dict) else {}
        return PublishResult(uri, self.public_url(did, rkey), http_status=200), value

    async def fetch_metrics(self, remote_ids: Sequence[str]) -> MetricsAnswer:
        """``app.bsky.feed.getPosts?uris=…`` (up to 25); a post the AppView no longer returns is gone."""
        response = await self._call("GET", "app.bsky.feed.getPosts", params=[("uris", u) for u in remote_ids])
        if not response.is_success:
            raise self._error(response, "getPosts")
        posts = response.json().get("posts")
        found = {str(p.get("uri")): p for p in posts if isinstance(p, dict)} if isinstance(posts, list) else {}
        out: MetricsAnswer = {}
        for uri in remote_ids:
            post = found.get(uri)
            out[uri] = Gone("getPosts no longer returns it (deleted)") if post is None else \
                {k: int(v) for k in self.metrics.names if isinstance(v := post.get(k), int)}
        return out

    async def _did(self) -> str:
        await self._access_token()
        return str(self._stored("did"))

    async def reconcile(self, post: ReadyPost) -> PublishResult | None:
        found = await self._get_record(post)
        return found[0] if found else None

    async def check(self) -> str:
        response = await self._call("GET", "com.atproto.server.getSession")
        if not response.is_success:
            raise self._error(response, "getSession")
        data = response.json()
        return f"Bluesky @{data.get('handle')} ({data.get('did')})"
