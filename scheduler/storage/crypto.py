"""Encryption of secrets at rest with Fernet, keyed by PROMO_SECRET_KEY (and PROMO_SECRET_KEY_OLD).

A real Fernet key is used as it is. Any other value is a passphrase and becomes a key through
scrypt (memory-hard: 32 MiB and about a tenth of a second per guess) with a random salt kept
beside each stored blob: ``scrypt1$<salt>$<Fernet token>``. A blob without that prefix was written
with a Fernet key, or by an older version that hashed the passphrase once with SHA-256; both stay
readable (the legacy key is only ever tried for decrypting).

Rotation: with PROMO_SECRET_KEY (new) and PROMO_SECRET_KEY_OLD set, a :class:`Keyring`
decrypts with either and encrypts with the new one; `promo secrets rotate` re-encrypts every
stored blob, after which PROMO_SECRET_KEY_OLD can be removed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from scheduler.config import Settings
from scheduler.errors import ConfigError
from scheduler.redact import register_secret

PREFIX = "scrypt1$"
#: scrypt cost: N=2**15, r=8 (32 MiB), p=1 — what the scrypt paper and OWASP suggest for keys
#: derived at start-up; derived keys are cached per process, so it is paid once per salt.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SALT_BYTES = 16

_GENERATE = ("generate one with: python -c 'from cryptography.fernet import Fernet; "
             "print(Fernet.generate_key().decode())'")


def is_fernet_key(value: str) -> bool:
    try:
        Fernet(value.encode())
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=64)
def _scrypt_key(passphrase: str, salt: bytes) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return base64.urlsafe_b64encode(kdf.derive(passphrase.encode()))


def _legacy_key(passphrase: str) -> bytes:
    """How versions before scrypt turned a passphrase into a key (one salted SHA-256); read-only."""
    return base64.urlsafe_b64encode(hashlib.sha256(b"promo-scheduler:" + passphrase.encode()).digest())


class Keyring:
    """The configured keys: encrypts with the first (PROMO_SECRET_KEY), decrypts with any.

    Each instance draws one random salt for what it encrypts, so a process derives its
    passphrase key once; blobs written by other processes carry their own salt.
    """

    def __init__(self, keys: tuple[tuple[str, str], ...]):
        #: (setting name, value) pairs, new key first
        self.keys = keys
        self._salt = os.urandom(SALT_BYTES)

    @property
    def names(self) -> str:
        return " or ".join(name for name, _ in self.keys)

    def _fernets(self, salt: bytes | None) -> list[Fernet]:
        """The keys that may open a blob (with ``salt``, or unsalted: a Fernet key or legacy), new first."""
        out = []
        for _name, value in self.keys:
            if is_fernet_key(value):
                out.append(Fernet(value.encode()))
            elif salt is not None:
                out.append(Fernet(_scrypt_key(value, salt)))
            else:
                out.append(Fernet(_legacy_key(value)))
        return out

    def encrypt_bytes(self, data: bytes) -> str:
        _name, value = self.keys[0]
        if is_fernet_key(value):
            return Fernet(value.encode()).encrypt(data).decode()
        token = Fernet(_scrypt_key(value, self._salt)).encrypt(data).decode()
        return f"{PREFIX}{base64.urlsafe_b64encode(self._salt).decode()}${token}"

    def decrypt_bytes(self, blob: str, what: str = "the stored secrets") -> bytes:
        """The plaintext of ``blob``; a ConfigError naming the settings when no key opens it."""
        salt: bytes | None = None
        token = blob
        if blob.startswith(PREFIX):
            salt_b64, _, token = blob[len(PREFIX):].partition("$")
            try:
                salt = base64.urlsafe_b64decode(salt_b64)
            except (ValueError, binascii.Error):
                raise ConfigError(f"{what}: the stored blob is damaged (bad salt)") from None
        try:
            return MultiFernet(self._fernets(salt)).decrypt(token.encode())
        except InvalidToken:
            raise ConfigError(f"{self.names}: does not decrypt {what} (was the key changed? Put the "
                              "previous one in PROMO_SECRET_KEY_OLD, then run `promo secrets rotate`)") from None

    def rotate(self, blob: str, what: str = "the stored secrets") -> str:
        """``blob`` re-encrypted with the new key (and this keyring's salt)."""
        return self.encrypt_bytes(self.decrypt_bytes(blob, what))


def keyring(settings: Settings | str | None) -> Keyring:
    """The keyring of the settings (or of one key, for callers that only have PROMO_SECRET_KEY)."""
    if isinstance(settings, Settings):
        return _keyring(settings.secret_key, settings.secret_key_old)
    return _keyring(settings, None)


@functools.lru_cache(maxsize=8)
def _keyring(secret_key: str | None, old_key: str | None) -> Keyring:
    if not secret_key:
        raise ConfigError(f"PROMO_SECRET_KEY: needed to store secrets in the database ({_GENERATE})")
    keys = [("PROMO_SECRET_KEY", secret_key)]
    if old_key and old_key != secret_key:
        keys.append(("PROMO_SECRET_KEY_OLD", old_key))
    return Keyring(tuple(keys))


Keys = Keyring | Settings | str | None


def _as_keyring(keys: Keys) -> Keyring:
    return keys if isinstance(keys, Keyring) else keyring(keys)


def encrypt(keys: Keys, values: Mapping[str, Any]) -> str:
    """JSON of ``values`` (strings, or a nested mapping such as a channel's token state), encrypted."""
    return _as_keyring(keys).encrypt_bytes(json.dumps(dict(values)).encode())


def decrypt(keys: Keys, blob: str | None, what: str = "the stored channel secrets") -> dict[str, Any]:
    if not blob:
        return {}
    values: dict[str, Any] = json.loads(_as_keyring(keys).decrypt_bytes(blob, what))
    _register(values)
    return values


def _register(value: Any) -> None:
    """Every string in what was decrypted is a secret from now on, nested token state included."""
    if isinstance(value, str):
        register_secret(value)
    elif isinstance(value, dict):
        for v in value.values():
            _register(v)
