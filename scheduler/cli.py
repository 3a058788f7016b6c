"""The ``promo`` command. A contract people script against (see README.md).

Exit status: 0 success; 1 the command ran but something failed (a bad row, a post that
does not fit, bad configuration); 2 a usage error. Times typed by people are in the
organisation's timezone; output shows local time with its offset.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler import errors

# Building the parser imports nothing heavy (no SQLAlchemy, APScheduler, httpx, Jinja2, Pillow):
# `promo --help` and usage errors answer at once. Each command imports what it needs.
if TYPE_CHECKING:
    from sqlalchemy.exc import OperationalError

    from scheduler.config import Settings
    from scheduler.models import Post
    from scheduler.storage.db import Database

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: What --status accepts; tests/integration/test_cli_output.py checks them against models and views.
POST_STATUSES = ("draft", "pending_approval", "scheduled", "publishing", "retry_wait", "published", "failed",
                 "needs_review", "cancelled", "expired")
#: An attempt's outcome (besides the status it led to), for `promo history --status`.
OUTCOMES = ("published", "duplicate", "rate_limited", "auth", "config", "rejected", "transient", "unknown",
            "lease_expired")
POST_FIELDS = ("id", "channel", "platform", "kind", "status", "scheduled_at", "published_at", "text", "remote_id",
               "remote_url", "attempts", "error")


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: usage error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


# --- helpers --------------------------------------------------------------------------

class App:
    """Settings and database, opened once per command."""

    def __init__(self, args: argparse.Namespace):
        from scheduler.config import load_settings

        self.args = args
        self.settings: Settings = load_settings()
        self._db: Database | None = None
        self.actor: str = getattr(args, "as_user", None) or self.settings.user

    @property
    def db(self) -> Database:
        """Opened on first use: commands that need no database start without SQLAlchemy."""
        if self._db is None:
            from scheduler.storage.db import Database

            self._db = Database(self.settings.database_url, self.settings.db_busy_seconds)
        return self._db

    def require_schema(self) -> None:
        if not self.db.is_current():
            raise errors.ConfigError(f"the database {self.db.engine.url.render_as_string(hide_password=True)} "
                                     "has no tables yet: run `promo db upgrade`")

    def composer(self) -> Any:
        from scheduler.composer import Composer

        return Composer(self.settings.templates_dir, self.settings.timezone, self.settings.language)

    def local(self, value: dt.datetime | None) -> str:
        if value is None:
            return ""
        return value.astimezone(self.settings.timezone).isoformat(timespec="seconds")

    def local_short(self, value: dt.datetime | None) -> str:
        if value is None:
            return "-"
        local = value.astimezone(self.settings.timezone)
        return local.strftime("%Y-%m-%d %H:%M ") + local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def human(value: Any) -> str:
    """A value as people read it: lists joined with commas, yes/no for booleans, "" for nothing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(human(v) for v in value)
    return str(value)


def emit(rows: list[dict[str, Any]], fmt: str, columns: Sequence[str], table_columns: Sequence[str] | None = None,
         widths: dict[str, int] | None = None) -> None:
    if fmt == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    if fmt == "csv":
        from scheduler.views import csv_text

        # The byte order mark lets Excel read Indonesian text as UTF-8 (see README, "CSV").
        sys.stdout.write(csv_text([{k: human(r.get(k)) for k in columns} for r in rows], columns, bom=True))
        return
    cols = list(table_columns or columns)
    widths = widths or {}

    def cell(r: dict[str, Any], c: str) -> str:
        v = r.get(c)
        s = human(v).replace("\n", " ⏎ ")
        limit = widths.get(c, 40)
        return s if len(s) <= limit else s[: limit - 1] + "…"

    table = [[c.upper() for c in cols]] + [[cell(r, c) for c in cols] for r in rows]
    size = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        print("  ".join(v.ljust(size[i]) for i, v in enumerate(row)).rstrip())
    if not rows:
        print("(none)")


def post_row(app: App, p: Post) -> dict[str, Any]:
    from scheduler import views

    return views.post_row(p, app.settings.timezone)


# --- commands --------------------------------------------------------------------------

def _revision(app: App) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with app.db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def cmd_db_upgrade(app: App) -> int:
    url = app.db.engine.url
    name = url.database if url.get_backend_name() == "sqlite" and url.database else \
        url.render_as_string(hide_password=True)
    before = _revision(app)
    app.db.upgrade()
    after = _revision(app)
    if before is None:
        print(f"created the database {name} at revision {after}")
    elif before != after:
        print(f"upgraded the database {name} from revision {before} to {after}")
    else:
        print(f"the database {name} is already at revision {after} (the newest)")
    return EXIT_OK


