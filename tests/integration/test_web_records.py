"""Today, Calendar, Records and History in the web app, as staff use them: a real uvicorn on
127.0.0.1 over a database in Makassar time (UTC+8), logged in as a viewer, an editor, or with an
API token. Roles, CSRF, uploads with a bad row, inert markup, local days across a UTC day
boundary, and history pages that neither overlap nor skip a row."""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from scheduler.config import load_settings
from scheduler.models import AuditEntry, HistoryEntry, Post, PostStatus, Product, Umkm
from scheduler.storage import channels as channel_store
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database
from tests.webapp import Served, add_user, bearer, csrf_of, log_in

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
XSS = "<script>alert(1)</script>"
#: 2027-03-09 17:30 UTC is 2027-03-10 01:30 in Makassar: the post belongs to the 10th there.
LATE = dt.datetime(2027, 3, 9, 17, 30, tzinfo=dt.UTC)
HISTORY_ROWS = 257


@dataclass
class Site:
    url: str
    db: Database
    settings: Any
    token_viewer: dict[str, str]
    token_editor: dict[str, str]

    @contextlib.contextmanager
    def client(self, name: str) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=self.url, trust_env=False, timeout=20) as c:
            log_in(c, name)
            yield c


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("webrecords")
    settings = load_settings({"PROMO_DATABASE_URL": f"sqlite:///{tmp}/promo.db", "PROMO_TEMPLATES_DIR": str(TEMPLATES),
                              "PROMO_CHANNELS": "outbox", "PROMO_CHANNEL_OUTBOX_PATH": str(tmp / "outbox.jsonl"),
                              "PROMO_TIMEZONE": "Asia/Makassar", "PROMO_HIGHLIGHT_CHANNELS": "outbox"})
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as session:
        outbox = channel_store.sync_configured(session, settings)["outbox"]
        umkm = Umkm(external_id="U1", name="Warung Bu Sari", curated=True)
        session.add(umkm)
        session.flush()
        session.add(Product(external_id="P-XSS", umkm_id=umkm.id, name=XSS, tags=["kue"], price=15000))
        session.add(Product(external_id="P1", umkm_id=umkm.id, name="Kue Lapis", tags=["kue", "lapis"], price=25000,
                            curation="approved"))
        late = post_store.create_post(session, channel=outbox, kind="free_text", text=f"Malam {XSS}",
                                      status=PostStatus.SCHEDULED, scheduled_at=LATE, actor="test")
        for n in range(9):  # a crowded day: the month cell shows 4 and "+N more"
            post_store.create_post(session, channel=outbox, kind="free_text", text=f"Ramai {n}",
                                   status=PostStatus.SCHEDULED, scheduled_at=LATE + dt.timedelta(hours=24, minutes=n),
                                   actor="test")
        for n in range(HISTORY_ROWS):
            session.add(HistoryEntry(post_id=late.id, channel_id=outbox.id, action="attempt", to_status="failed",
                                     outcome="transient", error=f"=HYPERLINK(\"x\") {n}" if n == 0 else f"try {n}"))
    add_user(db, "vina", "viewer")
    add_user(db, "edo", "editor")
    token_viewer, token_editor = bearer(db, "laporan", "viewer"), bearer(db, "robot", "editor")
    served = Served(settings, db)
    try:
        yield Site(served.url, db, settings, token_viewer, token_editor)
    finally:
        served.stop()
        db.dispose()


@pytest.fixture
def api(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, trust_env=False, timeout=20) as client:
        yield client


def count(db: Database, model: Any) -> int:
    with db.read_session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def product(db: Database, ext: str) -> Product | None:
    with db.read_session() as s:
        p = s.scalar(select(Product).where(Product.external_id == ext))
        if p is not None:
            s.expunge(p)
        return p


BAD_CSV = ("id,umkm_id,name,price,tags\n"
           "P10,U1,Bingka Kentang,20000,kue\n"
           "P11,U1,Amplang,dua puluh ribu,camilan\n"
           "P12,U1,Roti Maros,12.500,roti\n")


