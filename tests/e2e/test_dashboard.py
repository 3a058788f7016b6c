"""The web app (`promo serve --web`), as a supervisor uses it: the real `promo serve` on
127.0.0.1 publishing to a fake platform, its JSON API read over HTTP with an API token, and its
pages clicked through in a real browser after logging in (Debian's chromium; skipped, saying
why, when it is not installed), at a desktop's width and a phone's (390 px). A failing browser
test leaves a screenshot in its tmp dir.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.views import HISTORY_FIELDS
from tests.conftest import TEMPLATES
from tests.fakeplatform import FakePlatform
from tests.helpers import wait_for

PASSWORD = "kunci-SUPERVISOR-2027"
#: The README's way to create the first admin (until `promo users add --password-stdin`), and a token.
FIRST_ADMIN = """
import sys
from scheduler.config import load_settings
from scheduler.storage import accounts
from scheduler.storage.db import Database
db = Database(load_settings().database_url)
with db.session() as s:
    accounts.add_user(s, "supervisor", "admin", password=sys.stdin.read().strip())
    print(accounts.create_token(s, "supervisor", "e2e")[1])
"""
TEXT = 'Kue <b>Lapis</b> & "Bingka" khas Balikpapan #UMKM'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Board:
    url: str
    env: dict[str, str]
    cwd: Path
    fake: FakePlatform
    token: str = ""

    def get(self, path: str, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if path.startswith("/api/") else {}
        return httpx.get(self.url + path, params=params, headers=headers, timeout=10, trust_env=False)

    def page(self, path: str) -> httpx.Response:
        """A page, logged in through the login form."""
        with httpx.Client(base_url=self.url, trust_env=False, timeout=10) as client:
            assert client.post("/login", data={"name": "supervisor", "password": PASSWORD}).status_code == 303
            return client.get(path)

    def promo(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "scheduler.cli", *args], env=self.env, cwd=self.cwd,
                              capture_output=True, text=True, timeout=60)

    def post_id(self, channel: str) -> int:
        rows = self.get("/api/v1/posts", channel=channel).json()
        assert len(rows) == 1, rows
        return int(rows[0]["id"])


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    tmp = tmp_path_factory.mktemp("dashboard")
    with FakePlatform(seed=7) as fake:
        fake.configure("arsip", p_5xx=1.0, statuses_5xx=(500,))  # this account's server is down
        port = free_port()
        env = {"PATH": os.environ.get("PATH", "/usr/bin"), "PROMO_DATABASE_URL": f"sqlite:///{tmp}/promo.db",
               "PROMO_TEMPLATES_DIR": str(TEMPLATES), "PROMO_CHANNELS": "outbox,kota,arsip",
               "PROMO_CHANNEL_OUTBOX_PATH": str(tmp / "outbox.jsonl"),
               "PROMO_CHANNEL_KOTA_PLATFORM": "webhook", "PROMO_CHANNEL_KOTA_URL": fake.url("kota"),
               "PROMO_CHANNEL_ARSIP_PLATFORM": "webhook", "PROMO_CHANNEL_ARSIP_URL": fake.url("arsip"),
               "PROMO_MAX_ATTEMPTS": "1", "PROMO_POLL_SECONDS": "0.2", "PROMO_HEALTH_PORT": "0"}
        b = Board(f"http://127.0.0.1:{port}", env, tmp, fake)
        assert b.promo("db", "upgrade").returncode == 0
        admin = subprocess.run([sys.executable, "-c", FIRST_ADMIN], input=PASSWORD, env=env, cwd=tmp,
                               capture_output=True, text=True, timeout=60)
        assert admin.returncode == 0, admin.stderr
        b.token = admin.stdout.strip()
        made = b.promo("post", "new", "--text", TEXT, "--channel", "outbox,kota,arsip", "--now")
        assert made.returncode == 0, made.stderr
        assert b.promo("post", "new", "--text", "Draf pengumuman pameran", "--channel", "outbox",
                       "--draft").returncode == 0
        serve = subprocess.Popen([sys.executable, "-m", "scheduler.cli", "serve", "--web", "--port", str(port)],
                                 env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            def settled() -> bool:
                try:
                    counts = b.get("/api/v1/status").json()["counts"]
                except httpx.TransportError:
                    return False
                return counts == {"published": 2, "failed": 1, "draft": 1}

            wait_for(settled, 60, "two published, one failed, one draft")
            yield b
        finally:
            serve.terminate()
            output, _ = serve.communicate(timeout=30)
            assert serve.returncode == 0, output
            assert f"web app: http://127.0.0.1:{port}/" in output
            assert PASSWORD not in output and b.token not in output


def test_the_api_gives_the_rows_the_promo_command_prints(board: Board) -> None:
    status = board.get("/api/v1/status").json()
    assert [w["stalled"] for w in status["workers"]] == [False]
    assert {c["name"]: c["status"] for c in status["channels"]} == {"outbox": "active", "kota": "active",
                                                                      "arsip": "active"}
    # Same filter, same rows in the same order, whichever way a supervisor asks.
    for query, args in (({"all": "1"}, ["--all"]), ({"status": "published"}, ["--status", "published"])):
        api = board.get("/api/v1/history", **query).json()
        cli = json.loads(board.promo("history", *args, "--format", "json").stdout)
        assert api == cli and len(api) > 1
    api = board.get("/api/v1/history", channel="kota").json()
    assert api == json.loads(board.promo("history", "--channel", "kota", "--format", "json").stdout)
    assert len(api) == 1
    (row,) = api
    assert row["outcome"] == "published" and row["to_status"] == "published" and row["text"] == TEXT
    delivery = board.fake.deliveries_for("kota")[0]
    assert row["remote_url"] == f"{board.fake.base_url}/kota/posts/{delivery.id}"

    (failed,) = board.get("/api/v1/posts", status="failed").json()
    assert failed["channel"] == "arsip" and "500" in failed["error"]
    detail = board.get(f"/api/v1/posts/{failed['id']}").json()
    attempts = [h for h in detail["history"] if h["action"] == "attempt"]
    assert [(h["http_status"], h["to_status"]) for h in attempts] == [(500, "failed")]
    assert detail["history"][0]["to_status"] == "scheduled"  # every status change, from the start


def test_history_downloads_as_csv_with_the_filters_applied(board: Board) -> None:
    response = board.get("/api/v1/history", status="published", format="csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")  # a UTF-8 byte order mark, for Excel
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert tuple(rows[0]) == HISTORY_FIELDS
    assert sorted(r["channel"] for r in rows) == ["kota", "outbox"]


def test_bad_requests_are_named_and_nothing_else_is_shown(board: Board) -> None:
    bad = board.get("/api/v1/posts", status="terbit")
    assert bad.status_code == 400 and "'terbit'" in bad.json()["error"] and "published" in bad.json()["error"]
    bad = board.get("/api/v1/history", since="kemarin")
    assert bad.status_code == 400 and "since 'kemarin'" in bad.json()["error"]
    missing = board.get("/api/v1/posts/4040")
    assert missing.status_code == 404 and missing.json() == {"error": "no post with id 4040"}
    page = board.page("/posts/abc")
    assert page.status_code == 400 and "post id &#39;abc&#39;: not a number" in page.text
    assert board.page("/nowhere").status_code == 404


def test_post_text_is_shown_as_text_never_as_markup(board: Board) -> None:
    page = board.page(f"/posts/{board.post_id('kota')}")
    assert page.status_code == 200
    assert "Kue &lt;b&gt;Lapis&lt;/b&gt; &amp; &#34;Bingka&#34;" in page.text and "<b>Lapis</b>" not in page.text
    assert page.headers["Cache-Control"] == "no-store" and "default-src 'none'" in page.headers[
        "Content-Security-Policy"]


def log_in(d: Any, board: Board) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d.delete_all_cookies()
    d.get(board.url + "/")
    WebDriverWait(d, 20).until(lambda drv: "/login" in drv.current_url)
    assert d.find_element(By.TAG_NAME, "h1").text == "Masuk"  # Indonesian before anyone chose
    d.find_element(By.ID, "name").send_keys("supervisor")
    d.find_element(By.ID, "password").send_keys(PASSWORD)
    d.find_element(By.ID, "submit").click()
    WebDriverWait(d, 20).until(lambda drv: drv.find_elements(By.ID, "me"))


def test_a_supervisor_finds_what_failed_and_why_in_the_browser(board: Board, shots: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    d = shots
    arrived = WebDriverWait(d, 20)  # a click starts a navigation; wait for the new page, not a fixed time

    def follow(element: Any, url_part: str) -> None:
        element.click()
        arrived.until(ec.url_contains(url_part))
        arrived.until(lambda drv: drv.execute_script("return document.readyState") == "complete")

    log_in(d, board)
    assert "berjalan" in d.find_element(By.ID, "service").text
    counts = d.find_element(By.ID, "counts").text
    assert "gagal" in counts and "terbit" in counts and "draf" in counts  # states in words, Indonesian
    attention = d.find_element(By.ID, "attention").text
    assert "arsip" in attention and "500" in attention

    follow(d.find_element(By.CSS_SELECTOR, "#counts a[href='/posts?status=failed']"), "/posts?status=failed")
    rows = d.find_elements(By.CSS_SELECTOR, "#posts tr")[1:]
    assert len(rows) == 1 and "arsip" in rows[0].text

    arsip = board.post_id("arsip")
    follow(rows[0].find_element(By.TAG_NAME, "a"), f"/posts/{arsip}")
    assert d.find_element(By.TAG_NAME, "h1").text.startswith(f"Posting #{arsip} di arsip")
    assert d.find_element(By.ID, "state").text == "gagal"
    assert "500" in d.find_element(By.ID, "error").text
    assert d.find_element(By.ID, "text").text == TEXT  # the markup in the text shows as typed
    history = d.find_element(By.ID, "history").text
    assert "attempt" in history and "terjadwal → gagal" in history and "– → terjadwal" in history

    follow(d.find_element(By.ID, "nav-history"), "/history")
    Select(d.find_element(By.ID, "channel")).select_by_value("kota")
    follow(d.find_element(By.CSS_SELECTOR, "form.filters button"), "channel=kota")
    rows = d.find_elements(By.CSS_SELECTOR, "#rows tr")[1:]
    assert len(rows) == 1 and "kota" in rows[0].text and "terbit" in rows[0].text
    link = rows[0].find_element(By.CSS_SELECTOR, "a[rel~='noopener']")
    assert link.get_attribute("href").startswith(f"{board.fake.base_url}/kota/posts/")
    csv_link = d.find_element(By.ID, "csv").get_attribute("href")
    assert "channel=kota" in csv_link and "format=csv" in csv_link


def nav_label(d: Any) -> str:
    """The History link's words, read in one step (a page being replaced has no stale elements here)."""
    return str(d.execute_script("var a = document.getElementById('nav-history'); return a ? a.textContent.trim() : ''"))


