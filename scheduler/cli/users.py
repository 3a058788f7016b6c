"""`promo users …`: people, their roles, web app passwords and API tokens (roles are enforced in the
web app and API, not here). A password is asked twice without echo, or read from stdin
(``--password-stdin``); it is never printed, and only its argon2 hash is stored. An API token is
printed once; only its hash is kept."""

from __future__ import annotations

import sys
from typing import Any

from scheduler.cli.output import EXIT_OK, App, UsageError, emit

ROLE_CHOICES = ("viewer", "editor", "approver", "admin")


def read_password(app: App, name: str) -> str:
    """The new password of ``name``: stdin's first line with --password-stdin, else asked twice on a terminal."""
    if app.args.password_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: stdin gave no password (one line is read)")
        return password
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for a password: give --password-stdin (the password on stdin)"
                         + (", or --no-password for a user who only appears in --as" if
                            getattr(app.args, "no_password", None) is not None else ""))
    import getpass

    first = getpass.getpass(f"new web app password for {name}: ")
    if getpass.getpass(f"the same password again for {name}: ") != first:
        raise UsageError("the two passwords differ; nothing was changed")
    return first


def _user_rows(app: App) -> list[dict[str, Any]]:
    from scheduler.actions.users import list_users

    return [{"name": u.name, "role": u.role, "password": u.password, "disabled": u.disabled,
             "language": u.language, "created_at": app.local(u.created_at)} for u in list_users(app.ctx, app.who)]


def cmd_users_add(app: App) -> int:
    from scheduler.actions.users import add_user, exists

    app.require_schema()
    name = app.args.name
    password = None
    if app.args.password_stdin or (not app.args.no_password and not exists(app.ctx, name)):
        # A new user gets a password unless --no-password; an existing one keeps theirs (promo users passwd).
        password = read_password(app, name)
    user = add_user(app.ctx, app.who, name, app.args.role, password=password)
    print(f"user {user.name}: {user.role}" + ("" if user.password else " (no web app password: promo users passwd "
                                                                       f"{user.name} sets one)"))
    return EXIT_OK


def cmd_users_passwd(app: App) -> int:
    from scheduler.actions.users import set_password

    app.require_schema()
    user = set_password(app.ctx, app.who, app.args.name, read_password(app, app.args.name))
    print(f"user {user.name}: new web app password set; their web sessions have ended")
    return EXIT_OK


def cmd_users_disable(app: App) -> int:
    from scheduler.actions.users import set_disabled

    app.require_schema()
    disabled = app.args.users_cmd == "disable"
    user = set_disabled(app.ctx, app.who, app.args.name, disabled)
    print(f"user {user.name}: " + ("disabled; their web sessions have ended and their API tokens stop working"
                                   if disabled else "enabled again"))
    return EXIT_OK


def cmd_users_list(app: App) -> int:
    app.require_schema()
    emit(_user_rows(app), app.args.format, ("name", "role", "password", "disabled", "language", "created_at"))
    return EXIT_OK


def cmd_users_token(app: App) -> int:
    from scheduler.actions.users import create_token, revoke_token

    app.require_schema()
    if app.args.revoke is not None:
        if app.args.label is not None:
            raise UsageError("--label is for a new token, not with --revoke")
        row = revoke_token(app.ctx, app.who, app.args.revoke, app.args.name)
        print(f"API token {row.id} ({row.label}) of {row.user}: revoked")
        return EXIT_OK
    made = create_token(app.ctx, app.who, app.args.name, app.args.label or "api")
    print(f"API token {made.id} ({made.label}) of {made.user}; shown this once, keep it safe "
          "(send it as Authorization: Bearer …):", file=sys.stderr)
    print(made.token)
    return EXIT_OK


def cmd_users_tokens(app: App) -> int:
    from scheduler.actions.users import list_tokens

    app.require_schema()
    rows = [{"id": t.id, "user": t.user, "label": t.label, "created_at": app.local(t.created_at),
             "last_used_at": app.local(t.last_used_at), "revoked": t.revoked}
            for t in list_tokens(app.ctx, app.who, app.args.name)]
    emit(rows, app.args.format, ("id", "user", "label", "created_at", "last_used_at", "revoked"))
    return EXIT_OK


def _password_options(parser: Any) -> None:
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the web app password from the first line of stdin (else asked twice, unechoed)")


def add_users(sub: Any) -> None:
    us = sub.add_parser("users", help="people, roles, web app passwords and API tokens").add_subparsers(
        dest="users_cmd", metavar="ACTION", required=True)
    ua = us.add_parser("add", help="add a user (asked for a web app password) or change a user's role")
    ua.add_argument("name", help="their login name (also what --as records)")
    ua.add_argument("--role", required=True, choices=ROLE_CHOICES, help="what they may do in the web app and API")
    how = ua.add_mutually_exclusive_group()
    _password_options(how)
    how.add_argument("--no-password", action="store_true",
                     help="no web app password (a name for --as; set one later with promo users passwd)")
    ua.set_defaults(func=cmd_users_add)

    up = us.add_parser("passwd", help="set a user's web app password (their web sessions end)")
    up.add_argument("name", help="the user")
    _password_options(up)
    up.set_defaults(func=cmd_users_passwd)

    for action, what in (("disable", "disable a user: web sessions end at once, API tokens stop working"),
                         ("enable", "enable a disabled user again")):
        ud = us.add_parser(action, help=what)
        ud.add_argument("name", help="the user")
        ud.set_defaults(func=cmd_users_disable)

    ul = us.add_parser("list", help="every user: role, has a password, disabled (never a hash)")
    ul.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    ul.set_defaults(func=cmd_users_list)

    ut = us.add_parser("token", help="make an API token for a user (printed once), or revoke one")
    ut.add_argument("name", help="the user the token acts as")
    ut.add_argument("--label", help="what the token is for (default: api)")
    ut.add_argument("--revoke", type=int, metavar="ID", help="revoke the user's token ID (promo users tokens)")
    ut.set_defaults(func=cmd_users_token)

    uts = us.add_parser("tokens", help="API tokens (of one user, or everyone's): id, label, last use; never the token")
    uts.add_argument("name", nargs="?", help="one user")
    uts.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    uts.set_defaults(func=cmd_users_tokens)
