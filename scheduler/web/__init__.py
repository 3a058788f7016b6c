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
``/posts/{id}``, ``/history``, ``/highlights``, and the skeleton pages of NAV the next steps fill.
API: ``/api/v1/status``, ``/api/v1/posts``, ``/api/v1/posts/{id}``, ``/api/v1/history``
(``?format=csv``), ``/api/v1/highlights``, ``/api/v1/me``; the old ``/api/…`` addresses redirect there.
"""


from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.config import Settings
from scheduler.errors import (
    ComposeError,
    ConfigError,
    NotFoundError,
    PermissionDenied,
    StateError,
    ValidationError,
)
from scheduler.models import User
from scheduler.storage import accounts
from scheduler.storage.db import Database
from scheduler.web import i18n, planning, posting, records
from scheduler.web.core import (
    COOKIE,
    NAV,
    ROUTES,
    SECURITY_HEADERS,
    NavItem,
    Who,
    _local_path,
    check_exposure,
    is_loopback,
    log,
    require,
    route_roles,
)
from scheduler.web.webapp import WebApp

#: The page modules: each adds its pages and API routes with ``register(api, board)``.
AREAS = {"posting": posting, "planning": planning, "records": records}


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
    board = WebApp(settings, db)
    api = FastAPI(title="promo-scheduler", version="1", openapi_url=None, docs_url=None, redoc_url=None)
    api.state.web = board

    for r in ROUTES:
        method = getattr(board, r.handler) if r.area is None else partial(getattr(AREAS[r.area], r.handler), board)
        api.add_api_route(r.path, board.endpoint(r, method), methods=["GET"], response_class=Response,
                          tags=["api" if r.path.startswith("/api/") else "pages"],
                          include_in_schema=r.path.startswith("/api/"))

    for module in AREAS.values():
        module.register(api, board)

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

    @api.post("/api/v1/users/{name}/disable", tags=["api"])
    async def disable_user(name: Annotated[str, Path(max_length=100)],
                           who: Annotated[Who, Depends(require("admin"))]) -> dict[str, Any]:
        """Disable a user: their sessions end at once and their API tokens stop working."""
        await board.write(lambda s: accounts.disable(s, name, actor=who.name))
        return {"name": name, "disabled": True}

    for item in NAV:
        if not item.coming or any(r.path == item.path for r in ROUTES):
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
