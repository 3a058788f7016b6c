"""The account functions the `promo users …` commands call: clear errors, nothing stored in the
clear, every change in the audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from scheduler.config import load_settings
from scheduler.errors import NotFoundError, ValidationError
from scheduler.models import ApiToken, AuditEntry, User, WebSession
from scheduler.storage import accounts
from scheduler.storage.db import Database


@pytest.fixture
def db(promo_env: Any) -> Any:
    database = Database(load_settings(promo_env()).database_url)
    database.upgrade()
    yield database
    database.dispose()


def test_users_passwords_and_tokens_from_the_cli_functions(db: Database) -> None:
    with db.session() as s:
        accounts.add_user(s, "ana", "admin", password="rahasia-panjang-1", actor="lead")
        accounts.add_user(s, "vina", "viewer")
    with db.session() as s:
        ana = s.scalar(select(User).where(User.name == "ana"))
        assert ana is not None and ana.password_hash and "rahasia" not in ana.password_hash
        assert ana.password_hash.startswith("$argon2id$")
        assert [u["name"] for u in accounts.list_users(s)] == ["ana", "vina"]
        assert accounts.list_users(s)[1]["password"] is False
        assert accounts.login(s, "ana", "rahasia-panjang-1", "127.0.0.1").user is not None
        secret, _csrf = accounts.create_session(s, ana, "127.0.0.1")
    with db.session() as s:
        accounts.set_password(s, "ana", "kata-sandi-baru-2")  # a new password ends every session
        assert s.scalar(select(WebSession)) is None
        token_id, token = accounts.create_token(s, "vina", "laporan")
        assert token.startswith("promo_") and s.scalar(select(ApiToken.token_hash)) == accounts.digest(token)
        assert accounts.token_user(s, token).name == "vina"  # type: ignore[union-attr]
        accounts.revoke_token(s, token_id)
        assert accounts.token_user(s, token) is None
        assert accounts.list_tokens(s, "vina")[0]["revoked"] is True
        accounts.disable(s, "ana")
        assert not accounts.has_admin(s)
        accounts.disable(s, "ana", False)
        assert accounts.has_admin(s)
        actions = [a for (a,) in s.execute(select(AuditEntry.action).where(AuditEntry.entity == "user"))]
    assert actions == ["user_set", "password_set", "user_set", "password_set", "token_created", "token_revoked",
                       "disabled", "enabled"]


def test_bad_input_is_named_and_nothing_is_half_written(db: Database) -> None:
    with db.session() as s:
        accounts.add_user(s, "ana", "admin")
    for call, message in [
        (lambda s: accounts.set_password(s, "ana", "pendek"), "at least 10 characters"),
        (lambda s: accounts.set_password(s, "nina", "cukup-panjang-sekali"), "no user named 'nina'"),
        (lambda s: accounts.add_user(s, "budi", "boss"), "role 'boss': one of viewer, editor, approver, admin"),
        (lambda s: accounts.disable(s, "nina"), "no user named 'nina'"),
        (lambda s: accounts.create_token(s, "nina"), "no user named 'nina'"),
        (lambda s: accounts.revoke_token(s, 404), "no API token with id 404"),
        (lambda s: accounts.set_language(s, "ana", "fr"), "language 'fr': one of id, en"),
    ]:
        with pytest.raises((ValidationError, NotFoundError), match=message), db.session() as s:
            call(s)
    with db.read_session() as s:
        assert accounts.list_users(s)[0]["password"] is False and len(accounts.list_users(s)) == 1