def cmd_import(app: App) -> int:
    from scheduler.importer import import_file, terminal_progress

    app.require_schema()
    path = Path(app.args.file)
    hook = _record_change_hook(app)
    with app.db.session() as session:
        result = import_file(session, app.args.kind, path, tz=app.settings.timezone, actor=app.actor,
                             skip_invalid=app.args.skip_invalid, on_change=hook,
                             max_description_chars=app.settings.max_description_chars,
                             progress=terminal_progress(app.args.kind))
    for p in result.skipped:
        print(f"skipped: {path}: {p}", file=sys.stderr)
    print(f"{app.args.kind}: {result.summary()}")
    return EXIT_FAILED if result.skipped and not (result.created or result.updated or result.unchanged) else EXIT_OK


def _record_change_hook(app: App) -> Callable[..., None] | None:
    from jobs.event_promotion import on_record_change

    return lambda session, kind, record, changed: on_record_change(app.settings, app.composer(), session, kind,
                                                                   record, changed, actor=app.actor)


def cmd_records_list(app: App) -> int:
    from sqlalchemy import select

    from scheduler.models import Event, Product, Umkm

    app.require_schema()
    kind = app.args.kind
    # One row dict per record, with each kind's own columns (str, int, bool, list values).
    rows: list[dict[str, Any]]
    cols: tuple[str, ...]
    with app.db.read_session() as session:
        if kind == "umkm":
            rows = [{"id": u.external_id, "name": u.name, "owner": u.owner, "category": u.category, "city": u.city,
                     "district": u.district, "phone": u.phone, "instagram": u.instagram, "website": u.website,
                     "curated": u.curated} for u in session.scalars(select(Umkm).order_by(Umkm.external_id))]
            cols = ("id", "name", "owner", "category", "city", "district", "curated")
        elif kind == "products":
            from scheduler.composer.filters import rupiah

            rows = [{"id": p.external_id, "umkm_id": p.umkm.external_id, "name": p.name, "description": p.description,
                     "price": p.price, "price_text": rupiah(p.price), "url": p.url, "image": p.image,
                     "tags": p.tags, "curation": p.curation, "active": p.active}
                    for p in session.scalars(select(Product).order_by(Product.external_id))]
            cols = ("id", "umkm_id", "name", "price_text", "curation", "active", "tags")
        else:
            rows = [{"id": e.external_id, "name": e.name, "venue": e.venue, "city": e.city,
                     "starts_at": app.local(e.starts_at), "ends_at": app.local(e.ends_at) or None, "url": e.url,
                     "tags": e.tags, "status": e.status, "description": e.description}
                    for e in session.scalars(select(Event).order_by(Event.starts_at))]
            cols = ("id", "name", "venue", "starts_at", "ends_at", "status")
    emit(rows, app.args.format, list(rows[0]) if rows else cols, cols)
    return EXIT_OK


def cmd_channels_list(app: App) -> int:
    from sqlalchemy import select

    from scheduler.platforms import adapter_class
    from scheduler.storage import channels as store

    configs: dict[str, Any] = {c.name: c for c in app.settings.channels}
    states: dict[str, Any] = {}
    if app.db.is_current():
        with app.db.session() as session:
            store.sync_configured(session, app.settings)
            configs = store.channel_configs(session, app.settings)
            states = {c.name: c for c in session.scalars(select(store.Channel))}
    rows = []
    for name, cfg in sorted(configs.items()):
        cls = adapter_class(cfg.platform)
        st = states.get(name)
        now = _now()
        limited = st.rate_limited_until if st is not None and st.rate_limited_until and st.rate_limited_until > now \
            else None
        needs = " | ".join(", ".join(g) for g in cls.required_keys if g) or "-"
        rows.append({
            "name": name, "platform": cfg.platform, "source": cfg.source,
            "status": st.status if st is not None else "active",
            "reason": st.status_reason if st is not None else None,
            "rate_limited_until": app.local(limited) or None,
            "required_keys": needs,
            "configured_keys": sorted(k for k in cfg.options),
            "slots": ",".join(t.strftime("%H:%M") for t in cfg.slots.get(0, ())) or None,
            "timezone": str(cfg.timezone),
        })
    emit(rows, app.args.format, list(rows[0]) if rows else ["name"],
         ("name", "platform", "source", "status", "required_keys", "slots", "reason"), {"reason": 50})
    return EXIT_OK


