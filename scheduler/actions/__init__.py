"""What people do: every change a person can make, CLI and web alike.

Each action is one function ``action(ctx, actor, …plain arguments)`` that checks the actor's
role (:func:`require`), opens one transaction, writes, leaves a history or audit row, and
returns a small result dataclass the CLI prints and the web app renders. An error raised
anywhere inside rolls the whole transaction back: nothing is half-written.

The actor is an :class:`Actor`. ``role=None`` is the operator at the command line, who has
full rights (whoever can run ``promo`` can read the database anyway); a signed-in user of
the web app or API carries their role, and an action their role does not allow raises
:class:`~scheduler.errors.PermissionDenied` before anything is read or written.

Modules: :mod:`.posts` (queue, approve, reject, cancel, reschedule, retry, submit, mark
published, edit), :mod:`.records` (import, list), :mod:`.channels` (list, add, check, pause,
resume, rotate secrets), :mod:`.users` (add, list, passwd, disable, API tokens), :mod:`.templates` (export), :mod:`.media` (prune).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scheduler.errors import PermissionDenied

if TYPE_CHECKING:
    from scheduler.composer import Composer
    from scheduler.config import Settings
    from scheduler.storage.db import Database


class Role(enum.StrEnum):
    """What a signed-in user may do; each role may do everything the ones before it may."""

    VIEWER = "viewer"  #: reads posts, history, records and channels
    EDITOR = "editor"  #: queues, edits, reschedules, submits and cancels posts; imports records
    APPROVER = "approver"  #: approves or rejects posts; retries them; confirms needs_review posts
    ADMIN = "admin"  #: channels, users, secrets, templates


ROLES = tuple(r.value for r in Role)
_RANK = {r: i for i, r in enumerate(Role)}

#: The least role each action needs (the operator, ``role=None``, may do all of them).
NEEDS: dict[str, Role] = {
    "records.list": Role.VIEWER,
    "channels.list": Role.VIEWER,
    "post.queue": Role.EDITOR,
    "post.preview": Role.EDITOR,
    "post.edit": Role.EDITOR,
    "post.reschedule": Role.EDITOR,
    "post.submit": Role.EDITOR,
    "post.cancel": Role.EDITOR,
    "records.import": Role.EDITOR,
    "records.edit": Role.EDITOR,
    "post.approve": Role.APPROVER,
    "post.reject": Role.APPROVER,
    "post.retry": Role.APPROVER,
    "post.published": Role.APPROVER,
    "channels.add": Role.ADMIN,
    "channels.check": Role.ADMIN,
    "channels.pause": Role.ADMIN,
    "channels.resume": Role.ADMIN,
    "secrets.rotate": Role.ADMIN,
    "users.add": Role.ADMIN,
    "users.list": Role.ADMIN,
    "users.passwd": Role.ADMIN,
    "users.disable": Role.ADMIN,
    "users.token": Role.ADMIN,
    "templates.export": Role.ADMIN,
    "media.prune": Role.ADMIN,
}


@dataclass(frozen=True)
class Actor:
    """Who acts: ``name`` is recorded in history and audit rows; ``role`` ``None`` is the operator."""

    name: str
    role: Role | str | None = None

    def may(self, action: str) -> bool:
        if self.role is None:
            return True
        try:
            role = Role(self.role)
        except ValueError:
            return False  # an unknown role may do nothing
        return _RANK[role] >= _RANK[NEEDS[action]]


def require(actor: Actor, action: str) -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` may do ``action`` (a key of :data:`NEEDS`)."""
    if not actor.may(action):
        raise PermissionDenied(actor.name, str(actor.role), action.replace(".", " "), NEEDS[action].value)


@dataclass
class Context:
    """What every action works with: the settings and the database (and a composer, made on first use)."""

    settings: Settings
    db: Database
    _composer: Any = field(default=None, repr=False)

    def composer(self) -> Composer:
        if self._composer is None:
            from scheduler.composer import Composer

            s = self.settings
            self._composer = Composer(s.templates_dir, s.timezone, s.language)
        return self._composer  # type: ignore[no-any-return]
