"""The staff web app (`promo serve --web`, or alone: :func:`run_web`): pages and a JSON API over
the same rows the `promo` command prints, behind accounts with roles.

FastAPI (Starlette) served by uvicorn: inside the service on its own event loop
(:func:`start`), or alone (:func:`run_web`). Every database read runs in a thread.

Who: every route but the login page and the static files depends on :func:`require` (a session
cookie, or ``Authorization: Bearer`` on ``/api/v1/``), which also checks the role and, for
a state-changing request with a cookie, the CSRF token. Accounts, sessions, tokens and the
login throttle live in the database (:mod:`scheduler.storage.accounts`). Off 127.0.0.1 the app
refuses to start until an admin with a password exists (:func:`check_exposure`).

Each read route is a :class:`Route` in ``ROUTES``, naming the parameters it takes as a
dataclass of :mod:`scheduler.web.params`, parsed there and only there (400/404 naming the
parameter); the OpenAPI description (``/api/v1/openapi.json``) is generated from the same
declarations. Every answer, errors included, carries ``SECURITY_HEADERS``; an unexpected error is
logged and answered 500 without details.

Pages: ``/`` (today: service, posts per state, channels, what needs attention), ``/posts``,
``/posts/{id}``, ``/history``, ``/highlights``, Channels, Users and Audit (:mod:`scheduler.web.admin`,
with their API), and the skeleton pages of NAV the next steps fill.
API: ``/api/v1/status``, ``/api/v1/posts``, ``/api/v1/posts/{id}``, ``/api/v1/history``
(``?format=csv``), ``/api/v1/highlights``, ``/api/v1/me``; the old ``/api/…`` addresses redirect there.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import inspect
import ipaddress
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import Depends, FastAPI, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.actions import Actor, Context
from scheduler.config import Settings
from scheduler.errors import (
    ComposeError,
    ConfigError,
    NotFoundError,
    PermissionDenied,
    StateError,
    ValidationError,
)
from scheduler.highlight_views import featured_summary, highlight_history
from scheduler.models import ApiToken, Channel, PostStatus, User, utcnow
from scheduler.storage import accounts
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
from scheduler.web import i18n
from scheduler.web.params import HistoryExport, HistoryQuery, NoParams, PostQuery, PostRef, parse

log = logging.getLogger("promo.web")

#: Most rows a page or an API call returns; the filters narrow it down.
PAGE_ROWS = 500
ATTENTION = (PostStatus.FAILED, PostStatus.NEEDS_REVIEW, PostStatus.EXPIRED)
COOKIE = "promo_session"
#: A one-time message for the next page after a form ("post 12 approved").
FLASH = "promo_flash"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
#: Sent with every answer, errors included: pages of the office's own data, never cached by a
#: shared proxy, never framed, never sniffed into another type, no inline script, nothing from elsewhere.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


@dataclass(frozen=True)
class Route:
    """A GET route: its path, the Dashboard method answering it, the parameters it takes, the role it needs."""

    path: str
    handler: str
    params: type = NoParams
    role: str = "viewer"


ROUTES = (
    Route("/posts", "posts", PostQuery),
    Route("/posts/{id}", "post", PostRef),
    Route("/highlights", "highlights"),
    Route("/api/v1/status", "api_status"),
    Route("/api/v1/posts", "api_posts", PostQuery),
    Route("/api/v1/posts/{id}", "api_post", PostRef),
    Route("/api/v1/highlights", "api_highlights"),
)


@dataclass(frozen=True)
class NavItem:
    path: str
    key: str
    #: English msgid; the page's words come from the catalogs
    label: str
    role: str = "viewer"
    #: what the page will hold, shown until it is built
    coming: str = ""


def _(message: str) -> str:
    """Marks a string for extraction (pybabel); translated where shown."""
    return message


NAV = (
    NavItem("/", "today", _("Today")),
    NavItem("/compose", "compose", _("Compose"), "editor",
            _("Write a post for one or more channels, see how it fits each platform, and queue it.")),
    NavItem("/calendar", "calendar", _("Calendar")),
    NavItem("/approvals", "approvals", _("Approvals"), "approver",
            _("Posts waiting for approval: read, edit, approve or reject them.")),
    NavItem("/posts", "posts", _("Posts")),
    NavItem("/history", "history", _("History")),
    NavItem("/records", "records", _("Records")),
    NavItem("/channels", "channels", _("Channels"), "viewer"),
    NavItem("/users", "users", _("Users"), "admin"),
    NavItem("/audit", "audit", _("Audit"), "admin"),
)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, host: str, db: Database | None = None) -> None:
    """Off this machine the web app needs an admin who can log in; without one, nobody could."""
    if is_loopback(host):
        return
    own = db is None
    db = db or Database(settings.database_url, settings.db_busy_seconds)
    try:
        with db.read_session() as session:
            ok = accounts.has_admin(session)
    finally:
        if own:
            db.dispose()
    if not ok:
        raise ConfigError(f"web app on {host}: it would be reachable from other machines and no admin user has a "
                          "password yet; create one first (README: Web app), or keep --host 127.0.0.1")


@dataclass
class Who:
    """The person behind a request: their user row's facts, how they came in, their session's CSRF token."""

    name: str
    role: str
    language: str
    via: str  # "session" | "token"
    csrf: str = ""


def require(role: str) -> Callable[..., Awaitable[Who]]:
    """The one check of every route: a live session (or an API token under /api/v1/) of a user
    with at least ``role``, and the CSRF token on a state-changing request made with a cookie."""
    if role not in accounts.ROLES:
        raise ValueError(role)

    async def dependency(request: Request) -> Who:
        app: WebApp = request.app.state.web
        who = await app.identify(request)
        if who is None:
            raise HTTPException(401, "log in first")
        if accounts.role_rank(who.role) < accounts.role_rank(role):
            raise HTTPException(403, f"this needs the {role} role; {who.name} is {who.role}")
        if request.method not in SAFE_METHODS and who.via == "session":
            given = request.headers.get(CSRF_HEADER)
            if given is None and request.headers.get("content-type", "").startswith(
                    ("application/x-www-form-urlencoded", "multipart/form-data")):
                form = await request.form()
                field = form.get(CSRF_FIELD)
                given = field if isinstance(field, str) else None
            if not given or not hmac.compare_digest(given.encode(), who.csrf.encode()):
                raise HTTPException(403, "the form has expired or did not come from this site (CSRF token missing "
                                         "or wrong); reload the page and try again")
        request.state.who = who
        return who

    dependency.promo_role = role  # type: ignore[attr-defined]
    return dependency


def route_roles(dependant: Any) -> Iterator[str]:
    """The roles :func:`require` checks for a FastAPI route (its dependency tree)."""
    for dep in dependant.dependencies:
        role = getattr(dep.call, "promo_role", None)
        if role is not None:
            yield role
        yield from route_roles(dep)


class WebApp:
    #: The route check, for page modules registered from make_app (they cannot import this package).
    require = staticmethod(require)

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
        def run() -> Any:
            with self.db.read_session() as session:
                return fn(session)

        return await asyncio.to_thread(run)

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
        language = who.language if who else i18n.pick(context.pop("lang", None) or request.query_params.get("lang"))
        translations = i18n.translations(language)

        def gettext(message: str, **values: Any) -> str:
            return translations.gettext(message) % values if values else translations.gettext(message)

        zone = dt.datetime.now(self.tz).strftime("%Z (UTC%z)")
        nav = [n for n in NAV if who and accounts.role_rank(who.role) >= accounts.role_rank(n.role)]
        flash = unquote(request.cookies.get(FLASH, "")) or None
        template = self.jinja.get_template(template_name)
        html = template.render(flash=flash,
            zone=zone, statuses=[s.value for s in PostStatus], who=who, nav=nav, language=language,
            languages=i18n.LANGUAGES, csrf_field=CSRF_FIELD, path=request.url.path,
            _=gettext, gettext=gettext,
            state=lambda s: translations.gettext(i18n.STATE_WORDS.get(str(s), str(s))) if s else "",
            channel_state=lambda s: translations.gettext(i18n.CHANNEL_WORDS.get(str(s), str(s))) if s else "",
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
        return [post_row(p, self.tz) for p in post_store.list_posts(
            session, status=list(q.status) or None, channel=q.channel, limit=limit, newest_first=True)]

    @staticmethod
    def _channel_names(session: Session) -> list[str]:
        return list(session.scalars(select(Channel.name).order_by(Channel.name)))

    # --- pages ---------------------------------------------------------------------------

    async def overview(self, request: Request, q: NoParams) -> Response:
        attention = PostQuery(status=tuple(s.value for s in ATTENTION))

        def load(session: Session) -> dict[str, Any]:
            return {"report": status_report(session, self.settings), "channels": channel_states(session, self.settings),
                    "attention": self._posts(session, attention, limit=20)}

        return self.render(request, "overview.html", **await self.read(load))

    async def posts(self, request: Request, q: PostQuery) -> Response:
        def load(session: Session) -> dict[str, Any]:
            return {"rows": self._posts(session, q), "channels": self._channel_names(session)}

        return self.render(request, "posts.html", query=request.query_params, limit=PAGE_ROWS, **await self.read(load))

    async def post(self, request: Request, q: PostRef) -> Response:
        return self.render(request, "post.html", **await self.read(lambda s: self._post_detail(s, q.id)))

    async def history(self, request: Request, q: HistoryQuery) -> Response:
        f = q.filter()

        def load(session: Session) -> dict[str, Any]:
            return {"rows": history_rows(session, f, self.tz, newest_first=True, limit=PAGE_ROWS),
                    "channels": self._channel_names(session)}

        return self.render(request, "history.html", query=request.query_params, limit=PAGE_ROWS,
                           csv_query=request.url.query, **await self.read(load))

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

    async def api_history(self, request: Request, q: HistoryExport) -> Response:
        """Oldest first, like `promo history --format json`: the newest PAGE_ROWS as JSON, all as CSV."""
        f = q.filter()
        if q.format == "csv":
            rows = await self.read(lambda s: history_rows(s, f, self.tz))
            # Formula-safe cells and a byte order mark, like every CSV the project writes.
            return Response(csv_text(rows, HISTORY_FIELDS, bom=True), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": 'attachment; filename="promo-history.csv"'})
        newest = await self.read(lambda s: history_rows(s, f, self.tz, newest_first=True, limit=PAGE_ROWS))
        return self.as_json(newest[::-1])

    # --- helpers ---------------------------------------------------------------------------

    def _post_detail(self, session: Session, post_id: int) -> dict[str, Any]:
        post = post_store.get_post(session, post_id)  # NotFoundError names the id
        return {"post": post_row(post, self.tz),
                "history": history_rows(session, HistoryFilter(all=True, post_id=post.id), self.tz)}

    def endpoint(self, route: Route) -> Callable[..., Awaitable[Response]]:
        """The FastAPI endpoint of ``route``: its parameters declared (for OpenAPI) from the route's
        dataclass, parsed by :func:`scheduler.web.params.parse` (one typed layer), then its method."""
        method = getattr(self, route.handler)

        async def handle(request: Request, who: Who, **_declared: Any) -> Response:
            response: Response = await method(request, parse(request, route.params, self.tz))
            return response

        parameters = [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
                      inspect.Parameter("who", inspect.Parameter.KEYWORD_ONLY,
                                        annotation=Annotated[Who, Depends(require(route.role))])]
        for f in dataclasses.fields(route.params):
            doc = (f.metadata["convert"].__doc__ or "").strip().splitlines()
            described = doc[0] if doc else None
            if f.metadata["path"]:
                kind: Any = Annotated[str, Path(description=described)]
                parameters.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=kind))
            else:
                kind = Annotated[str | None, Query(description=described)]
                parameters.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=kind,
                                                    default=None))
        handle.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        handle.__name__ = route.handler
        return handle


def _is_web_url(value: object) -> bool:
    """Only http(s) addresses become links: a URL a platform (or a compromised webhook) sent back
    could be ``javascript:…``; shown as text it is harmless."""
    return isinstance(value, str) and value.lower().startswith(("https://", "http://"))


class SecureHeaders:
    """The outermost layer: every answer the application sends, errors and 500s included, gets
    SECURITY_HEADERS (and the session cookie ``Secure`` on https)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        answered = False

        async def secured(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.decode("latin-1").lower() not in _LOWER_HEADERS]
                headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                answered = True
            await send(message)

        try:
            await self.app(scope, receive, secured)
        except Exception:
            # Starlette re-raises an error after its handler answered 500 and logged it; uvicorn would
            # log it again and drop the connection, and the browser's next request on it would fail.
            if not answered:
                raise


