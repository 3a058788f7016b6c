"""`promo compose` and `promo post …`: preview, queue and manage posts."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scheduler import errors
from scheduler.cli.output import (
    EXIT_FAILED,
    EXIT_OK,
    POST_FIELDS,
    POST_STATUSES,
    App,
    UsageError,
    emit,
    known_channel,
    now,
    one_or_more_of,
    with_reason,
)


def cmd_compose(app: App) -> int:
    from scheduler.fitting import FitCache
    from scheduler.planner import compose_for, find_source, image_preview, resolve_channels, rules_for
    from scheduler.storage import channels as store

    app.require_schema()
    composer = app.composer()
    failed = 0
    image = _compose_image(app.args.image)
    previews = FitCache()  # the image decoded once for every channel's preview
    rows: list[dict[str, Any]] = []  # a composed text with its counts, or an error, per channel
    with app.db.read_session() as session:  # a preview stores nothing
        a = app.args
        source = find_source(session, product=a.product, event=a.event, text=a.text, link=a.link, kind=a.kind)
        names = app.args.channel.split(",") if app.args.channel else [c.name for c in app.settings.channels]
        for row, cfg in resolve_channels(session, app.settings, names):
            try:
                composed = compose_for(composer, cfg, source, now=now(), tz=app.settings.timezone,
                                       with_image=bool(app.args.image), template=app.args.template,
                                       state=store.plain_state(row), shorten=app.args.shorten)
            except errors.ComposeError as exc:
                failed += 1
                rows.append({"channel": cfg.name, "platform": cfg.platform, "error": str(exc)})
                continue
            rows.append({"channel": cfg.name, "platform": cfg.platform, "template": composed.template,
                         "text": composed.text, "shortened": composed.shortened,
                         "counts": [{"count": n, "limit": r.limit, "method": r.method} for r, n in composed.counts]})
            if image is not None:
                rows[-1]["image"] = image_preview(cfg, rules_for(cfg, store.plain_state(row)), image, previews)
                failed += "error" in rows[-1]["image"]
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
            print(f"[{counts}; template {r['template']}{'; shortened to fit' if r['shortened'] else ''}]")
            if "image" in r:
                print(_image_line(r["image"]))
            print()
    return EXIT_FAILED if failed else EXIT_OK


def _compose_image(path: str | None) -> bytes | None:
    """``compose --image``: the file's bytes, checked to be a whole image (named when not)."""
    from scheduler.media import inspect_image

    if not path:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise errors.ValidationError(f"--image {path}: {exc.strerror or exc}") from None
    inspect_image(data, f"--image {path}")
    return data


def _image_line(image: dict[str, Any]) -> str:
    """One line saying what the platform receives of the image."""
    if "error" in image:
        return f"[image: ERROR: {image['error']}]"
    fmt = image["format"].split("/")[-1].upper()
    what = f"{fmt} {image['width']}×{image['height']}, {image['bytes']:,} bytes"
    return f"[image: {what}; {'as attached' if image['as_attached'] else '; '.join(image['changes'])}]"


def cmd_post_new(app: App) -> int:
    from scheduler.actions import posts as actions
    from scheduler.planner import parse_when

    a = app.args
    if not (a.at or a.queue or a.now or a.draft):
        raise UsageError("say when: --at WHEN, --queue or --now (or --draft to decide later)")
    if a.at:
        try:
            parse_when(a.at, app.settings.timezone)
        except errors.ValidationError as exc:
            raise UsageError(str(exc)) from None
    app.require_schema()
    rows = actions.queue_posts(app.ctx, app.who, channels=a.channel.split(","), product=a.product, event=a.event,
                               text=a.text, link=a.link, kind=a.kind, template=a.template, at=a.at, queue=a.queue,
                               now=a.now, draft=a.draft, image=a.image, alt=a.alt, shorten=a.shorten).rows
    if a.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for r in rows:
            print(f"{r['id']}  {r['channel']}  {r['status']}  {r['scheduled_at'] or '-'}")
    return EXIT_OK


def cmd_post_list(app: App) -> int:
    from scheduler.storage import post_read  # Core only: `promo post list` starts without the ORM

    app.require_schema()
    status = app.args.status.split(",") if app.args.status else None
    with app.db.read_connection() as conn:
        channel = known_channel(app, conn, app.args.channel)
        rows = post_read.iter_post_rows(conn, app.settings.timezone, status=status, channel=channel,
                                        limit=app.args.limit, newest_first=True)
        emit(rows, app.args.format, POST_FIELDS, ("id", "channel", "kind", "status", "scheduled_at", "attempts",
                                                  "text"), {"text": 50, "scheduled_at": 25})
    return EXIT_OK


