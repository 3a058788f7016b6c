"""The web app's shared object: settings, database, templates, who a request comes from, and the
read pages of the first dashboard (overview, posts, post, highlights) with their JSON twins."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, unquote

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from scheduler.actions import Actor, Context
from scheduler.config import Settings
from scheduler.highlight_views import featured_summary, highlight_history
from scheduler.models import ApiToken, Channel, PostStatus, utcnow
from scheduler.storage import accounts, post_read
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database, retry_disconnect
from scheduler.views import (
    HistoryFilter,
    channel_states,
    history_rows,
    local,
    post_row,
    status_report,
)
from scheduler.web.core import (
    COOKIE,
    CSRF_FIELD,
    FLASH,
    NAV,
    PAGE_ROWS,
    Route,
    Who,
    _is_web_url,
    _local_path,
    typed_handler,
)
from scheduler.web.i18n import CHANNEL_WORDS, LANGUAGES, STATE_WORDS, pick, translations
from scheduler.web.params import NoParams, PostQuery, PostRef


class WebApp:
    def __init__(self, settings: Settings, db: Database):
        self.settings = settings
        self.db = db
        self.tz = settings.timezone
        self.idle = dt.timedelta(minutes=settings.web_session_idle_minutes)
        self.jinja = Environment(loader=PackageLoader("scheduler.web", "templates"),
                                 autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
        self.jinja.filters["when"] = self._when
        self.jinja.tests["web_url"] = _is_web_url
        self._key: bytes | None = None
        self._ctx: Context | None = None

    # --- plumbing ------------------------------------------------------------------------

    def _when(self, value: str | None) -> str:
        """'2027-12-01T09:00:00+08:00' → '2027-12-01 09:00' (the zone is in the page header)."""
        if not value:
            return "–"
        return value[:16].replace("T", " ")

    async def read(self, fn: Callable[[Session], Any]) -> Any:
        """``fn`` in a read-only session, in a thread. Run once more on fresh connections when the
        database ended the session (a PostgreSQL restart or failover): a read is safe to repeat,
        so the page answers instead of an error. Writes are not repeated (a lost COMMIT's outcome
        is unknown)."""
        def run() -> Any:
            with self.db.read_session() as session:
                return fn(session)

        return await asyncio.to_thread(retry_disconnect, run)

    async def write(self, fn: Callable[[Session], Any]) -> Any:
        def run() -> Any:
            with self.db.session() as session:
                return fn(session)

        return await asyncio.to_thread(run)

    @property
    def ctx(self) -> Context:
        """What the actions work with (settings, database, a composer made on first use)."""
        if self._ctx is None:
            self._ctx = Context(self.settings, self.db)
        return self._ctx

    async def act(self, who: Who, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one function of :mod:`scheduler.actions` as ``who`` (their role is checked there, in the
        action's own transaction), in a thread so the loop stays free. PermissionDenied answers 403,
        StateError/ValidationError/ComposeError 400, NotFoundError 404 (the app's handlers)."""
        actor = Actor(who.name, who.role)
        return await asyncio.to_thread(action, self.ctx, actor, *args, **kwargs)

    def done(self, target: str, message: str) -> Response:
        """After a form did its work: 303 to ``target`` (a path on this site) with ``message`` shown
        once on the next page (a short-lived cookie; the page escapes it like any text)."""
        response = RedirectResponse(_local_path(target), 303)
        response.set_cookie(FLASH, quote(message[:300]), max_age=60, httponly=True, samesite="lax")
        return response

    async def key(self) -> bytes:
        if self._key is None:
            self._key = await self.write(accounts.web_key)
        return self._key

    def sign(self, key: bytes, secret: str) -> str:
        return secret + "." + hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()[:32]

    def unsign(self, key: bytes, value: str) -> str | None:
        secret, _, mac = value.rpartition(".")
        if secret and hmac.compare_digest(self.sign(key, secret).encode(), value.encode()):
            return secret
        return None

    async def identify(self, request: Request) -> Who | None:
        cached = getattr(request.state, "who", None)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and request.url.path.startswith("/api/v1/"):
            def by_token(session: Session) -> Who | None:
                user = accounts.token_user(session, token.strip())
                return Who(user.name, user.role, user.language, "token") if user else None

            def used_lately(session: Session) -> bool:
                row = session.scalar(select(ApiToken).where(ApiToken.token_hash == accounts.digest(token.strip())))
                return bool(row and row.last_used_at and utcnow() - row.last_used_at < accounts.TOKEN_TOUCH)

            lately = await self.read(used_lately)
            return await (self.read if lately else self.write)(by_token)  # type: ignore[no-any-return]
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        secret = self.unsign(await self.key(), cookie)
        if secret is None:
            return None

        def by_session(session: Session) -> Who | None:
            found = accounts.session_user(session, secret, self.idle)
            if found is None:
                return None
            user, row = found
            return Who(user.name, user.role, user.language, "session", row.csrf)

        # Most requests only read (no write lock, so pages never hold up publishing); a session
        # is written when its last request is to be moved on, or it has ended.
        fresh = await self.read(lambda s: accounts.session_is_fresh(s, secret, self.idle))
        who: Who | None = await (self.read if fresh else self.write)(by_session)
        if who is not None:
            request.state.who = who
        return who

    def render(self, request: Request, template_name: str, status: int = 200, **context: Any) -> Response:
        who: Who | None = getattr(request.state, "who", None)
        language = who.language if who else pick(context.pop("lang", None) or request.query_params.get("lang"))
        catalog = translations(language)

        def gettext(message: str, **values: Any) -> str:
            return catalog.gettext(message) % values if values else catalog.gettext(message)

        zone = dt.datetime.now(self.tz).strftime("%Z (UTC%z)")
        nav = [n for n in NAV if who and accounts.role_rank(who.role) >= accounts.role_rank(n.role)]
        flash = unquote(request.cookies.get(FLASH, "")) or None
        template = self.jinja.get_template(template_name)
        html = template.render(flash=flash,
            zone=zone, statuses=[s.value for s in PostStatus], who=who, nav=nav, language=language,
            languages=LANGUAGES, csrf_field=CSRF_FIELD, path=request.url.path,
            _=gettext, gettext=gettext,
            state=lambda s: catalog.gettext(STATE_WORDS.get(str(s), str(s))) if s else "",
            channel_state=lambda s: catalog.gettext(CHANNEL_WORDS.get(str(s), str(s))) if s else "",
            **context)
        response = Response(html, status_code=status, media_type="text/html; charset=utf-8")
        if flash:
            response.delete_cookie(FLASH)
        return response

    @staticmethod
    def as_json(data: Any, status: int = 200) -> Response:
        return Response(json.dumps(data, ensure_ascii=False, indent=1), status_code=status,
                        media_type="application/json; charset=utf-8")

    def problem(self, request: Request, status: int, message: str) -> Response:
        """An error answer, as JSON under /api/ and as a page elsewhere."""
        # What a visitor typed may hold bytes that are not UTF-8 (lone surrogates once decoded).
        message = message.encode("utf-8", "replace").decode("utf-8")
        if request.url.path.startswith("/api/"):
            return self.as_json({"error": message}, status=status)
        return self.render(request, "error.html", status=status, status_code=status, message=message)

    def _posts(self, session: Session, q: PostQuery, limit: int = PAGE_ROWS) -> list[dict[str, Any]]:
        return post_read.post_rows(session, self.tz, status=list(q.status) or None, channel=q.channel, limit=limit,
                                   newest_first=True)

    @staticmethod
    def _channel_names(session: Session) -> list[str]:
        return list(session.scalars(select(Channel.name).order_by(Channel.name)))

    # --- pages ---------------------------------------------------------------------------

    async def posts(self, request: Request, q: PostQuery) -> Response:
        def load(session: Session) -> dict[str, Any]:
            return {"rows": self._posts(session, q), "channels": self._channel_names(session)}

        return self.render(request, "posts.html", query=request.query_params, limit=PAGE_ROWS, **await self.read(load))

    async def highlights(self, request: Request, q: NoParams) -> Response:
        rows = await self._highlight_rows()
        return self.render(request, "highlights.html", rows=list(reversed(rows))[:PAGE_ROWS], limit=PAGE_ROWS,
                           umkm=featured_summary(rows, "umkm", "umkm_name"))

    async def _highlight_rows(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(highlight_history, self.db, lambda v: local(v, self.tz))

    # --- API -------------------------------------------------------------------------------

    async def api_highlights(self, request: Request, q: NoParams) -> Response:
        return self.as_json(await self._highlight_rows())

    async def api_status(self, request: Request, q: NoParams) -> Response:
        def load(session: Session) -> dict[str, Any]:
            return {**status_report(session, self.settings), "channels": channel_states(session, self.settings)}

        return self.as_json(await self.read(load))

    async def api_posts(self, request: Request, q: PostQuery) -> Response:
        return self.as_json(await self.read(lambda s: self._posts(s, q)))

    async def api_post(self, request: Request, q: PostRef) -> Response:
        detail = await self.read(lambda s: self._post_detail(s, q.id))
        return self.as_json({**detail["post"], "history": detail["history"]})

    # --- helpers ---------------------------------------------------------------------------

    def _post_detail(self, session: Session, post_id: int) -> dict[str, Any]:
        post = post_store.get_post(session, post_id)  # NotFoundError names the id
        return {"post": post_row(post, self.tz),
                "history": history_rows(session, HistoryFilter(all=True, post_id=post.id), self.tz)}

    def endpoint(self, route: Route, method: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
        """The FastAPI endpoint of ``route``: its parameters declared (for OpenAPI) from the route's
        dataclass, parsed by :func:`scheduler.web.params.parse` (one typed layer), then ``method``."""

        return typed_handler(route.params, route.role, self.tz, method, route.handler)


