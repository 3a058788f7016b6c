"""Records pages and API: list and search (keyset pages by id), edit one record (the importer's
own row checks), upload a CSV or JSON file (nothing written while a row is bad, or "import the
good rows"). Every write goes through :mod:`scheduler.actions.records` (role checked there,
audit rows written there).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, File, Form, Path, Query, UploadFile
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from jobs.event_promotion import record_change_hook, records_changed_hook
from scheduler.actions import records as record_actions
from scheduler.errors import ImportValidationError, RowProblem, ValidationError
from scheduler.import_rows import KINDS
from scheduler.importer import COLUMNS, REQUIRED, ImportResult
from scheduler.storage import accounts
from scheduler.web.apimodels import Imported, Record, RecordSaved, RecordsPage, errors
from scheduler.web.core import Who, require
from scheduler.web.webapp import WebApp

Kind = Literal["umkm", "products", "events"]
#: Records on one list page (and one API page).
RECORDS_PAGE = 50
#: Uploads kept for "import the good rows", and for how long.
PENDING_MAX = 8
PENDING_SECONDS = 15 * 60
#: Columns the list shows per kind (the rest are on the record's page).
LIST_COLUMNS = {"umkm": ("id", "name", "owner", "category", "city", "curated"),
                "products": ("id", "umkm_id", "name", "price", "curation", "active", "tags"),
                "events": ("id", "name", "venue", "starts_at", "status", "tags")}
def _(message: str) -> str:
    """Marks a string for extraction (pybabel); translated where shown."""
    return message


#: What each kind is called on the pages.
KIND_WORDS = {"umkm": _("UMKM"), "products": _("Products"), "events": _("Events")}
#: Columns written in a textarea on the edit form.
LONG = ("description",)

RecordId = Annotated[str, Path(min_length=1, max_length=100, description="the record's id (as in its import file)")]
Search = Annotated[str, Query(max_length=200, description="part of the id, name or a tag (any case)")]
After = Annotated[str | None, Query(max_length=100, description="continue after this id (the `next` of a page)")]
#: How the JSON routes are declared (they answer with ``WebApp.as_json``; the model describes it).
JSON: dict[str, Any] = {"response_class": JSONResponse, "responses": errors()}
JSON_404: dict[str, Any] = {"response_class": JSONResponse, "responses": errors(404)}


class RecordChange(BaseModel):
    """Fields of an import file to change (absent fields keep their value); checked like an import row."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    owner: str | None = None
    category: str | None = None
    city: str | None = None
    district: str | None = None
    phone: str | None = None
    instagram: str | None = None
    website: str | None = None
    curated: bool | str | None = None
    umkm_id: str | None = None
    description: str | None = None
    price: int | str | None = None
    image: str | None = None
    url: str | None = None
    tags: list[str] | str | None = None
    curation: str | None = None
    active: bool | str | None = None
    venue: str | None = None
    starts_at: str | None = None
    ends_at: str | None = None
    status: str | None = None


@dataclass
class Pending:
    """An upload with bad rows, kept a while for "import the good rows" (by the one who sent it)."""

    who: str
    kind: str
    filename: str
    content: bytes
    expires: float


def problems_json(problems: list[RowProblem]) -> list[dict[str, Any]]:
    return [{"line": p.line, "column": p.column, "reason": p.reason} for p in problems]


def result_json(result: ImportResult) -> dict[str, Any]:
    return {"created": result.created, "updated": result.updated, "unchanged": result.unchanged,
            "skipped": problems_json(result.skipped)}


