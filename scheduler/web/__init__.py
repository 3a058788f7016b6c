"""The staff web app (`promo serve --web`, or alone: :func:`run_web`): pages and a JSON API over
the same rows the `promo` command prints, behind accounts with roles.

FastAPI (Starlette) served by uvicorn, always in a process of its own (:func:`run_web`): alone
(`promo web`), or beside the service (`promo serve --web`: the service binds the socket with
:func:`listen` and runs `promo web --listen-fd` on it as a supervised child, :func:`process`), so
page loads never delay a due post. :func:`start` serves it on a running loop (tests). Every
database read runs in a thread.

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
``/posts/{id}``, ``/history``, ``/highlights``, ``/reports`` (:mod:`.reports`), and the other pages of NAV.
API: ``/api/v1/status``, ``/api/v1/posts``, ``/api/v1/posts/{id}``, ``/api/v1/history``
(``?format=csv``), ``/api/v1/highlights``, ``/api/v1/me``; the old ``/api/…`` addresses redirect there.
"""


from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Iterator
from functools import partial
from typing import Any

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.config import Settings
from scheduler.errors import ConfigError
from scheduler.models import User
from scheduler.process import Child
from scheduler.storage.db import Database
from scheduler.web import admin, answers, planning, posting, posting_api, records, reports, session
from scheduler.web.core import (
    COOKIE,
    NAV,
    ROUTES,
    SECURITY_HEADERS,
    Who,
    check_exposure,
    is_loopback,
    log,
    require,
    route_roles,
)
from scheduler.web.webapp import WebApp

#: The page modules: each adds its pages and API routes with ``register(api, board)``.
AREAS = {"posting": posting, "posting_api": posting_api, "planning": planning, "records": records,
         "reports": reports, "admin": admin}  # admin: Channels, Users, Audit (web/channels.py, users.py, audit.py)


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


def make_app(settings: Settings, db: Database) -> FastAPI:
    """The web app (a FastAPI application), without the outer header layer: :func:`asgi` adds it."""
    board = WebApp(settings, db)
    api = FastAPI(title="promo-scheduler", version="1", openapi_url=None, docs_url=None, redoc_url=None)
    api.state.web = board

    for r in ROUTES:
        method = getattr(board, r.handler) if r.area is None else partial(getattr(AREAS[r.area], r.handler), board)
        api.add_api_route(r.path, board.endpoint(r, method), methods=["GET"], **r.declared())

    for module in AREAS.values():
        module.register(api, board)

    session.register(api, board)
    api.mount("/static", StaticFiles(packages=[("scheduler.web", "static")]), name="static")
    answers.register(api, board)
    return api


def asgi(settings: Settings, db: Database) -> ASGIApp:
    """What uvicorn serves: the app inside the header layer."""
    return SecureHeaders(make_app(settings, db))


class _EmbeddedServer:
    """uvicorn on a loop somebody else runs (tests): the caller owns the signals, so uvicorn must not take them."""

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
        hint = "; choose another port with --port" if exc.errno == errno.EADDRINUSE else ""
        raise ConfigError(f"web app: cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def start(settings: Settings, db: Database, host: str, port: int) -> _EmbeddedServer:
    """Serve the web app on the running loop (tests); ``await handle.cleanup()`` stops it gracefully.
    The service never does this: `promo serve --web` runs it in its own process (:func:`process`)."""
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
    log.info("web app: %s", _address(host, bound))
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


def _address(host: str, port: int) -> str:
    return f"http://{host if ':' not in host else f'[{host}]'}:{port}/"


def listen(settings: Settings, db: Database, host: str, port: int) -> socket.socket:
    """The web app's listening socket for `promo serve --web`, bound by the service itself: a taken
    port or an address refused (:func:`check_exposure`) stops the service before it starts, and
    the socket outlives a restart of the web app's process (requests wait in its queue meanwhile)."""
    check_exposure(settings, host, db)
    return _bind(host, port)


#: The web app's CPU niceness beside the service (added to the service's): when both want the
#: cores, a due post goes first. bench/web.py (200 posts due, 4 clients loading pages, 3 rounds)
#: on a busy 2-core machine: at 0 the posts came 2.2x later during page loads than quietly (the
#: web app took a core from the dispatcher), at 10 0.76x, with pages as fast as in one process.
WEB_NICE = 10


def process(host: str, sock: socket.socket) -> Child:
    """The web app beside the service: `promo web` in its own process on the socket of :func:`listen`
    (it does no publishing and runs no jobs)."""
    port = sock.getsockname()[1]
    return Child("web app", ("web", "--host", host, "--port", str(port), "--listen-fd", str(sock.fileno())),
                 pass_fds=(sock.fileno(),), nice=WEB_NICE, stop_seconds=15)


def run_web(settings: Settings, host: str = "127.0.0.1", port: int = 8080, listen_fd: int | None = None) -> None:
    """Run the web app alone in the foreground (`promo web`) until Ctrl-C or SIGTERM (then exits normally);
    on the listening socket ``listen_fd`` when given (what `promo serve --web` starts), else on ``host:port``."""
    Foreground = _foreground_class()
    db = Database(settings.database_url, settings.db_busy_seconds)
    try:
        check_exposure(settings, host, db)
        if listen_fd is None:
            sock = _bind(host, port)
        else:
            sock = socket.socket(fileno=listen_fd)
            sock.setblocking(False)
        port = sock.getsockname()[1]
        log.info("web app: %s", _address(host, port))
        Foreground(_config(settings, db, host, port)).run(sockets=[sock])
    finally:
        db.dispose()


__all__ = ["COOKIE", "NAV", "ROUTES", "SECURITY_HEADERS", "User", "Who", "asgi", "check_exposure", "is_loopback",
           "listen", "make_app", "process", "require", "route_roles", "run_web", "start"]
