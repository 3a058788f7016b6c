"""Records and the Calendar in a real browser (Debian's chromium; skipped, saying why, when it
is not installed): upload a products CSV with a bad row and read the line's error, the month
view with posts in several states, and every page of this area at a phone's width (390 px)
without sideways scrolling. A failing test leaves a screenshot in its tmp dir.

``PROMO_DOCS_SCREENSHOT=docs/calendar.png`` also saves the month view there (the README's picture).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import load_settings
from scheduler.models import PostStatus, Product, Umkm
from scheduler.storage import channels as channel_store
from scheduler.storage import posts as post_store
from scheduler.storage.db import Database
from tests.conftest import TEMPLATES
from tests.e2e.conftest import screenshot_on_failure
from tests.webapp import PASSWORD, Served, add_user

MONTH = dt.date(2027, 3, 1)
STATES = [PostStatus.PUBLISHED, PostStatus.PUBLISHED, PostStatus.FAILED, PostStatus.SCHEDULED,
          PostStatus.PENDING_APPROVAL, PostStatus.DRAFT, PostStatus.SCHEDULED, PostStatus.NEEDS_REVIEW,
          PostStatus.CANCELLED, PostStatus.SCHEDULED]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("webrecords-e2e")
    settings = load_settings({"PROMO_DATABASE_URL": f"sqlite:///{tmp}/promo.db", "PROMO_TEMPLATES_DIR": str(TEMPLATES),
                              "PROMO_CHANNELS": "instagram,facebook,kota",
                              **{f"PROMO_CHANNEL_{c.upper()}_{k}": v for c in ("instagram", "facebook", "kota")
                                 for k, v in (("PLATFORM", "outbox"), ("PATH", str(tmp / f"{c}.jsonl")))},
                              "PROMO_TIMEZONE": "Asia/Makassar"})
    db = Database(settings.database_url)
    db.upgrade()
    with db.session() as session:
        chans = channel_store.sync_configured(session, settings)
        umkm = Umkm(external_id="U1", name="Warung Bu Sari")
        session.add(umkm)
        session.flush()
        session.add(Product(external_id="P1", umkm_id=umkm.id, name="Kue Lapis Legit Khas Samarinda dengan nama "
                                                                    "yang sangat panjang sekali", tags=["kue"]))
        names = sorted(chans)
        n = 0
        for day in range(1, 31, 2):
            for k in range(1 + day % 3):
                at = dt.datetime.combine(MONTH.replace(day=day), dt.time(9 + 3 * k), tzinfo=settings.timezone)
                post_store.create_post(session, channel=chans[names[n % 3]], kind="free_text",
                                       text=f"Promo hari {day} #{k}", status=STATES[n % len(STATES)],
                                       scheduled_at=at.astimezone(dt.UTC), actor="test")
                n += 1
        for k in range(12):  # a crowded day
            post_store.create_post(session, channel=chans["kota"], kind="free_text", text=f"Ramai {k}",
                                   status=PostStatus.SCHEDULED, actor="test",
                                   scheduled_at=dt.datetime(2027, 3, 18, 1, k, tzinfo=dt.UTC))
    add_user(db, "edo", "editor")
    served = Served(settings, db)
    try:
        yield served.url
    finally:
        served.stop()
        db.dispose()


@pytest.fixture
def d(browser: Any, site: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The browser, logged in as the editor; a screenshot in the test's tmp dir when the test fails."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.delete_all_cookies()
    browser.get(site + "/login")
    browser.find_element(By.ID, "name").send_keys("edo")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "submit").click()
    WebDriverWait(browser, 20).until(lambda drv: drv.find_elements(By.ID, "me"))
    yield browser
    screenshot_on_failure(browser, tmp_path, request)


def test_upload_a_products_csv_with_a_bad_row_and_read_its_error(d: Any, site: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    upload = tmp_path / "produk.csv"
    upload.write_text("id,umkm_id,name,price\nP2,U1,Amplang,15000\nP3,U1,Bingka,murah\n", encoding="utf-8")
    d.get(site + "/records/products")
    d.find_element(By.ID, "file").send_keys(str(upload))
    d.find_element(By.ID, "upload-submit").click()
    WebDriverWait(d, 20).until(lambda drv: drv.find_elements(By.ID, "problems"))
    problems = d.find_element(By.ID, "problems").text
    assert "produk.csv" in problems and "3" in problems and "price" in problems and "'murah'" in problems
    assert "P2" not in d.find_element(By.ID, "records").text  # nothing written
    d.find_element(By.ID, "import-good").click()
    WebDriverWait(d, 20).until(lambda drv: drv.find_elements(By.CSS_SELECTOR, ".flash"))
    assert "1 created" in d.find_element(By.CSS_SELECTOR, ".flash").text
    assert "P2" in d.find_element(By.ID, "records").text and "P3" not in d.find_element(By.ID, "records").text


def test_the_month_view_shows_posts_by_local_day_in_words(d: Any, site: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    d.get(site + "/calendar?view=month&date=2027-03-10")
    day = d.find_element(By.ID, "day-2027-03-05").text
    assert "09:00" in day and "12:00" in day  # local times
    crowded = d.find_element(By.ID, "day-2027-03-18")
    assert len(crowded.find_elements(By.CSS_SELECTOR, "li.chip")) == 4 and "+8" in crowded.text
    words = d.find_element(By.ID, "calendar").text
    assert "terbit" in words and "gagal" in words and "terjadwal" in words  # the state as a word, not only a colour
    d.find_element(By.CSS_SELECTOR, "#day-2027-03-01 li.chip a").click()
    assert "/posts/" in d.current_url
    d.get(site + "/calendar?view=month&date=2027-03-10")
    d.set_window_size(1280, 1150)
    shot = tmp_path / "calendar.png"
    d.save_screenshot(str(shot))
    target = os.environ.get("PROMO_DOCS_SCREENSHOT")
    if target:
        shutil.copyfile(shot, target)
    d.set_window_size(1280, 1000)


def test_drag_a_post_to_another_day_moves_it(d: Any, site: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d.get(site + "/calendar?view=month&date=2027-03-10")
    # draggable is set by the script: it ran, under the CSP
    chip = d.find_element(By.CSS_SELECTOR, "#day-2027-03-05 li.chip[draggable='true']")
    post = chip.get_attribute("id")
    # HTML5 drag-and-drop as the browser fires it (Selenium's mouse moves do not start a drag in chromium).
    d.execute_script("""
        var chip = arguments[0], day = document.getElementById('day-2027-03-12'), data = new DataTransfer();
        chip.dispatchEvent(new DragEvent('dragstart', {bubbles: true, dataTransfer: data}));
        day.dispatchEvent(new DragEvent('dragover', {bubbles: true, cancelable: true, dataTransfer: data}));
        day.dispatchEvent(new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: data}));
    """, chip)
    WebDriverWait(d, 20).until(lambda drv: drv.find_elements(By.CSS_SELECTOR, ".flash"))
    assert "2027-03-12 09:00" in d.find_element(By.CSS_SELECTOR, ".flash").text
    assert d.find_elements(By.CSS_SELECTOR, f"#day-2027-03-12 #{post}")
    assert not d.find_elements(By.CSS_SELECTOR, f"#day-2027-03-05 #{post}")


def test_every_page_of_this_area_fits_a_phone(d: Any, site: str) -> None:
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True})
    try:
        for path in ("/", "/calendar?view=month&date=2027-03-10", "/calendar?view=week&date=2027-03-18",
                     "/records/products", "/records/products/P1", "/records/umkm", "/history"):
            d.get(site + path)
            width = d.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1] == 390, (path, width)
    finally:
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
