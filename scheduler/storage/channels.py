"""Channels: configured ones (environment) and stored ones (``promo channels add``) as rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler.config import ChannelConfig, Settings, parse_budget, parse_slots
from scheduler.errors import ConfigError, NotFoundError
from scheduler.models import AuditEntry, Channel, ChannelStatus, utcnow
from scheduler.platforms import adapter_class
from scheduler.platforms.base import MemoryState, is_secret_key
from scheduler.redact import register_secret
from scheduler.storage import crypto
from scheduler.storage.db import Database

STATE_KEY = "__state__"  # inside secrets_enc: tokens the adapter refreshed itself


def sync_configured(session: Session, settings: Settings) -> dict[str, Channel]:
    """Make sure every configured channel has a row; return all rows by name.

    Two processes starting together may both insert a channel: the insert runs in a
    savepoint and a unique-name conflict means the other process won, so its row is used.
    """
    rows = {c.name: c for c in session.scalars(select(Channel))}
    for cfg in settings.channels:
        row = rows.get(cfg.name)
        if row is None:
            try:
                with session.begin_nested():
                    row = Channel(name=cfg.name, platform=cfg.platform, source="env", options={},
                                  status=ChannelStatus.ACTIVE.value)
                    session.add(row)
            except IntegrityError:
                row = session.scalars(select(Channel).where(Channel.name == cfg.name)).one()
            rows[cfg.name] = row
        elif row.platform != cfg.platform:
            row.platform = cfg.platform
            row.updated_at = utcnow()
    session.flush()
    return rows


def get_channel(session: Session, name: str) -> Channel:
    row = session.scalars(select(Channel).where(Channel.name == name)).first()
    if row is None:
        raise NotFoundError(f"no channel named {name!r} (see `promo channels list`)")
    return row


def channel_configs(session: Session, settings: Settings) -> dict[str, ChannelConfig]:
    """Every channel's configuration: environment channels plus stored ones (secrets decrypted)."""
    out = {c.name: c for c in settings.channels}
    for row in session.scalars(select(Channel).where(Channel.source == "db")):
        options = {k: v for k, v in (row.options or {}).items() if k != STATE_KEY}
        secrets = crypto.decrypt(settings, row.secrets_enc, f"the secrets of channel {row.name!r}") \
            if row.secrets_enc else {}
        secrets.pop(STATE_KEY, None)
        options.update(secrets)
        slots_raw = options.pop("SLOTS", "")
        slots = {d: parse_slots(slots_raw) for d in range(7)} if slots_raw else {}
        budget_raw = options.pop("BUDGET", "")
        budget = parse_budget(budget_raw) if budget_raw else None
        out[row.name] = ChannelConfig(name=row.name, platform=row.platform, options=options,
                                      timezone=settings.timezone, slots=slots, source="db", budget=budget)
    return out


def add_channel(session: Session, settings: Settings, name: str, platform: str,
                values: Mapping[str, str], actor: str) -> Channel:
    """Store a channel; secret options are encrypted with PROMO_SECRET_KEY."""
    name = name.strip().lower()
    if not name.replace("_", "").isalnum() or not name[:1].isalpha():
        raise ConfigError(f"channel name {name!r} must be letters, digits and _ (starting with a letter)")
    cls = adapter_class(platform)
    keys = {k.upper(): v for k, v in values.items()}
    unknown = sorted(k for k in keys if k not in cls.all_keys() and k not in ("SLOTS", "BUDGET"))
    problems = [f"{k}: not a setting of platform {platform} (it takes {', '.join(cls.all_keys())})"
                for k in unknown]
    problems += cls.validate_options(keys)
    if "SLOTS" in keys:
        try:
            parse_slots(keys["SLOTS"])
        except ValueError as exc:
            problems.append(f"SLOTS: {exc}")
    if "BUDGET" in keys:
        try:
            parse_budget(keys["BUDGET"])
        except ValueError as exc:
            problems.append(f"BUDGET: {exc}")
    if problems:
        raise ConfigError(problems)
    if settings.channel(name) is not None:
        raise ConfigError(f"channel {name!r} is already configured in the environment (PROMO_CHANNELS)")
    secrets = {k: v for k, v in keys.items() if k in cls.secret_keys}
    plain = {k: v for k, v in keys.items() if k not in cls.secret_keys}
    row = session.scalars(select(Channel).where(Channel.name == name)).first()
    blob = crypto.encrypt(settings, secrets, like=salted_blob(session)) if secrets else None
    if row is None:
        row = Channel(name=name, platform=platform, source="db", options=plain, secrets_enc=blob,
                      status=ChannelStatus.ACTIVE.value)
        session.add(row)
    else:
        row.platform, row.options, row.secrets_enc, row.updated_at = platform, plain, blob, utcnow()
    session.add(AuditEntry(actor=actor, action="channel.add", entity="channel", entity_id=name,
                           detail={"platform": platform, "keys": sorted(keys)}))
    session.flush()
    return row


