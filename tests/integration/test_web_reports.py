"""The Reports pages and /api/v1/reports against the hand-computed fixture of tests/reportdata.py
(March 2027, Makassar time): figures exact on the pages and in JSON, the same rows `promo report`
prints, Indonesian number formats, platforms without counters named instead of zeros, the month
in the organisation's timezone, the monthly CSV, the post page's counters over time, and roles.
A real uvicorn on 127.0.0.1."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import html
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from scheduler.config import load_settings
from scheduler.storage.db import Database
from tests.helpers import run_cli
from tests.reportdata import ODD, environment, seed
from tests.webapp import Served, add_user, bearer, log_in

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
MARCH = {"since": "2027-03-01", "until": "2027-03-31"}
#: The fixture's figures, worked out by hand (tests/reportdata.py).
TOTAL = {"group": "(all)", "posts": 6, "measured": 3, "reach_views": 2340, "engagement": 1266,
         "engagement_per_post": 422.0, "likes": 1208, "shares": 42, "replies": 16, "saves": 0,
         "best_platform": "bluesky"}
NOTHING = {"reach_views": None, "engagement": None, "engagement_per_post": None, "likes": None, "shares": None,
           "replies": None, "saves": None, "best_platform": None}
BY_UMKM = [
    {"group": "Warung Bu Sri", "posts": 2, "measured": 2, "reach_views": 2300, "engagement": 1265,
     "engagement_per_post": 632.5, "likes": 1207, "shares": 42, "replies": 16, "saves": 0, "best_platform": "bluesky"},
    {"group": "Kopi Kita", "posts": 3, "measured": 1, "reach_views": 40, "engagement": 1, "engagement_per_post": 1.0,
     "likes": 1, "shares": 0, "replies": 0, "saves": 0, "best_platform": "mastodon"},
    {"group": "(none)", "posts": 1, "measured": 0, **NOTHING},
]
#: group → (posts, measured, engagement, per post)
BY = {
    "channel": {"bsky": (2, 1, 1255, 1255.0), "masto": (2, 2, 11, 5.5), "disc": (1, 0, None, None),
                "tele": (1, 0, None, None)},
    "platform": {"bluesky": (2, 1, 1255, 1255.0), "mastodon": (2, 2, 11, 5.5), "discord": (1, 0, None, None),
                 "telegram": (1, 0, None, None)},
    # local hours (UTC+8): 09:10 and 09:30; 19:05, 19:45 and 19:10; 12:00; every other hour without posts
    "hour": {**{f"{h:02d}:00": (0, 0, None, None) for h in range(24)},
             "19:00": (3, 1, 1255, 1255.0), "09:00": (2, 2, 11, 5.5), "12:00": (1, 0, None, None)},
    "product": {"Kue Lapis": (2, 2, 1265, 632.5), "Kopi Susu": (3, 1, 1, 1.0), "(none)": (1, 0, None, None)},
    "kind": {"product_highlight": (5, 3, 1266, 422.0), "free_text": (1, 0, None, None)},
}


@dataclass
class Site:
    url: str
    db: Database
    env: dict[str, str]
    ids: dict[str, int]
    token: dict[str, str]

    @contextlib.contextmanager
    def client(self, name: str = "vina") -> Iterator[httpx.Client]:
        with httpx.Client(base_url=self.url, trust_env=False, timeout=20) as c:
            log_in(c, name)
            yield c

    def api(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(self.url + path, params=params, headers=self.token, trust_env=False, timeout=20)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("webreports")
    env = environment(tmp)
    settings = load_settings(env)
    db = Database(settings.database_url)
    db.upgrade()
    ids = seed(db, settings)
    add_user(db, "vina", "viewer")
    add_user(db, "emma", "viewer", language="en")
    token = bearer(db, "laporan", "viewer")
    served = Served(settings, db)
    try:
        yield Site(served.url, db, env, ids, token)
    finally:
        served.stop()
        db.dispose()


def table(page: str, table_id: str) -> list[list[str]]:
    """A table's rows as the text of their cells (markup stripped, entities decoded)."""
    found = re.search(rf'<table[^>]*id="{table_id}".*?</table>', page, re.S)
    assert found, f"no table {table_id}"
    rows = re.findall(r"<tr>(.*?)</tr>", found.group(0), re.S)
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.S)]
            for r in rows]