def register(api: FastAPI, board: WebApp) -> None:  # noqa: C901, PLR0915 - one small closure per route
    """/records pages and /api/v1/records."""
    pending: dict[str, Pending] = {}

    def keep(who: Who, kind: str, filename: str, content: bytes) -> str:
        now = time.monotonic()
        for token in [t for t, p in pending.items() if p.expires < now]:
            del pending[token]
        while len(pending) >= PENDING_MAX:
            del pending[next(iter(pending))]
        token = secrets.token_urlsafe(16)
        pending[token] = Pending(who.name, kind, filename, content, now + PENDING_SECONDS)
        return token

    def gettext(who: Who, message: str) -> str:
        from scheduler.web.i18n import translations

        return translations(who.language).gettext(message)

    def may_edit(who: Who) -> bool:
        return accounts.role_rank(who.role) >= accounts.role_rank("editor")

    async def list_page(request: Request, who: Who, kind: str, q: str, after: str | None, status: int = 200,
                        **extra: Any) -> Response:
        page = await board.act(who, record_actions.search_records, kind, q, after=after, limit=RECORDS_PAGE)
        more = None
        if page.next_after:
            from urllib.parse import urlencode

            more = f"/records/{kind}?" + urlencode({"q": q, "after": page.next_after} if q else
                                                   {"after": page.next_after})
        return board.render(request, "records_list.html", status=status, kind=kind, kinds=KINDS, kind_words=KIND_WORDS,
                            rows=page.rows, columns=LIST_COLUMNS[kind], q=q, after=after, more=more,
                            can_edit=may_edit(who), **extra)

    @api.get("/records", include_in_schema=False)
    async def records_home(who: Annotated[Who, Depends(require("viewer"))]) -> Response:
        return RedirectResponse("/records/products", 303)

    @api.get("/records/{kind}", include_in_schema=False)
    async def records_list(request: Request, who: Annotated[Who, Depends(require("viewer"))], kind: Kind,
                           q: Search = "", after: After = None) -> Response:
        return await list_page(request, who, kind, q, after or None)

    @api.post("/records/{kind}/import", include_in_schema=False)
    async def records_import(request: Request, who: Annotated[Who, Depends(require("editor"))], kind: Kind,
                             file: Annotated[UploadFile | None, File()] = None,
                             token: Annotated[str, Form(max_length=100)] = "",
                             skip_invalid: Annotated[bool, Form()] = False) -> Response:
        """Upload a file: with a bad row nothing is written and the page lists each problem (and
        offers to import the good rows); ``token`` names an upload kept from that page."""
        if token:
            kept = pending.get(token)
            if kept is None or kept.who != who.name or kept.kind != kind:
                return await list_page(request, who, kind, "", None, status=400, upload_error=gettext(
                    who, _("That upload is no longer kept; choose the file again.")))
            filename, content = kept.filename, kept.content
        elif file is None or not file.filename:
            return await list_page(request, who, kind, "", None, status=400,
                                   upload_error=gettext(who, _("Choose a .csv or .json file first.")))
        else:
            filename = file.filename
            content = await file.read(record_actions.MAX_UPLOAD_BYTES + 1)
        try:
            result = await board.act(who, record_actions.import_upload, kind, filename, content,
                                     skip_invalid=skip_invalid,
                                     on_changes=records_changed_hook(board.settings, board.ctx.composer(), who.name))
        except ImportValidationError as exc:
            file_level = _file_level(exc.problems)
            token = keep(who, kind, filename, content) if not file_level and not skip_invalid else ""
            return await list_page(request, who, kind, "", None, status=400, problems=exc.problems,
                                   filename=filename, token=token, file_level=file_level)
        except ValidationError as exc:
            return await list_page(request, who, kind, "", None, status=400, upload_error=str(exc))
        if token:
            pending.pop(token, None)
        message = f"{filename}: {result.summary()}"
        return board.done(f"/records/{kind}", message)

    @api.get("/records/{kind}/{id}", include_in_schema=False)
    async def record_page(request: Request, who: Annotated[Who, Depends(require("viewer"))], kind: Kind,
                          id: RecordId) -> Response:
        fields = await board.act(who, record_actions.get_record, kind, id)
        return board.render(request, "records_edit.html", kind_words=KIND_WORDS, kind=kind, record_id=id, fields=fields,
                            columns=COLUMNS[kind], required=REQUIRED[kind], long=LONG, can_edit=may_edit(who))

    @api.post("/records/{kind}/{id}/edit", include_in_schema=False)
    async def record_edit(request: Request, who: Annotated[Who, Depends(require("editor"))], kind: Kind,
                          id: RecordId) -> Response:
        form = await request.form()
        cells = {c: str(form.get(c) or "") for c in COLUMNS[kind] if c != "id" and c in form}
        for c in ("curated", "active"):  # an unticked checkbox sends nothing
            if c in COLUMNS[kind]:
                cells[c] = "true" if form.get(c) else "false"
        try:
            saved = await board.act(who, record_actions.update_record, kind, id, cells,
                                    on_change=record_change_hook(board.settings, board.ctx.composer(), who.name))
        except ImportValidationError as exc:
            fields = {**(await board.act(who, record_actions.get_record, kind, id)), **cells}
            return board.render(request, "records_edit.html", status=400, kind_words=KIND_WORDS, kind=kind, record_id=id, fields=fields,
                                columns=COLUMNS[kind], required=REQUIRED[kind], long=LONG, can_edit=True,
                                problems={p.column: p.reason for p in exc.problems})
        message = (gettext(who, _("Saved: %(fields)s")) % {"fields": ", ".join(saved.changed)} if saved.changed
                   else gettext(who, _("Nothing changed.")))
        return board.done(f"/records/{kind}/{id}", message)

    # --- API ---------------------------------------------------------------------------------------

    @api.get("/api/v1/records/{kind}", tags=["api"], response_model=RecordsPage, **JSON)
    async def api_records(request: Request, who: Annotated[Who, Depends(require("viewer"))], kind: Kind,
                          q: Search = "", after: After = None) -> Response:
        """Records of a kind by id, 50 a page: ``{"rows": [...], "next": the next page's address or null}``."""
        page = await board.act(who, record_actions.search_records, kind, q, after=after or None, limit=RECORDS_PAGE)
        nxt = None
        if page.next_after:
            from urllib.parse import urlencode

            nxt = f"/api/v1/records/{kind}?" + urlencode({**({"q": q} if q else {}), "after": page.next_after})
        return board.as_json({"rows": page.rows, "next": nxt})

    @api.get("/api/v1/records/{kind}/{id}", tags=["api"], response_model=Record, **JSON_404)
    async def api_record(who: Annotated[Who, Depends(require("viewer"))], kind: Kind, id: RecordId) -> Response:
        """One record, as the cells of its import file."""
        return board.as_json(await board.act(who, record_actions.get_record, kind, id))

    @api.patch("/api/v1/records/{kind}/{id}", tags=["api"], response_model=RecordSaved,
               response_class=JSONResponse, responses=errors(404, problems=True))
    async def api_record_update(who: Annotated[Who, Depends(require("editor"))], kind: Kind, id: RecordId,
                                change: Annotated[RecordChange, Body()]) -> Response:
        """Change fields of one record (editor): checked like an import row; 400 with ``problems``
        (line 1 = this change) and nothing written when one is bad."""
        cells = change.model_dump(exclude_unset=True)
        try:
            saved = await board.act(who, record_actions.update_record, kind, id, cells,
                                    on_change=record_change_hook(board.settings, board.ctx.composer(), who.name))
        except ImportValidationError as exc:
            return board.as_json({"error": str(exc), "problems": problems_json(exc.problems)}, status=400)
        return board.as_json({"record": saved.fields, "changed": list(saved.changed)})

    @api.post("/api/v1/records/{kind}/import", tags=["api"], response_model=Imported,
              response_class=JSONResponse, responses=errors(problems=True))
    async def api_import(who: Annotated[Who, Depends(require("editor"))], kind: Kind,
                         file: Annotated[UploadFile, File(description="a .csv or .json import file")],
                         skip_invalid: Annotated[bool, Form(description="write the good rows even if some are bad")]
                         = False) -> Response:
        """Import a file like `promo import` (editor): 400 with ``problems`` and nothing written when a
        row is bad, unless ``skip_invalid``; else what was created, updated, unchanged and skipped."""
        content = await file.read(record_actions.MAX_UPLOAD_BYTES + 1)
        try:
            result = await board.act(who, record_actions.import_upload, kind, file.filename or "upload", content,
                                     skip_invalid=skip_invalid,
                                     on_changes=records_changed_hook(board.settings, board.ctx.composer(), who.name))
        except ImportValidationError as exc:
            return board.as_json({"error": f"{len(exc.problems)} problem(s), nothing imported",
                                  "problems": problems_json(exc.problems)}, status=400)
        return board.as_json(result_json(result))


def _file_level(problems: list[RowProblem]) -> bool:
    """Whether the file itself is wrong (its columns): then skipping rows cannot help."""
    return any(p.reason.startswith(("unknown column", "the file has no column")) for p in problems)


def _actor(who: Any) -> Any:
    from scheduler.actions import Actor

    return Actor(who.name, who.role)
