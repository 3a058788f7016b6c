"""The dashboard (`promo serve --web`): read-only pages and a JSON API over the same rows the
`promo` command prints, so supervisors can see what went out where, when, with which link,
and what failed and why, without a terminal.

It runs on the service's own event loop (aiohttp); every database read runs in a thread in a
read-only session, so a slow page never holds up the dispatcher and never takes the write lock.
Bound to 127.0.0.1 by default; on any other address it needs PROMO_WEB_PASSWORD (HTTP Basic,
failed attempts logged and throttled per address: see :mod:`scheduler.web.auth`).

Each route is a :class:`Route` in ``ROUTES``, naming the parameters it takes as a dataclass
of :mod:`scheduler.web.params`, parsed there and only there (400/404 naming the parameter).
Every answer, errors included, carries ``SECURITY_HEADERS``; an unexpected error is logged
and answered 500 without details.

Pages: ``/`` (service, posts per state, channels, what needs attention), ``/posts``,
``/posts/{id}`` (text, link, every attempt and status change), ``/history``, ``/highlights``
(the daily UMKM highlight: which business and product each day, and how often each was featured).
API: ``/api/status``, ``/api/posts``, ``/api/posts/{id}``, ``/api/history`` (``?format=csv``),
``/api/highlights``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.config import Settings
from scheduler.errors import ConfigError, NotFoundError, ValidationError
from scheduler.highlight_views import featured_summary, highlight_history
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
from scheduler.web.auth import Gate, LoginThrottle
from scheduler.web.params import HistoryExport, HistoryQuery, NoParams, PostQuery, PostRef, parse

log = logging.getLogger("promo.web")

#: Most rows a page or an API call returns; the filters narrow it down.
PAGE_ROWS = 500
ATTENTION = (PostStatus.FAILED, PostStatus.NEEDS_REVIEW, PostStatus.EXPIRED)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Sent with every answer, errors included: pages of the office's own data, never cached by a
#: shared proxy, never framed, never sniffed into another type, no script or outside resource.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'",
}


@dataclass(frozen=True)
class Route:
    """A GET route: its path, the Dashboard method answering it and the parameters it takes."""

    path: str
    handler: str
    params: type = NoParams


ROUTES = (
    Route("/", "overview"),
    Route("/posts", "posts", PostQuery),
    Route("/posts/{id}", "post", PostRef),
    Route("/history", "history", HistoryQuery),
    Route("/highlights", "highlights"),
    Route("/api/status", "api_status"),
    Route("/api/posts", "api_posts", PostQuery),
    Route("/api/posts/{id}", "api_post", PostRef),
    Route("/api/history", "api_history", HistoryExport),
    Route("/api/highlights", "api_highlights"),
)


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

    def problem(self, request: web.Request, status: int, message: str) -> web.Response:
        """An error answer, as JSON under /api/ and as a page elsewhere."""
        # What a visitor typed may hold bytes that are not UTF-8 (lone surrogates once decoded).
        message = message.encode("utf-8", "replace").decode("utf-8")
        if _wants_json(request):
            return self.as_json({"error": message}, status=status)
        response = self.page("error.html", status=status, message=message)
        response.set_status(status)
        return response

    def _posts(self, session: Session, q: PostQuery, limit: int = PAGE_ROWS) -> list[dict[str, Any]]:
        return [post_row(p, self.tz) for p in post_store.list_posts(
            session, status=list(q.status) or None, channel=q.channel, limit=limit, newest_first=True)]

    @staticmethod
    def _channel_names(session: Session) -> list[str]:
        return list(session.scalars(select(Channel.name).order_by(Channel.name)))

    # --- pages ---------------------------------------------------------------------------

    async def overview(self, request: web.Request, q: NoParams) -> web.Response:
        attention = PostQuery(status=tuple(s.value for s in ATTENTION))

        def load(session: Session) -> dict[str, Any]:
            return {"report": status_report(session, self.settings), "channels": channel_states(session, self.settings),
                    "attention": self._posts(session, attention, limit=20)}

        return self.page("overview.html", **await self.read(load))

    async def posts(self, request: web.Request, q: PostQuery) -> web.Response:
        def load(session: Session) -> dict[str, Any]:
            return {"rows": self._posts(session, q), "channels": self._channel_names(session)}

        return self.page("posts.html", query=request.query, limit=PAGE_ROWS, **await self.read(load))

    async def post(self, request: web.Request, q: PostRef) -> web.Response:
        return self.page("post.html", **await self.read(lambda s: self._post_detail(s, q.id)))

    async def history(self, request: web.Request, q: HistoryQuery) -> web.Response:
        f = q.filter()

        def load(session: Session) -> dict[str, Any]:
            return {"rows": history_rows(session, f, self.tz, newest_first=True, limit=PAGE_ROWS),
                    "channels": self._channel_names(session)}

        return self.page("history.html", query=request.query, limit=PAGE_ROWS,
                         csv_query=request.query_string, **await self.read(load))

    async def highlights(self, request: web.Request, q: NoParams) -> web.Response:
        rows = await self._highlight_rows()
        return self.page("highlights.html", rows=list(reversed(rows))[:PAGE_ROWS], limit=PAGE_ROWS,
                         umkm=featured_summary(rows, "umkm", "umkm_name"))

    async def _highlight_rows(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(highlight_history, self.db, lambda v: local(v, self.tz))

    # --- API -------------------------------------------------------------------------------

    async def api_highlights(self, request: web.Request, q: NoParams) -> web.Response:
        return self.as_json(await self._highlight_rows())

    async def api_status(self, request: web.Request, q: NoParams) -> web.Response:
        def load(session: Session) -> dict[str, Any]:
            return {**status_report(session, self.settings), "channels": channel_states(session, self.settings)}

        return self.as_json(await self.read(load))

    async def api_posts(self, request: web.Request, q: PostQuery) -> web.Response:
        return self.as_json(await self.read(lambda s: self._posts(s, q)))

    async def api_post(self, request: web.Request, q: PostRef) -> web.Response:
        detail = await self.read(lambda s: self._post_detail(s, q.id))
        return self.as_json({**detail["post"], "history": detail["history"]})

    async def api_history(self, request: web.Request, q: HistoryExport) -> web.Response:
        """Oldest first, like `promo history --format json`: the newest PAGE_ROWS as JSON, all as CSV."""
        f = q.filter()
        if q.format == "csv":
            rows = await self.read(lambda s: history_rows(s, f, self.tz))
            # Formula-safe cells and a byte order mark, like every CSV the project writes.
            return web.Response(text=csv_text(rows, HISTORY_FIELDS, bom=True), content_type="text/csv", charset="utf-8",
                                headers={"Content-Disposition": 'attachment; filename="promo-history.csv"'})
        newest = await self.read(lambda s: history_rows(s, f, self.tz, newest_first=True, limit=PAGE_ROWS))
        return self.as_json(newest[::-1])

    # --- helpers ---------------------------------------------------------------------------

    def _post_detail(self, session: Session, post_id: int) -> dict[str, Any]:
        post = post_store.get_post(session, post_id)  # NotFoundError names the id
        return {"post": post_row(post, self.tz),
                "history": history_rows(session, HistoryFilter(all=True, post_id=post.id), self.tz)}

    def endpoint(self, route: Route) -> Handler:
        """The aiohttp handler of ``route``: its parameters parsed (one typed layer), then its method."""
        method = getattr(self, route.handler)

        async def handle(request: web.Request) -> web.StreamResponse:
            response: web.StreamResponse = await method(request, parse(request, route.params, self.tz))
            return response

        return handle


def _is_web_url(value: object) -> bool:
    """Only http(s) addresses become links: a URL a platform (or a compromised webhook) sent back
    could be ``javascript:…``; shown as text it is harmless."""
    return isinstance(value, str) and value.lower().startswith(("https://", "http://"))


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def make_app(settings: Settings, db: Database, clock: Callable[[], float] = time.time) -> web.Application:
    """The dashboard; ``clock`` (seconds) times the login throttle."""
    board = Dashboard(settings, db)
    gate = Gate(settings.web_password, LoginThrottle(clock=clock)) if settings.web_password else None

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if gate is not None:
            verdict, wait = gate.check(request.remote or "unknown", request.headers.get("Authorization"))
            if verdict == 429:
                refused = board.problem(request, 429, f"too many wrong passwords from this address; "
                                                      f"try again in {wait} s")
                refused.headers["Retry-After"] = str(wait)
                return refused
            if verdict == 401:
                refused = board.problem(request, 401, "the dashboard needs the password (PROMO_WEB_PASSWORD)")
                refused.headers["WWW-Authenticate"] = 'Basic realm="promo-scheduler", charset="UTF-8"'
                return refused
        try:
            return await handler(request)
        except (ValidationError, NotFoundError) as exc:
            return board.problem(request, 404 if isinstance(exc, NotFoundError) else 400, str(exc))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            if exc.status == 404:
                message = f"no such page: {request.path}"
            elif exc.status == 405:
                message = f"{request.method} {request.path}: the dashboard only reads (GET)"
            else:
                message = exc.reason
            response = board.problem(request, exc.status, message)
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except Exception:
            log.exception("dashboard: %s %s failed", request.method, request.path)
            return board.problem(request, 500, "the dashboard could not answer this; the service log says why")

    async def secure(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(SECURITY_HEADERS)

    app = web.Application(middlewares=[guard])
    # Every answer the application sends is prepared here, those of errors and of aiohttp itself too.
    app.on_response_prepare.append(secure)
    app.add_routes([web.get(r.path, board.endpoint(r)) for r in ROUTES])
    return app


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
    log.info("dashboard: http://%s:%d/", host if ":" not in host else f"[{host}]", port)
    return runner
