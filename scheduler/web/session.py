"""Signing in and out, the language switch, who am I, the API description, the old dashboard's
addresses, and a placeholder for each navigation item not built yet."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Query
from fastapi.openapi.utils import get_openapi
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from scheduler.storage import accounts
from scheduler.web.apimodels import Me, described, errors
from scheduler.web.core import (
    COOKIE,
    NAV,
    ROUTES,
    NavItem,
    Who,
    _local_path,
    require,
)
from scheduler.web.i18n import pick, translations
from scheduler.web.webapp import WebApp


def register(api: FastAPI, board: WebApp) -> None:  # noqa: C901, PLR0915 - one small closure per route
    """The routes every page relies on (login, logout, language, /api/v1/me, /api/v1/openapi.json)."""
    # Old addresses of the read-only dashboard's API.
    for old in ("/api/status", "/api/posts", "/api/posts/{id}", "/api/history", "/api/highlights"):
        async def moved(request: Request, who: Annotated[Who, Depends(require("viewer"))]) -> Response:
            target = "/api/v1" + request.url.path[len("/api"):]
            return RedirectResponse(target + (f"?{request.url.query}" if request.url.query else ""), 308)

        api.add_api_route(old, moved, methods=["GET"], include_in_schema=False)

    @api.get("/api/v1/openapi.json", include_in_schema=False)
    async def openapi(who: Annotated[Who, Depends(require("viewer"))]) -> JSONResponse:
        return JSONResponse(described(get_openapi(
            title="promo-scheduler", version="1", routes=api.routes,
            description="The promo-scheduler web app's API. Authorization: Bearer <token> (promo users token …) "
                        "or a session cookie. Every error answers {\"error\": why} with its status.")))

    @api.get("/api/v1/me", tags=["api"], response_model=Me, responses=errors())
    async def me(who: Annotated[Who, Depends(require("viewer"))]) -> dict[str, str]:
        """Who the token or session belongs to: name, role, language."""
        return {"name": who.name, "role": who.role, "language": who.language}

    # POST /api/v1/users/{name}/disable: with the other user routes in web/users.py (the users action).

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
            catalog = translations(pick(lang))
            if result.retry_after is not None:
                message = catalog.gettext("Too many wrong passwords; try again in %(seconds)d s.") % {
                    "seconds": result.retry_after}
                response = board.render(request, "login.html", status=429, next=_local_path(target), name=name,
                                        message=message, no_admin=False, lang=lang)
                response.headers["Retry-After"] = str(result.retry_after)
                return response
            message = catalog.gettext("Wrong name or password.")
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

