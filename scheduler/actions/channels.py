"""Channels: list, add, check, pause, resume; re-encrypt stored secrets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from scheduler import errors
from scheduler.actions import Actor, Context, require
from scheduler.models import Channel, ChannelStatus, utcnow
from scheduler.redact import redact
from scheduler.storage import channels as store
from scheduler.storage import metrics as metric_store


def list_channels(ctx: Context, actor: Actor, *, schema: bool) -> list[dict[str, Any]]:
    """Every channel (configured or stored) with its platform, keys and state; ``schema`` says
    whether the database has its tables (without them only the configured channels are known)."""
    from scheduler.platforms import adapter_class

    require(actor, "channels.list")
    settings = ctx.settings
    configs: dict[str, Any] = {c.name: c for c in settings.channels}
    states: dict[str, Any] = {}
    if schema:
        # Reads only (never waits for a writer, so a page or `channels list` answers while the
        # service writes); a configured channel without a row yet is shown as active.
        with ctx.db.read_session() as session:
            configs = store.channel_configs(session, settings)
            states = {c.name: c for c in session.scalars(select(Channel))}
    rows = []
    for name, cfg in sorted(configs.items()):
        cls = adapter_class(cfg.platform)
        st = states.get(name)
        now = utcnow()
        limited = store.rate_limited_until(st, now) if st is not None else None
        needs = " | ".join(", ".join(g) for g in cls.required_keys if g) or "-"
        rows.append({
            "name": name, "platform": cfg.platform, "source": cfg.source,
            "status": st.status if st is not None else "active",
            "reason": st.status_reason if st is not None else None,
            "rate_limited_until": limited.astimezone(settings.timezone).isoformat(timespec="seconds")
            if limited else None,
            "required_keys": needs,
            "configured_keys": sorted(k for k in cfg.options),
            "slots": ",".join(t.strftime("%H:%M") for t in cfg.slots.get(0, ())) or None,
            "timezone": str(cfg.timezone),
        })
    return rows


@dataclass(frozen=True)
class Added:
    """The channel stored (its name as normalised)."""

    name: str
    platform: str


def add_channel(ctx: Context, actor: Actor, name: str, platform: str, values: Mapping[str, str]) -> Added:
    """Store a channel in the database, its secret options encrypted with PROMO_SECRET_KEY."""
    require(actor, "channels.add")
    with ctx.db.session() as session:
        row = store.add_channel(session, ctx.settings, name, platform.lower(), values, actor.name)
        return Added(row.name, row.platform)


@dataclass(frozen=True)
class Checked:
    """One channel's check: ``verdict`` is OK, bad token, unreachable, error or unknown."""

    name: str
    verdict: str
    detail: str
    reactivated: bool = False

    @property
    def ok(self) -> bool:
        return self.verdict == "OK"


def check_channels(ctx: Context, actor: Actor, name: str | None = None) -> list[Checked]:
    """Call each platform's identity endpoint; a needs_reauth channel that passes is active again."""
    import asyncio

    require(actor, "channels.check")
    settings = ctx.settings
    with ctx.db.session() as session:
        store.sync_configured(session, settings)
        configs = store.channel_configs(session, settings)
        ids = {c.name: c.id for c in session.scalars(select(Channel))}
    names = [name.lower()] if name else sorted(configs)

    async def check_all() -> list[tuple[str, str, str]]:
        import httpx

        from scheduler.dispatch import make_adapter

        out = []
        async with httpx.AsyncClient(timeout=settings.publish_timeout) as client:
            for n in names:
                cfg = configs.get(n)
                if cfg is None:
                    out.append((n, "unknown", f"no channel named {n!r}"))
                    continue
                # kept in the row (plain values need no PROMO_SECRET_KEY): what check learns (a Mastodon
                # server's limits) is what composing and fitting use
                state = store.DbChannelState(ctx.db, ids[n], settings)
                try:
                    out.append((n, "OK", await make_adapter(settings, cfg, state, client).check()))
                except errors.AuthError as exc:
                    out.append((n, "bad token", str(exc)))
                except errors.PublishError as exc:
                    out.append((n, "unreachable", str(exc)))
                except errors.PromoError as exc:
                    out.append((n, "error", str(exc)))
        return out

    results = []
    for n, verdict, detail in asyncio.run(check_all()):
        reactivated = False
        if verdict == "OK":
            with ctx.db.session() as session:
                row = store.get_channel(session, n)
                metric_store.resume(session, row.id)  # reading counters back resumes too
                if row.status == ChannelStatus.NEEDS_REAUTH.value:
                    store.set_status(session, row, ChannelStatus.ACTIVE, "channels check succeeded", actor.name)
                    reactivated = True
        results.append(Checked(n, verdict, redact(detail), reactivated))
    return results


@dataclass(frozen=True)
class StatusChanged:
    """A channel after pause/resume: ``changed`` is False when it already was in that state."""

    name: str
    status: str
    changed: bool
    waiting: int  # posts of the channel waiting to go out (scheduled or retry_wait)


def _waiting(session: Any, channel: Channel) -> int:
    from sqlalchemy import func

    from scheduler.models import Post
    from scheduler.storage.posts import WAITING

    return session.scalar(select(func.count()).select_from(Post).where(
        Post.channel_id == channel.id, Post.status.in_(WAITING))) or 0


def pause(ctx: Context, actor: Actor, name: str, reason: str | None = None) -> StatusChanged:
    """Stop publishing to a channel; its posts wait (they go out on resume, unless too late by then)."""
    require(actor, "channels.pause")
    with ctx.db.session() as session:
        store.sync_configured(session, ctx.settings)
        row = store.get_channel(session, name.strip().lower())
        changed = row.status != ChannelStatus.PAUSED.value
        if changed:
            store.set_status(session, row, ChannelStatus.PAUSED, reason or "paused by staff", actor.name)
        return StatusChanged(row.name, row.status, changed, _waiting(session, row))


def resume(ctx: Context, actor: Actor, name: str) -> StatusChanged:
    """Publish to a paused channel again. A channel that needs re-authentication is resumed by
    a passing ``promo channels check``, not here."""
    require(actor, "channels.resume")
    with ctx.db.session() as session:
        store.sync_configured(session, ctx.settings)
        row = store.get_channel(session, name.strip().lower())
        if row.status == ChannelStatus.NEEDS_REAUTH.value:
            raise errors.StateError(f"channel {row.name} is needs_reauth ({row.status_reason or 'credentials refused'}): "
                                    f"fix its credentials, then `promo channels check {row.name}` re-activates it")
        changed = row.status != ChannelStatus.ACTIVE.value
        if changed:
            store.set_status(session, row, ChannelStatus.ACTIVE, "resumed by staff", actor.name)
        return StatusChanged(row.name, row.status, changed, _waiting(session, row))


def rotate_secrets(ctx: Context, actor: Actor) -> int:
    """Re-encrypt every stored secret with PROMO_SECRET_KEY; return how many channels."""
    require(actor, "secrets.rotate")
    with ctx.db.session() as session:
        return store.rotate_secrets(session, ctx.settings, actor.name)

