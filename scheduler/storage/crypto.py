"""Encryption of secrets at rest with Fernet, keyed by PROMO_SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from scheduler.errors import ConfigError
from scheduler.redact import register_secret


def fernet(secret_key: str | None) -> Fernet:
    """A Fernet from PROMO_SECRET_KEY: a Fernet key as is, any other passphrase hashed to one."""
    if not secret_key:
        raise ConfigError("PROMO_SECRET_KEY: needed to store secrets in the database "
                          "(generate one with: python -c 'from cryptography.fernet import Fernet; "
                          "print(Fernet.generate_key().decode())')")
    try:
        return Fernet(secret_key.encode())
    except ValueError:
        digest = hashlib.sha256(b"promo-scheduler:" + secret_key.encode()).digest()
        return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(secret_key: str | None, values: Mapping[str, Any]) -> str:
    """JSON of ``values`` (strings, or a nested mapping such as a channel's token state), encrypted."""
    return fernet(secret_key).encrypt(json.dumps(dict(values)).encode()).decode()


def decrypt(secret_key: str | None, blob: str | None) -> dict[str, Any]:
    if not blob:
        return {}
    try:
        values: dict[str, Any] = json.loads(fernet(secret_key).decrypt(blob.encode()))
    except InvalidToken:
        raise ConfigError("PROMO_SECRET_KEY: does not decrypt the stored channel secrets "
                          "(was the key changed?)") from None
    _register(values)
    return values


def _register(value: Any) -> None:
    """Every string in what was decrypted is a secret from now on, nested token state included."""
    if isinstance(value, str):
        register_secret(value)
    elif isinstance(value, dict):
        for v in value.values():
            _register(v)