# --- JSON: exact figures, and the same rows as `promo report` ---------------------------------------

def test_the_api_gives_the_hand_computed_figures(site: Site) -> None:
    answer = site.api("/api/v1/reports", **MARCH, by="umkm")
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert (data["since"], data["until"], data["timezone"], data["by"]) == ("2027-03-01", "2027-03-31",
                                                                          "Asia/Makassar", "umkm")
    assert data["total"] == TOTAL
    assert data["rows"] == BY_UMKM
    assert [(t["id"], t["engagement"]) for t in data["top"]] == [(site.ids["p2"], 1255), (site.ids["p1"], 10),
                                                                 (site.ids["p3"], 1)]
    assert data["top"][0]["published_at"] == "2027-03-03T19:05:00+08:00"
    assert [(n["platform"], n["posts"]) for n in data["no_counters"]] == [("discord", 1), ("telegram", 1)]
    for by, expected in BY.items():
        rows = site.api("/api/v1/reports", **MARCH, by=by).json()["rows"]
        assert {r["group"]: (r["posts"], r["measured"], r["engagement"], r["engagement_per_post"])
                for r in rows} == expected, by
    hours = site.api("/api/v1/reports", **MARCH, by="hour").json()
    assert [r["group"] for r in hours["rows"]] == [f"{h:02d}:00" for h in range(24)]  # the day's order
    assert hours["best_hours"] == ["19:00", "09:00"] and data["best_hours"] == []


