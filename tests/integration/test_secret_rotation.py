"""Secrets at rest: passphrases go through scrypt, real Fernet keys are used as they are, data
written by older versions stays readable, and `promo secrets rotate` moves everything to a new key.

Each test stores secrets the way people do (`promo channels add`, tokens the service refreshes),
changes the environment the way an operator would, and reads them back through `promo`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import select

from scheduler import cli
from scheduler.config import load_settings
from scheduler.errors import ConfigError
from scheduler.models import AuditEntry, Channel
from scheduler.storage import channels as channel_store
from scheduler.storage import crypto
from scheduler.storage.db import Database
from tests.helpers import cli_in, run_cli

ROOT = Path(__file__).resolve().parents[2]
OLD = "kunci lama kantor humas 2026"
NEW = "kunci baru kantor humas 2027"
TOKEN = "SECRET-masto-db-token"
REFRESH = "SECRET-x-refresh-token"


@pytest.fixture
def env(tmp_path, monkeypatch):
    values = {
        "PROMO_ENV_FILE": str(tmp_path / "none.env"), "PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/promo.db",
        "PROMO_TEMPLATES_DIR": str(ROOT / "templates"), "PROMO_SECRET_KEY": OLD,
        "PROMO_CHANNELS": "x_kota", "PROMO_CHANNEL_X_KOTA_PLATFORM": "x",
        "PROMO_CHANNEL_X_KOTA_CLIENT_ID": "client-id", "PROMO_CHANNEL_X_KOTA_ACCESS_TOKEN": "SECRET-x-access",
        "PROMO_CHANNEL_X_KOTA_REFRESH_TOKEN": "SECRET-x-first",
    }
    monkeypatch.delenv("PROMO_SECRET_KEY_OLD", raising=False)
    cli_in(monkeypatch, tmp_path, values)
    return values


def store_secrets(capsys) -> None:
    """A channel added with `promo channels add`, and tokens the service refreshed for an env channel."""
    code, out = run_cli(capsys, "channels", "add", "masto_db", "--platform", "mastodon",
                    "--set", "BASE_URL=https://mastodon.example", "--set", f"ACCESS_TOKEN={TOKEN}")
    assert code == 0, out
    settings = load_settings()
    db = Database(settings.database_url)
    with db.session() as session:
        x_id = channel_store.sync_configured(session, settings)["x_kota"].id
    asyncio.run(channel_store.DbChannelState(db, x_id, settings).update({"REFRESH_TOKEN": REFRESH}))
    db.dispose()


def read_back() -> tuple[str, str]:
    """What the service would use: the stored channel's token and the env channel's refreshed token."""
    settings = load_settings()
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            x_id = channel_store.sync_configured(session, settings)["x_kota"].id
            configs = channel_store.channel_configs(session, settings)
        state = channel_store.DbChannelState(db, x_id, settings)
        return configs["masto_db"].options["ACCESS_TOKEN"], state.get("REFRESH_TOKEN") or ""
    finally:
        db.dispose()


def blobs(env) -> dict[str, str]:
    db = Database(env["PROMO_DATABASE_URL"])
    try:
        with db.session() as session:
            return {c.name: c.secrets_enc for c in session.scalars(select(Channel)) if c.secrets_enc}
    finally:
        db.dispose()


def test_rotate_to_a_new_key_then_drop_the_old_one(env, capsys, monkeypatch) -> None:
    store_secrets(capsys)
    before = blobs(env)
    assert set(before) == {"masto_db", "x_kota"}

    # The operator sets a new key and keeps the old one beside it: everything still reads…
    monkeypatch.setenv("PROMO_SECRET_KEY", NEW)
    monkeypatch.setenv("PROMO_SECRET_KEY_OLD", OLD)
    assert read_back() == (TOKEN, REFRESH)
    # …and one command re-encrypts every stored secret with the new key, saying how many.
    code, out = run_cli(capsys, "secrets", "rotate")
    assert code == 0, out
    assert "re-encrypted the stored secrets of 2 channels" in out and "PROMO_SECRET_KEY_OLD" in out
    after = blobs(env)
    assert set(after) == set(before) and all(after[n] != before[n] for n in after)

    # The old key can go: the new one alone opens everything.
    monkeypatch.delenv("PROMO_SECRET_KEY_OLD")
    assert read_back() == (TOKEN, REFRESH)
    # The old key alone no longer does (the data really moved).
    monkeypatch.setenv("PROMO_SECRET_KEY", OLD)
    with pytest.raises(ConfigError, match="PROMO_SECRET_KEY: does not decrypt"):
        read_back()

    db = Database(env["PROMO_DATABASE_URL"])
    with db.session() as session:
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "secrets.rotate")).one()
        assert sorted(audit.detail["channels"]) == ["masto_db", "x_kota"]
    db.dispose()


def test_a_wrong_key_is_named_without_showing_any_secret_and_rotate_writes_nothing(env, capsys,
                                                                                  monkeypatch) -> None:
    store_secrets(capsys)
    before = blobs(env)
    wrong = "kunci yang salah sama sekali"
    monkeypatch.setenv("PROMO_SECRET_KEY", wrong)
    for args in (["secrets", "rotate"], ["channels", "list"]):
        code, out = run_cli(capsys, *args)
        assert code == 1, args
        assert "PROMO_SECRET_KEY: does not decrypt the secrets of channel 'masto_db'" in out, out
        assert "PROMO_SECRET_KEY_OLD" in out  # what to do about it
        for secret in (wrong, OLD, TOKEN, REFRESH, "Traceback"):
            assert secret not in out, secret
    assert blobs(env) == before  # one channel failed: nothing was re-encrypted

    # With a wrong old key beside a wrong new one, the message names both settings.
    monkeypatch.setenv("PROMO_SECRET_KEY_OLD", "juga salah")
    code, out = run_cli(capsys, "secrets", "rotate")
    assert code == 1 and "PROMO_SECRET_KEY or PROMO_SECRET_KEY_OLD: does not decrypt" in out


def _legacy_blob(passphrase: str, values: dict[str, str]) -> str:
    """What versions before scrypt stored: Fernet keyed by one salted SHA-256 of the passphrase."""
    key = base64.urlsafe_b64encode(hashlib.sha256(b"promo-scheduler:" + passphrase.encode()).digest())
    return Fernet(key).encrypt(json.dumps(values).encode()).decode()


def test_data_from_the_old_derivation_stays_readable_and_rotate_moves_it_to_scrypt(env, capsys) -> None:
    settings = load_settings()
    db = Database(settings.database_url)
    with db.session() as session:
        session.add(Channel(name="masto_db", platform="mastodon", source="db", status="active",
                            options={"BASE_URL": "https://mastodon.example"},
                            secrets_enc=_legacy_blob(OLD, {"ACCESS_TOKEN": TOKEN})))
        session.add(Channel(name="x_kota", platform="x", source="env", status="active", options={},
                            secrets_enc=_legacy_blob(OLD, {channel_store.STATE_KEY: {"REFRESH_TOKEN": REFRESH}})))
    db.dispose()
    settings = load_settings()
    db = Database(settings.database_url)
    with db.session() as session:
        assert channel_store.channel_configs(session, settings)["masto_db"].options["ACCESS_TOKEN"] == TOKEN
    db.dispose()
    assert read_back() == (TOKEN, REFRESH)

    code, out = run_cli(capsys, "secrets", "rotate")
    assert code == 0 and "of 2 channels " in out, out
    blob = blobs(env)["masto_db"]
    # Now keyed by scrypt over the passphrase with the salt stored beside the token.
    assert blob.startswith("scrypt1$")
    _prefix, salt_b64, token = blob.split("$")
    key = base64.urlsafe_b64encode(Scrypt(salt=base64.urlsafe_b64decode(salt_b64), length=32, n=2**15, r=8,
                                          p=1).derive(OLD.encode()))
    assert json.loads(Fernet(key).decrypt(token.encode())) == {"ACCESS_TOKEN": TOKEN}
    assert read_back() == (TOKEN, REFRESH)
    assert blobs(env)["x_kota"].startswith("scrypt1$")


def test_a_real_fernet_key_is_used_as_it_is(env, capsys, monkeypatch) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("PROMO_SECRET_KEY", key)
    code, out = run_cli(capsys, "channels", "add", "masto_db", "--platform", "mastodon",
                    "--set", "BASE_URL=https://mastodon.example", "--set", f"ACCESS_TOKEN={TOKEN}")
    assert code == 0, out
    blob = blobs(env)["masto_db"]
    assert json.loads(Fernet(key.encode()).decrypt(blob.encode())) == {"ACCESS_TOKEN": TOKEN}


def test_the_old_key_without_a_new_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="PROMO_SECRET_KEY_OLD: set only while rotating"):
        load_settings({"PROMO_SECRET_KEY_OLD": OLD})


def test_a_passphrase_costs_one_scrypt_per_salt_not_per_secret() -> None:
    """The service reads many blobs; the memory-hard derivation runs once per key and salt."""
    crypto._scrypt_key.cache_clear()
    ring = crypto.Keyring((("PROMO_SECRET_KEY", NEW),))
    written = [crypto.encrypt(ring, {"ACCESS_TOKEN": f"SECRET-{i}"}) for i in range(20)]
    assert [crypto.decrypt(ring, b)["ACCESS_TOKEN"] for b in written] == [f"SECRET-{i}" for i in range(20)]
    assert crypto._scrypt_key.cache_info().misses == 1


def test_secrets_added_by_separate_commands_share_one_salt(env, capsys) -> None:
    """Each `promo` command is a new process: its new secret takes the salt already in use, so
    the service derives the passphrase key once, not once per channel."""
    for n in range(3):
        crypto._keyring.cache_clear()  # as in a fresh process: a new keyring with its own random salt
        code, out = run_cli(capsys, "channels", "add", f"masto_{n}", "--platform", "mastodon",
                        "--set", "BASE_URL=https://mastodon.example", "--set", f"ACCESS_TOKEN=SECRET-{n}")
        assert code == 0, out
    store_secrets(capsys)
    salts = {crypto.salt_of(blob) for blob in blobs(env).values()}
    assert len(salts) == 1 and None not in salts


def test_rotate_with_nothing_stored_needs_no_key_and_says_so(tmp_path, monkeypatch, capsys) -> None:
    for k, v in {"PROMO_ENV_FILE": str(tmp_path / "none.env"), "PROMO_DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
                 "PROMO_TEMPLATES_DIR": str(ROOT / "templates")}.items():
        monkeypatch.setenv(k, v)
    for k in ("PROMO_SECRET_KEY", "PROMO_SECRET_KEY_OLD", "PROMO_CHANNELS"):
        monkeypatch.delenv(k, raising=False)
    assert cli.main(["db", "upgrade"]) == 0
    code, out = run_cli(capsys, "secrets", "rotate")
    assert (code, out.strip()) == (0, "no secrets are stored in the database: nothing to re-encrypt")
