"""What the admin pages (:mod:`.channels`, :mod:`.users`, :mod:`.audit`) share.

Each handler is a plain module function taking the web app (``request.app.state.web``) and the
person asking (``request.state.who``, set by ``require``) from the request (:func:`asking`);
:func:`add` declares its route with the role it needs (the check of every route: a session or
token with the role, and the CSRF token on a form).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path
from starlette.requests import Request

from scheduler.errors import ConfigError, NotFoundError, StateError, ValidationError
from scheduler.web.core import Who, require
from scheduler.web.i18n import translations
from scheduler.web.webapp import WebApp

#: A channel or user name in a path.
Name = Annotated[str, Path(max_length=100, description="a channel or user name")]
#: The errors a form answers on its own page (shown again with the message) instead of an error page.
FORM_ERRORS = (ValidationError, NotFoundError, StateError, ConfigError)
FORM_STATUS: dict[type[Exception], int] = {ValidationError: 400, ConfigError: 400, NotFoundError: 404,
                                           StateError: 409}


#: The web app the pages are handed, and the person asking.
Board = WebApp
Person = Who


def asking(request: Request) -> tuple[Board, Person]:
    """The web app and the person a request comes from (``require`` has let them in)."""
    return request.app.state.web, request.state.who


def words(who: Person) -> Callable[[str], str]:
    """``who``'s language: English msgid → their words."""
    return translations(who.language).gettext


def said(who: Person, message: str, **values: Any) -> str:
    """``message`` (marked with ``_``) in ``who``'s language, with ``values`` filled in."""
    return words(who)(message) % values if values else words(who)(message)


def number(value: int, language: str) -> str:
    """12345 → '12.345' (Indonesian) or '12,345' (English): a template filter."""
    from babel.numbers import format_decimal

    return str(format_decimal(value, locale=language))


def add(api: FastAPI, board: Board, method: str, path: str, handler: Callable[..., Any], role: str,
        **declared: Any) -> None:
    """Declare ``handler`` at ``method path`` for ``role`` and up; pages stay out of the OpenAPI
    description unless ``declared`` says otherwise (the /api/v1/ routes)."""
    declared.setdefault("include_in_schema", path.startswith("/api/"))
    api.add_api_route(path, handler, methods=[method], dependencies=[Depends(require(role))], **declared)