# --- roles and CSRF --------------------------------------------------------------------------------

def test_a_viewer_reads_every_page_and_may_not_write(site: Site, api: httpx.Client) -> None:
    with site.client("vina") as c:
        for path in ("/", "/calendar", "/calendar?view=week&date=2027-03-10", "/records", "/records/products",
                     "/records/umkm", "/records/events", "/records/products/P1", "/history",
                     "/api/v1/records/products", "/api/v1/records/products/P1", "/api/v1/history?page=1",
                     "/api/v1/calendar?from=2027-03-01&to=2027-03-31"):
            answer = c.get(path, follow_redirects=True)
            assert answer.status_code == 200, (path, answer.text[-600:])
        page = c.get("/records/products").text
        assert 'id="upload"' not in page and "Move to" not in c.get("/calendar?date=2027-03-10").text
        csrf = csrf_of(page)
        denied = c.post("/records/products/import", data={"csrf": csrf}, files={"file": ("p.csv", BAD_CSV)})
        assert denied.status_code == 403 and "editor" in denied.text
        assert c.post("/records/products/P1/edit", data={"csrf": csrf, "name": "X"}).status_code == 403
        assert c.post("/calendar/move", data={"csrf": csrf, "post_id": "1", "date": "2027-04-01",
                                              "time": "09:00"}).status_code == 403
    assert api.patch("/api/v1/records/products/P1", json={"name": "X"}, headers=site.token_viewer).status_code == 403
    assert api.post("/api/v1/records/products/import", files={"file": ("p.csv", BAD_CSV)},
                    headers=site.token_viewer).status_code == 403
    assert product(site.db, "P1").name == "Kue Lapis"  # type: ignore[union-attr]


def test_an_editor_edits_a_record_with_the_importers_checks_and_an_audit_row(site: Site, api: httpx.Client) -> None:
    with site.client("edo") as c:
        form = c.get("/records/products/P1").text
        csrf = csrf_of(form)
        assert c.post("/records/products/P1/edit", data={"name": "Tanpa token"}).status_code == 403  # CSRF
        bad = c.post("/records/products/P1/edit", data={"csrf": csrf, "name": "Kue Lapis Legit", "price": "murah",
                                                       "tags": "kue", "active": "true"})
        assert bad.status_code == 400 and "is not a price in whole rupiah" in html.unescape(bad.text)
        assert product(site.db, "P1").name == "Kue Lapis"  # type: ignore[union-attr]  # nothing written
        ok = c.post("/records/products/P1/edit", data={"csrf": csrf, "name": "Kue Lapis Legit", "price": "Rp 27.000",
                                                      "tags": "kue; lapis", "active": "true", "umkm_id": "U1"},
                    follow_redirects=True)
        assert ok.status_code == 200 and "name, price" in ok.text
    p = product(site.db, "P1")
    assert p is not None and p.name == "Kue Lapis Legit" and p.price == 27000
    with site.db.read_session() as s:
        audit = s.scalars(select(AuditEntry).where(AuditEntry.entity_id == "P1")).all()
    assert [(a.actor, a.action) for a in audit] == [("edo", "record.update")]
    assert audit[0].detail["before"] == {"name": "Kue Lapis", "price": 25000}
    # The API: PATCH by an editor's token, checked the same way.
    wrong = api.patch("/api/v1/records/products/P1", json={"url": "javascript:alert(1)"}, headers=site.token_editor)
    assert wrong.status_code == 400 and wrong.json()["problems"][0]["column"] == "url"
    fine = api.patch("/api/v1/records/products/P1", json={"price": 30000}, headers=site.token_editor)
    assert fine.status_code == 200 and fine.json()["changed"] == ["price"]
    assert api.patch("/api/v1/records/products/NOPE", json={"price": 1}, headers=site.token_editor).status_code == 404


