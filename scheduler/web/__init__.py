"""The dashboard (`promo serve --web`): read-only pages and a JSON API over the same rows the
`promo` command prints, so supervisors can see what went out where, when, with which link,
and what failed and why, without a terminal.

It runs on the service's own event loop (aiohttp); every database read runs in a thread in a
read-only session, so a slow page never holds up the dispatcher and never takes the write lock.
Bound to 127.0.0.1 by default; on any other address it needs PROMO_WEB_PASSWORD (HTTP Basic).

Pages: ``/`` (service, posts per state, channels, what needs attention), ``/posts``,
``/posts/{id}`` (text, link, every attempt and status change), ``/history``, ``/highlights``
(the daily UMKM highlight: which business and product each day, and how often each was featured).
API: ``/api/status``, ``/api/posts``, ``/api/posts/{id}``, ``/api/history`` (``?format=csv``),
``/api/highlights``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.config import Settings
from scheduler.errors import ConfigError, NotFoundError, ValidationError
from scheduler.models import Channel, PostStatus
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database
from scheduler.views import (
    HISTORY_FIELDS,
    HistoryFilter,
    channel_states,
    csv_text,
    history_rows,
    local,
    post_row,
    status_report,
)

#: Most rows a page or an API call returns; the filters narrow it down.
PAGE_ROWS = 500
ATTENTION = (PostStatus.FAILED, PostStatus.NEEDS_REVIEW, PostStatus.EXPIRED)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, host: str) -> None:
    """The post history is the office's business: off this machine only behind a password."""
    if not is_loopback(host) and not settings.web_password:
        raise ConfigError(f"promo serve --web --host {host}: the dashboard would be reachable from other machines "
                          "without a password; set PROMO_WEB_PASSWORD (or keep the default --host 127.0.0.1)")


