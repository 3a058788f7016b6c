"""Users, their roles, web app passwords and API tokens (enforced where people sign in: the web
app and API). Each function is one transaction over :mod:`scheduler.storage.accounts`, which
keeps only hashes (argon2 for passwords, SHA-256 for tokens) and writes the audit rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from scheduler.actions import ROLES, Actor, Context, require
from scheduler.errors import NotFoundError, ValidationError
from scheduler.models import ApiToken, User
from scheduler.storage import accounts


@dataclass(frozen=True)
class UserRow:
    """A user as shown (never a hash): name, role, whether they have a web app password, disabled."""

    name: str
    role: str
    created_at: dt.datetime
    password: bool = False
    disabled: bool = False
    language: str = "id"


@dataclass(frozen=True)
class TokenRow:
    """An API token as listed (never the token itself: only its hash is kept)."""

    id: int
    user: str
    label: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked: bool


@dataclass(frozen=True)
class NewToken:
    """A token just made: ``token`` is shown this once."""

    id: int
    user: str
    label: str
    token: str


def _row(user: User) -> UserRow:
    return UserRow(user.name, user.role, user.created_at, user.password_hash is not None, user.disabled,
                   user.language)


def add_user(ctx: Context, actor: Actor, name: str, role: str, password: str | None = None,
             language: str = "id") -> UserRow:
    """Add a user, or change an existing user's role; with a web app password when given."""
    require(actor, "users.add")
    if role not in ROLES:
        raise ValidationError(f"role {role!r}: not one of {', '.join(ROLES)}")
    if actor.role is not None and actor.name == name.strip() and role != actor.role:
        raise ValidationError("you cannot change your own role: another admin can")
    with ctx.db.session() as session:
        user = accounts.add_user(session, name, role, password=password, language=language, actor=actor.name)
        session.flush()
        return _row(user)


def exists(ctx: Context, name: str) -> bool:
    """Whether a user called ``name`` exists (the CLI asks before prompting for a new user's password)."""
    with ctx.db.read_session() as session:
        return session.scalar(select(User.id).where(User.name == name.strip())) is not None


def set_password(ctx: Context, actor: Actor, name: str, password: str) -> UserRow:
    """Give ``name`` a new web app password; their sessions end (their API tokens stay)."""
    require(actor, "users.passwd")
    with ctx.db.session() as session:
        return _row(accounts.set_password(session, name, password, actor=actor.name))


def set_disabled(ctx: Context, actor: Actor, name: str, disabled: bool = True) -> UserRow:
    """Disable ``name`` (sessions end at once, tokens stop working) or enable them again."""
    require(actor, "users.disable")
    if disabled and actor.name == name and actor.role is not None:
        raise ValidationError("you cannot disable yourself: another admin can")
    with ctx.db.session() as session:
        return _row(accounts.disable(session, name, disabled, actor=actor.name))


def list_users(ctx: Context, actor: Actor) -> list[UserRow]:
    """Every user, by name."""
    require(actor, "users.list")
    with ctx.db.read_session() as session:
        return [_row(u) for u in session.scalars(select(User).order_by(User.name))]


def create_token(ctx: Context, actor: Actor, name: str, label: str = "api") -> NewToken:
    """A new API token for ``name``; only its hash is stored, so it is shown once."""
    require(actor, "users.token")
    label = label.strip() or "api"
    if len(label) > 100:
        raise ValidationError("token label: at most 100 characters")
    with ctx.db.session() as session:
        token_id, token = accounts.create_token(session, name, label, actor=actor.name)
        return NewToken(token_id, name, label, token)


def revoke_token(ctx: Context, actor: Actor, token_id: int, name: str | None = None) -> TokenRow:
    """Revoke API token ``token_id`` (of user ``name``, when given: a typo never revokes another's)."""
    require(actor, "users.token")
    with ctx.db.session() as session:
        row = session.get(ApiToken, token_id)
        owner = session.get(User, row.user_id) if row is not None else None
        if row is None or owner is None or (name is not None and owner.name != name):
            raise NotFoundError(f"no API token with id {token_id}" + (f" of user {name}" if name else ""))
        accounts.revoke_token(session, token_id, actor=actor.name)
        return TokenRow(row.id, owner.name, row.name, row.created_at, row.last_used_at, True)


def list_tokens(ctx: Context, actor: Actor, name: str | None = None) -> list[TokenRow]:
    """API tokens (of ``name``, or everyone's), oldest first; never the tokens themselves."""
    require(actor, "users.token")
    with ctx.db.read_session() as session:
        if name is not None and session.scalar(select(User.id).where(User.name == name)) is None:
            raise NotFoundError(f"no user named {name!r}")
        return [TokenRow(t["id"], t["user"], t["name"], t["created_at"], t["last_used_at"], t["revoked"])
                for t in accounts.list_tokens(session, name)]