_LOWER_HEADERS = {k.lower() for k in SECURITY_HEADERS}


def make_app(settings: Settings, db: Database) -> FastAPI:  # noqa: C901, PLR0915 - split into modules once the pages land
    """The web app (a FastAPI application), without the outer header layer: :func:`asgi` adds it."""
    from scheduler.web import admin

    board = WebApp(settings, db)
    api = FastAPI(title="promo-scheduler", version="1", openapi_url=None, docs_url=None, redoc_url=None)
    api.state.web = board

    for r in ROUTES:
        api.add_api_route(r.path, board.endpoint(r), methods=["GET"], response_class=Response,
                          tags=["api" if r.path.startswith("/api/") else "pages"],
                          include_in_schema=r.path.startswith("/api/"))
    admin.register(api, board)  # Channels, Users, Audit and their API (scheduler/web/admin.py)

    # Old addresses of the read-only dashboard's API.
    for old in ("/api/status", "/api/posts", "/api/posts/{id}", "/api/history", "/api/highlights"):
        async def moved(request: Request, who: Annotated[Who, Depends(require("viewer"))]) -> Response:
            target = "/api/v1" + request.url.path[len("/api"):]
            return RedirectResponse(target + (f"?{request.url.query}" if request.url.query else ""), 308)

        api.add_api_route(old, moved, methods=["GET"], include_in_schema=False)

    @api.get("/api/v1/openapi.json", include_in_schema=False)
    async def openapi(who: Annotated[Who, Depends(require("viewer"))]) -> JSONResponse:
        return JSONResponse(get_openapi(title="promo-scheduler", version="1", routes=api.routes,
                                        description="The promo-scheduler web app's API. Authorization: Bearer "
                                                    "<token> (promo users token …) or a session cookie."))

    @api.get("/api/v1/me", tags=["api"])
    async def me(who: Annotated[Who, Depends(require("viewer"))]) -> dict[str, str]:
        """Who the token or session belongs to: name, role, language."""
        return {"name": who.name, "role": who.role, "language": who.language}

    from scheduler.web import planning, records  # webrecords: Today, Calendar, History; Records
    planning.register(api, board)
    records.register(api, board)

    for item in NAV:
        if any(r.path == item.path for r in ROUTES) or not item.coming:
            continue

        def placeholder_for(item: NavItem) -> Callable[..., Awaitable[Response]]:
            async def placeholder(request: Request, who: Who) -> Response:
                return board.render(request, "placeholder.html", item=item)

            # Declared here: a string annotation naming ``item`` could not be resolved by FastAPI.
            placeholder.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
                inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
                inspect.Parameter("who", inspect.Parameter.KEYWORD_ONLY,
                                  annotation=Annotated[Who, Depends(require(item.role))])])
            placeholder.__name__ = f"page_{item.key}"
            return placeholder

        api.add_api_route(item.path, placeholder_for(item), methods=["GET"], include_in_schema=False)

    @api.get("/login", include_in_schema=False)
    async def login_page(request: Request, next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
        who = await board.identify(request)
        if who is not None:
            return RedirectResponse(_local_path(next), 303)
        no_admin = not await board.read(accounts.has_admin)
        return board.render(request, "login.html", next=_local_path(next), no_admin=no_admin)

    @api.post("/login", include_in_schema=False)
    async def login_submit(request: Request) -> Response:
        form = await request.form()
        name, password, target, lang = (str(form.get(k) or "") for k in ("name", "password", "next", "lang"))
        client = request.client.host if request.client else "unknown"
        if len(name) > 100 or len(password) > accounts.MAX_PASSWORD:
            result = accounts.Login(None)
        else:
            def attempt(session: Session) -> tuple[accounts.Login, str, str]:
                result = accounts.login(session, name, password, client)
                if result.user is None:
                    return result, "", ""
                secret, csrf = accounts.create_session(session, result.user, client)
                return result, secret, csrf

            result, secret, _csrf = await board.write(attempt)
        if result.user is None:
            translations = i18n.translations(i18n.pick(lang))
            if result.retry_after is not None:
                message = translations.gettext("Too many wrong passwords; try again in %(seconds)d s.") % {
                    "seconds": result.retry_after}
                response = board.render(request, "login.html", status=429, next=_local_path(target), name=name,
                                        message=message, no_admin=False, lang=lang)
                response.headers["Retry-After"] = str(result.retry_after)
                return response
            message = translations.gettext("Wrong name or password.")
            return board.render(request, "login.html", status=401, next=_local_path(target), name=name,
                                message=message, no_admin=False, lang=lang)
        response = RedirectResponse(_local_path(target), 303)
        response.set_cookie(COOKIE, board.sign(await board.key(), secret), httponly=True, samesite="lax",
                            secure=request.url.scheme == "https", path="/")
        return response

    @api.post("/logout", include_in_schema=False)
    async def logout(request: Request, who: Annotated[Who, Depends(require("viewer"))]) -> Response:
        secret = board.unsign(await board.key(), request.cookies.get(COOKIE, ""))
        if secret:
            await board.write(lambda s: accounts.end_session(s, secret))
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https")
        return response

    @api.post("/language", include_in_schema=False)
    async def language(request: Request, who: Annotated[Who, Depends(require("viewer"))]) -> Response:
        form = await request.form()
        chosen = str(form.get("language") or "")
        await board.write(lambda s: accounts.set_language(s, who.name, chosen))
        return RedirectResponse(_local_path(str(form.get("next") or "/")), 303)

    api.mount("/static", StaticFiles(packages=[("scheduler.web", "static")]), name="static")

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 401:
            if request.url.path.startswith("/api/"):
                response = board.problem(request, 401, "log in first, or send Authorization: Bearer <API token>")
                response.headers["WWW-Authenticate"] = 'Bearer realm="promo-scheduler"'
                return response
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse("/login?next=" + quote(target, safe=""), 303)
        if exc.status_code == 404:
            message = f"no such page: {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} {request.url.path}: not allowed here"
        else:
            message = str(exc.detail)
        response = board.problem(request, exc.status_code, message)
        for name in ("Allow", "Retry-After"):
            if exc.headers and name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "path", "body"))
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return board.problem(request, 400, "; ".join(parts) or "invalid request")

    @api.exception_handler(ValidationError)
    async def bad_value(request: Request, exc: ValidationError) -> Response:
        return board.problem(request, 400, str(exc))

    @api.exception_handler(PermissionDenied)
    async def denied(request: Request, exc: PermissionDenied) -> Response:
        return board.problem(request, 403, str(exc))

    @api.exception_handler(StateError)
    async def wrong_state(request: Request, exc: StateError) -> Response:
        return board.problem(request, 409, str(exc))

    @api.exception_handler(ComposeError)
    async def does_not_fit(request: Request, exc: ComposeError) -> Response:
        return board.problem(request, 400, str(exc))

    @api.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> Response:
        return board.problem(request, 404, str(exc))

    @api.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> Response:
        log.error("web: %s %s failed", request.method, request.url.path, exc_info=exc)
        return board.problem(request, 500, "the web app could not answer this; the service log says why")

    return api