class Dashboard:
    def __init__(self, settings: Settings, db: Database):
        self.settings = settings
        self.db = db
        self.tz = settings.timezone
        self.jinja = Environment(loader=PackageLoader("scheduler.web", "templates"),
                                 autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
        self.jinja.filters["when"] = self._when
        self.jinja.tests["web_url"] = _is_web_url

    # --- plumbing ------------------------------------------------------------------------

    def _when(self, value: str | None) -> str:
        """'2027-12-01T09:00:00+08:00' → '2027-12-01 09:00' (the zone is in the page header)."""
        if not value:
            return "–"
        return value[:16].replace("T", " ")

    async def read(self, fn: Callable[[Session], Any]) -> Any:
        def run() -> Any:
            with self.db.read_session() as session:
                return fn(session)

        return await asyncio.to_thread(run)

    def page(self, name: str, **context: Any) -> web.Response:
        zone = dt.datetime.now(self.tz).strftime("%Z (UTC%z)")
        html = self.jinja.get_template(name).render(zone=zone, statuses=[s.value for s in PostStatus], **context)
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    @staticmethod
    def as_json(data: Any, status: int = 200) -> web.Response:
        return web.Response(text=json.dumps(data, ensure_ascii=False, indent=1), status=status,
                            content_type="application/json", charset="utf-8")

    def history_filter(self, request: web.Request) -> HistoryFilter:
        q = request.query
        return HistoryFilter.parse(self.tz, channel=q.get("channel"), status=q.get("status"), since=q.get("since"),
                                   until=q.get("until"), all=q.get("all") in ("1", "true", "on", "yes"))

    def post_query(self, request: web.Request) -> dict[str, Any]:
        status = [s for s in request.query.get("status", "").split(",") if s]
        bad = [s for s in status if s not in {p.value for p in PostStatus}]
        if bad:
            raise ValidationError(f"status {', '.join(bad)!r}: not a post state "
                                  f"({', '.join(p.value for p in PostStatus)})")
        return {"status": status or None, "channel": request.query.get("channel") or None}

    def _posts(self, session: Session, status: list[str] | None, channel: str | None,
               limit: int = PAGE_ROWS) -> list[dict[str, Any]]:
        return [post_row(p, self.tz) for p in post_store.list_posts(session, status=status, channel=channel,
                                                                    limit=limit, newest_first=True)]

    @staticmethod
    def _channel_names(session: Session) -> list[str]:
        return list(session.scalars(select(Channel.name).order_by(Channel.name)))

    # --- pages ---------------------------------------------------------------------------

    async def overview(self, request: web.Request) -> web.Response:
        def load(session: Session) -> dict[str, Any]:
            return {"report": status_report(session, self.settings), "channels": channel_states(session, self.settings),
                    "attention": self._posts(session, [s.value for s in ATTENTION], None, limit=20)}

        return self.page("overview.html", **await self.read(load))

    async def posts(self, request: web.Request) -> web.Response:
        wanted = self.post_query(request)

        def load(session: Session) -> dict[str, Any]:
            return {"rows": self._posts(session, **wanted), "channels": self._channel_names(session)}

        return self.page("posts.html", query=request.query, limit=PAGE_ROWS, **await self.read(load))

    async def post(self, request: web.Request) -> web.Response:
        post_id = self._post_id(request)
        return self.page("post.html", **await self.read(lambda s: self._post_detail(s, post_id)))

    async def history(self, request: web.Request) -> web.Response:
        f = self.history_filter(request)

        def load(session: Session) -> dict[str, Any]:
            return {"rows": history_rows(session, f, self.tz, newest_first=True, limit=PAGE_ROWS),
                    "channels": self._channel_names(session)}

        return self.page("history.html", query=request.query, limit=PAGE_ROWS,
                         csv_query=request.query_string, **await self.read(load))

    async def highlights(self, request: web.Request) -> web.Response:
        rows = await self._highlight_rows()
        from jobs.daily_highlight import featured_summary

        return self.page("highlights.html", rows=list(reversed(rows))[:PAGE_ROWS], limit=PAGE_ROWS,
                         umkm=featured_summary(rows, "umkm", "umkm_name"))

    async def _highlight_rows(self) -> list[dict[str, Any]]:
        from jobs.daily_highlight import history

        return await asyncio.to_thread(history, self.db, lambda v: local(v, self.tz))

    # --- API -------------------------------------------------------------------------------

    async def api_highlights(self, request: web.Request) -> web.Response:
        return self.as_json(await self._highlight_rows())

    async def api_status(self, request: web.Request) -> web.Response:
        def load(session: Session) -> dict[str, Any]:
            return {**status_report(session, self.settings), "channels": channel_states(session, self.settings)}

        return self.as_json(await self.read(load))

    async def api_posts(self, request: web.Request) -> web.Response:
        wanted = self.post_query(request)
        return self.as_json(await self.read(lambda s: self._posts(s, **wanted)))

    async def api_post(self, request: web.Request) -> web.Response:
        post_id = self._post_id(request)
        detail = await self.read(lambda s: self._post_detail(s, post_id))
        return self.as_json({**detail["post"], "history": detail["history"]})

    async def api_history(self, request: web.Request) -> web.Response:
        """Oldest first, like `promo history --format json`: the newest PAGE_ROWS as JSON, all as CSV."""
        f = self.history_filter(request)
        if request.query.get("format") == "csv":
            rows = await self.read(lambda s: history_rows(s, f, self.tz))
            # Formula-safe cells and a byte order mark, like every CSV the project writes.
            return web.Response(text=csv_text(rows, HISTORY_FIELDS, bom=True), content_type="text/csv", charset="utf-8",
                                headers={"Content-Disposition": 'attachment; filename="promo-history.csv"'})
        newest = await self.read(lambda s: history_rows(s, f, self.tz, newest_first=True, limit=PAGE_ROWS))
        return self.as_json(newest[::-1])

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _post_id(request: web.Request) -> int:
        raw = request.match_info["id"]
        if not raw.isdigit():
            raise ValidationError(f"post id {raw!r}: not a number")
        return int(raw)

    def _post_detail(self, session: Session, post_id: int) -> dict[str, Any]:
        post = post_store.get_post(session, post_id)  # NotFoundError names the id
        return {"post": post_row(post, self.tz),
                "history": history_rows(session, HistoryFilter(all=True, post_id=post.id), self.tz)}


def _is_web_url(value: object) -> bool:
    """Only http(s) addresses become links: a URL a platform (or a compromised webhook) sent back
    could be ``javascript:…``; shown as text it is harmless."""
    return isinstance(value, str) and value.lower().startswith(("https://", "http://"))


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def make_app(settings: Settings, db: Database) -> web.Application:
    board = Dashboard(settings, db)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if settings.web_password and not _authorised(request, settings.web_password):
            return web.Response(status=401, text="the dashboard needs the password (PROMO_WEB_PASSWORD)",
                                headers={"WWW-Authenticate": 'Basic realm="promo-scheduler", charset="UTF-8"'})
        try:
            response = await handler(request)
        except (ValidationError, NotFoundError) as exc:
            status = 404 if isinstance(exc, NotFoundError) else 400
            if _wants_json(request):
                response = board.as_json({"error": str(exc)}, status=status)
            else:
                response = board.page("error.html", status=status, message=str(exc))
                response.set_status(status)
        except web.HTTPNotFound:
            if _wants_json(request):
                response = board.as_json({"error": f"no such page: {request.path}"}, status=404)
            else:
                response = board.page("error.html", status=404, message=f"no such page: {request.path}")
                response.set_status(404)
        # Read-only pages of the office's own data: never cached by a shared proxy, never framed.
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
        return response

    app = web.Application(middlewares=[guard])
    app.add_routes([
        web.get("/", board.overview), web.get("/posts", board.posts), web.get("/posts/{id}", board.post),
        web.get("/history", board.history), web.get("/api/status", board.api_status),
        web.get("/api/posts", board.api_posts), web.get("/api/posts/{id}", board.api_post),
        web.get("/api/history", board.api_history), web.get("/highlights", board.highlights),
        web.get("/api/highlights", board.api_highlights),
    ])
    return app


def _authorised(request: web.Request, password: str) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return False
    try:
        _user, _, given = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(given.encode(), password.encode())


async def start(settings: Settings, db: Database, host: str, port: int) -> web.AppRunner:
    """Serve the dashboard on the running loop; ``await runner.cleanup()`` stops it."""
    check_exposure(settings, host)
    runner = web.AppRunner(make_app(settings, db), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"promo serve --web: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return runner