def cmd_channels_check(app: App) -> int:
    import asyncio

    from sqlalchemy import select

    from scheduler.models import ChannelStatus
    from scheduler.platforms import adapter_class
    from scheduler.platforms.base import ChannelContext, MemoryState
    from scheduler.storage import channels as store

    app.require_schema()
    with app.db.session() as session:
        store.sync_configured(session, app.settings)
        configs = store.channel_configs(session, app.settings)
        ids = {c.name: c.id for c in session.scalars(select(store.Channel))}
    names = [app.args.name.lower()] if app.args.name else sorted(configs)
    failed = 0

    async def check_all() -> list[tuple[str, str, str]]:
        import httpx

        out = []
        async with httpx.AsyncClient(timeout=app.settings.publish_timeout) as client:
            for name in names:
                cfg = configs.get(name)
                if cfg is None:
                    out.append((name, "unknown", f"no channel named {name!r}"))
                    continue
                cls = adapter_class(cfg.platform)
                state: Any = MemoryState()
                if app.settings.secret_key:
                    state = store.DbChannelState(app.db, ids[name], app.settings)
                adapter = cls(ChannelContext(name=name, options=cfg.options, state=state,
                                             public_media_base_url=app.settings.public_media_base_url,
                                             graph_api_version=app.settings.graph_api_version), client)
                try:
                    who = await adapter.check()
                    out.append((name, "OK", who))
                except errors.AuthError as exc:
                    out.append((name, "bad token", str(exc)))
                except errors.PublishError as exc:
                    out.append((name, "unreachable", str(exc)))
                except errors.PromoError as exc:
                    out.append((name, "error", str(exc)))
        return out

    from scheduler.redact import redact

    for name, verdict, detail in asyncio.run(check_all()):
        print(f"{name}: {verdict} — {redact(detail)}")
        if verdict != "OK":
            failed += 1
            continue
        with app.db.session() as session:
            row = store.get_channel(session, name)
            if row.status == ChannelStatus.NEEDS_REAUTH.value:
                store.set_status(session, row, ChannelStatus.ACTIVE, "channels check succeeded", app.actor)
                print(f"{name}: re-activated; its waiting posts will go out")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_channels_add(app: App) -> int:
    from scheduler.storage import channels as store

    app.require_schema()
    values: dict[str, str] = {}
    for item in app.args.set or []:
        if "=" not in item:
            raise UsageError(f"--set {item!r}: write KEY=VALUE")
        k, v = item.split("=", 1)
        values[k.strip().upper()] = v.strip()
    with app.db.session() as session:
        row = store.add_channel(session, app.settings, app.args.name, app.args.platform.lower(), values, app.actor)
        print(f"channel {row.name} ({row.platform}) stored; secrets encrypted. Check it: promo channels check {row.name}")
    return EXIT_OK


def cmd_secrets_rotate(app: App) -> int:
    from scheduler.storage import channels as store

    app.require_schema()
    with app.db.session() as session:
        count = store.rotate_secrets(session, app.settings, app.actor)
    print(f"re-encrypted the stored secrets of {count} channel{'' if count == 1 else 's'} with PROMO_SECRET_KEY"
          + ("; PROMO_SECRET_KEY_OLD is no longer needed" if app.settings.secret_key_old else ""))
    return EXIT_OK


def _source(app: App, session: Any) -> Any:
    from scheduler.planner import find_source

    return find_source(session, product=app.args.product, event=app.args.event, text=app.args.text,
                       link=getattr(app.args, "link", None), kind=getattr(app.args, "kind", None))


def cmd_compose(app: App) -> int:
    from scheduler.planner import compose_for, resolve_channels
    from scheduler.storage import channels as store

    app.require_schema()
    composer = app.composer()
    failed = 0
    rows: list[dict[str, Any]] = []  # a composed text with its counts, or an error, per channel
    with app.db.read_session() as session:  # a preview stores nothing
        source = _source(app, session)
        names = app.args.channel.split(",") if app.args.channel else [c.name for c in app.settings.channels]
        for row, cfg in resolve_channels(session, app.settings, names):
            try:
                composed = compose_for(composer, cfg, source, now=_now(), tz=app.settings.timezone,
                                       with_image=bool(app.args.image), template=app.args.template,
                                       state=store.plain_state(row), shorten=app.args.shorten)
            except errors.ComposeError as exc:
                failed += 1
                rows.append({"channel": cfg.name, "platform": cfg.platform, "error": str(exc)})
                continue
            rows.append({"channel": cfg.name, "platform": cfg.platform, "template": composed.template,
                         "text": composed.text, "shortened": composed.shortened,
                         "counts": [{"count": n, "limit": r.limit, "method": r.method} for r, n in composed.counts]})
    if app.args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for r in rows:
            print(f"── {r['channel']} ({r['platform']}) " + "─" * max(0, 50 - len(r["channel"]) - len(r["platform"])))
            if "error" in r:
                print(f"ERROR: {r['error']}\n")
                continue
            print(r["text"])
            counts = ", ".join(f"{c['count']}/{c['limit']} ({c['method']})" for c in r["counts"])
            print(f"[{counts}; template {r['template']}{'; shortened to fit' if r['shortened'] else ''}]\n")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_post_new(app: App) -> int:
    from scheduler.planner import create_posts, parse_when, resolve_channels

    if not (app.args.at or app.args.queue or app.args.now or app.args.draft):
        raise UsageError("say when: --at WHEN, --queue or --now (or --draft to decide later)")
    if app.args.at:
        try:
            parse_when(app.args.at, app.settings.timezone)
        except errors.ValidationError as exc:
            raise UsageError(str(exc)) from None
    app.require_schema()
    composer = app.composer()
    with app.db.session() as session:
        source = _source(app, session)
        channels = resolve_channels(session, app.settings, app.args.channel.split(","))
        posts = create_posts(session, app.settings, composer, source, channels, when=app.args.at,
                             queue=app.args.queue, now_flag=app.args.now, draft=app.args.draft,
                             image=app.args.image, image_alt=app.args.alt, template=app.args.template,
                             actor=app.actor, shorten=app.args.shorten)
        rows = [post_row(app, p) for p in posts]
    if app.args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for r in rows:
            print(f"{r['id']}  {r['channel']}  {r['status']}  {r['scheduled_at'] or '-'}")
    return EXIT_OK