def test_the_web_and_promo_report_give_the_same_rows(site: Site, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in site.env.items():
        monkeypatch.setenv(key, value)
    for by in ("umkm", "product", "channel", "platform", "kind", "hour"):
        code, out = run_cli(capsys, "report", "--since", "2027-03-01", "--until", "2027-03-31", "--by", by,
                            "--format", "json")
        assert code == 0, out
        cli = [{"group": r.pop(by), **r} for r in json.loads(out)]
        web = site.api("/api/v1/reports", **MARCH, by=by).json()["rows"]
        assert web == cli and web, by
    monthly = site.api("/api/v1/reports/monthly", month="2027-03").json()
    code, out = run_cli(capsys, "report", "--since", "2027-03-01", "--until", "2027-03-31", "--by", "hour",
                        "--format", "json")
    assert monthly["sections"]["hour"] == [{"group": r.pop("hour"), **r} for r in json.loads(out)]


def test_the_month_is_the_organisations_month(site: Site) -> None:
    march = site.api("/api/v1/reports/monthly", month="2027-03").json()
    assert (march["month"], march["since"], march["until"]) == ("2027-03", "2027-03-01", "2027-03-31")
    assert march["total"] == TOTAL  # p6 (31 March 16:30 UTC, 1 April 00:30 WITA) belongs to April
    assert set(march["sections"]) == {"umkm", "product", "channel", "platform", "hour"}
    assert march["sections"]["umkm"] == BY_UMKM
    april = site.api("/api/v1/reports/monthly", month="2027-04").json()
    assert (april["total"]["posts"], april["total"]["engagement"]) == (1, 99)
    assert april["sections"]["hour"][0]["group"] == "00:00" and april["best_hours"] == ["00:00"]
    assert march["best_hours"] == ["19:00", "09:00"] and len(march["sections"]["hour"]) == 24
    empty = site.api("/api/v1/reports/monthly", month="2026-01").json()
    assert empty["total"] == {"group": "(all)", "posts": 0, "measured": 0, **NOTHING}
    assert empty["sections"]["umkm"] == [] and empty["no_counters"] == []


def test_a_posts_counters_over_time(site: Site) -> None:
    data = site.api(f"/api/v1/reports/posts/{site.ids['p1']}").json()
    assert (data["channel"], data["platform"], data["gives_counters"]) == ("masto", "mastodon", True)
    assert [(r["at"], r["hours_after"], r["engagement"]) for r in data["reads"]] == [
        ("2027-03-02T10:10:00+08:00", 1.0, 3), ("2027-03-03T09:10:00+08:00", 24.0, 8),
        ("2027-03-09T09:10:00+08:00", 168.0, 10)]
    assert data["reads"][-1]["counts"] == {"likes": 7, "shares": 2, "replies": 1, "views": 2300}
    telegram = site.api(f"/api/v1/reports/posts/{site.ids['p4']}").json()
    assert telegram["gives_counters"] is False and telegram["reads"] == []
    assert site.api("/api/v1/reports/posts/99999").status_code == 404


# --- pages ---------------------------------------------------------------------------------------------

def test_the_reports_page_shows_the_figures_in_indonesian(site: Site) -> None:
    with site.client() as c:
        page = c.get("/reports", params={**MARCH, "by": "umkm"})
    assert page.status_code == 200
    text = page.text
    total = html.unescape(re.sub(r"<[^>]+>", " ", re.search(r'id="total".*?</div>', text, re.S).group(0)))  # type: ignore[union-attr]
    assert re.sub(r"\s+", " ", total).strip().endswith(
        "6 posting terbit 3 dengan angka 2.340 jangkauan / tayangan 1.266 interaksi 422 interaksi per posting")
    assert table(text, "rows-umkm") == [
        ["UMKM", "Posting", "Terukur", "Jangkauan / tayangan", "Interaksi", "Per posting", "Platform terbaik"],
        ["Warung Bu Sri", "2", "2", "2.300", "1.265", "632,5", "bluesky"],
        ["Kopi Kita", "3", "1", "40", "1", "1", "mastodon"],
        ["(tidak ada)", "1", "0", "–", "platform tidak memberi angka", "–", "–"]]  # nothing measured: never a 0
    assert "Discord tidak memberikan angka interaksi: postingnya (1)" in text
    assert "Telegram tidak memberikan angka interaksi" in text
    chart = re.search(r'<figure class="chart chart-bar" id="chart-umkm">.*?</figure>', text, re.S)
    assert chart and "Interaksi per posting: UMKM" in chart.group(0)
    assert re.findall(r'<text class="value"[^>]*>([^<]*)</text>', chart.group(0)) == ["632,5", "1"]
    assert "tanpa angka" in chart.group(0)
    assert 'href="/reports/monthly?month=2027-03"' in text and 'id="tab-hour"' in text
    assert "<script" not in text.split("<main>")[1]  # no script on this page; the CSP forbids inline anyway


def test_the_best_hours_are_local_hours(site: Site) -> None:
    with site.client() as c:
        page = c.get("/reports", params={**MARCH, "by": "hour"}).text
    rows = table(page, "rows-hour")  # the hours with posts, in the day's order; the chart has every hour
    assert [r[:5] for r in rows[1:]] == [["09:00 jam terbaik", "2", "2", "2.340", "11"],
                                         ["12:00", "1", "0", "–", "platform tidak memberi angka"],
                                         ["19:00 jam terbaik", "3", "1", "0", "1.255"]]
    assert "Jam terbaik: 19.00–20.00, 09.00–10.00 (interaksi per posting, waktu setempat)." in html.unescape(page)
    chart = re.search(r'id="chart-hour">.*?</figure>', page, re.S).group(0)  # type: ignore[union-attr]
    tips = re.findall(r"<title>([^<]*)</title>", chart)
    assert len(tips) == 24  # every hour of the day, each saying what it is
    assert tips[:2] == ["00.00–01.00: tidak ada posting", "01.00–02.00: tidak ada posting"]
    assert (tips[9], tips[12], tips[19]) == ("09.00–10.00: 5,5", "12.00–13.00: tanpa angka", "19.00–20.00: 1.255")
    assert sum(t.endswith("tidak ada posting") for t in tips) == 21  # never drawn as 0
    assert len(re.findall(r'<rect class="bar best"', chart)) == 2 + 1  # the two best hours and the legend's mark
    assert re.findall(r'<text class="value best"[^>]*>([^<]*)</text>', chart) == ["5,5", "1.255"]
    assert re.findall(r'<text class="tick"[^>]*>([^<]*)</text>', chart) == [f"{h:02d}" for h in range(0, 24, 3)]
    with site.client("emma") as c:
        english = c.get("/reports", params={**MARCH, "by": "hour"}).text
    assert "Best hours: 19:00–20:00, 09:00–10:00 (engagement per post, local time)." in html.unescape(english)


def test_a_group_with_nothing_measured_says_why(site: Site) -> None:
    """No counters given by the platform, or not read yet (with the next read), in the tables too."""
    with site.client() as c:
        page = c.get("/reports", params={"since": "2027-03-11", "until": "2027-03-20", "by": "platform"}).text
    assert [r[:5] for r in table(page, "rows-platform")[1:]] == [
        ["bluesky", "1", "0", "–", "belum dibaca: dibaca berikutnya 2027-03-20 20:10"],  # p8, 1 h after 19:10
        ["discord", "1", "0", "–", "platform tidak memberi angka"],
        ["telegram", "1", "0", "–", "platform tidak memberi angka"]]
    with site.client("emma") as c:
        english = c.get("/reports", params={"since": "2027-03-20", "until": "2027-03-20", "by": "umkm"}).text
    assert table(english, "rows-umkm")[1][:5] == ["Kopi Kita", "1", "0", "–", "not read yet: next read 2027-03-20 20:10"]


def test_the_default_period_is_the_last_30_days_in_the_organisations_timezone(site: Site) -> None:
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    with site.client() as c:
        page = c.get("/reports").text
    assert f'id="since" value="{today - dt.timedelta(days=29)}"' in page and f'id="until" value="{today}"' in page
    assert "Tidak ada posting yang terbit dalam periode ini." in page  # the fixture is in 2027


def test_english_readers_get_english_separators(site: Site) -> None:
    with site.client("emma") as c:
        page = c.get("/reports", params={**MARCH, "by": "umkm"}).text
    assert table(page, "rows-umkm")[1] == ["Warung Bu Sri", "2", "2", "2,300", "1,265", "632.5", "bluesky"]
    assert "Discord gives no engagement counters back" in page


def test_the_monthly_page_is_printable_and_downloads_as_csv(site: Site) -> None:
    with site.client() as c:
        page = c.get("/reports/monthly", params={"month": "2027-03"})
        download = c.get("/reports/monthly", params={"month": "2027-03", "format": "csv"})
        february = c.get("/reports/monthly", params={"month": "2027-02"})
        february_csv = c.get("/reports/monthly", params={"month": "2027-02", "format": "csv"})
    assert page.status_code == 200
    for by in ("umkm", "product", "channel", "platform", "hour"):
        assert f'id="chart-{by}"' in page.text and f'id="rows-{by}"' in page.text
    assert table(page.text, "rows-platform")[1:] == [
        ["bluesky", "2", "1", "0", "1.255", "1.255", "bluesky"], ["mastodon", "2", "2", "2.340", "11", "5,5", "mastodon"],
        ["discord", "1", "0", "–", "platform tidak memberi angka", "–", "–"],
        ["telegram", "1", "0", "–", "platform tidak memberi angka", "–", "–"]]
    assert 'id="best-hours"' in page.text and 'class="bar best"' in page.text
    assert 'href="/reports/monthly?month=2027-03&amp;format=csv"' in page.text
    assert 'href="/reports/monthly?month=2027-02"' in page.text and 'href="/reports/monthly?month=2027-04"' in page.text
    assert '<script src="/static/print.js"></script>' in page.text
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert 'filename="promo-report-2027-03.csv"' in download.headers["content-disposition"]
    assert download.content.startswith(b"\xef\xbb\xbf")  # a byte order mark, for Excel
    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert rows[0] == {"section": "total", **{k: "" if v is None else str(v) for k, v in TOTAL.items()}}
    assert [(r["section"], r["group"], r["engagement"]) for r in rows[1:4]] == [
        ("umkm", "Warung Bu Sri", "1265"), ("umkm", "Kopi Kita", "1"), ("umkm", "(none)", "")]
    assert [r["section"] for r in rows].count("hour") == 24 and len(rows) == 1 + 3 + 3 + 4 + 4 + 24
    assert [(r["group"], r["posts"], r["engagement"]) for r in rows if r["section"] == "hour"][8:10] == [
        ("08:00", "0", ""), ("09:00", "2", "11")]  # an hour without posts: 0 posts, no figures
    # February: a UMKM named like a formula, with markup: text on the page, never a formula in the sheet
    assert "=HYPERLINK(&#34;http://x.test&#34;)&lt;b&gt;Bu&lt;/b&gt;" in february.text and "<b>Bu" not in february.text
    odd = next(r for r in csv.DictReader(io.StringIO(february_csv.content.decode("utf-8-sig"))) if r["section"] == "umkm")
    assert odd["group"] == "'" + ODD and odd["engagement"] == "3"


def test_the_post_page_draws_its_counters_over_time(site: Site) -> None:
    with site.client() as c:
        p1 = c.get(f"/posts/{site.ids['p1']}").text
        telegram = c.get(f"/posts/{site.ids['p4']}").text
        unread = c.get(f"/posts/{site.ids['p8']}").text
        draft = c.get(f"/posts/{site.ids['p7']}").text
    assert 'id="post-engagement"' in p1 and 'id="post-audience"' in p1
    assert table(p1, "reads") == [["Dibaca", "Setelah", "tayangan", "suka", "dibagikan", "balasan", "Interaksi"],
                                  ["2027-03-02 10:10", "1 jam", "400", "2", "1", "0", "3"],
                                  ["2027-03-03 09:10", "24 jam", "1.500", "5", "2", "1", "8"],
                                  ["2027-03-09 09:10", "7 hari", "2.300", "7", "2", "1", "10"]]
    assert "Telegram tidak memberikan angka interaksi, jadi posting ini tidak punya angka (bukan nol)." in telegram
    assert 'id="reads"' not in telegram and "post-engagement" not in telegram
    assert "Belum ada angka yang dibaca: angka dibaca 1 jam, 24 jam, 7 hari, 30 hari setelah terbit." in unread
    assert 'id="engagement"' not in draft  # nothing published, nothing to count


# --- what a request may ask, and who may ask -----------------------------------------------------------

def test_bad_parameters_are_named(site: Site) -> None:
    for path, params, named in (("/api/v1/reports", {"since": "2027-03-31", "until": "2027-03-01"}, "until"),
                                ("/api/v1/reports", {"since": "1 Maret"}, "since '1 Maret'"),
                                ("/api/v1/reports", {"by": "weekday"}, "by 'weekday'"),
                                ("/api/v1/reports", {"until": "0001-01-02"}, "out of range"),
                                ("/api/v1/reports", {"since": "9999-12-30", "until": "9999-12-31"}, "out of range"),
                                ("/api/v1/reports", {"since": "0001-01-01", "until": "0001-01-02"}, "out of range"),
                                ("/api/v1/reports/monthly", {"month": "2027-13"}, "month '2027-13'"),
                                ("/api/v1/reports/monthly", {"month": "0001-01"}, "out of range"),
                                ("/api/v1/reports/monthly", {"format": "xlsx"}, "format 'xlsx'")):
        answer = site.api(path, **params)
        assert answer.status_code == 400 and named in answer.json()["error"], (path, params, answer.text)
    with site.client() as c:
        page = c.get("/reports/monthly", params={"month": "Maret"})
    assert page.status_code == 400 and "month &#39;Maret&#39;: not a month (YYYY-MM)" in page.text


def test_viewers_read_and_nobody_else(site: Site) -> None:
    paths = ["/reports", "/reports/monthly", "/reports/monthly?format=csv", "/api/v1/reports",
             "/api/v1/reports/monthly", f"/api/v1/reports/posts/{site.ids['p1']}"]
    with httpx.Client(base_url=site.url, trust_env=False, timeout=20) as anonymous:
        for path in paths:
            answer = anonymous.get(path)
            if path.startswith("/api/"):
                assert answer.status_code == 401, path
            else:
                assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next="), path
    with site.client() as viewer:
        assert all(viewer.get(p).status_code == 200 for p in paths)
        assert 'id="nav-reports"' in viewer.get("/").text
    assert all(site.api(p).status_code == 200 for p in paths if p.startswith("/api/"))
    assert httpx.get(site.url + "/reports", headers=site.token, trust_env=False).status_code == 303  # a token is for the API


def test_the_openapi_describes_the_parameters_and_answers(site: Site) -> None:
    described = site.api("/api/v1/openapi.json").json()
    get = described["paths"]["/api/v1/reports"]["get"]
    assert {p["name"] for p in get["parameters"]} == {"since", "until", "by"}
    answer = get["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["$ref"].endswith("/ReportOut")
    row = described["components"]["schemas"]["RowOut"]["properties"]
    assert {"group", "posts", "measured", "reach_views", "engagement", "engagement_per_post", "best_platform"} <= set(row)
    assert {p["name"] for p in described["paths"]["/api/v1/reports/monthly"]["get"]["parameters"]} == {"month", "format"}
    assert [p["in"] for p in described["paths"]["/api/v1/reports/posts/{id}"]["get"]["parameters"]] == ["path"]
    assert not any(p.startswith("/reports") for p in described["paths"])  # pages stay out
