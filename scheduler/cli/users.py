"""`promo users …`: people and their roles (enforced in the web app and API, not here)."""

from __future__ import annotations

from typing import Any

from scheduler.cli.output import EXIT_OK, App, emit


def cmd_users_add(app: App) -> int:
    from scheduler.actions.users import add_user

    app.require_schema()
    user = add_user(app.ctx, app.who, app.args.name, app.args.role)
    print(f"user {user.name}: {user.role}")
    return EXIT_OK


def cmd_users_list(app: App) -> int:
    from scheduler.actions.users import list_users

    app.require_schema()
    rows = [{"name": u.name, "role": u.role, "created_at": app.local(u.created_at)}
            for u in list_users(app.ctx, app.who)]
    emit(rows, app.args.format, ("name", "role", "created_at"))
    return EXIT_OK


def add_users(sub: Any) -> None:
    us = sub.add_parser("users", help="people and roles").add_subparsers(dest="users_cmd", metavar="ACTION",
                                                                         required=True)
    ua = us.add_parser("add", help="add or change a user")
    ua.add_argument("name")
    ua.add_argument("--role", required=True, choices=("viewer", "editor", "approver", "admin"), help="what they may do")
    ua.set_defaults(func=cmd_users_add)
    ul = us.add_parser("list", help="every user and their role")
    ul.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    ul.set_defaults(func=cmd_users_list)