# --- uploads ----------------------------------------------------------------------------------------

def test_an_upload_with_a_bad_row_writes_nothing_then_the_good_rows_on_request(site: Site) -> None:
    before = count(site.db, Product)
    with site.client("edo") as c:
        csrf = csrf_of(c.get("/records/products").text)
        answer = c.post("/records/products/import", data={"csrf": csrf}, files={"file": ("toko.csv", BAD_CSV)})
        assert answer.status_code == 400
        problems = re.search(r'<div class="problem" id="problems">(.*?)</div>', answer.text, re.S)
        assert problems, answer.text[:2000]
        text = html.unescape(re.sub(r"<[^>]+>", " ", problems.group(1)))
        assert re.search(r"\b3\s+price\s+'dua puluh ribu' is not a price", text), text
        assert "nothing was imported" in text or "tidak ada yang diimpor" in text
        assert count(site.db, Product) == before  # nothing written
        token = re.search(r'name="token" value="([^"]+)"', answer.text)
        assert token
        good = c.post("/records/products/import", data={"csrf": csrf, "token": token.group(1), "skip_invalid": "true"},
                      follow_redirects=True)
        assert good.status_code == 200 and "2 created" in good.text
    assert count(site.db, Product) == before + 2
    assert product(site.db, "P11") is None and product(site.db, "P12").price == 12500  # type: ignore[union-attr]


def test_the_api_imports_a_file_like_the_command(site: Site, api: httpx.Client) -> None:
    csv_text = "id,name,starts_at\nE1,Festival Kue,2027-03-20 19:00\nE2,,2027-03-21 19:00\n"
    refused = api.post("/api/v1/records/events/import", files={"file": ("acara.csv", csv_text)},
                       headers=site.token_editor)
    assert refused.status_code == 400 and refused.json()["problems"] == [
        {"line": 3, "column": "name", "reason": "missing name"}]
    done = api.post("/api/v1/records/events/import", files={"file": ("acara.csv", csv_text)},
                    data={"skip_invalid": "true"}, headers=site.token_editor)
    assert done.status_code == 200 and done.json()["created"] == 1 and len(done.json()["skipped"]) == 1
    listed = api.get("/api/v1/records/events", params={"q": "festival"}, headers=site.token_viewer).json()
    assert [r["id"] for r in listed["rows"]] == ["E1"] and listed["rows"][0]["starts_at"] == "2027-03-20 19:00"


def test_records_search_and_keyset_pages(site: Site, api: httpx.Client) -> None:
    with site.db.session() as s:
        umkm = s.scalar(select(Umkm).where(Umkm.external_id == "U1"))
        for n in range(120):
            s.add(Product(external_id=f"Q{n:03d}", umkm_id=umkm.id, name=f"Produk {n}", tags=["banyak"]))  # type: ignore[union-attr]
    seen: list[str] = []
    url: str | None = "/api/v1/records/products?q=BANYAK"
    while url:
        page = api.get(url, headers=site.token_viewer).json()
        seen += [r["id"] for r in page["rows"]]
        url = page["next"]
    assert seen == [f"Q{n:03d}" for n in range(120)]  # by tag, any case, no overlap, nothing skipped
    with site.client("vina") as c:
        first = c.get("/records/products", params={"q": "banyak"}).text
        more = re.search(r'href="([^"]+)" id="more"', first)
        assert more and "Q049" in first and "Q050" not in first
        second = c.get(html.unescape(more.group(1))).text
        assert "Q050" in second and "Q049" not in second