def _local_path(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (never ``//evil`` or ``https://…``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def asgi(settings: Settings, db: Database) -> ASGIApp:
    """What uvicorn serves: the app inside the header layer."""
    return SecureHeaders(make_app(settings, db))


class _EmbeddedServer:
    """uvicorn inside the service: the service owns the signals, so uvicorn must not take them."""

    def __init__(self, server: Any, task: asyncio.Task[None]):
        self.server = server
        self.task = task

    async def cleanup(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def _config(settings: Settings, db: Database, host: str, port: int) -> Any:
    import uvicorn

    proxies = list(settings.web_trusted_proxies)
    return uvicorn.Config(asgi(settings, db), host=host, port=port, log_config=None, access_log=False,
                          lifespan="off", proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None,
                          server_header=False, timeout_graceful_shutdown=5)


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _c, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise ConfigError(f"web app: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def start(settings: Settings, db: Database, host: str, port: int) -> _EmbeddedServer:
    """Serve the web app on the running loop; ``await handle.cleanup()`` stops it gracefully."""
    import uvicorn

    check_exposure(settings, host, db)

    class Embedded(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    sock = _bind(host, port)
    server = Embedded(_config(settings, db, host, port))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise ConfigError(f"web app: could not start on {host}:{port}")
        await asyncio.sleep(0.01)
    bound = sock.getsockname()[1]  # the real port, also when asked for port 0
    log.info("web app: http://%s:%d/", host if ":" not in host else f"[{host}]", bound)
    return _EmbeddedServer(server, task)


def _foreground_class() -> Any:
    """uvicorn's Server, but a signal only stops it gracefully: uvicorn's own handling re-raises
    SIGTERM afterwards, so the process would die of it; `promo web` exits 0 like `promo serve`."""
    import signal

    import uvicorn

    class Foreground(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Foreground


def run_web(settings: Settings, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run the web app alone in the foreground (`promo web`) until Ctrl-C or SIGTERM (then exits normally)."""
    Foreground = _foreground_class()
    db = Database(settings.database_url, settings.db_busy_seconds)
    try:
        check_exposure(settings, host, db)
        sock = _bind(host, port)
        log.info("web app: http://%s:%d/", host if ":" not in host else f"[{host}]", port)
        Foreground(_config(settings, db, host, port)).run(sockets=[sock])
    finally:
        db.dispose()


__all__ = ["NAV", "ROUTES", "SECURITY_HEADERS", "User", "Who", "asgi", "check_exposure", "is_loopback",
           "make_app", "require", "route_roles", "run_web", "start"]