def _known_channel(app: App, session: Any, name: str | None) -> str | None:
    """``--channel NAME`` checked against the channels there are (configured or stored): a typo is a usage error."""
    if name is None:
        return None
    from sqlalchemy import select

    from scheduler.models import Channel

    known = {c.name for c in app.settings.channels} | set(session.scalars(select(Channel.name)))
    wanted = name.strip().lower()
    if wanted not in known:
        raise UsageError(f"--channel {name!r}: no such channel; the channels are "
                         + (", ".join(sorted(known)) or "(none configured: see PROMO_CHANNELS)"))
    return wanted


def cmd_post_list(app: App) -> int:
    from scheduler.storage import posts as store

    app.require_schema()
    status = app.args.status.split(",") if app.args.status else None
    with app.db.read_session() as session:
        channel = _known_channel(app, session, app.args.channel)
        rows = [post_row(app, p) for p in store.list_posts(session, status=status, channel=channel,
                                                           limit=app.args.limit, newest_first=True)]
    emit(rows, app.args.format, POST_FIELDS, ("id", "channel", "kind", "status", "scheduled_at", "attempts", "text"),
         {"text": 50, "scheduled_at": 25})
    return EXIT_OK


def cmd_post_show(app: App) -> int:
    from scheduler import views
    from scheduler.storage import posts as store

    app.require_schema()
    with app.db.read_session() as session:
        post = store.get_post(session, app.args.id)
        row = post_row(app, post)
        hist = views.history_rows(session, views.HistoryFilter(all=True, post_id=post.id), app.settings.timezone)
    if app.args.format == "json":
        print(json.dumps({**row, "history": hist}, ensure_ascii=False, indent=2))
        return EXIT_OK
    for k in ("id", "channel", "platform", "kind", "status", "scheduled_at", "next_attempt_at", "published_at",
              "remote_id", "remote_url", "attempts", "error", "image", "image_alt", "template", "created_by"):
        print(f"{k:>15}: {row[k] if row[k] is not None else '-'}")
    print("\n" + row["text"] + "\n\nhistory:")
    emit(_with_reason(hist), "table", views.HISTORY_FIELDS,
         ("started_at", "action", "from_status", "to_status", "outcome", "actor", "reason"), {"reason": 70})
    return EXIT_OK


def _post_action(action: str) -> Callable[[App], int]:
    def run(app: App) -> int:
        from scheduler import planner

        app.require_schema()
        done = []
        with app.db.session() as session:
            for post_id in app.args.ids:
                if action == "approve":
                    p = planner.approve(session, post_id, app.actor)
                elif action == "cancel":
                    p = planner.cancel(session, post_id, app.actor, reason=app.args.reason or "cancelled by staff")
                elif action == "retry":
                    p = planner.retry(session, post_id, app.actor)
                elif action == "published":
                    p = planner.mark_published(session, post_id, app.actor, app.args.url)
                else:
                    p = planner.schedule_draft(session, post_id, app.actor, app.settings)
                done.append(f"post {p.id}: {p.status}")
        print("\n".join(done))
        return EXIT_OK

    return run


def cmd_post_reschedule(app: App) -> int:
    from scheduler import planner

    app.require_schema()
    if not app.args.at and not app.args.now:
        raise UsageError("give --at WHEN or --now")
    when = app.args.at or _now().astimezone(app.settings.timezone).strftime("%Y-%m-%d %H:%M:%S")
    with app.db.session() as session:
        p = planner.reschedule(session, app.settings, app.args.id, when, app.actor, allow_past=bool(app.args.now))
        print(f"post {p.id}: {p.status} at {app.local(p.scheduled_at)}")
    return EXIT_OK