def test_a_product_named_like_a_script_stays_text_on_every_page(site: Site) -> None:
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    with site.client("edo") as c:  # in an upload's error too: the bad value is quoted in the reason
        csrf = csrf_of(c.get("/records/products").text)
        assert c.post("/records/products/import", files={"file": ("p.csv", BAD_CSV)}).status_code == 403  # no CSRF
        bad = c.post("/records/products/import", data={"csrf": csrf},
                     files={"file": ("p.csv", f"id,umkm_id,name,price\nPX,U1,{XSS},{XSS}\n")})
        assert bad.status_code == 400 and XSS not in bad.text and escaped in bad.text
        assert product(site.db, "PX") is None
    with site.client("vina") as c:
        for path in ("/records/products", "/records/products/P-XSS", "/records/products?q=script",
                     "/calendar?date=2027-03-10&view=week", "/calendar?date=2027-03-10&view=day"):
            page = c.get(path).text
            assert XSS not in page, path
            assert escaped in page, path


# --- calendar ------------------------------------------------------------------------------------

def test_calendar_days_are_local_days_across_the_utc_boundary(site: Site, api: httpx.Client) -> None:
    with site.client("vina") as c:
        for view in ("month", "week"):
            page = c.get("/calendar", params={"view": view, "date": "2027-03-10"}).text
            day10 = re.search(r'id="day-2027-03-10">(.*?)</section>', page, re.S)
            day09 = re.search(r'id="day-2027-03-09">(.*?)</section>', page, re.S)
            assert day10 and day09, view
            assert "01:30" in day10.group(1) and "Malam" not in day09.group(1) and "01:30" not in day09.group(1)
        month = c.get("/calendar", params={"view": "month", "date": "2027-03-10"}).text
        crowded = re.search(r'id="day-2027-03-11">(.*?)</section>', month, re.S)
        assert crowded and crowded.group(1).count('class="chip') == 4 and "+5" in crowded.group(1)
        week = c.get("/calendar", params={"view": "week", "date": "2027-03-11"}).text
        crowded = re.search(r'id="day-2027-03-11">(.*?)</section>', week, re.S)
        assert crowded and crowded.group(1).count('class="chip') == 9
        for bad in ({"view": "year"}, {"date": "2027-02-30"}, {"date": "kemarin"}):
            answer = c.get("/calendar", params=bad)
            assert answer.status_code == 400, bad
    days = api.get("/api/v1/calendar", params={"from": "2027-03-10", "to": "2027-03-10"},
                   headers=site.token_viewer).json()["days"]
    assert days[0]["date"] == "2027-03-10" and days[0]["posts"][0]["at"] == "2027-03-10T01:30:00+08:00"
    assert api.get("/api/v1/calendar", params={"from": "2027-03-10", "to": "2027-03-01"},
                   headers=site.token_viewer).status_code == 400


def test_move_to_reschedules_with_history(site: Site) -> None:
    with site.db.session() as s:
        outbox = channel_store.sync_configured(s, site.settings)["outbox"]
        post = post_store.create_post(s, channel=outbox, kind="free_text", text="Pindah saya",
                                      status=PostStatus.SCHEDULED, scheduled_at=LATE + dt.timedelta(days=5),
                                      actor="test")
        pid = post.id
    with site.client("edo") as c:
        page = c.get("/calendar", params={"date": "2027-03-15"}).text
        assert f'name="post_id" value="{pid}"' in page
        csrf = csrf_of(page)
        assert c.post("/calendar/move", data={"post_id": str(pid), "date": "2027-03-20",
                                              "time": "08:15"}).status_code == 403  # no CSRF token
        moved = c.post("/calendar/move", data={"csrf": csrf, "post_id": str(pid), "date": "2027-03-20",
                                               "time": "08:15", "back": "/calendar?date=2027-03-20"})
        assert moved.status_code == 303 and moved.headers["location"] == "/calendar?date=2027-03-20"
        assert f'id="post-{pid}"' in c.get(moved.headers["location"]).text
        past = c.post("/calendar/move", data={"csrf": csrf, "post_id": str(pid), "date": "2020-01-01",
                                              "time": "08:15", "back": "/calendar"}, follow_redirects=True)
        assert "in the past" in past.text
    with site.db.read_session() as s:
        p = s.get(Post, pid)
        assert p is not None and p.scheduled_at == dt.datetime(2027, 3, 20, 0, 15, tzinfo=dt.UTC)
        moves = [(h.actor, h.error) for h in s.scalars(select(HistoryEntry).where(HistoryEntry.post_id == pid))]
    assert ("edo", "rescheduled to 2027-03-20T08:15:00+08:00") in moves


