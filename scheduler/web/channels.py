"""The Channels page (everyone reads; admins check, pause, resume and add channels) and
``/api/v1/channels``, ``/api/v1/channels/{name}/check``.

Secrets typed into the add-a-channel form go to :func:`scheduler.actions.channels.add_channel`
(stored encrypted with PROMO_SECRET_KEY) and are never shown again: pages and answers name the
keys a channel has, never their values; a form shown again after a mistake leaves them empty.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Form, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from scheduler import budget as budgets
from scheduler.actions import channels as channel_actions
from scheduler.errors import NotFoundError, ValidationError
from scheduler.models import Channel, HistoryEntry, utcnow
from scheduler.platforms import PLATFORMS, adapter_class
from scheduler.storage import channels as channel_store
from scheduler.views import local
from scheduler.web.apimodels import errors
from scheduler.web.i18n import _
from scheduler.web.pagekit import FORM_ERRORS, FORM_STATUS, Board, Name, Person, add, asking, said, words

#: Keys every stored channel may take besides its platform's own.
EXTRA_KEYS = ("SLOTS", "BUDGET")
#: What a channel check found, as people say it.
VERDICT_WORDS = {"OK": _("OK"), "bad token": _("bad token"), "unreachable": _("unreachable"), "error": _("error"),
                 "unknown": _("unknown")}
#: Longest value of one channel setting typed into the form.
MAX_VALUE = 4000


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


def _facts(session: Session, board: Board) -> dict[str, dict[str, Any]]:
    """Per stored channel: its last error (and when) and each send budget's use now."""
    configs = channel_store.channel_configs(session, board.settings)
    now = utcnow()
    facts: dict[str, dict[str, Any]] = {}
    conn = session.connection()
    for row in session.scalars(select(Channel)):
        cfg = configs.get(row.name)
        use = budgets.usage(conn, row.id, budgets.budgets_for(cfg, adapter_class(cfg.platform)), now) if cfg else []
        last = session.execute(select(HistoryEntry.error, HistoryEntry.started_at)
                               .where(HistoryEntry.channel_id == row.id, HistoryEntry.error.is_not(None))
                               .order_by(HistoryEntry.id.desc()).limit(1)).first()
        facts[row.name] = {"last_error": last[0] if last else None,
                           "last_error_at": local(last[1], board.tz) if last else None,
                           "budget": [{"limit": u.budget.limit, "window": u.window(), "used": u.used} for u in use]}
    return facts


async def channel_rows(board: Board, who: Person) -> list[dict[str, Any]]:
    """Every channel as `promo channels list` has it, with its last error and send budget use."""
    rows: list[dict[str, Any]] = await board.act(who, channel_actions.list_channels, schema=True)
    facts = await board.read(lambda s: _facts(s, board))
    blank: dict[str, Any] = {"last_error": None, "last_error_at": None, "budget": []}
    return [{**r, **facts.get(r["name"], blank)} for r in rows]


def _platform_keys(platform: str) -> list[dict[str, Any]]:
    cls = adapter_class(platform)
    required = {k for group in cls.required_keys for k in group}
    return [{"key": k, "secret": k in cls.secret_keys, "required": k in required,
             "help": cls.key_docs[k].help if k in cls.key_docs else ""}
            for k in (*cls.all_keys(), *EXTRA_KEYS)]


def _known_platform(platform: str | None) -> None:
    if platform and platform not in PLATFORMS:
        raise ValidationError(f"platform {platform!r}: one of {', '.join(sorted(PLATFORMS))}")


# --- pages ---------------------------------------------------------------------------------------

async def page(request: Request, status: int = 200, problem: str | None = None) -> Response:
    board, who = asking(request)
    return board.render(request, "admin_channels.html", status=status, rows=await channel_rows(board, who),
                        is_admin=who.role == "admin", problem=problem, verdict_words=VERDICT_WORDS)


async def channels(request: Request) -> Response:
    return await page(request)


async def check(request: Request, name: Name) -> Response:
    board, who = asking(request)
    results = await board.act(who, channel_actions.check_channels, name)
    gettext = words(who)
    message = "; ".join(f"{r.name}: {gettext(VERDICT_WORDS.get(r.verdict, r.verdict))} ({r.detail})"
                        + (" · " + gettext(_("active again")) if r.reactivated else "") for r in results)
    return board.done("/channels", message)


