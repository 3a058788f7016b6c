"""The Reports pages in a real browser (Debian's chromium; skipped, saying why, when it is not
installed), over the hand-computed fixture of tests/reportdata.py: a viewer picks March 2027, sees
the chart and the figures, switches to the best hours, opens the monthly report, prints it (no
navigation on paper), downloads its CSV, follows the best post to its counters over time, and
every one of these pages fits a phone (390 px) with its charts scaled down. A failing test leaves
a screenshot in its tmp dir."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import load_settings
from scheduler.storage.db import Database
from tests.e2e.conftest import screenshot_on_failure
from tests.helpers import wait_for
from tests.reportdata import environment, seed
from tests.webapp import PASSWORD, Served, add_user

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, int]]]:
    tmp = tmp_path_factory.mktemp("webreports-e2e")
    settings = load_settings(environment(tmp))
    db = Database(settings.database_url)
    db.upgrade()
    ids = seed(db, settings)
    add_user(db, "vina", "viewer")
    served = Served(settings, db)
    try:
        yield served.url, ids
    finally:
        served.stop()
        db.dispose()


@pytest.fixture
def d(browser: Any, site: tuple[str, dict[str, int]], tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The browser, logged in as a viewer; a screenshot in the test's tmp dir when the test fails."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.delete_all_cookies()
    browser.get(site[0] + "/login")
    browser.find_element(By.ID, "name").send_keys("vina")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "submit").click()
    WebDriverWait(browser, 20).until(lambda drv: drv.find_elements(By.ID, "me"))
    yield browser
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    screenshot_on_failure(browser, tmp_path, request)


def arrive(d: Any, element: Any, url_part: str) -> None:
    """Click and wait for the next page (never a fixed time)."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    element.click()
    WebDriverWait(d, 20).until(ec.url_contains(url_part))
    WebDriverWait(d, 20).until(lambda drv: drv.execute_script("return document.readyState") == "complete")


def bar_widths(d: Any, chart: str) -> list[float]:
    return [float(w) for w in d.execute_script(
        f"return Array.from(document.querySelectorAll('#{chart} rect.bar')).map(r => r.getBoundingClientRect().width)")]


def test_a_viewer_reads_the_report_prints_the_month_and_downloads_it(d: Any, site: tuple[str, dict[str, int]],
                                                                    tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    url, ids = site
    arrive(d, d.find_element(By.ID, "nav-reports"), "/reports")
    assert d.find_element(By.TAG_NAME, "h1").text == "Laporan"
    # The period picker: two date fields (typed as a phone's date picker would fill them).
    d.execute_script("document.getElementById('since').value = '2027-03-01';"
                     "document.getElementById('until').value = '2027-03-31';")
    arrive(d, d.find_element(By.CSS_SELECTOR, "#period button"), "until=2027-03-31")
    total = d.find_element(By.ID, "total").text
    assert "6\nposting terbit" in total and "1.266\ninteraksi" in total and "422\ninteraksi per posting" in total
    a, b = bar_widths(d, "chart-umkm")  # Warung Bu Sri 632.5 a post, Kopi Kita 1; (none) has no bar
    assert a > 100 and 0 < b < a / 100
    assert "tanpa angka" in d.find_element(By.ID, "chart-umkm").text
    rows = d.find_element(By.ID, "rows-umkm").text
    assert "Warung Bu Sri 2 2 2.300 1.265 632,5 bluesky" in rows and "platform tidak memberi angka" in rows
    assert "Discord tidak memberikan angka interaksi" in d.find_element(By.ID, "about-counters").text

    arrive(d, d.find_element(By.ID, "tab-hour"), "by=hour")
    assert len(d.find_elements(By.CSS_SELECTOR, "#chart-hour g.column")) == 24  # the whole day
    best = d.find_elements(By.CSS_SELECTOR, "#chart-hour g.column rect.best")
    assert len(best) == 2 and all(b.size["height"] > 0 for b in best)
    assert d.find_element(By.ID, "best-hours").text == "Jam terbaik: 19.00–20.00, 09.00–10.00 (interaksi per posting, waktu setempat)."
    # The README's picture: refreshed on request only, so a test run leaves the repository as it was.
    d.set_window_size(1100, 1500)
    d.execute_script("window.scrollTo(0, 0)")
    shot = REPO / "docs" / "reports.png" if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path / "reports.png"
    assert d.save_screenshot(str(shot))
    d.set_window_size(1280, 1000)

    arrive(d, d.find_element(By.ID, "monthly"), "/reports/monthly?month=2027-03")
    assert d.find_element(By.TAG_NAME, "h1").text == "Laporan bulanan 2027-03"
    assert len(d.find_elements(By.CSS_SELECTOR, "figure.chart svg")) == 5
    assert d.find_element(By.ID, "print").is_displayed()  # print.js ran under the CSP
    d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert d.find_element(By.ID, "nav").is_displayed() is False and d.find_element(By.ID, "csv").is_displayed() is False
    assert d.find_element(By.ID, "rows-platform").is_displayed() and d.find_element(By.ID, "chart-hour").is_displayed()
    d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})

    d.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    d.find_element(By.ID, "csv").click()
    saved = tmp_path / "promo-report-2027-03.csv"
    wait_for(saved.exists, 30, "the CSV downloaded")
    rows_csv = list(csv.DictReader(io.StringIO(saved.read_bytes().decode("utf-8-sig"))))
    assert (rows_csv[0]["section"], rows_csv[0]["posts"], rows_csv[0]["engagement"]) == ("total", "6", "1266")
    assert {r["group"] for r in rows_csv if r["section"] == "platform"} == {"bluesky", "mastodon", "discord", "telegram"}

    arrive(d, d.find_element(By.CSS_SELECTOR, f"#top a[href='/posts/{ids['p2']}']"), f"/posts/{ids['p2']}")
    assert d.find_element(By.ID, "post-engagement").is_displayed()
    assert "1.200" in d.find_element(By.ID, "reads").text and "24 jam" in d.find_element(By.ID, "reads").text


def test_the_report_pages_fit_a_phone(d: Any, site: tuple[str, dict[str, int]]) -> None:
    url, ids = site
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True})
    try:
        for path in ("/reports?since=2027-03-01&until=2027-03-31&by=product", "/reports?by=hour",
                     "/reports/monthly?month=2027-03", f"/posts/{ids['p1']}", f"/posts/{ids['p5']}"):
            d.get(url + path)
            width = d.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1] == 390, (path, width)
            charts = d.execute_script("return Array.from(document.querySelectorAll('figure.chart svg'))"
                                      ".map(s => s.getBoundingClientRect().width)")
            assert all(300 < w <= 390 for w in charts), (path, charts)  # scaled to the screen, not cut off
    finally:
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
