"""The admin pages of the web app: Channels (everyone reads, admins act), Users and API tokens,
Audit; and their JSON API (``/api/v1/channels``, ``/api/v1/channels/{name}/check``, ``/api/v1/users``).

Every change goes through :mod:`scheduler.actions` (``WebApp.act``: the role is checked there,
one transaction, an audit row). Secrets typed into the add-a-channel form are handed to
:func:`scheduler.actions.channels.add_channel` (stored encrypted) and never shown again: pages
and answers name the keys a channel has, never their values. A new API token is shown once,
in the answer to the form that made it; only its hash is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Form, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

import scheduler.web.i18n as i18n
from scheduler import budget as budgets
from scheduler.actions import channels as channel_actions
from scheduler.actions import users as user_actions
from scheduler.errors import ConfigError, NotFoundError, StateError, ValidationError
from scheduler.models import Channel, HistoryEntry, utcnow
from scheduler.platforms import PLATFORMS, adapter_class
from scheduler.storage import accounts
from scheduler.storage import channels as channel_store
from scheduler.views import AUDIT_ENTITIES, audit_rows, detail_text, local
from scheduler.web.params import MAX_ID, MAX_TEXT, day, text


class Person(Protocol):
    """Who is asking (``scheduler.web.Who``, which ``require`` puts in ``request.state.who``)."""

    name: str
    role: str
    language: str
    csrf: str


class Board(Protocol):
    """What the pages use of ``scheduler.web.WebApp`` (handed to :func:`register`: this module cannot
    import the package, which imports it)."""

    settings: Any
    tz: Any
    jinja: Any

    @property
    def ctx(self) -> Any: ...

    def require(self, role: str) -> Callable[..., Awaitable[Any]]: ...
    async def read(self, fn: Callable[[Session], Any]) -> Any: ...
    async def act(self, who: Any, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...
    def render(self, request: Request, template_name: str, status: int = 200, **context: Any) -> Response: ...
    def done(self, target: str, message: str) -> Response: ...


#: Audit rows per page (older ones: the "older" link, keyset on the row id).
AUDIT_PAGE = 100
#: Keys every stored channel may take besides its platform's own.
EXTRA_KEYS = ("SLOTS", "BUDGET")
#: What a channel check found, as people say it.
_ = i18n._
VERDICT_WORDS = {"OK": _("OK"), "bad token": _("bad token"), "unreachable": _("unreachable"), "error": _("error"),
                 "unknown": _("unknown")}

AuditText = Annotated[str | None, Query(max_length=MAX_TEXT)]
Name = Annotated[str, Path(max_length=100, description="a channel or user name")]
#: The errors a form answers on its own page (re-rendered with the message) instead of an error page.
FORM_ERRORS = (ValidationError, NotFoundError, StateError, ConfigError)
FORM_STATUS = {ValidationError: 400, ConfigError: 400, NotFoundError: 404, StateError: 409}


# --- the JSON API's shapes (OpenAPI is generated from them) ---------------------------------------

class BudgetOut(BaseModel):
    """One send budget of a channel and its use now."""

    limit: int
    window: str = Field(description="the rolling window, e.g. '24 h'")
    used: int = Field(description="sends within the window now")


class ChannelOut(BaseModel):
    """A channel as `promo channels list --format json` shows it, with its last error and send budget use.
    Keys are named, never their values."""

    name: str
    platform: str
    source: str = Field(description="env (PROMO_CHANNELS) or db (added with promo channels add or the web app)")
    status: str = Field(description="active, paused or needs_reauth")
    reason: str | None = None
    rate_limited_until: str | None = None
    required_keys: str
    configured_keys: list[str] = Field(description="the keys that are set (names only, never values)")
    slots: str | None = None
    timezone: str
    last_error: str | None = None
    last_error_at: str | None = None
    budget: list[BudgetOut] = []


class CheckOut(BaseModel):
    """What checking a channel found: verdict OK, bad token, unreachable, error or unknown."""

    name: str
    verdict: str
    ok: bool
    detail: str
    reactivated: bool = Field(description="a needs_reauth channel that passed is active again")


class UserOut(BaseModel):
    """A user (never a password or its hash)."""

    name: str
    role: str
    password: bool = Field(description="has a web app password")
    disabled: bool
    language: str
    created_at: str


# --- reading ---------------------------------------------------------------------------------------

def _channel_facts(session: Session, board: Board) -> dict[str, dict[str, Any]]:
    """Per stored channel: its last error (and when) and each send budget's use now."""
    settings = board.settings
    configs = channel_store.channel_configs(session, settings)
    now = utcnow()
    facts: dict[str, dict[str, Any]] = {}
    conn = session.connection()
    for row in session.scalars(select(Channel)):
        cfg = configs.get(row.name)
        use = budgets.usage(conn, row.id, budgets.budgets_for(cfg, adapter_class(cfg.platform)), now) if cfg else []
        last = session.execute(select(HistoryEntry.error, HistoryEntry.started_at)
                               .where(HistoryEntry.channel_id == row.id, HistoryEntry.error.is_not(None))
                               .order_by(HistoryEntry.id.desc()).limit(1)).first()
        facts[row.name] = {
            "last_error": last[0] if last else None,
            "last_error_at": local(last[1], board.tz) if last else None,
            "budget": [{"limit": u.budget.limit, "window": budgets.describe_window(u.budget.window), "used": u.used}
                       for u in use]}
    return facts


