"""Web app accounts: passwords (argon2), sessions, API tokens and the login throttle.

Everything lives in the database, so several web processes share it: a logout, a disabled
user or a revoked token takes effect at once everywhere, and the throttle counts wrong
passwords per account AND per client address across processes. Secrets (session cookies,
API tokens) are random; only their SHA-256 is stored. Passwords are never logged or stored.

The functions the `promo users …` commands call: :func:`add_user`, :func:`set_password`, :func:`disable`,
:func:`list_users`, :func:`create_token`, :func:`revoke_token`, :func:`list_tokens`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from scheduler.errors import NotFoundError, ValidationError
from scheduler.models import ApiToken, AuditEntry, LoginFailure, User, WebKey, WebSession, utcnow

log = logging.getLogger("promo.web")

ROLES = ("viewer", "editor", "approver", "admin")
LANGUAGES = ("id", "en")
MIN_PASSWORD = 10
MAX_PASSWORD = 1000
#: Wrong passwords within WINDOW per account, and per client address, before both are refused.
MAX_FAILURES = 10
WINDOW = dt.timedelta(minutes=5)
TOKEN_PREFIX = "promo_"

_hasher = PasswordHasher()
#: Verified against when the account does not exist, so an unknown name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("no such account, no such password")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def role_rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else -1


def _user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFoundError(f"no user named {name!r} (add one: promo users add {name} --role …)")
    return user


def _audit(session: Session, actor: str, action: str, name: str, **detail: Any) -> None:
    session.add(AuditEntry(actor=actor, action=action, entity="user", entity_id=name, detail=detail))


# --- what the CLI calls --------------------------------------------------------------------

def add_user(session: Session, name: str, role: str, *, password: str | None = None, language: str = "id",
             actor: str = "system") -> User:
    """Add ``name`` with ``role`` (or change the role of an existing user), with a web app password if given."""
    if role not in ROLES:
        raise ValidationError(f"role {role!r}: one of {', '.join(ROLES)}")
    if language not in LANGUAGES:
        raise ValidationError(f"language {language!r}: one of {', '.join(LANGUAGES)}")
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationError("user name: 1 to 100 characters")
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name, role=role, language=language)
        session.add(user)
        session.flush()
    else:
        user.role = role
    _audit(session, actor, "user_set", name, role=role)
    if password is not None:
        set_password(session, name, password, actor=actor)
    return user


def set_password(session: Session, name: str, password: str, *, actor: str = "system") -> User:
    """Give ``name`` a web app password; every session they had ends (tokens stay)."""
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"password of {name}: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValidationError(f"password of {name}: at most {MAX_PASSWORD} characters")
    user = _user(session, name)
    user.password_hash = _hasher.hash(password)
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    _audit(session, actor, "password_set", name)
    return user


def disable(session: Session, name: str, disabled: bool = True, *, actor: str = "system") -> User:
    """Disable (or enable again) ``name``: their sessions end now; their tokens stop working while disabled."""
    user = _user(session, name)
    user.disabled = disabled
    if disabled:
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    _audit(session, actor, "disabled" if disabled else "enabled", name)
    return user


def set_language(session: Session, name: str, language: str) -> User:
    if language not in LANGUAGES:
        raise ValidationError(f"language {language!r}: one of {', '.join(LANGUAGES)}")
    user = _user(session, name)
    user.language = language
    return user


def list_users(session: Session) -> list[dict[str, Any]]:
    """Every user: name, role, whether they have a password, disabled, language, created_at (UTC)."""
    return [{"name": u.name, "role": u.role, "password": u.password_hash is not None, "disabled": u.disabled,
             "language": u.language, "created_at": u.created_at}
            for u in session.scalars(select(User).order_by(User.name))]


def create_token(session: Session, name: str, label: str = "api", *, actor: str = "system") -> tuple[int, str]:
    """A new API token for ``name``: (its id, the token). Only its hash is kept: show it once."""
    user = _user(session, name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=label[:100], token_hash=digest(token))
    session.add(row)
    session.flush()
    _audit(session, actor, "token_created", name, token_id=row.id, label=row.name)
    return row.id, token


def revoke_token(session: Session, token_id: int, *, actor: str = "system") -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFoundError(f"no API token with id {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        owner = session.get(User, row.user_id)
        _audit(session, actor, "token_revoked", owner.name if owner else str(row.user_id), token_id=token_id)
    return row


def list_tokens(session: Session, name: str | None = None) -> list[dict[str, Any]]:
    q = select(ApiToken, User.name).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
    if name is not None:
        q = q.where(User.name == name)
    return [{"id": t.id, "user": who, "name": t.name, "created_at": t.created_at, "last_used_at": t.last_used_at,
             "revoked": t.revoked_at is not None} for t, who in session.execute(q)]


def has_admin(session: Session) -> bool:
    """At least one admin who can log in (a password, not disabled)."""
    return bool(session.scalar(select(func.count()).select_from(User).where(
        User.role == "admin", User.password_hash.is_not(None), User.disabled.is_(False))))


# --- login and its throttle --------------------------------------------------------------------

@dataclass(frozen=True)
class Login:
    """The outcome of a login attempt: ``user`` when let in; else ``retry_after`` (seconds) when throttled."""

    user: User | None
    retry_after: int | None = None


def retry_after(session: Session, account: str, client: str, now: dt.datetime) -> int | None:
    """Seconds until ``account`` from ``client`` may try again; None when it may now."""
    since = now - WINDOW
    waits = []
    for column, value in ((LoginFailure.account, account), (LoginFailure.client, client)):
        times = list(session.scalars(select(LoginFailure.at).where(column == value, LoginFailure.at > since)
                                     .order_by(LoginFailure.at.desc()).limit(MAX_FAILURES)))
        if len(times) >= MAX_FAILURES:
            waits.append(max(1, math.ceil((times[-1] + WINDOW - now).total_seconds())))
    return max(waits) if waits else None


def login(session: Session, account: str, password: str, client: str, now: dt.datetime | None = None) -> Login:
    """Check ``password`` of ``account`` (from ``client``), throttled; failures logged, never the password."""
    now = now or utcnow()
    account = account.strip()[:100]
    client = client[:100]
    wait = retry_after(session, account, client, now)
    if wait is not None:
        log.warning("web: login of %r from %s refused for %d s (too many wrong passwords)", account, client, wait)
        return Login(None, wait)
    user = session.scalar(select(User).where(User.name == account)) if account else None
    ok = False
    try:
        ok = _hasher.verify(user.password_hash if user and user.password_hash else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if ok and user is not None and user.password_hash and not user.disabled:
        session.execute(delete(LoginFailure).where(LoginFailure.account == account))
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        return Login(user)
    session.add(LoginFailure(at=now, account=account, client=client))
    session.execute(delete(LoginFailure).where(LoginFailure.at <= now - WINDOW))
    why = "disabled" if user is not None and user.disabled and ok else "wrong password or unknown user"
    log.warning("web: login failed for %r from %s (%s)", account, client, why)
    return Login(None)


# --- sessions and tokens -------------------------------------------------------------------------

def create_session(session: Session, user: User, client: str | None) -> tuple[str, str]:
    """A new session of ``user``: (the cookie's secret, its CSRF token)."""
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(WebSession(id=digest(secret), user_id=user.id, csrf=csrf, client=(client or "")[:100]))
    return secret, csrf


#: A session's last request is written at most this often (not a write per request).
TOUCH = dt.timedelta(seconds=30)
#: A token's last use is written at most this often.
TOKEN_TOUCH = dt.timedelta(minutes=1)


def session_is_fresh(session: Session, secret: str, idle: dt.timedelta, now: dt.datetime | None = None) -> bool:
    """Read-only: the session is live and was touched within TOUCH, so a request needs no write."""
    now = now or utcnow()
    row = session.get(WebSession, digest(secret))
    if row is None or now - row.last_seen_at > TOUCH:
        return False
    user = session.get(User, row.user_id)
    return user is not None and not user.disabled and user.password_hash is not None


def session_user(session: Session, secret: str, idle: dt.timedelta,
                 now: dt.datetime | None = None) -> tuple[User, WebSession] | None:
    """The user and session of a cookie's secret; None when unknown, idle too long or the user is disabled."""
    now = now or utcnow()
    row = session.get(WebSession, digest(secret))
    if row is None:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled or user.password_hash is None or row.last_seen_at + idle < now:
        session.delete(row)
        return None
    if now - row.last_seen_at > TOUCH:
        row.last_seen_at = now
    return user, row


def end_session(session: Session, secret: str) -> None:
    session.execute(delete(WebSession).where(WebSession.id == digest(secret)))


def token_user(session: Session, token: str, now: dt.datetime | None = None) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
    if row is None or row.revoked_at is not None:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    now = now or utcnow()
    if row.last_used_at is None or now - row.last_used_at > TOKEN_TOUCH:
        row.last_used_at = now
    return user


def web_key(session: Session) -> bytes:
    """The key signing session cookies (made on first use)."""
    row = session.scalar(select(WebKey).order_by(WebKey.id).limit(1))
    if row is None:
        row = WebKey(key=secrets.token_hex(32))
        session.add(row)
        session.flush()
    return bytes.fromhex(row.key)
