"""How the web app answers an error: one handler per kind, each a page (or JSON under /api/)
naming the problem; the 401 of a page sends the person to the login page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from scheduler.errors import (
    ComposeError,
    NotFoundError,
    PermissionDenied,
    StateError,
    ValidationError,
)
from scheduler.web.core import (
    log,
)
from scheduler.web.webapp import WebApp

#: What an error the actions raise answers: the message is the error's own (it names the problem).
STATUS_OF: dict[type[Exception], int] = {ValidationError: 400, ComposeError: 400, PermissionDenied: 403,
                                         NotFoundError: 404, StateError: 409}


def register(api: FastAPI, board: WebApp) -> None:  # noqa: C901 - one small handler per kind of error
    """Map every error the app and the actions raise to its status and message."""
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

    def answer_with(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def answer(request: Request, exc: Exception) -> Response:
            return board.problem(request, status, str(exc))
        return answer

    for error, status in STATUS_OF.items():
        api.add_exception_handler(error, answer_with(status))

    @api.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> Response:
        log.error("web: %s %s failed", request.method, request.url.path, exc_info=exc)
        return board.problem(request, 500, "the web app could not answer this; the service log says why")