# --- today ---------------------------------------------------------------------------------------

def test_today_counts_everything_that_needs_attention(site: Site) -> None:
    with site.db.session() as s:
        outbox = channel_store.sync_configured(s, site.settings)["outbox"]
        for _n in range(25):
            post_store.create_post(s, channel=outbox, kind="free_text", text="gagal", status=PostStatus.FAILED,
                                   scheduled_at=LATE, actor="test")
        post_store.create_post(s, channel=outbox, kind="free_text", text=f"hari ini {XSS}",
                               status=PostStatus.SCHEDULED,
                               scheduled_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1), actor="test")
        outbox.status = "paused"
    try:
        with site.client("vina") as c:
            page = c.get("/").text
        failed = re.search(r'href="/posts\?status=failed" id="attention-failed"><b>([\d,.]+)</b>', page)
        assert failed and failed.group(1) == "25"  # all of them, not the first 20
        stuck = re.search(r'id="stuck-outbox"><b>([\d,.]+)</b>', page)
        assert stuck and int(stuck.group(1)) >= 11
        assert 'href="/posts?channel=outbox&amp;status=scheduled,retry_wait,pending_approval"' in page
        today = re.search(r'id="today">(.*?)</div>', page, re.S)
        assert today and "outbox" in today.group(1) and "hari ini" in today.group(1)
        assert XSS not in page and "hari ini &lt;script&gt;" in page
        highlight = re.search(r'<div id="highlight">(.*?)</div>', page, re.S)
        assert highlight and "Kue Lapis" in highlight.group(1), page  # tomorrow's pick (the only eligible)
        assert 'class="why"' in highlight.group(1) and "problem" not in highlight.group(1)
    finally:
        with site.db.session() as s:
            channel_store.sync_configured(s, site.settings)["outbox"].status = "active"


# --- history -----------------------------------------------------------------------------------

def test_history_pages_neither_overlap_nor_skip(site: Site, api: httpx.Client) -> None:
    with site.db.read_session() as s:
        every = list(s.scalars(select(HistoryEntry.id).where(HistoryEntry.action == "attempt")
                               .order_by(HistoryEntry.id.desc())))
    with site.client("vina") as c:
        seen: list[int] = []
        url: str | None = "/history"
        pages = 0
        while url:
            page = c.get(url).text
            seen += [int(i) for i in re.findall(r'<tr data-id="(\d+)"', page)]
            older = re.search(r'href="([^"]+)" id="older"', page)
            url = html.unescape(older.group(1)) if older else None
            pages += 1
        assert seen == every and pages == 3  # 257 rows: 100 + 100 + 57, newest first
    seen = []
    nxt: str | None = "/api/v1/history?page=1"
    while nxt:
        answer = api.get(nxt, headers=site.token_viewer).json()
        seen += [r["id"] for r in answer["rows"]]
        nxt = answer["next"]
    assert seen == every
    old_style = api.get("/api/v1/history", headers=site.token_viewer).json()
    assert isinstance(old_style, list) and [r["id"] for r in old_style] == sorted(every)  # unchanged without a cursor
    assert api.get("/api/v1/history?after=abc", headers=site.token_viewer).status_code == 400


def test_history_csv_streams_every_row_formula_safe(site: Site, api: httpx.Client) -> None:
    with api.stream("GET", "/api/v1/history", params={"format": "csv"}, headers=site.token_viewer) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        body = answer.read().decode("utf-8")
    assert body.startswith("\ufeffid,")
    lines = body.strip().splitlines()
    assert len(lines) == 1 + HISTORY_ROWS
    assert "'=HYPERLINK" in body and ",=HYPERLINK" not in body
