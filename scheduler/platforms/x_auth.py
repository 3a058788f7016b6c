"""Credentials of the X adapter: rotating OAuth 2.0 user tokens, or OAuth 1.0a signatures.

OAuth 2.0 access tokens last two hours and each refresh returns a *new* refresh token
(the old one stops working), so the pair is kept in the channel state, never only in
memory. The options' ``ACCESS_TOKEN``/``REFRESH_TOKEN`` are the seed: state wins over
options, unless the options changed since the state was written (an operator pasted
fresh tokens after re-authorising), which the stored ``token_origin`` fingerprint tells.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import TYPE_CHECKING

from scheduler.errors import AuthError, RateLimited, Transient, UnknownOutcome
from scheduler.platforms.base import json_body, retry_at_from_headers

if TYPE_CHECKING:
    from scheduler.platforms.base import Adapter

STATE_ACCESS = "access_token"
STATE_REFRESH = "refresh_token"
STATE_EXPIRES = "access_token_expires_at"  # epoch seconds
STATE_ORIGIN = "token_origin"
#: Refresh this long before the access token expires, so a request never races the expiry.
REFRESH_MARGIN = 300.0
TOKEN_PATH = "/2/oauth2/token"


class OAuth1Signer:
    """OAuth 1.0a user-context ``Authorization`` headers, computed by authlib.

    Only the header is taken from authlib: X's bodies are JSON or multipart, which are
    not part of an OAuth 1.0a signature, and we send them unchanged ourselves.
    """

    def __init__(self, api_key: str, api_secret: str, token: str, token_secret: str):
        from authlib.oauth1 import ClientAuth  # here: reading the settings needs no OAuth library

        self._auth = ClientAuth(api_key, api_secret, token=token, token_secret=token_secret)

    def header(self, method: str, url: str) -> str:
        _, headers, _ = self._auth.prepare(method, url, {}, b"")
        return str(headers["Authorization"])


class OAuth2Tokens:
    """The OAuth 2.0 user token of one X channel: read, refresh ahead of expiry, persist."""

    def __init__(self, adapter: Adapter):
        self.adapter = adapter
        self._lock = asyncio.Lock()

    def _opt(self, key: str) -> str:
        return self.adapter.option(key) or ""

    def _origin(self) -> str:
        seed = f"{self._opt('ACCESS_TOKEN')}\0{self._opt('REFRESH_TOKEN')}"
        return hashlib.sha256(seed.encode()).hexdigest()[:16]

    def _stored(self, key: str) -> str | None:
        state = self.adapter.ctx.state
        if state.get(STATE_ORIGIN) != self._origin():
            return None
        return state.get(key)

    @property
    def access_token(self) -> str:
        return self._stored(STATE_ACCESS) or self._opt("ACCESS_TOKEN")

    @property
    def refresh_token(self) -> str:
        return self._stored(STATE_REFRESH) or self._opt("REFRESH_TOKEN")

    @property
    def expires_at(self) -> float | None:
        value = self._stored(STATE_EXPIRES)
        try:
            return float(value) if value else None
        except ValueError:
            return None

    @property
    def can_refresh(self) -> bool:
        return bool(self.refresh_token and self._opt("CLIENT_ID"))

    async def bearer(self) -> str:
        """The access token to send now, refreshed first when it expires within the margin."""
        expires = self.expires_at
        if expires is not None and self.can_refresh and time.time() >= expires - REFRESH_MARGIN:
            await self.refresh(self.access_token)
        return self.access_token

    async def refresh(self, stale: str) -> None:
        """Exchange the refresh token for a new pair and store both; AuthError when X refuses."""
        async with self._lock:
            if self.access_token != stale:
                return  # another request refreshed while we waited for the lock
            if not self.can_refresh:
                raise AuthError(
                    "X access token expired or was revoked and cannot be renewed: set REFRESH_TOKEN and "
                    "CLIENT_ID (scope offline.access), or authorise the app again and set a new ACCESS_TOKEN"
                )
            await self._exchange()

    async def _exchange(self) -> None:
        client_id, secret = self._opt("CLIENT_ID"), self._opt("CLIENT_SECRET")
        data = {"grant_type": "refresh_token", "refresh_token": self.refresh_token, "client_id": client_id}
        # Confidential clients (with a client secret) authenticate with HTTP Basic.
        import httpx

        auth = httpx.BasicAuth(client_id, secret) if secret else None
        try:
            response = await self.adapter.send(
                "POST", self.adapter.base_url + TOKEN_PATH, data=data, auth=auth
            )
        except UnknownOutcome as exc:
            # Nothing was published; the next refresh will tell whether the token rotated.
            raise Transient(f"X token refresh got no answer: {exc}") from None
        body = json_body(response)
        if response.status_code == 429:
            raise RateLimited("X token refresh rate-limited (HTTP 429)",
                              retry_at=retry_at_from_headers(response.headers), status=429)
        if response.status_code >= 500:
            status = response.status_code
            raise Transient(f"X token refresh answered HTTP {status}", status=status)
        token = body.get("access_token")
        if not response.is_success or not isinstance(token, str) or not token:
            reason = body.get("error_description") or body.get("error") or self.adapter.excerpt(response, 120)
            code = f"{body['error']}: " if body.get("error") and body.get("error_description") else ""
            raise AuthError(
                self.adapter.redact(
                    "X refused to refresh the OAuth 2.0 token "
                    f"(HTTP {response.status_code}, {code}{reason}); "
                    "authorise the app again and set new ACCESS_TOKEN and REFRESH_TOKEN"
                ),
                status=response.status_code,
            )
        expires_in = body.get("expires_in")
        expires = str(int(time.time() + float(expires_in))) if isinstance(expires_in, int | float) else None
        await self.adapter.ctx.state.update({
            STATE_ACCESS: token,
            # X rotates refresh tokens; keep the old one only if no new one came back.
            STATE_REFRESH: body.get("refresh_token") or self.refresh_token or None,
            STATE_EXPIRES: expires,
            STATE_ORIGIN: self._origin(),
        })

