"""Encryption of secrets at rest with Fernet, keyed by PROMO_SECRET_KEY (and PROMO_SECRET_KEY_OLD).

A real Fernet key is used as it is. Any other value is a passphrase and becomes a key through
scrypt (memory-hard: 32 MiB and about a tenth of a second per guess) with a random salt stored
in front of each blob: ``scrypt1$<salt>$<Fernet token>``. New blobs take the salt the stored ones
already use, so an installation's secrets share one and a process derives its key once (the
derivation is cached per passphrase and salt). A blob without that prefix was written
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
#: scrypt cost: N=2**15, r=8 (32 MiB), p=1, about 0.1 s on the project's machine (the scrypt
#: paper's interactive cost is N=2**14); paid once per passphrase and salt in a process.
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


@functools.lru_cache(maxsize=4096)
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

    def encrypt_bytes(self, data: bytes, like: str | None = None) -> str:
        """``data`` encrypted with the new key; with a passphrase, under the salt of the stored blob
        ``like`` when it has one, so an installation's blobs share a salt and one derivation."""
        _name, value = self.keys[0]
        if is_fernet_key(value):
            return Fernet(value.encode()).encrypt(data).decode()
        salt = salt_of(like) or self._salt
        token = Fernet(_scrypt_key(value, salt)).encrypt(data).decode()
        return f"{PREFIX}{base64.urlsafe_b64encode(salt).decode()}${token}"

    def decrypt_bytes(self, blob: str, what: str = "the stored secrets") -> bytes:
        """The plaintext of ``blob``; a ConfigError naming the settings when no key opens it."""
        salt = salt_of(blob)
        token = blob[len(PREFIX):].partition("$")[2] if blob.startswith(PREFIX) else blob
        try:
            return MultiFernet(self._fernets(salt)).decrypt(token.encode())
        except InvalidToken:
            raise ConfigError(f"{self.names}: does not decrypt {what} (was the key changed? Put the "
                              "previous one in PROMO_SECRET_KEY_OLD, then run `promo secrets rotate`)") from None

    def rotate(self, blob: str, what: str = "the stored secrets") -> str:
        """``blob`` re-encrypted with the new key, under this keyring's salt."""
        return self.encrypt_bytes(self.decrypt_bytes(blob, what))


def salt_of(blob: str | None) -> bytes | None:
    """The scrypt salt stored in front of ``blob``; None for a blob without one."""
    if not blob or not blob.startswith(PREFIX):
        return None
    try:
        salt = base64.urlsafe_b64decode(blob[len(PREFIX):].partition("$")[0])
    except (ValueError, binascii.Error):
        salt = b""
    if len(salt) != SALT_BYTES:
        raise ConfigError("a stored secret is damaged (its scrypt salt is not readable)")
    return salt


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


def encrypt(keys: Keys, values: Mapping[str, Any], like: str | None = None) -> str:
    """JSON of ``values`` (strings, or a nested mapping such as a channel's token state), encrypted
    (under the salt of the stored blob ``like``, see :meth:`Keyring.encrypt_bytes`)."""
    return _as_keyring(keys).encrypt_bytes(json.dumps(dict(values)).encode(), like)


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