def test_english_on_request_and_every_page_fits_a_phone(board: Board, shots: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    d = shots
    log_in(d, board)
    assert d.find_element(By.ID, "nav-history").text == "Riwayat"
    Select(d.find_element(By.ID, "language")).select_by_value("en")
    d.find_element(By.ID, "language-save").click()
    WebDriverWait(d, 20).until(lambda drv: nav_label(drv) == "History")
    assert "failed" in d.find_element(By.ID, "counts").text and "ticking" in d.find_element(By.ID, "service").text
    pages = [a.get_attribute("href") for a in d.find_elements(By.CSS_SELECTOR, "#nav a")]
    assert len(pages) == 11  # an admin sees every page
    pages += [f"{board.url}/posts/{board.post_id('arsip')}", f"{board.url}/posts/{board.post_id('kota')}",
              f"{board.url}/highlights", f"{board.url}/reports/monthly", f"{board.url}/nowhere"]
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True})
    try:
        for url in pages:
            d.get(url)
            width = d.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1] == 390, (url, width)
            if "/history" in url:  # tables become cards: no header row, one card per row
                assert d.execute_script("return getComputedStyle(document.querySelector('#rows tr')).display") == "none"
    finally:
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    # The choice is the user's: kept for their next login.
    log_in(d, board)
    assert d.find_element(By.ID, "nav-history").text == "History"
    Select(d.find_element(By.ID, "language")).select_by_value("id")
    d.find_element(By.ID, "language-save").click()
    WebDriverWait(d, 20).until(lambda drv: nav_label(drv) == "Riwayat")
