"""Users and their roles (enforced where people sign in: the web app and API)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from scheduler.actions import ROLES, Actor, Context, require
from scheduler.errors import ValidationError
from scheduler.models import AuditEntry, User


@dataclass(frozen=True)
class UserRow:
    """A user as shown: name, role and when they were added."""

    name: str
    role: str
    created_at: dt.datetime


def add_user(ctx: Context, actor: Actor, name: str, role: str) -> UserRow:
    """Add a user, or change an existing user's role; an audit row says who did it."""
    require(actor, "users.add")
    if role not in ROLES:
        raise ValidationError(f"role {role!r}: not one of {', '.join(ROLES)}")
    if not name.strip():
        raise ValidationError("a user needs a name")
    with ctx.db.session() as session:
        user = session.scalars(select(User).where(User.name == name)).first()
        if user is not None:
            user.role = role
        else:
            user = User(name=name, role=role)
            session.add(user)
        session.add(AuditEntry(actor=actor.name, action="user.add", entity="user", entity_id=name,
                               detail={"role": role}))
        session.flush()
        return UserRow(user.name, user.role, user.created_at)


def list_users(ctx: Context, actor: Actor) -> list[UserRow]:
    """Every user, by name."""
    require(actor, "users.list")
    with ctx.db.read_session() as session:
        return [UserRow(u.name, u.role, u.created_at) for u in session.scalars(select(User).order_by(User.name))]
