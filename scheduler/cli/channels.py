"""`promo channels …` and `promo secrets rotate`: where posts go, and their stored secrets."""

from __future__ import annotations

from typing import Any

from scheduler.cli.output import EXIT_FAILED, EXIT_OK, App, UsageError, emit


def cmd_channels_list(app: App) -> int:
    from scheduler.actions.channels import list_channels

    rows = list_channels(app.ctx, app.who, schema=app.db.is_current())
    emit(rows, app.args.format, list(rows[0]) if rows else ["name"],
         ("name", "platform", "source", "status", "required_keys", "slots", "reason"), {"reason": 50})
    return EXIT_OK


def cmd_channels_check(app: App) -> int:
    from scheduler.actions.channels import check_channels

    app.require_schema()
    failed = 0
    for r in check_channels(app.ctx, app.who, app.args.name):
        print(f"{r.name}: {r.verdict} — {r.detail}")
        if not r.ok:
            failed += 1
        elif r.reactivated:
            print(f"{r.name}: re-activated; its waiting posts will go out")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_channels_add(app: App) -> int:
    from scheduler.actions.channels import add_channel

    app.require_schema()
    values: dict[str, str] = {}
    for item in app.args.set or []:
        if "=" not in item:
            raise UsageError(f"--set {item!r}: write KEY=VALUE")
        k, v = item.split("=", 1)
        values[k.strip().upper()] = v.strip()
    row = add_channel(app.ctx, app.who, app.args.name, app.args.platform, values)
    print(f"channel {row.name} ({row.platform}) stored; secrets encrypted. Check it: promo channels check {row.name}")
    return EXIT_OK


def cmd_channels_pause(app: App) -> int:
    from scheduler.actions.channels import pause

    app.require_schema()
    r = pause(app.ctx, app.who, app.args.name, app.args.reason)
    waiting, verb = _waiting(r.waiting), "waits" if r.waiting == 1 else "wait"
    print(f"channel {r.name}: " + (f"paused; its {waiting} {verb} until `promo channels resume {r.name}`"
                                   if r.changed else f"already paused ({waiting})"))
    return EXIT_OK


def cmd_channels_resume(app: App) -> int:
    from scheduler.actions.channels import resume

    app.require_schema()
    r = resume(app.ctx, app.who, app.args.name)
    waiting, verb = _waiting(r.waiting), "goes" if r.waiting == 1 else "go"
    print(f"channel {r.name}: " + (f"active again; its {waiting} {verb} out (any past their lateness limit expire)"
                                   if r.changed else f"already active ({waiting})"))
    return EXIT_OK


def _waiting(n: int) -> str:
    return f"{n} waiting post{'' if n == 1 else 's'}"


def cmd_secrets_rotate(app: App) -> int:
    from scheduler.actions.channels import rotate_secrets

    app.require_schema()
    count = rotate_secrets(app.ctx, app.who)
    if count == 0:
        print("no secrets are stored in the database: nothing to re-encrypt")
        return EXIT_OK
    print(f"re-encrypted the stored secrets of {count} channel{'' if count == 1 else 's'} with PROMO_SECRET_KEY"
          + ("; PROMO_SECRET_KEY_OLD is no longer needed" if app.settings.secret_key_old else ""))
    return EXIT_OK


def add_channels(sub: Any) -> None:
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
    cp = ch.add_parser("pause", help="stop publishing to a channel; its posts wait until it is resumed")
    cp.add_argument("name", help="the channel")
    cp.add_argument("--reason", help="why (shown in `channels list` and the audit)")
    cp.set_defaults(func=cmd_channels_pause)
    cr = ch.add_parser("resume", help="publish to a paused channel again")
    cr.add_argument("name", help="the channel")
    cr.set_defaults(func=cmd_channels_resume)


def add_secrets(sub: Any) -> None:
    se = sub.add_parser("secrets", help="secrets stored in the database").add_subparsers(
        dest="secrets_cmd", metavar="ACTION", required=True)
    se.add_parser("rotate", help="re-encrypt every stored secret with PROMO_SECRET_KEY (after a key change, "
                  "with the previous key in PROMO_SECRET_KEY_OLD)").set_defaults(func=cmd_secrets_rotate)