def cmd_post_show(app: App) -> int:
    from scheduler import history_read  # Core only, like `promo post list`
    from scheduler.rows import HISTORY_FIELDS
    from scheduler.storage import post_read

    app.require_schema()
    tz = app.settings.timezone
    with app.db.read_connection() as conn:
        row = post_read.one_post_row(conn, tz, app.args.id)
        hist = history_read.history_rows(conn, history_read.HistoryFilter(all=True, post_id=row["id"]), tz)
    if app.args.format == "json":
        print(json.dumps({**row, "history": hist}, ensure_ascii=False, indent=2))
        return EXIT_OK
    for k in ("id", "channel", "platform", "kind", "status", "scheduled_at", "next_attempt_at", "published_at",
              "remote_id", "remote_url", "attempts", "error", "image", "image_alt", "template", "created_by"):
        print(f"{k:>15}: {row[k] if row[k] is not None else '-'}")
    print("\n" + row["text"] + "\n\nhistory:")
    emit(with_reason(hist), "table", HISTORY_FIELDS,
         ("started_at", "action", "from_status", "to_status", "outcome", "actor", "reason"), {"reason": 70})
    return EXIT_OK


def _post_action(action: str) -> Callable[[App], int]:
    def run(app: App) -> int:
        from scheduler.actions import posts as actions

        app.require_schema()
        ids, who, ctx = app.args.ids, app.who, app.ctx
        if action == "approve":
            done = actions.approve(ctx, who, ids)
        elif action == "cancel":
            done = actions.cancel(ctx, who, ids, reason=app.args.reason or "cancelled by staff")
        elif action == "reject":
            done = actions.reject(ctx, who, ids, app.args.reason)
        elif action == "retry":
            done = actions.retry(ctx, who, ids)
        elif action == "published":
            done = actions.mark_published(ctx, who, ids, app.args.url)
        else:
            done = actions.submit(ctx, who, ids)
        print("\n".join(f"post {p.id}: {p.status}" for p in done))
        return EXIT_OK

    return run


def cmd_post_reschedule(app: App) -> int:
    from scheduler.actions import posts as actions

    app.require_schema()
    if not app.args.at and not app.args.now:
        raise UsageError("give --at WHEN or --now")
    p = actions.reschedule(app.ctx, app.who, app.args.id, app.args.at, asap=bool(app.args.now))
    print(f"post {p.id}: {p.status} at {app.local(p.scheduled_at)}")
    return EXIT_OK


def cmd_post_edit(app: App) -> int:
    from scheduler.actions import posts as actions

    app.require_schema()
    p = actions.edit_text(app.ctx, app.who, app.args.id, app.args.text)
    counts = ", ".join(f"{n}/{limit} ({method})" for n, limit, method in p.counts)
    print(f"post {p.id}: {p.status}; text edited [{counts}]")
    return EXIT_OK


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


def add_compose(sub: Any) -> None:
    co = sub.add_parser("compose", help="preview a post's text per channel with its length and limit")
    source_args(co)
    co.add_argument("--channel", metavar="NAME[,NAME…]", help="channels (default: all configured)")
    co.add_argument("--image", metavar="PATH", help="preview as an image caption (limits may differ) and show "
                    "what each platform receives of the image: format, size, dimensions, padded/cropped/scaled")
    co.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    co.set_defaults(func=cmd_compose)


def add_post(sub: Any) -> None:
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
    pn.add_argument("--image", metavar="PATH", action="append",
                    help="attach an image (JPEG, PNG, GIF, WebP); repeat for several: the first is the cover, the "
                    "rest go as an album/carousel where the platform has them (X, Bluesky, Mastodon: up to 4)")
    pn.add_argument("--alt", metavar="TEXT", action="append",
                    help="alt text for the image; repeat in the order of --image")
    pn.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    pn.set_defaults(func=cmd_post_new)

    pl = post.add_parser("list", help="list posts, newest (latest scheduled) first")
    pl.add_argument("--status", type=one_or_more_of(POST_STATUSES), metavar="S[,S…]",
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
                         ("published", "confirm needs_review posts are on the platform"),
                         ("reject", "send pending posts back to draft, with a reason in their history")):
        sp = post.add_parser(action, help=text)
        sp.add_argument("ids", type=int, nargs="+", metavar="ID")
        if action == "cancel":
            sp.add_argument("--reason", help="why (recorded in history)")
        if action == "reject":
            sp.add_argument("--reason", required=True, help="what to change (recorded in history for the author)")
        if action == "published":
            sp.add_argument("--url", help="the post's public URL")
        sp.set_defaults(func=_post_action(action))
    pr = post.add_parser("reschedule", help="move a post to another time")
    pr.add_argument("id", type=int)
    pr.add_argument("--at", metavar="WHEN", help="new time")
    pr.add_argument("--now", action="store_true", help="as soon as possible")
    pr.set_defaults(func=cmd_post_reschedule)
    pe = post.add_parser("edit", help="replace the text of a draft, pending or scheduled post (it must fit; "
                                      "never shortened)")
    pe.add_argument("id", type=int)
    pe.add_argument("--text", required=True, metavar="TEXT", help="the new text, exactly as it is to be published")
    pe.set_defaults(func=cmd_post_edit)
