"""The web app's foundation: who is asking (:class:`Who`, :func:`require`, the one check of every
route), the read routes and the navigation as data, the security headers, and the safety helpers.
The page modules (:mod:`scheduler.web.posting`, :mod:`~scheduler.web.planning`, …) build on this."""

from __future__ import annotations

import dataclasses
import hmac
import inspect
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Path, Query
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scheduler.config import Settings
from scheduler.errors import (
    ConfigError,
)
from scheduler.models import PostStatus
from scheduler.rows import PostRow
from scheduler.storage import accounts
from scheduler.storage.db import Database
from scheduler.web.apimodels import Highlight, PostDetail, Status, errors
from scheduler.web.params import NoParams, PostQuery, PostRef, parse

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
#: shared proxy, never framed, never sniffed into another type, no outside resource, and script only
#: from /static/ (the compose page's preview; never inline).
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
                               "connect-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


@dataclass(frozen=True)
class Route:
    """A GET route: its path, what answers it, the parameters it takes, the role it needs."""

    path: str
    #: a WebApp method, or with ``area`` a function ``(board, request, params)`` of that page module
    handler: str
    params: type = NoParams
    role: str = "viewer"
    area: str | None = None
    #: what an /api/ route answers (its OpenAPI description), and the errors it may answer besides 400/401/403
    response: Any = None
    errors: tuple[int, ...] = ()

    def declared(self) -> dict[str, Any]:
        """What FastAPI declares for it: an HTML page, or (under /api/) JSON of ``response``."""
        if not self.path.startswith("/api/"):
            return {"response_class": Response, "include_in_schema": False, "tags": ["pages"]}
        return {"response_class": JSONResponse, "response_model": self.response, "include_in_schema": True,
                "responses": errors(*self.errors), "tags": ["api"]}


ROUTES = (
    Route("/posts", "posts", PostQuery),
    Route("/posts/{id}", "post_page", PostRef, area="posting"),
    Route("/highlights", "highlights"),
    Route("/api/v1/status", "api_status", response=Status),
    Route("/api/v1/posts", "api_posts", PostQuery, response=list[PostRow]),
    Route("/api/v1/posts/{id}", "api_post", PostRef, response=PostDetail, errors=(404,)),
    Route("/api/v1/highlights", "api_highlights", response=list[Highlight]),
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
    NavItem("/compose", "compose", _("Compose"), "editor"),
    NavItem("/calendar", "calendar", _("Calendar")),
    NavItem("/approvals", "approvals", _("Approvals"), "approver"),
    NavItem("/posts", "posts", _("Posts")),
    NavItem("/history", "history", _("History")),
    NavItem("/records", "records", _("Records")),
    NavItem("/reports", "reports", _("Reports")),
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
        app = request.app.state.web  # the WebApp (scheduler.web.webapp builds on this module)
        who: Who | None = await app.identify(request)
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


def _is_web_url(value: object) -> bool:
    """Only http(s) addresses become links: a URL a platform (or a compromised webhook) sent back
    could be ``javascript:…``; shown as text it is harmless."""
    return isinstance(value, str) and value.lower().startswith(("https://", "http://"))


def _local_path(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (never ``//evil`` or ``https://…``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def typed_handler(spec: type, role: str, tz: ZoneInfo, fn: Callable[[Request, Any], Awaitable[Response]],
                  name: str) -> Callable[..., Awaitable[Response]]:
    """A FastAPI endpoint whose query and path parameters are the fields of ``spec`` (a dataclass
    of :mod:`scheduler.web.params`): declared for OpenAPI from the same fields, parsed by
    :func:`~scheduler.web.params.parse` (the one typed layer), then handed to ``fn``."""

    async def handle(request: Request, who: Who, **_declared: Any) -> Response:
        response: Response = await fn(request, parse(request, spec, tz))
        return response

    parameters = [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
                  inspect.Parameter("who", inspect.Parameter.KEYWORD_ONLY,
                                    annotation=Annotated[Who, Depends(require(role))])]
    for f in dataclasses.fields(spec):
        doc = (f.metadata["convert"].__doc__ or "").strip().splitlines()
        described = doc[0] if doc else None
        kind: Any
        if f.metadata["path"]:
            kind = Annotated[str, Path(description=described)]
            parameters.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=kind))
        else:
            kind = Annotated[str | None, Query(description=described)]
            parameters.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=kind,
                                                default=None))
    handle.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    handle.__name__ = name
    handle.__doc__ = fn.__doc__
    return handle