async def channel_rows(board: Board, who: Person) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await board.act(who, channel_actions.list_channels, schema=True)
    facts = await board.read(lambda s: _channel_facts(s, board))
    blank: dict[str, Any] = {"last_error": None, "last_error_at": None, "budget": []}
    return [{**r, **facts.get(r["name"], blank)} for r in rows]


def _user_out(u: user_actions.UserRow, board: Board) -> dict[str, Any]:
    return {"name": u.name, "role": u.role, "password": u.password, "disabled": u.disabled, "language": u.language,
            "created_at": local(u.created_at, board.tz)}


def _words(who: Person) -> Any:
    return i18n.translations(who.language).gettext


def said(who: Person, message: str, **values: Any) -> str:
    """``message`` (marked with ``_``) in ``who``'s language, with ``values`` filled in."""
    return _words(who)(message) % values if values else _words(who)(message)


def _number(value: int, language: str) -> str:
    """12345 → '12.345' (Indonesian) or '12,345' (English)."""
    from babel.numbers import format_decimal

    return str(format_decimal(value, locale=language))


def _platform_keys(platform: str) -> list[dict[str, Any]]:
    cls = adapter_class(platform)
    required = {k for group in cls.required_keys for k in group}
    return [{"key": k, "secret": k in cls.secret_keys, "required": k in required,
             "help": cls.key_docs[k].help if k in cls.key_docs else ""}
            for k in (*cls.all_keys(), *EXTRA_KEYS)]


# --- the routes ----------------------------------------------------------------------------------

