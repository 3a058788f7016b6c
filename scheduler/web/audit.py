"""The Audit page (admins): who changed what, newest first, AUDIT_PAGE rows a page, the next
page by keyset (``before`` the last row's id, never OFFSET); filters as `promo audit` takes
them (since/until a day in the organisation's timezone, actor, entity)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Query
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from scheduler.errors import ValidationError
from scheduler.views import AUDIT_ENTITIES, audit_rows, detail_text
from scheduler.web.pagekit import Board, add, asking
from scheduler.web.params import MAX_ID, MAX_TEXT, day, text

#: Audit rows per page.
AUDIT_PAGE = 100
Filter = Annotated[str | None, Query(max_length=MAX_TEXT)]
Before = Annotated[int | None, Query(ge=1, le=MAX_ID, description="rows older than this id (the next page)")]


def _given(value: str | None) -> bool:
    return bool(value and value.strip())


async def audit(request: Request, since: Filter = None, until: Filter = None, actor: Filter = None,
                entity: Filter = None, before: Before = None) -> Response:
    board, _who = asking(request)
    tz = board.tz
    start = day(end=False)("since", since or "", tz) if _given(since) else None
    end = day(end=True)("until", until or "", tz) if _given(until) else None
    who_acted = text("actor", actor or "", tz) if _given(actor) else None
    kind = (entity or "").strip().lower() or None
    if kind is not None and kind not in AUDIT_ENTITIES:
        raise ValidationError(f"entity {kind!r}: one of {', '.join(AUDIT_ENTITIES)}")

    def load(session: Session) -> list[dict[str, Any]]:
        return audit_rows(session, tz, since=start, until=end, actor=who_acted, entity=kind, before=before,
                          limit=AUDIT_PAGE + 1, newest_first=True)

    rows = await board.read(load)
    more = len(rows) > AUDIT_PAGE
    rows = [{**r, "detail": detail_text(r["detail"])} for r in rows[:AUDIT_PAGE]]
    kept = {k: v for k, v in (("since", since), ("until", until), ("actor", actor), ("entity", kind)) if v}
    older = "/audit?" + urlencode({**kept, "before": rows[-1]["id"]}) if more and rows else None
    newest = "/audit?" + urlencode(kept) if before else None
    return board.render(request, "admin_audit.html", rows=rows, older=older, newest=newest, query=kept,
                        entities=list(AUDIT_ENTITIES))


def register(api: FastAPI, board: Board) -> None:
    add(api, board, "GET", "/audit", audit, "admin")
