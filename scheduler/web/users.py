"""The Users page (admins: add with a password, change a role, set a password, disable or
enable; API tokens made, shown once, revoked) and ``/api/v1/users``. A new API token is shown
only in the answer to the form that made it (never in a redirect or a cookie); only its hash is kept."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import FastAPI, Form, Path
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from scheduler.actions import users as user_actions
from scheduler.errors import NotFoundError
from scheduler.storage import accounts
from scheduler.views import local
from scheduler.web.apimodels import Disabled, errors
from scheduler.web.i18n import LANGUAGES, _
from scheduler.web.pagekit import FORM_ERRORS, FORM_STATUS, Board, Name, add, asking, said, words
from scheduler.web.params import MAX_ID

Password = Annotated[str, Form(max_length=accounts.MAX_PASSWORD)]
Role = Annotated[str, Form(max_length=20)]


class UserOut(BaseModel):
    """A user (never a password or its hash)."""

    name: str
    role: str
    password: bool = Field(description="has a web app password")
    disabled: bool
    language: str
    created_at: str


def _out(u: user_actions.UserRow, board: Board) -> dict[str, Any]:
    return {"name": u.name, "role": u.role, "password": u.password, "disabled": u.disabled, "language": u.language,
            "created_at": local(u.created_at, board.tz)}


async def page(request: Request, status: int = 200, problem: str | None = None,
               new_token: user_actions.NewToken | None = None, form: dict[str, str] | None = None) -> Response:
    board, who = asking(request)
    users = [_out(u, board) for u in await board.act(who, user_actions.list_users)]
    tokens = [{"id": t.id, "user": t.user, "label": t.label, "created_at": local(t.created_at, board.tz),
               "last_used_at": local(t.last_used_at, board.tz) if t.last_used_at else None, "revoked": t.revoked}
              for t in await board.act(who, user_actions.list_tokens)]
    return board.render(request, "admin_users.html", status=status, users=users, tokens=tokens,
                        roles=accounts.ROLES, problem=problem, new_token=new_token, form=form or {},
                        min_password=accounts.MIN_PASSWORD, languages_all=LANGUAGES)


async def _then(request: Request, work: Awaitable[Any], message: str, form: dict[str, str] | None = None) -> Response:
    """Run ``work`` (an action); done: back to the Users page with ``message``; a mistake: the page
    again saying what went wrong (what was typed kept, passwords never)."""
    board, _who = asking(request)
    try:
        await work
    except FORM_ERRORS as exc:
        return await page(request, FORM_STATUS[type(exc)], str(exc), form=form)
    return board.done("/users", message)


async def _known(board: Board, name: str) -> bool:
    return bool(await asyncio.to_thread(user_actions.exists, board.ctx, name))


async def users(request: Request) -> Response:
    return await page(request)


async def create(request: Request, name: Annotated[str, Form(max_length=100)], role: Role, password: Password = "",
                 language: Annotated[str, Form(max_length=5)] = "id") -> Response:
    board, who = asking(request)
    typed = {"name": name, "role": role}
    if await _known(board, name):
        return await page(request, 409, said(who, _("There is already a user named %(name)s."), name=name.strip()),
                          form=typed)
    return await _then(request, board.act(who, user_actions.add_user, name, role, password or None, language),
                       said(who, _("User %(name)s added."), name=name.strip()), typed)


async def set_role(request: Request, name: Name, role: Role) -> Response:
    board, who = asking(request)
    if not await _known(board, name):
        raise NotFoundError(f"no user named {name!r}")
    return await _then(request, board.act(who, user_actions.add_user, name, role),
                       said(who, _("%(name)s is now %(role)s."), name=name, role=words(who)(role)))


async def set_password(request: Request, name: Name, password: Password) -> Response:
    board, who = asking(request)
    return await _then(request, board.act(who, user_actions.set_password, name, password),
                       said(who, _("New password of %(name)s set; their sessions have ended."), name=name))


async def disable(request: Request, name: Name) -> Response:
    board, who = asking(request)
    return await _then(request, board.act(who, user_actions.set_disabled, name, True),
                       said(who, _("%(name)s disabled: their sessions and API tokens stopped working."), name=name))


async def enable(request: Request, name: Name) -> Response:
    board, who = asking(request)
    return await _then(request, board.act(who, user_actions.set_disabled, name, False),
                       said(who, _("%(name)s enabled again."), name=name))


async def create_token(request: Request, name: Name, label: Annotated[str, Form(max_length=100)] = "api") -> Response:
    board, who = asking(request)
    try:
        made = await board.act(who, user_actions.create_token, name, label)
    except FORM_ERRORS as exc:
        return await page(request, FORM_STATUS[type(exc)], str(exc))
    return await page(request, new_token=made)  # shown in this answer only


async def revoke_token(request: Request, name: Name, token_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    board, who = asking(request)
    return await _then(request, board.act(who, user_actions.revoke_token, token_id, name),
                       said(who, _("API token %(id)s of %(name)s revoked."), id=token_id, name=name))


async def api_users(request: Request) -> list[dict[str, Any]]:
    """Every user: role, whether they have a web app password, disabled (admin)."""
    board, who = asking(request)
    return [_out(u, board) for u in await board.act(who, user_actions.list_users)]


async def api_disable(request: Request, name: Name) -> dict[str, Any]:
    """Disable a user (admin): their sessions end at once and their API tokens stop working."""
    board, who = asking(request)
    row = await board.act(who, user_actions.set_disabled, name, True)
    return {"name": row.name, "disabled": row.disabled}


def register(api: FastAPI, board: Board) -> None:
    add(api, board, "GET", "/users", users, "admin")
    add(api, board, "POST", "/users", create, "admin")
    add(api, board, "POST", "/users/{name}/role", set_role, "admin")
    add(api, board, "POST", "/users/{name}/password", set_password, "admin")
    add(api, board, "POST", "/users/{name}/disable", disable, "admin")
    add(api, board, "POST", "/users/{name}/enable", enable, "admin")
    add(api, board, "POST", "/users/{name}/tokens", create_token, "admin")
    add(api, board, "POST", "/users/{name}/tokens/{token_id}/revoke", revoke_token, "admin")
    add(api, board, "GET", "/api/v1/users", api_users, "admin", tags=["api"], response_model=list[UserOut],
        responses=errors())
    add(api, board, "POST", "/api/v1/users/{name}/disable", api_disable, "admin", tags=["api"],
        response_model=Disabled, responses=errors(404))