def register(api: FastAPI, board: Board) -> None:
    """Add the Channels, Users and Audit pages and their API to ``api``."""
    board.jinja.filters.setdefault("number", _number)
    # The check every route makes (``WebApp.require``: a session or token with the role, CSRF); it sets
    # ``request.state.who``. Taken from the board: this module cannot import scheduler.web, which imports it.
    viewer = [Depends(board.require("viewer"))]
    admin = [Depends(board.require("admin"))]

    # --- channels --------------------------------------------------------------------------------

    async def channels_page(request: Request, who: Person, status: int = 200, problem: str | None = None) -> Response:
        return board.render(request, "admin_channels.html", status=status, rows=await channel_rows(board, who),
                            is_admin=who.role == "admin", problem=problem, verdict_words=VERDICT_WORDS)

    @api.get("/channels", include_in_schema=False, dependencies=viewer)
    async def channels(request: Request) -> Response:
        who: Person = request.state.who
        return await channels_page(request, who)

    @api.post("/channels/{name}/check", include_in_schema=False, dependencies=admin)
    async def channel_check(request: Request, name: Name) -> Response:
        who: Person = request.state.who
        results = await board.act(who, channel_actions.check_channels, name)
        gettext = _words(who)
        message = "; ".join(f"{r.name}: {gettext(VERDICT_WORDS.get(r.verdict, r.verdict))} ({r.detail})"
                            + (" · " + gettext(_("active again")) if r.reactivated else "") for r in results)
        return board.done("/channels", message)

    @api.post("/channels/{name}/pause", include_in_schema=False, dependencies=admin)
    async def channel_pause(request: Request, name: Name,
                            reason: Annotated[str, Form(max_length=300)] = "") -> Response:
        who: Person = request.state.who
        try:
            done = await board.act(who, channel_actions.pause, name, reason.strip() or None)
        except FORM_ERRORS as exc:
            return await channels_page(request, who, FORM_STATUS[type(exc)], str(exc))
        return board.done("/channels", said(who, _("Channel %(name)s paused; %(waiting)s posts wait."),
                                            name=done.name, waiting=done.waiting))

    @api.post("/channels/{name}/resume", include_in_schema=False, dependencies=admin)
    async def channel_resume(request: Request, name: Name) -> Response:
        who: Person = request.state.who
        try:
            done = await board.act(who, channel_actions.resume, name)
        except FORM_ERRORS as exc:
            return await channels_page(request, who, FORM_STATUS[type(exc)], str(exc))
        return board.done("/channels", said(who, _("Channel %(name)s active again; %(waiting)s posts waiting."),
                                            name=done.name, waiting=done.waiting))

    def new_channel_page(request: Request, platform: str | None, status: int = 200, problem: str | None = None,
                         values: dict[str, str] | None = None, name: str = "") -> Response:
        keys = _platform_keys(platform) if platform in PLATFORMS else []
        return board.render(request, "admin_channel_new.html", status=status, platforms=sorted(PLATFORMS),
                            platform=platform if platform in PLATFORMS else None, keys=keys, problem=problem,
                            values=values or {}, name=name, secret_key=bool(board.settings.secret_key))

    @api.get("/channels/new", include_in_schema=False, dependencies=admin)
    async def channel_new(request: Request,
                          platform: Annotated[str | None, Query(max_length=30)] = None) -> Response:
        if platform and platform not in PLATFORMS:
            raise ValidationError(f"platform {platform!r}: one of {', '.join(sorted(PLATFORMS))}")
        return new_channel_page(request, platform)

    @api.post("/channels/new", include_in_schema=False, dependencies=admin)
    async def channel_add(request: Request, name: Annotated[str, Form(max_length=60)],
                          platform: Annotated[str, Form(max_length=30)]) -> Response:
        who: Person = request.state.who
        if platform not in PLATFORMS:
            raise ValidationError(f"platform {platform!r}: one of {', '.join(sorted(PLATFORMS))}")
        form = await request.form()
        # One field per key of the chosen platform (key_URL, key_ACCESS_TOKEN, …); empty ones are unset.
        values = {k["key"]: str(form.get("key_" + k["key"]) or "").strip() for k in _platform_keys(platform)}
        values = {k: v for k, v in values.items() if v}
        if any(len(v) > 4000 for v in values.values()):
            raise ValidationError("a channel setting is longer than 4000 characters")
        try:
            added = await board.act(who, channel_actions.add_channel, name, platform, values)
        except FORM_ERRORS as exc:
            secret = adapter_class(platform).secret_keys
            # Typed values come back so nothing is typed twice, secrets excepted: never sent back out.
            shown = {k: v for k, v in values.items() if k not in secret}
            return new_channel_page(request, platform, FORM_STATUS[type(exc)], str(exc), shown, name)
        return board.done("/channels", said(who, _("Channel %(name)s added; check it to see that it works."),
                                            name=added.name))

    @api.get("/api/v1/channels", tags=["api"], response_model=list[ChannelOut], dependencies=viewer)
    async def api_channels(request: Request) -> list[dict[str, Any]]:
        """Every channel: platform, state, rate limit, last error, send budget use, which keys are set."""
        who: Person = request.state.who
        return await channel_rows(board, who)

    @api.post("/api/v1/channels/{name}/check", tags=["api"], response_model=CheckOut, dependencies=admin)
    async def api_channel_check(request: Request, name: Name) -> dict[str, Any]:
        """Call the platform's identity endpoint with the channel's credentials (admin)."""
        who: Person = request.state.who
        [r] = await board.act(who, channel_actions.check_channels, name)
        if r.verdict == "unknown":
            raise NotFoundError(r.detail)
        return {"name": r.name, "verdict": r.verdict, "ok": r.ok, "detail": r.detail, "reactivated": r.reactivated}

    # --- users and tokens ------------------------------------------------------------------------

    async def users_page(request: Request, who: Person, status: int = 200, problem: str | None = None,
                         new_token: user_actions.NewToken | None = None,
                         form: dict[str, str] | None = None) -> Response:
        users = [_user_out(u, board) for u in await board.act(who, user_actions.list_users)]
        tokens = [{"id": t.id, "user": t.user, "label": t.label, "created_at": local(t.created_at, board.tz),
                   "last_used_at": local(t.last_used_at, board.tz) if t.last_used_at else None, "revoked": t.revoked}
                  for t in await board.act(who, user_actions.list_tokens)]
        return board.render(request, "admin_users.html", status=status, users=users, tokens=tokens,
                            roles=accounts.ROLES, problem=problem, new_token=new_token, form=form or {},
                            min_password=accounts.MIN_PASSWORD, languages_all=i18n.LANGUAGES)

    async def user_form(request: Request, who: Person, work: Any, message: str,
                        form: dict[str, str] | None = None) -> Response:
        """Run ``work`` (an action); on a mistake, the Users page again with what went wrong."""
        try:
            await work
        except FORM_ERRORS as exc:
            return await users_page(request, who, FORM_STATUS[type(exc)], str(exc), form=form)
        return board.done("/users", message)

    async def known(name: str) -> bool:
        return bool(await asyncio.to_thread(user_actions.exists, board.ctx, name))

    @api.get("/users", include_in_schema=False, dependencies=admin)
    async def users(request: Request) -> Response:
        who: Person = request.state.who
        return await users_page(request, who)

    @api.post("/users", include_in_schema=False, dependencies=admin)
    async def user_add(request: Request, name: Annotated[str, Form(max_length=100)],
                       role: Annotated[str, Form(max_length=20)],
                       password: Annotated[str, Form(max_length=accounts.MAX_PASSWORD)] = "",
                       language: Annotated[str, Form(max_length=5)] = "id") -> Response:
        who: Person = request.state.who
        if await known(name):
            return await users_page(request, who, 409, said(who, _("There is already a user named %(name)s."),
                                                            name=name.strip()), form={"name": name, "role": role})
        return await user_form(
            request, who, board.act(who, user_actions.add_user, name, role, password or None, language),
            said(who, _("User %(name)s added."), name=name.strip()), {"name": name, "role": role})

    @api.post("/users/{name}/role", include_in_schema=False, dependencies=admin)
    async def user_role(request: Request, name: Name,
                        role: Annotated[str, Form(max_length=20)]) -> Response:
        who: Person = request.state.who
        if not await known(name):
            raise NotFoundError(f"no user named {name!r}")
        return await user_form(request, who, board.act(who, user_actions.add_user, name, role),
                               said(who, _("%(name)s is now %(role)s."), name=name, role=_words(who)(role)))

    @api.post("/users/{name}/password", include_in_schema=False, dependencies=admin)
    async def user_password(request: Request, name: Name,
                            password: Annotated[str, Form(max_length=accounts.MAX_PASSWORD)]) -> Response:
        who: Person = request.state.who
        return await user_form(request, who, board.act(who, user_actions.set_password, name, password),
                               said(who, _("New password of %(name)s set; their sessions have ended."), name=name))

    @api.post("/users/{name}/disable", include_in_schema=False, dependencies=admin)
    async def user_disable(request: Request, name: Name) -> Response:
        who: Person = request.state.who
        return await user_form(request, who, board.act(who, user_actions.set_disabled, name, True),
                               said(who, _("%(name)s disabled: their sessions and API tokens stopped working."),
                                    name=name))

    @api.post("/users/{name}/enable", include_in_schema=False, dependencies=admin)
    async def user_enable(request: Request, name: Name) -> Response:
        who: Person = request.state.who
        return await user_form(request, who, board.act(who, user_actions.set_disabled, name, False),
                               said(who, _("%(name)s enabled again."), name=name))

    @api.post("/users/{name}/tokens", include_in_schema=False, dependencies=admin)
    async def token_create(request: Request, name: Name,
                           label: Annotated[str, Form(max_length=100)] = "api") -> Response:
        who: Person = request.state.who
        try:
            made = await board.act(who, user_actions.create_token, name, label)
        except FORM_ERRORS as exc:
            return await users_page(request, who, FORM_STATUS[type(exc)], str(exc))
        # Shown in this answer only (never stored, never in a redirect or a cookie).
        return await users_page(request, who, new_token=made)

    @api.post("/users/{name}/tokens/{token_id}/revoke", include_in_schema=False, dependencies=admin)
    async def token_revoke(request: Request, name: Name, token_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
        who: Person = request.state.who
        return await user_form(request, who, board.act(who, user_actions.revoke_token, token_id, name),
                               said(who, _("API token %(id)s of %(name)s revoked."), id=token_id, name=name))

    @api.get("/api/v1/users", tags=["api"], response_model=list[UserOut], dependencies=admin)
    async def api_users(request: Request) -> list[dict[str, Any]]:
        """Every user: role, whether they have a web app password, disabled (admin)."""
        who: Person = request.state.who
        return [_user_out(u, board) for u in await board.act(who, user_actions.list_users)]

    # --- audit -----------------------------------------------------------------------------------

    @api.get("/audit", include_in_schema=False, dependencies=admin)
    async def audit(request: Request, since: AuditText = None, until: AuditText = None,
                    actor: AuditText = None, entity: AuditText = None,
                    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="rows older than this id")] = None,
                    ) -> Response:
        """Who changed what, newest first, AUDIT_PAGE rows a page; filters as `promo audit` takes them
        (since/until: YYYY-MM-DD in the organisation's timezone, actor, entity)."""
        tz = board.tz
        start = day(end=False)("since", since, tz) if since and since.strip() else None
        end = day(end=True)("until", until, tz) if until and until.strip() else None
        who_acted = text("actor", actor, tz) if actor and actor.strip() else None
        kind = entity.strip().lower() if entity and entity.strip() else None
        if kind is not None and kind not in AUDIT_ENTITIES:
            raise ValidationError(f"entity {kind!r}: one of {', '.join(AUDIT_ENTITIES)}")

        def load(session: Session) -> list[dict[str, Any]]:
            return audit_rows(session, tz, since=start, until=end, actor=who_acted, entity=kind, before=before,
                              limit=AUDIT_PAGE + 1, newest_first=True)

        rows = await board.read(load)
        more = len(rows) > AUDIT_PAGE
        rows = [{**r, "detail": detail_text(r["detail"])} for r in rows[:AUDIT_PAGE]]
        kept = {k: v for k, v in (("since", since), ("until", until), ("actor", actor), ("entity", kind)) if v}
        older = "/audit?" + urlencode({**kept, "before": rows[-1]["id"]}) if more and rows else None
        newest = "/audit?" + urlencode(kept) if before else None
        return board.render(request, "admin_audit.html", rows=rows, older=older, newest=newest,
                            query=kept, entities=list(AUDIT_ENTITIES))


__all__ = ["ChannelOut", "CheckOut", "UserOut", "channel_rows", "register"]