def salted_blob(session: Session) -> str | None:
    """A stored blob with a scrypt salt: new secrets are encrypted under the same salt, so every
    secret of an installation needs one scrypt derivation, not one each."""
    return session.scalars(select(Channel.secrets_enc).where(Channel.secrets_enc.like(crypto.PREFIX + "%"))
                           .limit(1)).first()


def set_status(session: Session, channel: Channel, status: ChannelStatus, reason: str | None,
               actor: str) -> None:
    channel.status = status.value
    channel.status_reason = reason
    channel.updated_at = utcnow()
    session.add(AuditEntry(actor=actor, action=f"channel.{status.value}", entity="channel",
                           entity_id=channel.name, detail={"reason": reason}))


class DbChannelState:
    """A ChannelState kept in the channel's row, loaded on first use.

    Credential-like values (see :func:`is_secret_key`) are stored encrypted with
    PROMO_SECRET_KEY; plain ones (a server's character limit, a guild id) are stored in
    the row's options, so channels that keep no tokens need no key. ``keys`` is the
    settings (PROMO_SECRET_KEY, and PROMO_SECRET_KEY_OLD while rotating), a keyring, or one key.
    """

    def __init__(self, db: Database, channel_id: int, keys: crypto.Keys):
        self.db = db
        self.channel_id = channel_id
        has_key = keys.secret_key if isinstance(keys, Settings) else keys
        self.secret_key: crypto.Keys = keys if has_key else None
        self._values: dict[str, str] | None = None

    @property
    def values(self) -> dict[str, str]:
        if self._values is None:
            with self.db.session() as s:
                row = s.get(Channel, self.channel_id)
                blob = row.secrets_enc if row else None
                plain = dict((row.options or {}).get(STATE_KEY) or {}) if row else {}
            stored = crypto.decrypt(self.secret_key, blob) if blob and self.secret_key else {}
            secret = stored.get(STATE_KEY)
            self._values = {**plain, **(dict(secret) if isinstance(secret, dict) else {})}
        return self._values

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    async def update(self, values: Mapping[str, str | None]) -> None:
        current = self.values
        for k, v in values.items():
            if v is None:
                current.pop(k, None)
            else:
                if is_secret_key(k):
                    register_secret(v)
                current[k] = v
        secret = {k: v for k, v in current.items() if is_secret_key(k)}
        plain = {k: v for k, v in current.items() if not is_secret_key(k)}
        with self.db.session() as s:
            row = s.get(Channel, self.channel_id)
            if row is None:
                return
            if secret or row.secrets_enc:
                # Re-encrypted whole with the new key: a blob written under the old key or the old
                # derivation migrates on the channel's next token refresh.
                stored = crypto.decrypt(self.secret_key, row.secrets_enc) if row.secrets_enc else {}
                stored[STATE_KEY] = secret
                row.secrets_enc = crypto.encrypt(self.secret_key, stored, like=row.secrets_enc or salted_blob(s))
            row.options = {**(row.options or {}), STATE_KEY: plain}
            row.updated_at = utcnow()


def rotate_secrets(session: Session, settings: Settings, actor: str) -> int:
    """Re-encrypt every stored secret (channels added with `promo channels add`, tokens the service
    keeps) with PROMO_SECRET_KEY, in the caller's transaction; return how many channels.

    The rows are locked for the transaction (SQLite's write lock is taken at BEGIN), so a token
    the running service refreshes meanwhile waits and is never overwritten with an older one.
    One blob that no configured key opens raises before anything is written.
    """
    rows = session.scalars(select(Channel).where(Channel.secrets_enc.is_not(None))
                           .order_by(Channel.id).with_for_update()).all()
    if not rows:  # nothing stored: nothing to re-encrypt, with or without a key
        return 0
    keys = crypto.keyring(settings)
    for row in rows:
        row.secrets_enc = keys.rotate(row.secrets_enc or "", f"the secrets of channel {row.name!r}")
    session.add(AuditEntry(actor=actor, action="secrets.rotate", entity="channel", entity_id=None,
                           detail={"channels": [r.name for r in rows]}))
    session.flush()
    return len(rows)


def plain_state(row: Channel) -> MemoryState:
    """The non-secret part of a channel's stored state (e.g. a Mastodon server's character limit),
    enough to compose for it without decrypting anything."""
    return MemoryState(dict((row.options or {}).get(STATE_KEY) or {}))


def rate_limited_until(channel: Channel, now: dt.datetime) -> dt.datetime | None:
    """When the channel's rate limit ends, if it is still running at ``now``; else None."""
    if channel.rate_limited_until and channel.rate_limited_until > now:
        return channel.rate_limited_until
    return None