async def pause(request: Request, name: Name, reason: Annotated[str, Form(max_length=300)] = "") -> Response:
    board, who = asking(request)
    try:
        done = await board.act(who, channel_actions.pause, name, reason.strip() or None)
    except FORM_ERRORS as exc:
        return await page(request, FORM_STATUS[type(exc)], str(exc))
    return board.done("/channels", said(who, _("Channel %(name)s paused; %(waiting)s posts wait."),
                                        name=done.name, waiting=done.waiting))


async def resume(request: Request, name: Name) -> Response:
    board, who = asking(request)
    try:
        done = await board.act(who, channel_actions.resume, name)
    except FORM_ERRORS as exc:
        return await page(request, FORM_STATUS[type(exc)], str(exc))
    return board.done("/channels", said(who, _("Channel %(name)s active again; %(waiting)s posts waiting."),
                                        name=done.name, waiting=done.waiting))


def new_page(request: Request, platform: str | None, status: int = 200, problem: str | None = None,
             values: dict[str, str] | None = None, name: str = "") -> Response:
    board, _who = asking(request)
    chosen = platform if platform in PLATFORMS else None
    return board.render(request, "admin_channel_new.html", status=status, platforms=sorted(PLATFORMS),
                        platform=chosen, keys=_platform_keys(chosen) if chosen else [], problem=problem,
                        values=values or {}, name=name, secret_key=bool(board.settings.secret_key))


async def new(request: Request, platform: Annotated[str | None, Query(max_length=30)] = None) -> Response:
    _known_platform(platform)
    return new_page(request, platform)


async def create(request: Request, name: Annotated[str, Form(max_length=60)],
                 platform: Annotated[str, Form(max_length=30)]) -> Response:
    board, who = asking(request)
    _known_platform(platform)
    form = await request.form()
    # One field per key of the chosen platform (key_URL, key_ACCESS_TOKEN, …); empty ones are unset.
    values = {k["key"]: str(form.get("key_" + k["key"]) or "").strip() for k in _platform_keys(platform)}
    values = {k: v for k, v in values.items() if v}
    if any(len(v) > MAX_VALUE for v in values.values()):
        raise ValidationError(f"a channel setting is longer than {MAX_VALUE} characters")
    try:
        added = await board.act(who, channel_actions.add_channel, name, platform, values)
    except FORM_ERRORS as exc:
        secret = adapter_class(platform).secret_keys
        # Typed values come back so nothing is typed twice, secrets excepted: never sent back out.
        shown = {k: v for k, v in values.items() if k not in secret}
        return new_page(request, platform, FORM_STATUS[type(exc)], str(exc), shown, name)
    return board.done("/channels", said(who, _("Channel %(name)s added; check it to see that it works."),
                                        name=added.name))


# --- API -----------------------------------------------------------------------------------------

async def api_channels(request: Request) -> list[dict[str, Any]]:
    """Every channel: platform, state, rate limit, last error, send budget use, which keys are set."""
    board, who = asking(request)
    return await channel_rows(board, who)


async def api_check(request: Request, name: Name) -> dict[str, Any]:
    """Call the platform's identity endpoint with the channel's credentials (admin)."""
    board, who = asking(request)
    [r] = await board.act(who, channel_actions.check_channels, name)
    if r.verdict == "unknown":
        raise NotFoundError(r.detail)
    return {"name": r.name, "verdict": r.verdict, "ok": r.ok, "detail": r.detail, "reactivated": r.reactivated}


def register(api: FastAPI, board: Board) -> None:
    add(api, board, "GET", "/channels", channels, "viewer")
    add(api, board, "POST", "/channels/{name}/check", check, "admin")
    add(api, board, "POST", "/channels/{name}/pause", pause, "admin")
    add(api, board, "POST", "/channels/{name}/resume", resume, "admin")
    add(api, board, "GET", "/channels/new", new, "admin")
    add(api, board, "POST", "/channels/new", create, "admin")
    add(api, board, "GET", "/api/v1/channels", api_channels, "viewer", tags=["api"], response_model=list[ChannelOut],
        responses=errors())
    add(api, board, "POST", "/api/v1/channels/{name}/check", api_check, "admin", tags=["api"],
        response_model=CheckOut, responses=errors(404))
