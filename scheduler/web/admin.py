"""The admin pages of the web app and their JSON API: :mod:`.channels` (Channels: everyone reads,
admins act; ``/api/v1/channels``), :mod:`.users` (Users and API tokens; ``/api/v1/users``) and
:mod:`.audit` (Audit). Every change goes through :mod:`scheduler.actions` (``WebApp.act``: the
role checked there, one transaction, an audit row); what they share is in :mod:`.pagekit`."""

from __future__ import annotations

from fastapi import FastAPI

from scheduler.web.audit import register as audit_routes
from scheduler.web.channels import register as channel_routes
from scheduler.web.pagekit import Board, number
from scheduler.web.users import register as user_routes


def register(api: FastAPI, board: Board) -> None:
    """Add the Channels, Users and Audit pages and their API to ``api``."""
    board.jinja.filters.setdefault("number", number)
    for routes in (channel_routes, user_routes, audit_routes):
        routes(api, board)