def _with_reason(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's one ``reason`` column: an attempt's error, or why the status changed."""
    return [{**r, "reason": r.get("error") or r.get("note")} for r in rows]


def cmd_history(app: App) -> int:
    from scheduler import views

    app.require_schema()
    try:
        f = views.HistoryFilter.parse(app.settings.timezone, channel=app.args.channel, status=app.args.status,
                                      since=app.args.since, until=app.args.until, all=app.args.all,
                                      post_id=app.args.post)
    except errors.ValidationError as exc:
        raise UsageError(str(exc)) from None
    with app.db.read_session() as session:
        _known_channel(app, session, app.args.channel)
        rows = views.history_rows(session, f, app.settings.timezone)
    emit(_with_reason(rows) if app.args.format == "table" else rows, app.args.format, views.HISTORY_FIELDS,
         ("started_at", "post_id", "channel", "action", "outcome", "to_status", "http_status", "remote_url", "reason"),
         {"reason": 50, "remote_url": 45})
    return EXIT_OK


def cmd_status(app: App) -> int:
    from scheduler import views

    app.require_schema()
    with app.db.read_session() as session:
        out = views.status_report(session, app.settings)
    if app.args.format == "json":
        print(json.dumps(out, indent=2))
    else:
        if not out["workers"]:
            print("service: not running (no dispatch heartbeat)")
        for w in out["workers"]:
            print(f"service {w['worker']}: last tick {w['last_tick']} ({w['seconds_since_tick']}s ago)"
                  + (" STALLED" if w["stalled"] else ""))
        print("posts: " + (", ".join(f"{k} {v}" for k, v in sorted(out["counts"].items())) or "none"))
    bad = any(w["stalled"] for w in out["workers"])
    return EXIT_FAILED if bad else EXIT_OK


def cmd_serve(app: App) -> int:
    from scheduler.service import Service, run_async, setup_logging

    app.db.require_current_schema()  # older or newer schema: refuse, naming `promo db upgrade`
    setup_logging(app.settings.log_level, app.settings.log_format)
    workers = app.args.workers if app.args.workers is not None else app.settings.workers
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    web_at = None
    if app.args.web and not app.args.dispatch_only:
        from scheduler.web import check_exposure

        check_exposure(app.settings, app.args.host)
        web_at = (app.args.host, app.args.port)
    service = Service(app.settings, app.db, health_port=app.args.health_port, workers=workers,
                      dispatch_only=app.args.dispatch_only, web=web_at)
    if app.args.dispatch_only:
        run_async(service.run())
        return EXIT_OK
    for cfg in app.settings.channels:
        if cfg.platform == "outbox":
            print(f"channel {cfg.name}: posts are appended to {Path(cfg.options.get('PATH') or 'outbox.jsonl').resolve()}",
                  flush=True)
    print("history: promo history   ·   queue: promo post list   ·   health: promo status", flush=True)
    run_async(service.run())  # logs the dashboard's address once it listens
    return EXIT_OK


def cmd_users_add(app: App) -> int:
    from sqlalchemy import select

    from scheduler.models import AuditEntry, User

    app.require_schema()
    with app.db.session() as session:
        existing = session.scalars(select(User).where(User.name == app.args.name)).first()
        if existing:
            existing.role = app.args.role
        else:
            session.add(User(name=app.args.name, role=app.args.role))
        session.add(AuditEntry(actor=app.actor, action="user.add", entity="user", entity_id=app.args.name,
                               detail={"role": app.args.role}))
    print(f"user {app.args.name}: {app.args.role}")
    return EXIT_OK


def cmd_users_list(app: App) -> int:
    from sqlalchemy import select

    from scheduler.models import User

    app.require_schema()
    with app.db.read_session() as session:
        rows = [{"name": u.name, "role": u.role, "created_at": app.local(u.created_at)}
                for u in session.scalars(select(User).order_by(User.name))]
    emit(rows, app.args.format, ("name", "role", "created_at"))
    return EXIT_OK


def cmd_audit(app: App) -> int:
    from scheduler import views

    app.require_schema()
    tz = app.settings.timezone
    try:
        since = views.day_bound(app.args.since, tz, end=False, what="--since") if app.args.since else None
        until = views.day_bound(app.args.until, tz, end=True, what="--until") if app.args.until else None
    except errors.ValidationError as exc:
        raise UsageError(str(exc)) from None
    with app.db.read_session() as session:
        rows = views.audit_rows(session, tz, since=since, until=until, actor=app.args.actor, entity=app.args.entity)
    if app.args.format != "json":
        rows = [{**r, "detail": views.detail_text(r["detail"])} for r in rows]
    emit(rows, app.args.format, views.AUDIT_FIELDS, ("at", "actor", "action", "entity", "entity_id", "detail"),
         {"detail": 70})
    return EXIT_OK


def cmd_demo(app: App) -> int:
    from scheduler.demo import load_demo

    if not app.db.is_current():
        app.db.upgrade()
    with app.db.session() as session:
        for line in load_demo(session, app.settings, app.composer(), actor=app.actor):
            print(line)
    return EXIT_OK


def cmd_templates_export(app: App) -> int:
    from scheduler.shipped import export_templates

    dest = Path(app.args.dir)
    written = export_templates(dest, force=app.args.force)
    for item in written:
        print(("replaced " if item.replaced else "wrote ") + str(item.path))
    print(f"{len(written)} template files in {dest.resolve()}; edit them and set "
          f"PROMO_TEMPLATES_DIR={dest.resolve()} to use them")
    return EXIT_OK


def cmd_jobs_list(app: App) -> int:
    from scheduler.jobs_info import describe_jobs

    rows = describe_jobs(app.settings)
    emit(rows, app.args.format, ["id", "trigger", "next_run", "what"], ["id", "trigger", "next_run", "what"],
         {"what": 70, "trigger": 40})
    return EXIT_OK


def cmd_highlight(app: App) -> int:
    from jobs import daily_highlight as hl

    app.require_schema()
    if app.args.action == "history":
        rows = hl.history(app.db, app.local)
        if app.args.format == "json":
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            return EXIT_OK
        emit(rows, "table", list(rows[0]) if rows else ["day"],
             ("day", "channel", "slot", "status", "product", "umkm", "post_id", "post_status", "reason"),
             {"reason": 60})
        for label, key, name in (("UMKM", "umkm", "umkm_name"), ("product", "product", "product_name")):
            print(f"\nFeatured per {label} ({app.settings.timezone.key}):")
            emit(hl.featured_summary(rows, key, name), "table", [key, "name", "times", "last"])
        return EXIT_OK
    today = _now().astimezone(app.settings.timezone).date()
    try:
        day = dt.date.fromisoformat(app.args.date) if app.args.date else today
    except ValueError:
        raise UsageError(f"--date {app.args.date!r} is not a date (YYYY-MM-DD)") from None
    out = hl.preview(app.settings, app.db, app.composer(), day)
    if app.args.format == "json":
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return EXIT_OK
    print(f"Daily highlight for {out['weekday']} {day.isoformat()} at {out['time']}")
    if not out["highlight_day"]:
        print("  (not a highlight day: see PROMO_HIGHLIGHT_DAYS)")
    if not app.settings.highlight_channels:
        print("  (no channels: set PROMO_HIGHLIGHT_CHANNELS)")
    print(f"  {out['eligible']}")
    for r in out["recorded"]:
        print(f"  already recorded on {r['channel']} slot {r['slot']}: {r['status']}"
              + (f" (post {r['post_id']})" if r["post_id"] else "")
              + (f": {r['reason']}" if r["reason"] and r["status"] != "created" else ""))
    if not out["picks"]:
        print("  nothing eligible: no post would be created")
    for p in out["picks"]:
        print(f"\nSlot {p['slot']}: {p['product_name']} ({p['product']}) from {p['umkm_name']} ({p['umkm']})")
        for line in p["why"]:
            print(f"  - {line}")
    for post in out["posts"]:
        print(f"\n--- {post['channel']} ({post['platform']}), slot {post['slot']} ---")
        print(post["text"] if post["text"] is not None else f"(cannot compose: {post['error']})")
    return EXIT_OK


# --- the parser --------------------------------------------------------------------------

def _one_or_more_of(valid: Sequence[str]) -> Callable[[str], str]:
    """An argparse type for a comma-separated list of fixed words: a typo is a usage error naming the words."""
    def check(value: str) -> str:
        bad = [v for v in (x.strip() for x in value.split(",")) if v and v not in valid]
        if bad:
            raise argparse.ArgumentTypeError(f"{', '.join(repr(b) for b in bad)}: not one of {', '.join(valid)}")
        return value

    return check


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="promo", description="Turn event and UMKM product records into scheduled social-media posts.")
    p.add_argument("--as", dest="as_user", metavar="USER",
                   help="who is acting, recorded in history and audit (default PROMO_USER, else your login name)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_cmd", metavar="ACTION", required=True)
    db.add_parser("upgrade", help="apply every migration").set_defaults(func=cmd_db_upgrade)

    imp = sub.add_parser("import", help="import UMKM, products or events from CSV or JSON")
    imp.add_argument("kind", choices=("umkm", "products", "events"), help="what the file holds")
    imp.add_argument("file", help=".csv (comma or semicolon) or .json")
    imp.add_argument("--skip-invalid", action="store_true", help="write the good rows even if some are bad")
    imp.set_defaults(func=cmd_import)

    rec = sub.add_parser("records", help="show stored records").add_subparsers(dest="rec_cmd", metavar="ACTION",
                                                                                required=True)
    rl = rec.add_parser("list", help="list umkm, products or events")
    rl.add_argument("kind", choices=("umkm", "products", "events"))
    rl.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    rl.set_defaults(func=cmd_records_list)

    ch = sub.add_parser("channels", help="configured channels").add_subparsers(dest="ch_cmd", metavar="ACTION",
                                                                               required=True)
    cl = ch.add_parser("list", help="list channels, their platform, keys and state")
    cl.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    cl.set_defaults(func=cmd_channels_list)
    cc = ch.add_parser("check", help="call each platform's identity endpoint: OK / bad token / unreachable")
    cc.add_argument("name", nargs="?", help="one channel (default: all)")
    cc.set_defaults(func=cmd_channels_check)
    ca = ch.add_parser("add", help="store a channel (secrets encrypted) in the database")
    ca.add_argument("name", help="channel name (letters, digits, _)")
    ca.add_argument("--platform", required=True, help="platform name, e.g. mastodon")
    ca.add_argument("--set", action="append", metavar="KEY=VALUE", help="a platform setting, e.g. ACCESS_TOKEN=…")
    ca.set_defaults(func=cmd_channels_add)

    def source_args(sp: argparse.ArgumentParser) -> None:
        g = sp.add_mutually_exclusive_group(required=True)
        g.add_argument("--product", metavar="ID", help="a product's id")
        g.add_argument("--event", metavar="ID", help="an event's id")
        g.add_argument("--text", metavar="TEXT", help="free text")
        sp.add_argument("--link", metavar="URL", help="a link for a free-text post")
        sp.add_argument("--kind", help="post kind (default: product_highlight, event_announcement or free_text)")
        sp.add_argument("--template", metavar="T", help="template name instead of <kind>/<platform>.j2")
        sp.add_argument("--shorten", action="store_true",
                        help="cut free text at a word boundary to fit each channel (without it, text that "
                             "does not fit is refused; a record's description is always cut to fit)")

    co = sub.add_parser("compose", help="preview a post's text per channel with its length and limit")
    source_args(co)
    co.add_argument("--channel", metavar="NAME[,NAME…]", help="channels (default: all configured)")
    co.add_argument("--image", metavar="PATH", help="preview as an image caption (limits may differ)")
    co.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    co.set_defaults(func=cmd_compose)

    post = sub.add_parser("post", help="queue and manage posts").add_subparsers(dest="post_cmd", metavar="ACTION",
                                                                                required=True)
    pn = post.add_parser("new", help="create a post per channel")
    source_args(pn)
    pn.add_argument("--channel", required=True, metavar="NAME[,NAME…]", help="one or more channels")
    when = pn.add_mutually_exclusive_group()
    when.add_argument("--at", metavar="WHEN", help='"YYYY-MM-DD HH:MM[:SS]" local time, or ISO 8601 with offset')
    when.add_argument("--queue", action="store_true", help="the next free slot of each channel")
    when.add_argument("--now", action="store_true", help="publish as soon as possible")
    pn.add_argument("--draft", action="store_true", help="store as a draft (not published)")
    pn.add_argument("--image", metavar="PATH", help="attach an image (JPEG, PNG, GIF, WebP)")
    pn.add_argument("--alt", metavar="TEXT", help="alt text for the image")
    pn.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    pn.set_defaults(func=cmd_post_new)

    pl = post.add_parser("list", help="list posts, newest (latest scheduled) first")
    pl.add_argument("--status", type=_one_or_more_of(POST_STATUSES), metavar="S[,S…]",
                    help=f"comma-separated statuses: {', '.join(POST_STATUSES)}")
    pl.add_argument("--channel", help="one channel")
    pl.add_argument("--limit", type=int, metavar="N", help="the N newest posts")
    pl.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    pl.set_defaults(func=cmd_post_list)
    ps = post.add_parser("show", help="one post with its history")
    ps.add_argument("id", type=int)
    ps.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    ps.set_defaults(func=cmd_post_show)
    for action, text in (("approve", "approve pending posts"), ("cancel", "cancel posts"),
                         ("retry", "queue failed, expired or needs_review posts again, now"),
                         ("submit", "move drafts to scheduled (or pending_approval)"),
                         ("published", "confirm needs_review posts are on the platform")):
        sp = post.add_parser(action, help=text)
        sp.add_argument("ids", type=int, nargs="+", metavar="ID")
        if action == "cancel":
            sp.add_argument("--reason", help="why (recorded in history)")
        if action == "published":
            sp.add_argument("--url", help="the post's public URL")
        sp.set_defaults(func=_post_action(action))
    pr = post.add_parser("reschedule", help="move a post to another time")
    pr.add_argument("id", type=int)
    pr.add_argument("--at", metavar="WHEN", help="new time")
    pr.add_argument("--now", action="store_true", help="as soon as possible")
    pr.set_defaults(func=cmd_post_reschedule)

    hi = sub.add_parser("history", help="every publish attempt (and with --all every status change)")
    hi.add_argument("--channel", help="one channel")
    hi.add_argument("--status", type=_one_or_more_of(sorted(set(POST_STATUSES) | set(OUTCOMES))), metavar="S[,S…]",
                    help="outcome or resulting status, comma-separated (e.g. published,failed)")
    hi.add_argument("--since", metavar="D", help="from this date (YYYY-MM-DD, local)")
    hi.add_argument("--until", metavar="D", help="up to and including this date")
    hi.add_argument("--post", type=int, metavar="ID", help="one post")
    hi.add_argument("--all", action="store_true", help="include status changes, not only attempts")
    hi.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    hi.set_defaults(func=cmd_history)

    hl = sub.add_parser("highlight", help="the daily UMKM highlight")
    hl_sub = hl.add_subparsers(dest="action", metavar="ACTION", required=True)
    hp = hl_sub.add_parser("preview", help="what would be picked for a day, and why (creates nothing)")
    hp.add_argument("--date", metavar="YYYY-MM-DD", help="the day (default: today)")
    hp.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    hp.set_defaults(func=cmd_highlight)
    hh = hl_sub.add_parser("history", help="past highlights per product and UMKM")
    hh.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    hh.set_defaults(func=cmd_highlight)

    jb = sub.add_parser("jobs", help="recurring jobs").add_subparsers(dest="jobs_cmd", metavar="ACTION", required=True)
    jl = jb.add_parser("list", help="every recurring job and its next run (local time)")
    jl.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    jl.set_defaults(func=cmd_jobs_list)

    sv = sub.add_parser("serve", help="run the scheduler in the foreground (Ctrl-C stops it)")
    sv.add_argument("--web", action="store_true",
                    help="also serve the read-only dashboard and JSON API (posts, history, channels, status)")
    sv.add_argument("--host", default="127.0.0.1",
                    help="dashboard address (default 127.0.0.1; any other needs PROMO_WEB_PASSWORD)")
    sv.add_argument("--port", type=int, default=8080, help="dashboard port (default 8080)")
    sv.add_argument("--health-port", type=int, default=None, help="health endpoint port (default PROMO_HEALTH_PORT; 0 = off)")
    sv.add_argument("--workers", type=int, default=None,
                    help="dispatch processes (default PROMO_WORKERS): more use more cores in a burst")
    sv.add_argument("--dispatch-only", action="store_true",
                    help="run only the dispatcher, no jobs or health endpoint (what --workers starts)")
    sv.set_defaults(func=cmd_serve)

    st = sub.add_parser("status", help="is the service ticking, and how many posts are in each state")
    st.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    st.set_defaults(func=cmd_status)

    us = sub.add_parser("users", help="people and roles").add_subparsers(dest="users_cmd", metavar="ACTION",
                                                                         required=True)
    ua = us.add_parser("add", help="add or change a user")
    ua.add_argument("name")
    ua.add_argument("--role", required=True, choices=("viewer", "editor", "approver", "admin"), help="what they may do")
    ua.set_defaults(func=cmd_users_add)
    ul = us.add_parser("list", help="every user and their role")
    ul.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    ul.set_defaults(func=cmd_users_list)

    au = sub.add_parser("audit", help="who changed what: imports, approvals, channels, users (oldest first)")
    au.add_argument("--since", metavar="D", help="from this date (YYYY-MM-DD, local)")
    au.add_argument("--until", metavar="D", help="up to and including this date")
    au.add_argument("--actor", metavar="U", help="one person (as recorded: --as, PROMO_USER or login name)")
    au.add_argument("--entity", choices=("channel", "event", "highlight", "post", "product", "umkm", "user"),
                    help="one kind of thing changed")
    au.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    au.set_defaults(func=cmd_audit)

    se = sub.add_parser("secrets", help="secrets stored in the database").add_subparsers(
        dest="secrets_cmd", metavar="ACTION", required=True)
    se.add_parser("rotate", help="re-encrypt every stored secret with PROMO_SECRET_KEY (after a key change, "
                  "with the previous key in PROMO_SECRET_KEY_OLD)").set_defaults(func=cmd_secrets_rotate)

    sub.add_parser("demo", help="load demo data from the seed article and queue a few posts (once)").set_defaults(
        func=cmd_demo)

    tp = sub.add_parser("templates", help="the post templates").add_subparsers(dest="templates_cmd", metavar="ACTION",
                                                                             required=True)
    te = tp.add_parser("export", help="copy the shipped templates into DIR to edit (then set PROMO_TEMPLATES_DIR=DIR)")
    te.add_argument("dir", metavar="DIR", help="folder to write them to (created if missing)")
    te.add_argument("--force", action="store_true", help="overwrite template files that already exist in DIR")
    te.set_defaults(func=cmd_templates_export)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        app = App(args)
        code = int(args.func(app))
        sys.stdout.flush()  # here, so a closed pipe is caught below rather than at exit
        return code
    except BrokenPipeError:
        # `promo … | head` closed the pipe: stop quietly (Python's documented recipe: point
        # stdout at devnull so the interpreter's final flush does not fail again).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except UsageError as exc:
        print(f"promo: usage error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except errors.ConfigError as exc:
        print(f"promo: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except errors.PromoError as exc:
        print(f"promo: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from sqlalchemy.exc import OperationalError

        if not isinstance(exc, OperationalError):
            raise
        print(f"promo: error: {_database_problem(exc)}", file=sys.stderr)
        return EXIT_FAILED


def _database_problem(exc: OperationalError) -> str:
    """The database's own words, without SQLAlchemy's SQL echo (or any URL with a password in it)."""
    reason = str(exc.orig).strip() or type(exc.orig).__name__
    if "database is locked" in reason:
        return ("the database is busy: another promo process has held its write lock for longer than "
                "PROMO_DB_BUSY_SECONDS, so this command's change was rolled back. If a service is hung, `promo status` shows it; "
                "try again once it has finished or been restarted")
    return f"database: {reason} (this command's change was rolled back)"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
