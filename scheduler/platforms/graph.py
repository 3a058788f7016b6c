"""The Meta Graph family's adapter base: Facebook Pages, Instagram and Threads.

:class:`GraphAdapter` holds ``call()`` (token in the POST body, or for GET an ``Authorization``
header: never in a URL, where proxies and server logs keep it),
long-lived token refresh kept in the channel state, and the container flow Instagram and
Threads share (create → poll status → publish). The error mapping is in ``graph_errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

from scheduler.errors import (
    AuthError,
    Duplicate,
    PublishError,
    RateLimited,
    RejectedContent,
    Transient,
    UnknownOutcome,
)
from scheduler.platforms.base import Adapter, Gone, MetricsAnswer, PublishResult, ReadyPost, utcnow
from scheduler.platforms.graph_errors import ContainerGone, error_body, graph_error, parse_time, same_text
from scheduler.platforms.graph_versions import GRAPH_API_VERSION, version_warning
from scheduler.redact import register_secret

REFRESH_AHEAD = dt.timedelta(days=10)
REFRESH_MIN_AGE = dt.timedelta(hours=24)  # Meta refreshes only tokens at least a day old


class GraphAdapter(Adapter):
    """Base of the Graph-family adapters: requests, token refresh and the container flow."""

    #: A version of the platform's own (Threads: v1.0); empty = follow PROMO_GRAPH_API_VERSION.
    graph_version: ClassVar[str] = ""
    secret_keys = frozenset({"ACCESS_TOKEN"})
    #: Option naming the account the API paths start with (PAGE_ID, IG_USER_ID, USER_ID).
    account_key: ClassVar[str]

    # container flow (Instagram, Threads)
    container_edge: ClassVar[str] = ""
    publish_edge: ClassVar[str] = ""
    status_fields: ClassVar[str] = ""
    list_fields: ClassVar[str] = ""
    text_field: ClassVar[str] = ""

    @classmethod
    def validate_options(cls, options: Mapping[str, str]) -> list[str]:
        problems = super().validate_options(options)
        for key, kind in (("POLL_INTERVAL", float), ("POLL_ATTEMPTS", int)):
            try:
                if options.get(key) and kind(options[key]) < 0:
                    raise ValueError
            except ValueError:
                problems.append(f"{key} {options[key]!r} is not a non-negative number")
        return problems

    @property
    def account(self) -> str:
        return self.option(self.account_key) or ""

    @property
    def version(self) -> str:
        """The channel's GRAPH_VERSION, else the platform's own, else PROMO_GRAPH_API_VERSION or the pin."""
        return (self.option("GRAPH_VERSION") or self.graph_version or self.ctx.graph_api_version
                or GRAPH_API_VERSION)

    @property
    def api(self) -> str:
        return f"{self.base_url}/{self.version}"

    def version_note(self) -> str:
        """A ``channels check`` warning line when the version is (nearly) past Meta's date."""
        if self.graph_version and not self.option("GRAPH_VERSION"):
            return ""  # Threads: versioned apart from the Graph API
        key = f"PROMO_CHANNEL_{self.ctx.name.upper()}_GRAPH_VERSION" if self.option("GRAPH_VERSION") \
            else "PROMO_GRAPH_API_VERSION"
        warning = version_warning(self.version, utcnow().date(), key)
        return f"\n  warning: {warning}" if warning else ""

    def refresh_grant(self) -> str | None:
        """``grant_type`` for ``/refresh_access_token``; None when the token needs no refresh."""
        return None

    async def call(self, method: str, path: str, *, what: str, publishing: bool = False,
                   params: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
                   files: dict[str, Any] | None = None) -> dict[str, Any]:
        """One Graph request; the token goes in the body (POST) or an Authorization header (GET)."""
        token = await self.access_token()
        headers = None
        if method == "GET":
            headers = {"Authorization": f"Bearer {token}"}
        else:
            data = {**(data or {}), "access_token": token}
        try:
            response = await self.send(method, f"{self.api}/{path}", params=params, data=data, files=files,
                                       headers=headers)
        except UnknownOutcome as exc:
            if publishing:
                raise
            raise Transient(str(exc)) from None  # reads and container steps publish nothing
        body: Any = None
        with contextlib.suppress(ValueError):
            body = response.json()
        if not response.is_success or (isinstance(body, dict) and "error" in body):
            error = graph_error(self, response, what)
            if isinstance(error, UnknownOutcome) and not publishing:
                error = Transient(str(error), status=error.status)
            elif (publishing and response.status_code >= 500 and isinstance(error, Transient)
                  and not isinstance(error, ContainerGone)):
                # A 5xx on the call that creates the post (feed, photos, media_publish) may follow
                # a post that was made: reconcile (container status, published posts) before a resend.
                error = UnknownOutcome(f"{error} (the post may have been created)", status=error.status)
            raise error
        if not isinstance(body, dict):
            cls = UnknownOutcome if publishing else Transient
            raise cls(f"{self.platform} {what}: unreadable answer: {self.excerpt(response)}",
                      status=response.status_code)
        return body

    async def read_metrics(self, remote_ids: Sequence[str], path: str, params: dict[str, str],
                           counts: Any) -> MetricsAnswer:
        """One GET ``{id}{path}`` per post; ``counts(body)`` turns the answer into counters. Graph
        answers a deleted object with code 100, subcode 33 ("does not exist"): the post is gone."""
        out: MetricsAnswer = {}
        for remote_id in remote_ids:
            token = await self.access_token()
            response = await self.send("GET", f"{self.api}/{remote_id}{path}", params=params,
                                       headers={"Authorization": f"Bearer {token}"})
            err = error_body(response)
            if err is not None and str(err.get("code")) == "100" and str(err.get("error_subcode")) == "33":
                out[remote_id] = Gone(self.redact(str(err.get("message") or "does not exist")))
                continue
            if not response.is_success or err is not None:
                raise graph_error(self, response, "metrics")
            body = response.json()
            out[remote_id] = counts(body if isinstance(body, dict) else {})
        return out

    def new_id(self, data: dict[str, Any], what: str, publishing: bool = False) -> str:
        if data.get("id"):
            return str(data["id"])
        cls = UnknownOutcome if publishing else Transient
        raise cls(f"{self.platform} {what} answered without an id")

    # --- long-lived tokens ------------------------------------------------------------

    async def access_token(self) -> str:
        """The token to use: a refreshed one from state, refreshed again ahead of expiry."""
        option = self.option("ACCESS_TOKEN") or ""
        grant = self.refresh_grant()
        if not grant:
            return option
        state, now = self.ctx.state, utcnow()
        # A new ACCESS_TOKEN in the configuration replaces whatever we refreshed from the old one.
        origin = hashlib.sha256(option.encode()).hexdigest()[:16]
        if state.get("token_origin") != origin:
            await state.update({"access_token": None, "access_token_expires_at": None,
                                "token_origin": origin, "token_seen_at": now.isoformat(timespec="seconds")})
        token = state.get("access_token") or option
        expires = parse_time(state.get("access_token_expires_at"))
        seen = parse_time(state.get("token_seen_at"))
        if expires is not None:
            due = expires - now < REFRESH_AHEAD
        else:  # expiry unknown until the first refresh; Meta refuses tokens younger than a day
            due = seen is not None and now - seen >= REFRESH_MIN_AGE
        if due:
            try:
                token = await self.refresh_token(token, grant, origin)
            except (Transient, RateLimited):
                # Refreshing early leaves days of slack: a hiccup must not hold up the post.
                if expires is not None and expires - now < dt.timedelta(hours=1):
                    raise
        return token

    async def refresh_token(self, token: str, grant: str, origin: str) -> str:
        # Meta documents the refresh endpoint without a version, token in the query.
        try:
            response = await self.send("GET", f"{self.base_url}/refresh_access_token",
                                       params={"grant_type": grant, "access_token": token})
        except UnknownOutcome as exc:
            raise Transient(str(exc)) from None
        if not response.is_success:
            error = graph_error(self, response, "token refresh")
            if isinstance(error, AuthError | RejectedContent | Duplicate):
                raise AuthError(f"{error}; create a new long-lived token and set ACCESS_TOKEN",
                                status=response.status_code)
            if isinstance(error, UnknownOutcome):
                error = Transient(str(error), status=error.status)
            raise error
        try:
            data = response.json()
            new = str(data["access_token"])
            expires_in = int(data.get("expires_in") or 60 * 86400)
        except (ValueError, KeyError, TypeError):
            raise AuthError(f"{self.platform} token refresh answered without a token: "
                            f"{self.excerpt(response, 80)}") from None
        register_secret(new)
        expires = utcnow() + dt.timedelta(seconds=expires_in)
        await self.ctx.state.update({"access_token": new, "token_origin": origin,
                                     "access_token_expires_at": expires.isoformat(timespec="seconds")})
        return new

    # --- container flow (Instagram, Threads) ------------------------------------------

    @staticmethod
    def container_key(post: ReadyPost) -> str:
        return f"container:{post.idempotency_key}"

    async def container_status(self, container_id: str) -> tuple[str, str]:
        data = await self.call("GET", container_id, what="container status",
                               params={"fields": self.status_fields})
        # Instagram explains an ERROR in ``status``, Threads in ``error_message``.
        detail = str((data.get("status") if "status_code" in data else data.get("error_message")) or "")
        return str(data.get("status_code") or data.get("status") or ""), detail

    async def carousel(self, items: list[dict[str, Any]], create: dict[str, Any]) -> dict[str, Any]:
        """A child container (``is_carousel_item``) per image, in order; the CAROUSEL container's
        fields naming them. Run only when a new carousel container is needed."""
        ids = []
        for item in items:
            data = await self.call("POST", f"{self.account}/{self.container_edge}",
                                   data={**item, "is_carousel_item": "true"}, what="carousel item")
            ids.append(self.new_id(data, "carousel item"))
        return {**create, "media_type": "CAROUSEL", "children": ",".join(ids)}

    async def publish_container(self, post: ReadyPost,
                                create: dict[str, Any] | Callable[[], Awaitable[dict[str, Any]]]) -> PublishResult:
        """Create (or reuse) the post's container, wait until it is ready, publish it. ``create``
        is the container's fields, or makes them (a carousel's children) when one is created."""
        key = self.container_key(post)
        container = self.ctx.state.get(key)
        if container:
            status, _ = await self.container_status(container)
            if status == "PUBLISHED":  # an earlier attempt went through: never publish twice
                return await self.published(post, container)
            if status not in ("FINISHED", "IN_PROGRESS"):
                container = None
        if not container:
            fields = create if isinstance(create, dict) else await create()
            data = await self.call("POST", f"{self.account}/{self.container_edge}", data=fields,
                                   what="container creation")
            container = self.new_id(data, "container creation")
            # Stored before publishing so reconcile can ask the container whether it went out.
            await self.ctx.state.update({key: container})
        status = await self.wait_until_ready(post, container)
        if status == "PUBLISHED":
            return await self.published(post, container)
        try:
            data = await self.call("POST", f"{self.account}/{self.publish_edge}",
                                   data={"creation_id": container}, what="publish", publishing=True)
        except (ContainerGone, RejectedContent):
            await self.ctx.state.update({key: None})
            raise
        await self.ctx.state.update({key: None})
        media_id = self.new_id(data, "publish", publishing=True)
        return PublishResult(media_id, await self.permalink(media_id))

    async def wait_until_ready(self, post: ReadyPost, container: str) -> str:
        interval = float(self.option("POLL_INTERVAL", "3") or 3)
        attempts = max(1, int(self.option("POLL_ATTEMPTS", "10") or 10))
        for attempt in range(attempts):
            status, detail = await self.container_status(container)
            if status in ("FINISHED", "PUBLISHED"):
                return status
            if status in ("ERROR", "EXPIRED"):
                await self.ctx.state.update({self.container_key(post): None})
                if status == "EXPIRED" or re.search(r"2207001|2207003|2207032|2207052|DOWNLOAD|UNKNOWN", detail):
                    raise ContainerGone(self.redact(f"{self.platform} container {status}: {detail}"))
                raise RejectedContent(self.redact(f"{self.platform} could not process the media: {detail}"))
            if attempt + 1 < attempts:
                await asyncio.sleep(interval)
        raise Transient(f"{self.platform} container still {status or 'not ready'} after {attempts} checks; "
                        "the next attempt reuses it")

    async def permalink(self, media_id: str) -> str | None:
        # The post is out: a failed permalink lookup must not turn success into an error.
        try:
            data = await self.call("GET", media_id, what="permalink", params={"fields": "id,permalink"})
        except PublishError:
            return None
        return str(data["permalink"]) if data.get("permalink") else None

    async def published(self, post: ReadyPost, container: str) -> PublishResult:
        try:
            found = await self.find_recent(post)
        except PublishError:
            found = None  # it is out either way; only the id lookup failed
        await self.ctx.state.update({self.container_key(post): None})
        # The container object does not expose the media id it became; when the recent
        # list does not show the post, the container id is the best id we have.
        return found or PublishResult(remote_id=container)

    async def find_recent(self, post: ReadyPost) -> PublishResult | None:
        data = await self.call("GET", f"{self.account}/{self.container_edge}", what="recent posts",
                               params={"fields": self.list_fields, "limit": 25})
        since = post.since - dt.timedelta(minutes=10)  # clock skew
        for item in data.get("data") or []:
            when = parse_time(item.get("timestamp"))
            if same_text(item.get(self.text_field), post.text) and (when is None or when >= since):
                return PublishResult(str(item["id"]), item.get("permalink"))
        return None

    async def reconcile_container(self, post: ReadyPost) -> PublishResult | None:
        try:
            container = self.ctx.state.get(self.container_key(post))
            if not container:
                # The container id is stored before publishing and dropped only after success,
                # so without one the post either never went out or is in the recent list.
                return await self.find_recent(post)
            status, _ = await self.container_status(container)
            if status == "PUBLISHED":
                return await self.published(post, container)
            if status not in ("FINISHED", "IN_PROGRESS"):  # EXPIRED, ERROR: cannot go out any more
                await self.ctx.state.update({self.container_key(post): None})
            return None  # FINISHED/IN_PROGRESS: not out yet, publish() reuses the container
        except UnknownOutcome:
            raise
        except PublishError as exc:
            raise UnknownOutcome(f"cannot tell whether the {self.platform} post went out: {exc}") from None


def insight_values(body: dict[str, Any]) -> dict[str, int]:
    """``/{media-id}/insights`` entries by name: ``values[0].value`` or, for total metrics,
    ``total_value.value`` (Instagram and Threads answer either shape)."""
    out: dict[str, int] = {}
    for entry in body.get("data") or []:
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        total = entry.get("total_value")
        values = entry.get("values")
        value = total.get("value") if isinstance(total, dict) else \
            values[0].get("value") if isinstance(values, list) and values and isinstance(values[0], dict) else None
        if isinstance(value, int):
            out[str(entry["name"])] = value
    return out
